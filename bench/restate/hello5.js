// Restate's hello5 client (run.sh): N workflows, C at a time, each submitted
// and then awaited (workflowSubmit + workflowAttach, as Baton's client does
// scheduleNewOrchestration + waitForOrchestrationCompletion), after one
// warm-up; then 50 one at a time. Prints the line of bench/js/hello5.js and
// this process's workflows and CPU:
//   restate hello5: N=… C=… thr=…/s p50=…ms p95=…ms p99=…ms c1_p50=…ms
"use strict";
const clients = require("@restatedev/restate-sdk-clients");

const INGRESS = process.argv[2];
const N = Number(process.argv[3] || 2000);
const C = Number(process.argv[4] || 50);
const DEADLINE_MS = 600000;
const run = `${process.pid}-${Date.now()}`;
let seq = 0;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function one(rs) {
  const t0 = process.hrtime.bigint();
  const wf = rs.workflowClient({ name: "hello5" }, `wf-${run}-${seq++}`);
  await wf.workflowSubmit();
  const out = await wf.workflowAttach();
  if (!Array.isArray(out) || out.length !== 5 || out[4] !== "Hello, Lima!") {
    throw new Error(`unexpected output ${JSON.stringify(out)}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

(async () => {
  const rs = clients.connect({ url: INGRESS });
  const started = Date.now();
  await one(rs);  // warm-up: connections, first invocation
  const latencies = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function lane() {
    while (next < N && Date.now() - started < DEADLINE_MS) {
      next++;
      latencies.push(await one(rs));
    }
  }
  await Promise.all(Array.from({ length: C }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const alone = [];
  for (let i = 0; i < 50 && Date.now() - started < DEADLINE_MS; i++) alone.push(await one(rs));
  latencies.sort((a, b) => a - b);
  alone.sort((a, b) => a - b);
  const f = (x) => x.toFixed(2);
  console.log(
    `restate hello5 (${process.env.RESTATE_STEP || "call"}): N=${latencies.length} C=${C} ` +
      `thr=${Math.round(latencies.length / seconds)}/s p50=${f(percentile(latencies, 50))}ms ` +
      `p95=${f(percentile(latencies, 95))}ms p99=${f(percentile(latencies, 99))}ms ` +
      `c1_p50=${f(percentile(alone, 50))}ms`);
  const cpu = process.cpuUsage();
  console.log(`restate client: workflows=${1 + latencies.length + alone.length} ` +
              `cpu_ms=${Math.round((cpu.user + cpu.system) / 1000)}`);
  process.exit(0);
})().catch((e) => {
  console.error(`restate hello5: ${e.message}`);
  process.exit(1);
});

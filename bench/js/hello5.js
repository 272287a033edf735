// hello5 with durabletask-js: N instances of Hello5 (five sequential
// activities), C at a time, started and awaited by the SDK's client while a
// worker process (hello5-worker.js) runs them; then 50 one at a time for the
// latency of a lone workflow. Prints the same line as `baton hello5`:
//   baton hello5-js: N=… C=… thr=…/s p50=…ms p95=…ms p99=…ms c1_p50=…ms
"use strict";
const { TaskHubGrpcClient, OrchestrationStatus } = require("@microsoft/durabletask-js");
const { options } = require("./hello5-worker");

const N = Number(process.argv[2] || 2000);
const C = Number(process.argv[3] || 50);
const DEADLINE_MS = 600000;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function one(client) {
  const t0 = process.hrtime.bigint();
  const id = await client.scheduleNewOrchestration("hello5");
  const state = await client.waitForOrchestrationCompletion(id, false, 120);
  if (!state || OrchestrationStatus[state.runtimeStatus] !== "COMPLETED") throw new Error(`${id} did not complete`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

(async () => {
  const client = new TaskHubGrpcClient(options());
  const started = Date.now();
  await one(client);  // warm-up: connections, first episode
  const latencies = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function lane() {
    while (next < N && Date.now() - started < DEADLINE_MS) {
      next++;
      latencies.push(await one(client));
    }
  }
  await Promise.all(Array.from({ length: C }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const alone = [];
  for (let i = 0; i < 50 && Date.now() - started < DEADLINE_MS; i++) alone.push(await one(client));
  latencies.sort((a, b) => a - b);
  alone.sort((a, b) => a - b);
  const f = (x) => x.toFixed(2);
  console.log(
    `baton hello5-js: N=${latencies.length} C=${C} thr=${Math.round(latencies.length / seconds)}/s ` +
      `p50=${f(percentile(latencies, 50))}ms p95=${f(percentile(latencies, 95))}ms ` +
      `p99=${f(percentile(latencies, 99))}ms c1_p50=${f(percentile(alone, 50))}ms`);
  // For run.sh's CPU per workflow: every workflow this run started (warm-up,
  // measured, lone ones) and this process's own CPU time.
  const cpu = process.cpuUsage();
  console.log(`hello5-js client: workflows=${1 + latencies.length + alone.length} ` +
              `cpu_ms=${Math.round((cpu.user + cpu.system) / 1000)}`);
  await client.stop();
  process.exit(0);
})().catch((e) => {
  console.error(`hello5-js: ${e.message}`);
  process.exit(1);
});

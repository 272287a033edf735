// hello5 with DBOS Transact (the TypeScript SDK, @dbos-inc/dbos-sdk) on the
// PostgreSQL of `scripts/bench hello5-pg`: a workflow of five sequential
// steps, each returning "Hello, <city>!", as Baton's Hello5. One process runs
// the workflows and starts and awaits them: 200 warm-up runs, 200 one at a
// time (c1), then N, C at a time. The URL names a fresh database (run.sh);
// DBOS keeps its system tables there. Prints the same line as hello5-pg:
//   dbos hello5-pg: N=… C=… thr=…/s p50=…ms p95=…ms p99=…ms c1_p50=…ms
"use strict";
const { DBOS } = require("@dbos-inc/dbos-sdk");

const url = process.argv[2];
const N = Number(process.argv[3] || 2000);
const C = Number(process.argv[4] || 50);
const DEADLINE_MS = 600000;

async function hello(city) {
  return `Hello, ${city}!`;
}
const helloStep = DBOS.registerStep(hello, { name: "Hello" });
const hello5 = DBOS.registerWorkflow(
  async () => {
    const out = [];
    for (const city of ["Tokyo", "Seattle", "London", "Paris", "Lima"]) out.push(await helloStep(city));
    return out;
  },
  { name: "Hello5" });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function one() {
  const t0 = process.hrtime.bigint();
  const handle = await DBOS.startWorkflow(hello5)();
  const out = await handle.getResult();
  if (!Array.isArray(out) || out.length !== 5) throw new Error(`${handle.workflowID}: ${JSON.stringify(out)}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

(async () => {
  if (!url) throw new Error("usage: node hello5.js POSTGRES_URL [N] [C]");
  // The same number of connections as Baton's store may open (its
  // max_connections, 24); DBOS's own default pool is 10, which held it to
  // ≈ 60 % of this throughput here. DBOS_BENCH_POOL overrides it.
  DBOS.setConfig({
    name: "hello5",
    systemDatabaseUrl: url,
    systemDatabasePoolSize: Number(process.env.DBOS_BENCH_POOL || 24),
    logLevel: "warn",
  });
  await DBOS.launch();
  const started = Date.now();
  for (let i = 0; i < 200; i++) await one();  // warm-up: connections, JIT
  const alone = [];
  for (let i = 0; i < 200 && Date.now() - started < DEADLINE_MS; i++) alone.push(await one());
  const latencies = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function lane() {
    while (next < N && Date.now() - started < DEADLINE_MS) {
      next++;
      latencies.push(await one());
    }
  }
  await Promise.all(Array.from({ length: C }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  alone.sort((a, b) => a - b);
  const f = (x) => x.toFixed(2);
  console.log(
    `dbos hello5-pg: N=${latencies.length} C=${C} thr=${Math.round(latencies.length / seconds)}/s ` +
      `p50=${f(percentile(latencies, 50))}ms p95=${f(percentile(latencies, 95))}ms ` +
      `p99=${f(percentile(latencies, 99))}ms c1_p50=${f(percentile(alone, 50))}ms`);
  await DBOS.shutdown();
  process.exit(0);
})().catch((e) => {
  console.error(`dbos hello5-pg: ${e.stack || e.message}`);
  process.exit(1);
});

// Fan-out / fan-in of batch jobs from a durabletask-js orchestration.
//
// The orchestration starts `count` container jobs as the sub-orchestration
// "baton.Job" (the input is a job spec, docs/job-spec.md), waits for all of
// them, and returns their result objects. Baton runs each job for the tenant
// of the API key below, under its quota, fair share, sandbox and grants,
// exactly as if it had been submitted with POST /api/v1/jobs.
//
//   npm install @microsoft/durabletask-js@0.4.0 @grpc/grpc-js@1.14.7
//   BATON_GRPC=127.0.0.1:4001 BATON_KEY=<tenant key> \
//     node fanout.js --count 20 --image 127.0.0.1:5000/acme/work@sha256:… --args "sleep 1"
//
// It prints "instance <id>" once the orchestration is started (terminate it
// with `baton instance terminate <id>` and its jobs are canceled), then
// "status <COMPLETED|FAILED|TERMINATED>" and "result <JSON>" when it ends.
"use strict";
const grpc = require("@grpc/grpc-js");
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, whenAll } = require("@microsoft/durabletask-js");

// The orchestration: deterministic, like any orchestrator code.
const fanOutJobs = async function* (ctx, input) {
  const tasks = [];
  for (let i = 0; i < input.count; i++) {
    const spec = { ...input.spec, name: `${input.spec.name}-${i}`, env: { ...(input.spec.env || {}), INDEX: String(i) } };
    tasks.push(ctx.callSubOrchestrator("baton.Job", spec));
  }
  const results = yield whenAll(tasks);
  return { count: input.count, completed: results.filter((r) => r.status === "Completed").length, results };
};

function options() {
  const o = { hostAddress: process.env.BATON_GRPC || "127.0.0.1:4001", logger: { error() {}, warn() {}, info() {}, debug() {} } };
  const key = process.env.BATON_KEY || "";
  if (key) {
    o.metadataGenerator = async () => {
      const m = new grpc.Metadata();
      m.set("authorization", `Bearer ${key}`);
      return m;
    };
  }
  return o;
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main() {
  const input = {
    count: Number(arg("count", "20")),
    spec: { name: arg("name", "fanout"), image: arg("image", ""), args: arg("args", "sleep 1").split(" "), cpu: 0.5, memoryMb: 32 },
  };
  const worker = new TaskHubGrpcWorker(options());
  worker.addOrchestrator(fanOutJobs);
  await worker.start();
  const client = new TaskHubGrpcClient(options());
  const id = await client.scheduleNewOrchestration(fanOutJobs, input);
  console.log(`instance ${id}`);
  const state = await client.waitForOrchestrationCompletion(id, true, Number(arg("timeout", "600")));
  console.log(`status ${state ? OrchestrationStatus[state.runtimeStatus] : "UNKNOWN"}`);
  if (state && state.serializedOutput) console.log(`result ${state.serializedOutput}`);
  if (state && state.failureDetails) console.log(`failure ${JSON.stringify(state.failureDetails)}`);
  await worker.stop();
  await client.stop();
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

module.exports = { fanOutJobs };

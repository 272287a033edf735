// A tenant's durabletask-js orchestration tries the platform's job activity
// itself (run by JobsFromOrchestrationsJsTest with BATON_GRPC, BATON_KEY and
// NODE_PATH set): Baton must refuse it. Prints "status <STATUS>" and the
// failure.
"use strict";
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus } = require("@microsoft/durabletask-js");
const { options } = require("./connect");

const callsStartJob = async function* (ctx) {
  return yield ctx.callActivity("baton.StartJob", { id: "0123456789abcdef", spec: { name: "x", image: "y" } });
};

async function main() {
  const worker = new TaskHubGrpcWorker(options());
  worker.addOrchestrator(callsStartJob);
  await worker.start();
  const client = new TaskHubGrpcClient(options());
  const id = await client.scheduleNewOrchestration(callsStartJob, null);
  const state = await client.waitForOrchestrationCompletion(id, true, 60);
  console.log(`status ${state ? OrchestrationStatus[state.runtimeStatus] : "UNKNOWN"}`);
  if (state && state.failureDetails) console.log(`failure ${JSON.stringify(state.failureDetails)}`);
  await worker.stop();
  await client.stop();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

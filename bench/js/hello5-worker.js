// The hello5 worker process: SayHello and Hello5 (five sequential SayHello
// calls), over the gRPC sidecar at $BATON_GRPC with the key $BATON_KEY.
"use strict";
const grpc = require("@grpc/grpc-js");
const { TaskHubGrpcWorker } = require("@microsoft/durabletask-js");

const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const sayHello = async (_ctx, name) => `Hello, ${name}!`;
const hello5 = async function* (ctx) {
  const out = [];
  for (const city of ["Tokyo", "Seattle", "London", "Paris", "Lima"]) out.push(yield ctx.callActivity(sayHello, city));
  return out;
};

function options() {
  return {
    hostAddress: process.env.BATON_GRPC,
    logger: quiet,
    metadataGenerator: async () => {
      const m = new grpc.Metadata();
      m.set("authorization", `Bearer ${process.env.BATON_KEY}`);
      return m;
    },
  };
}

if (require.main === module) {
  (async () => {
    const worker = new TaskHubGrpcWorker(options());
    worker.addOrchestrator(hello5);
    worker.addActivity(sayHello);
    await worker.start();
    console.log("worker started");
    setInterval(() => {}, 1 << 30);
  })();
}

module.exports = { hello5, options };

// A bare SDK worker: one GetWorkItems stream on a node's gRPC sidecar that
// takes work items and never completes them, so the instances it holds stay
// leased to that node (for the nodes view), plus StartInstance. Through
// @grpc/grpc-js and Baton's own orchestrator_service.proto.
"use strict";
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "../../../src/api/grpc/protos/orchestrator_service.proto");
const defs = grpc.loadPackageDefinition(loader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true, oneofs: true }));

function metadata(key) {
  const m = new grpc.Metadata();
  m.set("authorization", "Bearer " + key);
  return m;
}

// Opens a worker stream on `address` with `key`; `items` receives the
// orchestration instance ids handed to it.
function connectWorker(address, key) {
  const client = new defs.TaskHubSidecarService(address, grpc.credentials.createInsecure());
  const items = [];
  const stream = client.GetWorkItems({ maxConcurrentOrchestrationWorkItems: 10, maxConcurrentActivityWorkItems: 10 }, metadata(key));
  stream.on("data", (w) => { if (w.orchestratorRequest) items.push(w.orchestratorRequest.instanceId); });
  stream.on("error", () => {});  // cancelled at close
  return { items, close() { stream.cancel(); client.close(); } };
}

function startInstance(address, key, name, instanceId) {
  const client = new defs.TaskHubSidecarService(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.StartInstance({ instanceId, name, input: { value: "null" } }, metadata(key), (err, res) => {
      client.close();
      if (err) reject(err); else resolve(res.instanceId);
    });
  });
}

module.exports = { connectWorker, startInstance };

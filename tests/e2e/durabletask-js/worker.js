// A worker process: registers the test functions and runs until killed.
"use strict";
const { TaskHubGrpcWorker } = require("@microsoft/durabletask-js");
const { register } = require("./functions");
const { options } = require("./connect");

(async () => {
  const worker = new TaskHubGrpcWorker(options());
  register(worker);
  await worker.start();
  console.log("worker started");
  setInterval(() => {}, 1 << 30);
})();

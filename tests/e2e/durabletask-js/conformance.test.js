// DurableTaskConformance: the answers the Durable Task Scheduler (DTS) gives
// to the official JavaScript SDK, checked against `baton serve` (issue 14).
// Started by run.sh, which sets BATON_GRPC, BATON_HTTP, BATON_KEY (tenant
// jsacme: the in-test worker's hub), BATON_OTHER_KEY (tenant jsother: a hub
// with no worker until a test starts one) and BATON_SERVE_LOG (the server's log).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const grpc = require("@grpc/grpc-js");
const {
  TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, EntityInstanceId, VersionMatchStrategy, VersionFailureStrategy,
} = require("@microsoft/durabletask-js");
const f = require("./functions");
const { options, hostAddress } = require("./connect");

const WAIT_S = 60;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
let worker;
let client;

function optionsFor(key, extra = {}) {
  return {
    hostAddress,
    logger: quiet,
    metadataGenerator: async () => {
      const m = new grpc.Metadata();
      m.set("authorization", `Bearer ${key}`);
      return m;
    },
    ...extra,
  };
}

test.before(async () => {
  worker = new TaskHubGrpcWorker(options());
  f.register(worker);
  await worker.start();
  client = new TaskHubGrpcClient(options());
});

test.after(async () => {
  await worker.stop();
  await client.stop();
});

const status = (s) => OrchestrationStatus[s.runtimeStatus];

async function run(orchestrator, input, idOrOptions) {
  const id = await client.scheduleNewOrchestration(orchestrator, input, idOrOptions);
  const state = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.equal(status(state), "COMPLETED", `${id}: ${state.serializedOutput} ${JSON.stringify(state.failureDetails)}`);
  return state;
}

async function until(predicate, what, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function http(method, urlPath, body, headers = {}, key = process.env.BATON_KEY) {
  return fetch(`http://${process.env.BATON_HTTP}/runtime/webhooks/durabletask${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...headers },
    body,
  });
}

// ---- Payloads: the exact bytes the caller sent ----

test("DurableTaskConformance: null and falsy inputs reach the orchestrator and the activity as sent", async () => {
  const cases = [
    [null, "null"], [0, "number:0"], [false, "boolean:false"], ["", 'string:""'], [undefined, "undefined"],
  ];
  for (const [input, kind] of cases) {
    const state = await run(f.inputKinds, input);
    assert.deepEqual(JSON.parse(state.serializedOutput), [kind, kind], `input ${String(input)}`);
    // StartInstance's input comes back as sent: "null" is not "no input".
    assert.equal(state.serializedInput ?? "", input === undefined ? "" : JSON.stringify(input));
  }
});

test("DurableTaskConformance: payload member order is kept byte for byte (start, event, terminate, signal)", async () => {
  const doc = { zeta: 1, alpha: [true, null, { y: 2, b: "x" }], mid: { z: null, a: 0.5 } };
  const bytes = JSON.stringify(doc);

  const started = await run(f.inputKinds, doc);
  assert.equal(started.serializedInput, bytes, "StartInstance input");
  assert.deepEqual(JSON.parse(started.serializedOutput), [`object:${bytes}`, `object:${bytes}`]);

  const waiting = await client.scheduleNewOrchestration(f.waitData);
  await client.waitForOrchestrationStart(waiting, false, WAIT_S);
  await client.raiseOrchestrationEvent(waiting, "data", doc);
  const raised = await client.waitForOrchestrationCompletion(waiting, true, WAIT_S);
  assert.equal(raised.serializedOutput, JSON.stringify({ kind: `object:${bytes}`, data: doc }), "RaiseEvent data");

  const nullEvent = await client.scheduleNewOrchestration(f.waitData);
  await client.waitForOrchestrationStart(nullEvent, false, WAIT_S);
  await client.raiseOrchestrationEvent(nullEvent, "data", null);
  assert.deepEqual(JSON.parse((await client.waitForOrchestrationCompletion(nullEvent, true, WAIT_S)).serializedOutput),
                   { kind: "null", data: null });

  const terminated = await client.scheduleNewOrchestration(f.waitData);
  await client.waitForOrchestrationStart(terminated, false, WAIT_S);
  await client.terminateOrchestration(terminated, doc);
  const t = await client.waitForOrchestrationCompletion(terminated, true, WAIT_S);
  assert.equal(status(t), "TERMINATED");
  assert.equal(t.serializedOutput, bytes, "TerminateInstance output");

  const recorder = new EntityInstanceId("recorder", `r-${Date.now()}`);
  await client.signalEntity(recorder, "record", doc);
  await client.signalEntity(recorder, "record", null);
  await client.signalEntity(recorder, "record", 0);
  await until(async () => {
    const e = await client.getEntity(recorder, true);
    return e && e.state && e.state.seen.length === 3;
  }, "the recorder to see three signals");
  assert.deepEqual((await client.getEntity(recorder, true)).state.seen, [bytes, "null", "0"], "SignalEntity input");
});

test("DurableTaskConformance: the HTTP API stores and returns payloads as sent", async () => {
  output(await run(f.inputKinds, 1));  // the worker has run inputKinds: the HTTP API may start it
  const body = '{"zeta":1,"alpha":[true,null],"mid":{"z":null,"a":0.5}}';
  const id = `http-bytes-${Date.now()}`;
  let res = await http("POST", `/orchestrators/inputKinds/${id}`, body, { "content-type": "application/json" });
  assert.equal(res.status, 202);
  const done = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.equal(done.serializedInput, body);
  // The bytes, not a re-serialization that keeps member order: spaces and 1.50 stay.
  const spaced = '{ "zeta" : 1,\n "price": 1.50, "alpha": [ true , null ] }';
  const spacedId = `http-spaced-${Date.now()}`;
  res = await http("POST", `/orchestrators/inputKinds/${spacedId}`, spaced, { "content-type": "application/json" });
  assert.equal(res.status, 202);
  assert.equal((await client.waitForOrchestrationCompletion(spacedId, true, WAIT_S)).serializedInput, spaced);
  assert.ok((await (await http("GET", `/instances/${spacedId}`)).text()).includes(`"input":${spaced}`),
            "the HTTP status carries the bytes sent");
  assert.deepEqual(JSON.parse(done.serializedOutput), [`object:${body}`, `object:${body}`]);
  const text = await (await http("GET", `/instances/${id}`)).text();
  assert.ok(text.includes(`"input":${body}`), `the status carries the input as sent: ${text}`);

  const nullId = `http-null-${Date.now()}`;
  res = await http("POST", `/orchestrators/inputKinds/${nullId}`, "null", { "content-type": "application/json" });
  assert.equal(res.status, 202);
  const n = await client.waitForOrchestrationCompletion(nullId, true, WAIT_S);
  assert.equal(n.serializedInput, "null");
  assert.deepEqual(JSON.parse(n.serializedOutput), ["null", "null"]);

  const eventId = `http-event-${Date.now()}`;
  await client.scheduleNewOrchestration(f.waitData, undefined, eventId);
  await client.waitForOrchestrationStart(eventId, false, WAIT_S);
  res = await http("POST", `/instances/${eventId}/raiseEvent/data`, body, { "content-type": "application/json" });
  assert.equal(res.status, 202);
  const e = await client.waitForOrchestrationCompletion(eventId, true, WAIT_S);
  assert.equal(e.serializedOutput, `{"kind":${JSON.stringify(`object:${body}`)},"data":${body}}`);

  res = await http("POST", `/orchestrators/inputKinds/http-bad-${Date.now()}`, '{"a":', { "content-type": "application/json" });
  assert.equal(res.status, 400, "a body that is not JSON is refused");
});

function output(state) {
  return JSON.parse(state.serializedOutput);
}

// ---- Execution ids, parent info, versions ----

test("DurableTaskConformance: execution ids are 32 lowercase hex, child ids derive from them, ctx.parent is set", async () => {
  const parentId = `idparent-${Date.now()}`;
  const child = output(await run(f.defaultIdParent, undefined, parentId));
  const history = await client.getOrchestrationHistory(parentId);
  const started = history.find((e) => e.type === "ExecutionStarted");
  const executionId = started.orchestrationInstance.executionId;
  assert.match(executionId, /^[0-9a-f]{32}$/);
  assert.equal(child.instanceId, `${executionId}:0001`, "the SDK's default child id");
  assert.ok(child.instanceId.length <= 100);
  assert.equal(child.parent.instanceId, parentId, "ctx.parent.instanceId");
  assert.equal(child.parent.name, "defaultIdParent");
  const created = history.find((e) => e.type === "SubOrchestrationInstanceCreated");
  assert.ok(created, "the parent's history has the child's creation");
  assert.equal(typeof child.parent.taskScheduledId, "number");
  assert.equal(child.parent.taskScheduledId, created.eventId, "ctx.parent.taskScheduledId is the creation's event id");
  assert.equal(child.version, "1.5", "the sub-orchestration's version reaches its worker");
  const childHistory = await client.getOrchestrationHistory(child.instanceId);
  const childStart = childHistory.find((e) => e.type === "ExecutionStarted");
  assert.match(childStart.orchestrationInstance.executionId, /^[0-9a-f]{32}$/);
  assert.equal(childStart.parentInstance.orchestrationInstance.instanceId, parentId);
  assert.equal(childStart.parentInstance.orchestrationInstance.executionId, executionId);
});

test("DurableTaskConformance: tags round trip (get, waits, query, HTTP)", async () => {
  const tags = { team: "payments", "cost-center": "42" };
  const id = `tagged-${Date.now()}`;
  await client.scheduleNewOrchestration(f.waitData, undefined, { instanceId: id, tags });
  assert.deepEqual((await client.waitForOrchestrationStart(id, false, WAIT_S)).tags, tags, "WaitForInstanceStart");
  assert.deepEqual((await client.getOrchestrationState(id, false)).tags, tags, "GetInstance without payloads");
  assert.deepEqual((await client.getOrchestrationState(id, true)).tags, tags, "GetInstance");
  const found = [];
  for await (const s of client.getAllInstances({ instanceIdPrefix: id })) found.push(s);
  assert.equal(found.length, 1);
  assert.deepEqual(found[0].tags, tags, "QueryInstances");
  const viaHttp = await (await http("GET", `/instances/${id}`)).json();
  assert.deepEqual(viaHttp.tags, tags, "the HTTP API");
  await client.raiseOrchestrationEvent(id, "data", 1);
  assert.deepEqual((await client.waitForOrchestrationCompletion(id, true, WAIT_S)).tags, tags, "WaitForInstanceCompletion");
});

// ---- History ----

test("DurableTaskConformance: the history of an activity orchestration is DTS's sequence, no OrchestratorCompleted", async () => {
  const state = await run(f.sequence, ["Oslo"]);
  const history = await client.getOrchestrationHistory(state.instanceId);
  assert.deepEqual(history.map((e) => e.type), [
    "OrchestratorStarted", "ExecutionStarted", "TaskScheduled",
    "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted",
  ]);
});

test("DurableTaskConformance: the README's JS example runs with no SDK warnings", () => {
  const readme = fs.readFileSync(path.join(__dirname, "../../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Durable Task SDKs"));
  const code = section.slice(section.indexOf("```js") + 5, section.indexOf("```", section.indexOf("```js") + 5));
  assert.ok(code.includes("TaskHubGrpcWorker"), "found the example");
  const file = path.join(__dirname, `.readme-example-${process.pid}.js`);
  fs.writeFileSync(file, code.replaceAll("127.0.0.1:4001", hostAddress));
  try {
    // In hub jsother, where no other worker runs (this file's worker does not
    // know the example's functions).
    const env = { ...process.env, BATON_KEY: process.env.BATON_OTHER_KEY };
    const r = spawnSync(process.execPath, [file], { env, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\["Hello, Tokyo!","Hello, Lima!"\]$/m);
    const all = `${r.stdout}\n${r.stderr}`;
    assert.doesNotMatch(all, /unknown history event/i);
    assert.doesNotMatch(all, /\bwarn/i, `the SDK warned:\n${all}`);
    // The SDK's ConsoleLogger writes warnings and errors with console.warn
    // and console.error, marked or not: stderr stays empty.
    assert.equal(r.stderr, "", `the example wrote to stderr:\n${r.stderr}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

// ---- Limits ----

test("DurableTaskConformance: DTS limits: instance ids over 100 characters are INVALID_ARGUMENT and 400", async () => {
  const ok = "a".repeat(100);
  const long = "b".repeat(101);
  await client.scheduleNewOrchestration(f.inputKinds, 1, ok);
  output(await client.waitForOrchestrationCompletion(ok, true, WAIT_S));
  await assert.rejects(client.scheduleNewOrchestration(f.inputKinds, 1, long), (e) => e.code === grpc.status.INVALID_ARGUMENT);
  assert.equal(await client.getOrchestrationState(long.slice(0, 100)), undefined, "nothing was stored");
  const entity = new EntityInstanceId("tally", "k".repeat(130));  // "@tally@" + 130
  await assert.rejects(client.signalEntity(entity, "add", 1), (e) => e.code === grpc.status.INVALID_ARGUMENT);
  await assert.rejects(client.raiseOrchestrationEvent(ok, "e".repeat(257), 1), (e) => e.code === grpc.status.INVALID_ARGUMENT);

  let res = await http("POST", `/orchestrators/inputKinds/${long}`, "1", { "content-type": "application/json" });
  assert.equal(res.status, 400);
  assert.equal((await http("GET", `/instances/${long}`)).status, 400);
  res = await http("POST", `/entities/tally/${"k".repeat(130)}?op=add`, "1", { "content-type": "application/json" });
  assert.equal(res.status, 400);
  // At the boundary: "@tally@" + 93 is 100 characters, + 94 is 101.
  const edge = `e${Date.now()}`;
  res = await http("POST", `/entities/tally/${edge}${"k".repeat(93 - edge.length)}?op=add`, "1", { "content-type": "application/json" });
  assert.equal(res.status, 202, "an entity id of 100 characters is accepted");
  res = await http("POST", `/entities/tally/${edge}${"k".repeat(94 - edge.length)}?op=add`, "1", { "content-type": "application/json" });
  assert.equal(res.status, 400, "an entity id of 101 characters is refused");
  res = await http("POST", `/instances/${ok}/raiseEvent/${"e".repeat(257)}`, "1", { "content-type": "application/json" });
  assert.equal(res.status, 400, "an event name of 257 characters is refused");
  const stored = [];
  for await (const m of client.getEntities({ instanceIdStartsWith: "@tally@kkkkkkkk" })) stored.push(m);
  assert.equal(stored.length, 0, "no refused entity was stored");

  // Payloads: at most the message limit (1 MiB by default), RESOURCE_EXHAUSTED
  // over gRPC and 413 over HTTP, nothing stored. 300 KiB is carried (its
  // orchestration returns it twice: the worker's completion stays under the
  // limit too).
  const big = "x".repeat(1024 * 1024 + 16);
  const bigId = `big-${Date.now()}`;
  await assert.rejects(client.scheduleNewOrchestration(f.inputKinds, big, bigId),
                       (e) => e.code === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(await client.getOrchestrationState(bigId), undefined, "nothing was stored");
  res = await http("POST", `/orchestrators/inputKinds/${bigId}`, JSON.stringify(big), { "content-type": "application/json" });
  assert.equal(res.status, 413);
  assert.equal(await client.getOrchestrationState(bigId), undefined, "nothing was stored");
  const fits = "y".repeat(300 * 1024);
  const fitsId = `fits-${Date.now()}`;
  await client.scheduleNewOrchestration(f.inputKinds, fits, fitsId);
  assert.equal((await client.waitForOrchestrationCompletion(fitsId, true, WAIT_S)).serializedInput, JSON.stringify(fits));
});

// ---- Entity locks and completion ----

test("DurableTaskConformance: lockedBy is clear when completion is observed (50 runs, released or not)", async () => {
  for (let i = 0; i < 50; i++) {
    const key = `lk-${Date.now()}-${i}`;
    const release = i % 2 === 0;
    const id = await client.scheduleNewOrchestration(f.lockAndFinish, { key, release });
    const state = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
    assert.equal(status(state), "COMPLETED");
    const e = await client.getEntity(new EntityInstanceId("tally", key), true);
    assert.equal(e.lockedBy, undefined, `run ${i} (release ${release}): still locked by ${e.lockedBy}`);
    assert.equal(e.state.total, 1);
  }
  // The lock really is gone: another orchestration takes it.
  const key = `lk-after-${Date.now()}`;
  await run(f.lockAndFinish, { key, release: false });
  await run(f.lockAndFinish, { key, release: false });
  await until(async () => ((await client.getEntity(new EntityInstanceId("tally", key), true)).state.total === 2), "two adds");
});

// ---- Worker connect ----

function serverLog() {
  return fs.readFileSync(process.env.BATON_SERVE_LOG, "utf8");
}

// The server's dispatch record of SDK work items, by route (stream, parked,
// handed, given_back): baton_sdk_work_items_total on /metrics.
async function routes() {
  const res = await fetch(`http://${process.env.BATON_HTTP}/metrics`, {
    headers: { authorization: `Bearer ${process.env.BATON_ADMIN_KEY}` },
  });
  assert.equal(res.status, 200);
  const out = { stream: 0, parked: 0, handed: 0, given_back: 0 };
  const text = await res.text();
  for (const m of text.matchAll(/^baton_sdk_work_items_total\{route="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  out.workers = Number((text.match(/^baton_sdk_workers_connected (\d+)$/m) || [0, 0])[1]);
  return out;
}

test("DurableTaskConformance: work queued before a worker connects is handed to its stream on connect", async () => {
  const other = new TaskHubGrpcClient(optionsFor(process.env.BATON_OTHER_KEY));
  try {
    // No worker of hub jsother: the signal's batch waits in the server.
    const early = new EntityInstanceId("tally", `early-${Date.now()}`);
    const before = await routes();
    // Once a worker stopped, its stream is gone from the server before the
    // next signal (else that signal could go to the closing stream and back
    // to the store).
    const streamGone = () => until(async () => (await routes()).workers === before.workers, "the stopped worker's stream to end");
    await other.signalEntity(early, "add", 3);
    await until(async () => (await routes()).parked > before.parked, "the early signal's batch to be parked");
    const first = new TaskHubGrpcWorker(optionsFor(process.env.BATON_OTHER_KEY));
    f.register(first);
    await first.start();
    await until(async () => ((await other.getEntity(early, true)) || {}).state?.total === 3, "the early signal to run");
    const record = serverLog().split("\n").find((l) => l.includes(`entity '${early.toString()}'`) && l.includes("handed it"));
    assert.ok(record, `the server recorded the hand-over on connect:\n${serverLog()}`);
    await first.stop();
    await streamGone();

    // A signal right after start() resolves: never waits for a retry. Each
    // reaches a stream at once or is handed to the one that connects; none
    // goes back to the store to be fetched again (the 1 s retry of old).
    const beforeRight = await routes();
    const timings = [];
    for (let i = 0; i < 3; i++) {
      const w = new TaskHubGrpcWorker(optionsFor(process.env.BATON_OTHER_KEY));
      f.register(w);
      await w.start();
      const right = new EntityInstanceId("tally", `right-${Date.now()}-${i}`);
      const t0 = process.hrtime.bigint();
      await other.signalEntity(right, "add", 1);
      await until(async () => ((await other.getEntity(right, true)) || {}).state?.total === 1, "the signal to run");
      timings.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await w.stop();
      await streamGone();
    }
    assert.doesNotMatch(serverLog(), /given back to the store/, "no work waited for a retry");
    const afterRight = await routes();
    assert.equal(afterRight.given_back, beforeRight.given_back, "no work item went back to the store");
    assert.equal((afterRight.stream - beforeRight.stream) + (afterRight.handed - beforeRight.handed), 3,
                 `each signal reached a stream once, at once or on connect: ${JSON.stringify([beforeRight, afterRight])}`);
    assert.equal(afterRight.parked - beforeRight.parked, afterRight.handed - beforeRight.handed,
                 "every parked item was handed on connect");
    // The same with a warm worker, for comparison (printed, not asserted).
    const warm = new TaskHubGrpcWorker(optionsFor(process.env.BATON_OTHER_KEY));
    f.register(warm);
    await warm.start();
    await new Promise((r) => setTimeout(r, 500));
    const warmTimings = [];
    for (let i = 0; i < 3; i++) {
      const id = new EntityInstanceId("tally", `warm-${Date.now()}-${i}`);
      const t0 = process.hrtime.bigint();
      await other.signalEntity(id, "add", 1);
      await until(async () => ((await other.getEntity(id, true)) || {}).state?.total === 1, "the signal to run");
      warmTimings.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await warm.stop();
    console.log(`signal → entity state visible: right after worker.start() ${timings.map((t) => t.toFixed(0)).join(", ")} ms; ` +
                `warm worker ${warmTimings.map((t) => t.toFixed(0)).join(", ")} ms`);
  } finally {
    await other.stop();
  }
});

// ---- Versioning ----

test("DurableTaskConformance: versions are kept, returned and matched by the SDK's versioning strategies", async () => {
  const key = process.env.BATON_OTHER_KEY;
  const other = new TaskHubGrpcClient(optionsFor(key));
  const strict = new TaskHubGrpcWorker(optionsFor(key, {
    versioning: { version: "2.0", matchStrategy: VersionMatchStrategy.Strict, failureStrategy: VersionFailureStrategy.Fail },
  }));
  f.register(strict);
  await strict.start();
  try {
    const id = await other.scheduleNewOrchestration(f.versioned, undefined, { version: "2.0" });
    const done = await other.waitForOrchestrationCompletion(id, true, WAIT_S);
    assert.equal(status(done), "COMPLETED");
    assert.equal(JSON.parse(done.serializedOutput), "2.0", "ctx.version is the version given at start");
    const viaHttp = await (await http("GET", `/instances/${id}`, undefined, {}, key)).json();
    assert.equal(viaHttp.version, "2.0", "the HTTP API returns the version");

    const old = await other.scheduleNewOrchestration(f.versioned, undefined, { version: "1.0" });
    const failed = await other.waitForOrchestrationCompletion(old, true, WAIT_S);
    assert.equal(status(failed), "FAILED");
    assert.equal(failed.failureDetails.errorType, "VersionMismatch");
  } finally {
    await strict.stop();
  }

  // Reject: the worker abandons the work item; the server gives it to another.
  const rejecting = new TaskHubGrpcWorker(optionsFor(key, {
    versioning: { version: "1.0", matchStrategy: VersionMatchStrategy.CurrentOrOlder, failureStrategy: VersionFailureStrategy.Reject },
  }));
  f.register(rejecting);
  await rejecting.start();
  try {
    const id = await other.scheduleNewOrchestration(f.versioned, undefined, { version: "3.1" });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(status(await other.getOrchestrationState(id)), "PENDING", "a rejected work item waits");
    const newer = new TaskHubGrpcWorker(optionsFor(key, {
      versioning: { version: "3.1", matchStrategy: VersionMatchStrategy.CurrentOrOlder, failureStrategy: VersionFailureStrategy.Reject },
    }));
    f.register(newer);
    await newer.start();
    try {
      const done = await other.waitForOrchestrationCompletion(id, true, WAIT_S);
      assert.equal(status(done), "COMPLETED");
      assert.equal(JSON.parse(done.serializedOutput), "3.1");
    } finally {
      await newer.stop();
    }
  } finally {
    await rejecting.stop();
    await other.stop();
  }
});

// The official Durable Task JavaScript SDK (@microsoft/durabletask-js) as
// client and worker against a real `baton serve` (its gRPC sidecar), started
// by run.sh, which sets BATON_GRPC, BATON_KEY (a tenant key) and BATON_OTHER_KEY.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const {
  TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, EntityInstanceId, PurgeInstanceCriteria, terminateOptions,
} = require("@microsoft/durabletask-js");
const f = require("./functions");
const { options, hostAddress } = require("./connect");

const WAIT_S = 60;
let worker;
let client;

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

async function run(orchestrator, input, id) {
  const instanceId = await client.scheduleNewOrchestration(orchestrator, input, id);
  const state = await client.waitForOrchestrationCompletion(instanceId, true, WAIT_S);
  assert.ok(state, `no state for ${instanceId}`);
  return state;
}

function output(state) {
  assert.equal(OrchestrationStatus[state.runtimeStatus], "COMPLETED", `${state.instanceId}: ${state.serializedOutput} ${JSON.stringify(state.failureDetails)}`);
  return JSON.parse(state.serializedOutput);
}

async function until(predicate, what, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test("activity sequence", async () => {
  const state = await run(f.sequence, ["Tokyo", "Seattle", "London"]);
  assert.deepEqual(output(state), ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"]);
});

test("the HTTP API starts an orchestration an SDK worker has run", async () => {
  output(await run(f.sequence, ["warm"]));  // the worker has now run "sequence"
  const url = `http://${process.env.BATON_HTTP}/runtime/webhooks/durabletask/orchestrators/sequence`;
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.BATON_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(["HTTP"]),
  });
  assert.equal(res.status, 202);
  const { id } = await res.json();
  assert.deepEqual(output(await client.waitForOrchestrationCompletion(id, true, WAIT_S)), ["Hello, HTTP!"]);
  const unknown = await fetch(url.replace("sequence", "neverRun"), {
    method: "POST", headers: { authorization: `Bearer ${process.env.BATON_KEY}` }, body: "1",
  });
  assert.equal(unknown.status, 400);
});

test("fan-out / fan-in", async () => {
  assert.equal(output(await run(f.fanOut, 50)), 50);
});

test("sub-orchestrations with chosen ids", async () => {
  const id = `parent-${Date.now()}`;
  const out = output(await run(f.parent, ["a", "b"], id));
  assert.deepEqual(out, [`${id}-child-0:Hello, a!`, `${id}-child-1:Hello, b!`]);
  const childState = await client.getOrchestrationState(`${id}-child-1`);
  assert.equal(OrchestrationStatus[childState.runtimeStatus], "COMPLETED");
});

test("durable timer", async () => {
  const elapsed = output(await run(f.timer, 500));
  assert.ok(elapsed >= 500, `timer fired after ${elapsed} ms`);
});

test("external event and custom status", async () => {
  const id = await client.scheduleNewOrchestration(f.approval);
  await until(async () => {
    const s = await client.getOrchestrationState(id);
    return s && s.serializedCustomStatus && JSON.parse(s.serializedCustomStatus).waitingFor === "approve";
  }, "custom status");
  await client.raiseOrchestrationEvent(id, "approve", { by: "ops" });
  const state = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.deepEqual(output(state), { by: "ops" });
  assert.deepEqual(JSON.parse(state.serializedCustomStatus), { approvedBy: "ops" });
});

test("suspend and resume", async () => {
  const id = await client.scheduleNewOrchestration(f.approval);
  await client.waitForOrchestrationStart(id, false, WAIT_S);
  await client.suspendOrchestration(id);
  await until(async () => OrchestrationStatus[(await client.getOrchestrationState(id)).runtimeStatus] === "SUSPENDED", "suspended");
  await client.raiseOrchestrationEvent(id, "approve", { by: "late" });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(OrchestrationStatus[(await client.getOrchestrationState(id)).runtimeStatus], "SUSPENDED");
  await client.resumeOrchestration(id);
  assert.deepEqual(output(await client.waitForOrchestrationCompletion(id, true, WAIT_S)), { by: "late" });
});

test("terminate is recursive", async () => {
  const id = `longparent-${Date.now()}`;
  await client.scheduleNewOrchestration(f.longParent, null, id);
  await until(async () => {
    const s = await client.getOrchestrationState(`${id}-child`);
    return s && OrchestrationStatus[s.runtimeStatus] === "RUNNING";
  }, "the child to run");
  await client.terminateOrchestration(id, terminateOptions({ output: "enough", recursive: true }));
  const state = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.equal(OrchestrationStatus[state.runtimeStatus], "TERMINATED");
  const childState = await client.waitForOrchestrationCompletion(`${id}-child`, true, WAIT_S);
  assert.equal(OrchestrationStatus[childState.runtimeStatus], "TERMINATED");
});

test("continue-as-new", async () => {
  const state = await run(f.rounds, 0);
  assert.equal(output(state), 3);
  assert.equal(state.serializedInput, "3");
  const history = await client.getOrchestrationHistory(state.instanceId);
  assert.ok(history.length < 10, `the last generation's history only (${history.length} events)`);
});

test("retry policy", async () => {
  assert.equal(output(await run(f.retrying, `k-${Date.now()}`)), 3);
});

test("deterministic GUIDs survive replay", async () => {
  const [a, b] = output(await run(f.guids));
  assert.match(a, /^[0-9a-f-]{36}$/);
  assert.notEqual(a, b);
});

test("query, list ids with paging, history, restart, purge", async () => {
  const prefix = `q-${Date.now()}-`;
  for (let i = 0; i < 5; i++) await run(f.sequence, ["x"], `${prefix}${i}`);
  const seen = [];
  for await (const s of client.getAllInstances({ instanceIdPrefix: prefix, pageSize: 2, fetchInputsAndOutputs: true })) {
    seen.push(s.instanceId);
  }
  assert.deepEqual(seen.sort(), [0, 1, 2, 3, 4].map((i) => `${prefix}${i}`));
  const ids = [];
  let token;
  for (let pages = 0; pages < 100; pages++) {
    const page = await client.listInstanceIds({ pageSize: 3, lastInstanceKey: token });
    ids.push(...page.values);
    token = page.continuationToken;
    if (!token) break;
  }
  for (let i = 0; i < 5; i++) assert.ok(ids.includes(`${prefix}${i}`), `listInstanceIds misses ${prefix}${i}`);

  const history = await client.getOrchestrationHistory(`${prefix}0`);
  assert.ok(history.length >= 5, `history of ${history.length} events`);

  const again = await client.restartOrchestration(`${prefix}0`, true);
  assert.notEqual(again, `${prefix}0`);
  output(await client.waitForOrchestrationCompletion(again, true, WAIT_S));

  const one = await client.purgeOrchestration(`${prefix}1`);
  assert.equal(one.deletedInstanceCount, 1);
  assert.equal(await client.getOrchestrationState(`${prefix}1`), undefined);
  const criteria = new PurgeInstanceCriteria();
  criteria.setCreatedTimeFrom(new Date(Date.now() - 3600 * 1000));
  criteria.setRuntimeStatusList([OrchestrationStatus.COMPLETED]);
  const many = await client.purgeOrchestration(criteria);
  assert.ok(many.deletedInstanceCount >= 4, `purged ${many.deletedInstanceCount}`);
});

test("entities: signal and read a C++ entity from the JS client", async () => {
  const id = new EntityInstanceId("counter", `js-${Date.now()}`);
  await client.signalEntity(id, "add", 5);
  await client.signalEntity(id, "add", 2);
  await until(async () => {
    const e = await client.getEntity(id, true);
    return e && e.state === 7;
  }, "the counter to reach 7");
});

test("entities: an orchestration signals, calls and locks an entity", async () => {
  const key = `orch-${Date.now()}`;
  const out = output(await run(f.counterWork, key));
  assert.deepEqual(out, { before: 10, after: 11, locked: true });
  // The unlock reaches the entity as a message after the orchestration ended.
  await until(async () => {
    const e = await client.getEntity(new EntityInstanceId("counter", key), true);
    return e && e.state === 11 && e.lockedBy === undefined;
  }, "the entity to be unlocked with state 11");
  const found = [];
  for await (const m of client.getEntities({ instanceIdStartsWith: "@counter@orch-", includeState: true })) found.push(m.id.key);
  assert.ok(found.includes(key), `query found ${found}`);
  const cleaned = await client.cleanEntityStorage();
  assert.ok(cleaned !== undefined);
});

test("entities written with the SDK: signal, call, failure, lock", async () => {
  const key = `js-${Date.now()}`;
  const out = output(await run(f.tallyWork, key));
  assert.equal(out.first, 6);
  assert.match(out.failed, /tally refuses/);
  assert.equal(out.locked, true);
  assert.equal(out.inside, 16);
  const id = new EntityInstanceId("tally", key);
  await until(async () => {
    const e = await client.getEntity(id, true);
    return e && e.lockedBy === undefined && e.state && e.state.total === 16;
  }, "the tally to be unlocked at 16");
  const e = await client.getEntity(id, true);
  assert.deepEqual(e.state.log, [5, 1, 10], "the failed operation left no trace in the state");
});

test("entities written with the SDK: signals from the client, and an entity that signals and starts", async () => {
  const from = new EntityInstanceId("tally", `from-${Date.now()}`);
  const to = `to-${Date.now()}`;
  await Promise.all([1, 2, 3, 4].map((n) => client.signalEntity(from, "add", n)));
  await client.signalEntity(from, "forward", { to, n: 7 });
  await until(async () => {
    const e = await client.getEntity(new EntityInstanceId("tally", to), true);
    return e && e.state && e.state.total === 7;
  }, "the forwarded signal to arrive");
  const e = await client.getEntity(from, true);
  assert.equal(e.state.total, 10);
  const started = await client.waitForOrchestrationCompletion(`fwd-${to}`, true, 30);
  assert.equal(started.runtimeStatus, OrchestrationStatus.COMPLETED);
  await client.signalEntity(from, "delete");
  await until(async () => (await client.getEntity(from, true)) === undefined, "the deleted tally to be gone");
});

test("rewind: a failed orchestration and its failed child run again only what failed", async () => {
  const key = `rw-${Date.now()}`;
  f.switches.healed = false;
  const id = await client.scheduleNewOrchestration(f.rewindable, key, key);
  const failed = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.equal(OrchestrationStatus[failed.runtimeStatus], "FAILED");
  assert.equal(OrchestrationStatus[(await client.getOrchestrationState(`${id}-child`)).runtimeStatus], "FAILED");
  f.switches.healed = true;
  await client.rewindInstance(id, "the dependency is back");
  const done = await client.waitForOrchestrationCompletion(id, true, WAIT_S);
  assert.deepEqual(output(done), [`${key}-a`, `${key}-c1`, `${key}-c2`, `${key}-c`]);
  const runs = (k) => f.switches.runs.get(`${key}-${k}`);
  assert.deepEqual([runs("a"), runs("c1"), runs("c2"), runs("c")], [1, 1, 2, 1], "only the failed activity ran twice");
  const history = await client.getOrchestrationHistory(id);
  assert.ok(history.some((e) => /rewound/i.test(String(e.type ?? e.eventType ?? JSON.stringify(e)))),
            "the history records the rewind");
  await assert.rejects(client.rewindInstance(id, "again"), (e) => /Failed|FAILED_PRECONDITION|precondition/i.test(String(e.message || e)));
});

test("recursive purge removes sub-orchestrations", async () => {
  const id = `purgeparent-${Date.now()}`;
  output(await run(f.parent, ["p", "q"], id));
  const result = await client.purgeOrchestration(id, { recursive: true });
  assert.equal(result.deletedInstanceCount, 3);
  assert.equal(await client.getOrchestrationState(`${id}-child-0`), undefined);
});

test("error codes", async () => {
  const id = `dup-${Date.now()}`;
  await client.scheduleNewOrchestration(f.approval, null, id);
  await assert.rejects(client.scheduleNewOrchestration(f.approval, null, id), (e) => e.code === grpc.status.ALREADY_EXISTS);
  await assert.rejects(client.raiseOrchestrationEvent("no-such-instance", "x", 1), (e) => e.code === grpc.status.NOT_FOUND);
  assert.equal(await client.getOrchestrationState("no-such-instance"), undefined);
  await client.terminateOrchestration(id, "cleanup");
  // Another tenant sees nothing of this one.
  const other = new TaskHubGrpcClient({
    hostAddress,
    logger: { error() {}, warn() {}, info() {}, debug() {} },
    metadataGenerator: async () => {
      const m = new grpc.Metadata();
      m.set("authorization", `Bearer ${process.env.BATON_OTHER_KEY}`);
      return m;
    },
  });
  assert.equal(await other.getOrchestrationState(id), undefined);
  await other.stop();
  // No key at all.
  const anonymous = new TaskHubGrpcClient({ hostAddress, logger: { error() {}, warn() {}, info() {}, debug() {} } });
  await assert.rejects(anonymous.getOrchestrationState(id), (e) => e.code === grpc.status.UNAUTHENTICATED);
  await anonymous.stop();
});

test("a worker killed mid-run: its work goes to another worker", async () => {
  // Stop the in-test worker so the two worker processes get all the work.
  await worker.stop();
  const start = () => spawn(process.execPath, [path.join(__dirname, "worker.js")], { env: process.env, stdio: ["ignore", "pipe", "inherit"] });
  const ready = (p) => new Promise((resolve) => p.stdout.on("data", (d) => String(d).includes("worker started") && resolve()));
  const first = start();
  await ready(first);
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push(await client.scheduleNewOrchestration(f.slowSequence, 5));
  await new Promise((r) => setTimeout(r, 400));
  first.kill("SIGKILL");
  const second = start();
  await ready(second);
  try {
    for (const id of ids) assert.equal(output(await client.waitForOrchestrationCompletion(id, true, WAIT_S)), 500);
  } finally {
    second.kill("SIGKILL");
    worker = new TaskHubGrpcWorker(options());
    f.register(worker);
    await worker.start();
  }
});

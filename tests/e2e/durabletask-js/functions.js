// The orchestrations and activities the e2e tests run, registered by the
// in-test worker and by worker.js (a worker process the tests kill).
"use strict";
const { whenAll, RetryPolicy, EntityInstanceId, TaskEntity } = require("@microsoft/durabletask-js");

const sayHello = async (_ctx, name) => `Hello, ${name}!`;

// Fails on its first calls of an instance, then succeeds (a process-wide
// counter per input: retries within one worker process see it grow).
const attempts = new Map();
const flaky = async (_ctx, key) => {
  const n = (attempts.get(key) || 0) + 1;
  attempts.set(key, n);
  if (n < 3) throw new Error(`flaky failure ${n}`);
  return n;
};

const slow = async (_ctx, ms) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
};

const sequence = async function* (ctx, cities) {
  const out = [];
  for (const city of cities) out.push(yield ctx.callActivity(sayHello, city));
  return out;
};

const fanOut = async function* (ctx, n) {
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(ctx.callActivity(sayHello, `n${i}`));
  const results = yield whenAll(tasks);
  return results.length;
};

const child = async function* (ctx, name) {
  const greeting = yield ctx.callActivity(sayHello, name);
  return `${ctx.instanceId}:${greeting}`;
};

const parent = async function* (ctx, names) {
  const tasks = names.map((n, i) => ctx.callSubOrchestrator(child, n, { instanceId: `${ctx.instanceId}-child-${i}` }));
  return yield whenAll(tasks);
};

const timer = async function* (ctx, ms) {
  const start = ctx.currentUtcDateTime.getTime();
  yield ctx.createTimer(new Date(start + ms));
  return ctx.currentUtcDateTime.getTime() - start;
};

const approval = async function* (ctx) {
  ctx.setCustomStatus({ waitingFor: "approve" });
  const answer = yield ctx.waitForExternalEvent("approve");
  ctx.setCustomStatus({ approvedBy: answer.by });
  return answer;
};

const longParent = async function* (ctx) {
  yield ctx.callSubOrchestrator(approval, null, { instanceId: `${ctx.instanceId}-child` });
  return "done";
};

const retrying = async function* (ctx, key) {
  const policy = new RetryPolicy({ maxNumberOfAttempts: 5, firstRetryIntervalInMilliseconds: 100 });
  return yield ctx.callActivity(flaky, key, { retry: policy });
};

const guids = async function* (ctx) {
  const a = ctx.newGuid();
  yield ctx.callActivity(sayHello, "guid");
  const b = ctx.newGuid();
  return [a, b];
};

const slowSequence = async function* (ctx, n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += yield ctx.callActivity(slow, 100);
  return total;
};

// Continues as new until its input reaches 3, keeping unprocessed events.
const rounds = async function* (ctx, n) {
  if (n < 3) {
    yield ctx.callActivity(sayHello, `round ${n}`);
    ctx.continueAsNew(n + 1, true);
    return;
  }
  return n;
};

// Calls and locks the C++ sample entity Counter (registered by baton serve).
const counterWork = async function* (ctx, key) {
  const counter = new EntityInstanceId("counter", key);
  ctx.entities.signalEntity(counter, "add", 10);
  const before = yield ctx.entities.callEntity(counter, "get");
  const lock = yield ctx.entities.lockEntities(counter);
  const locked = ctx.entities.isInCriticalSection().inSection;
  yield ctx.entities.callEntity(counter, "add", 1);
  const after = yield ctx.entities.callEntity(counter, "get");
  lock.release();
  return { before, after, locked };
};

// Rewind: `brittle` fails until the test heals it; `counted` counts its runs.
const switches = { healed: false, runs: new Map() };
const counted = async (_ctx, key) => {
  switches.runs.set(key, (switches.runs.get(key) || 0) + 1);
  return key;
};
const brittle = async (_ctx, key) => {
  switches.runs.set(key, (switches.runs.get(key) || 0) + 1);
  if (!switches.healed) throw new Error(`${key} is broken`);
  return key;
};
const brittleChild = async function* (ctx, key) {
  const first = yield ctx.callActivity(counted, `${key}-c1`);
  const second = yield ctx.callActivity(brittle, `${key}-c2`);
  return [first, second];
};
const rewindable = async function* (ctx, key) {
  const a = yield ctx.callActivity(counted, `${key}-a`);
  const b = yield ctx.callSubOrchestrator(brittleChild, key, { instanceId: `${ctx.instanceId}-child` });
  const c = yield ctx.callActivity(counted, `${key}-c`);
  return [a, ...b, c];
};

// An entity written with the SDK: it runs in this worker, while Baton keeps
// its state, its lock and its queue.
class Tally extends TaskEntity {
  initializeState() { return { total: 0, log: [] }; }
  add(n) { this.state.total += n; this.state.log.push(n); return this.state.total; }
  get() { return this.state.total; }
  fail() { this.state.total = -999; throw new Error("tally refuses"); }
  // Passes an amount on to another tally and starts an orchestration.
  forward(input) {
    this.context.signalEntity(new EntityInstanceId("tally", input.to), "add", input.n);
    this.context.scheduleNewOrchestration("sequence", [input.to], { instanceId: `fwd-${input.to}` });
  }
}

// Signals, calls and locks the SDK entity Tally; a failed operation reaches
// the caller as an error and leaves the state as it was.
const tallyWork = async function* (ctx, key) {
  const tally = new EntityInstanceId("tally", key);
  ctx.entities.signalEntity(tally, "add", 5);
  const first = yield ctx.entities.callEntity(tally, "add", 1);
  let failed = "";
  try {
    yield ctx.entities.callEntity(tally, "fail");
  } catch (e) {
    failed = e.message;
  }
  const lock = yield ctx.entities.lockEntities(tally);
  const locked = ctx.entities.isInCriticalSection().inSection;
  const inside = yield ctx.entities.callEntity(tally, "add", 10);
  lock.release();
  return { first, failed, locked, inside };
};

// ---- Conformance with the Durable Task Scheduler (conformance.test.js) ----

// How a value arrived: "undefined" (no payload) is not "null".
const describe = (v) => (v === undefined ? "undefined" : v === null ? "null" : `${typeof v}:${JSON.stringify(v)}`);
const describeActivity = async (_ctx, input) => describe(input);
// Returns how its input arrived, in the orchestrator and in an activity.
const inputKinds = async function* (ctx, input) {
  return [describe(input), yield ctx.callActivity(describeActivity, input)];
};
// Returns the data of event "data" as it arrived (its member order kept).
const waitData = async function* (ctx) {
  const data = yield ctx.waitForExternalEvent("data");
  return { kind: describe(data), data };
};
// A child with no chosen id: the SDK derives "<executionId>:<hex4>".
const whoAmI = async function* (ctx) {
  return { instanceId: ctx.instanceId, parent: ctx.parent || null, version: ctx.version };
};
const defaultIdParent = async function* (ctx) {
  return yield ctx.callSubOrchestrator(whoAmI, null, { version: "1.5" });
};
// Locks a tally, adds, and completes: `release` says whether it unlocks
// itself or leaves the release to the completion.
const lockAndFinish = async function* (ctx, input) {
  const tally = new EntityInstanceId("tally", input.key);
  const lock = yield ctx.entities.lockEntities(tally);
  yield ctx.entities.callEntity(tally, "add", 1);
  if (input.release) lock.release();
  return "done";
};
const versioned = async function* (ctx) {
  return ctx.version;
};
// An SDK entity that records how each input arrived (its state is JSON the
// server keeps; the strings inside keep the bytes).
class Recorder extends TaskEntity {
  initializeState() { return { seen: [] }; }
  record(input) { this.state.seen.push(input === undefined ? "undefined" : JSON.stringify(input)); }
}

function register(worker) {
  worker.addNamedEntity("recorder", () => new Recorder());
  for (const o of [inputKinds, waitData, whoAmI, defaultIdParent, lockAndFinish, versioned]) worker.addOrchestrator(o);
  worker.addActivity(describeActivity);
  worker.addNamedEntity("tally", () => new Tally());
  worker.addOrchestrator(tallyWork);
  worker.addOrchestrator(rewindable);
  worker.addOrchestrator(brittleChild);
  worker.addActivity(counted);
  worker.addActivity(brittle);
  worker.addOrchestrator(counterWork);
  for (const o of [sequence, fanOut, child, parent, timer, approval, longParent, retrying, guids, slowSequence, rounds]) {
    worker.addOrchestrator(o);
  }
  for (const a of [sayHello, flaky, slow]) worker.addActivity(a);
}

module.exports = { register, inputKinds, waitData, whoAmI, defaultIdParent, lockAndFinish, versioned, describe, counterWork, tallyWork, rewindable, switches, rounds, sequence, fanOut, parent, timer, approval, longParent, retrying, guids, slowSequence };

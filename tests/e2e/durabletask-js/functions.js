// The orchestrations and activities the e2e tests run, registered by the
// in-test worker and by worker.js (a worker process the tests kill).
"use strict";
const { whenAll, RetryPolicy, EntityInstanceId } = require("@microsoft/durabletask-js");

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

function register(worker) {
  worker.addOrchestrator(counterWork);
  for (const o of [sequence, fanOut, child, parent, timer, approval, longParent, retrying, guids, slowSequence, rounds]) {
    worker.addOrchestrator(o);
  }
  for (const a of [sayHello, flaky, slow]) worker.addActivity(a);
}

module.exports = { register, counterWork, rounds, sequence, fanOut, parent, timer, approval, longParent, retrying, guids, slowSequence };

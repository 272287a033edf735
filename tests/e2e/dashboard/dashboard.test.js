// The dashboard in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) against a real `baton serve`, started by run.sh, which
// sets BATON_HTTP, BATON_ADMIN, BATON_KEY (tenant "dash") and
// BATON_OTHER_KEY (tenant "other"). Each check reads the outcome from the API
// and from the page; waits are for a state, never for a time.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { call: callAt, until, launch, page: pageOf, shot, open } = require("./helpers");
const { connectWorker, startInstance } = require("./sdk_stream");

const DF = "/runtime/webhooks/durabletask";
const KEY = process.env.BATON_KEY;
const OTHER = process.env.BATON_OTHER_KEY;
const ADMIN = process.env.BATON_ADMIN;
const GRPC = process.env.BATON_GRPC;
const IMAGE = "127.0.0.1:5000/samples/hello:1";

let browser;
const made = {};  // prefix -> ids

const BASE_URL = () => `http://${process.env.BATON_HTTP}`;
const call = (key, method, url, body, headers = {}) => callAt(key, method, url, body, headers);
const page = (key = KEY, viewport) => pageOf(browser, key, viewport);

async function statusOf(id, key = KEY) {
  const r = await call(key, "GET", `${DF}/instances/${encodeURIComponent(id)}?showHistory=true`);
  return r.status === 404 ? "gone" : r.body;
}

async function counts(key = KEY) {
  const r = await call(key, "GET", `${DF}/instances?top=1&countByStatus=true`);
  const out = {};
  for (const item of (r.headers.get("x-baton-status-counts") || "").split(",")) {
    const [k, v] = item.split("=");
    if (k) out[k] = Number(v);
  }
  return out;
}

// Every id the API lists for `query`, newest first, walking the tokens.
async function apiIds(query, key = KEY) {
  const ids = [];
  let token = "";
  for (;;) {
    const r = await call(key, "GET", `${DF}/instances?top=100&${query}`, undefined, token ? { "x-ms-continuation-token": token } : {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const s of r.body) ids.push(s.instanceId);
    token = r.headers.get("x-ms-continuation-token") || "";
    if (!token) return ids;
  }
}

async function start(name, id, input) {
  const r = await call(KEY, "POST", `${DF}/orchestrators/${name}/${id}`, input);
  assert.equal(r.status, 202, JSON.stringify(r.body));
}

// Loads every page of the list on screen ("Load more" until it hides).
async function loadAll(p) {
  for (;;) {
    const more = p.locator("#load-more");
    if (!(await more.isVisible())) return;
    const before = await p.locator("tbody tr").count();
    await more.click();
    await p.waitForFunction((n) => document.querySelectorAll("tbody tr").length > n || document.getElementById("load-more").hidden, before);
  }
}

async function rowIds(p) { return p.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id)); }

// Confirms the open dialog after filling `fields` ({name: value}) and waits
// until the action's request has been answered: the dialog closes before the
// page sends it, so a check made right after the dialog closed could read
// the state from before the action.
async function confirm(p, fields = {}) {
  await p.locator("#confirm[open]").waitFor();
  for (const [k, v] of Object.entries(fields)) await p.fill(`#f-${k}`, v);
  const answered = p.waitForResponse((r) => r.request().method() !== "GET" && r.url().startsWith(BASE_URL()));
  await p.click("#confirm-ok");
  const res = await answered;
  assert.ok(res.status() < 300, `the action was refused: ${res.status()} ${await res.text()}`);
  await p.waitForFunction(() => !document.getElementById("confirm").open);
}

test.before(async () => {
  browser = await launch();
  // 250 orchestrations of mixed status in tenant "dash".
  const batches = [["c", "Hello5", 100], ["r", "AwaitApproval", 60], ["f", "FailWith", 40], ["t", "AwaitApproval", 25], ["s", "AwaitApproval", 25]];
  for (const [prefix, name, n] of batches) {
    made[prefix] = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${String(i).padStart(3, "0")}`;
      made[prefix].push(id);
      await start(name, id, name === "FailWith" ? "boom " + i : "x");
    }
    if (prefix === "c") {
      // The created-time filters' cutoff, in milliseconds as the filter
      // takes it (the API shows created times to the second only). The
      // server's clock is this machine's, and a start is answered once its
      // instance exists: every "c" instance was created before `t`'s next
      // millisecond, which the cutoff waits for (a state of the clock, not
      // a sleep); every later instance is created after the cutoff.
      const t = Date.now();
      await until("the clock's next millisecond", async () => Date.now() > t);
      made.cutoff = new Date().toISOString();
    }
  }
  await until("60 + 25 + 25 AwaitApproval running", async () => (await counts()).Running >= 110);
  for (const id of made.t) assert.equal((await call(KEY, "POST", `${DF}/instances/${id}/terminate?reason=test`)).status, 202);
  for (const id of made.s) assert.equal((await call(KEY, "POST", `${DF}/instances/${id}/suspend?reason=test`)).status, 202);
  // An entity: a row in the store, never listed as an orchestration.
  assert.equal((await call(KEY, "POST", `${DF}/entities/Counter/k1?op=add`, 5)).status, 202);
  await until("the mix of statuses", async () => {
    const c = await counts();
    return c.Completed === 100 && c.Running === 60 && c.Failed === 40 && c.Terminated === 25 && c.Suspended === 25;
  });
  await until("the entity's state", async () => (await call(KEY, "GET", `${DF}/entities/Counter/k1`)).status === 200);
});

test.after(async () => { if (browser) await browser.close(); });

test("Dashboard: 250 orchestrations are all reachable by paging, newest first", async () => {
  const p = await page();
  await open(p, "#/instances");
  await p.locator("#instances tbody tr").first().waitFor();
  assert.equal(await p.locator("#instances tbody tr").count(), 50, "one page of 50 first");
  const countsText = await p.locator(".counts").innerText();
  for (const s of ["All 250", "Running 60", "Completed 100", "Failed 40", "Terminated 25", "Suspended 25"]) {
    assert.ok(countsText.includes(s), `counts show ${s}: ${countsText}`);
  }
  await shot(p, "instances", false);
  await loadAll(p);
  const ids = await rowIds(p);
  assert.equal(ids.length, 250);
  assert.equal(new Set(ids).size, 250, "no instance twice");
  assert.ok(!ids.some((id) => id.includes("@")), "no entity among the orchestrations");
  assert.deepEqual(ids, await apiIds(""), "the API's order: newest first");
  assert.equal(ids[0], made.s[24], "the newest first");
  assert.match(await p.locator(".more [role=status]").innerText(), /Showing 250 of 250/);
  await p.close();
});

test("Dashboard: filters by status, name, id prefix and created time reach every match, and the URL keeps them", async () => {
  const p = await page();
  const cases = [
    ["status=Failed", made.f, "Failed"],
    ["status=Suspended", made.s, "Suspended"],
    ["name=Hello", made.c, null],
    ["prefix=t-", made.t, "Terminated"],
    [`to=${encodeURIComponent(made.cutoff)}`, made.c, null],
  ];
  for (const [query, expected, status] of cases) {
    await open(p, "#/instances?" + query);
    await p.locator("#instances tbody tr").first().waitFor();
    await loadAll(p);
    const ids = await rowIds(p);
    assert.deepEqual([...ids].sort(), [...expected].sort(), query);
    if (status) {
      const badges = await p.locator("#instances tbody .badge").allInnerTexts();
      assert.ok(badges.every((b) => b === status), query);
    }
  }
  // The time filter after the cutoff: everything but the Completed batch.
  await open(p, `#/instances?from=${encodeURIComponent(made.cutoff)}&status=Running`);
  await p.locator("#instances tbody tr").first().waitFor();
  await loadAll(p);
  assert.deepEqual((await rowIds(p)).sort(), [...made.r].sort());
  // The form writes the URL; a reload shows the same view.
  await open(p, "#/instances");
  await p.locator("#instances tbody tr").first().waitFor();
  await p.selectOption("#flt-status", "Failed");
  await p.fill("#flt-name", "Fail");
  await p.click("form.filters button[type=submit]");
  await p.waitForFunction(() => location.hash.includes("status=Failed") && location.hash.includes("name=Fail"));
  await p.reload();
  await p.waitForFunction(() => document.getElementById("view").dataset.shown === location.hash);
  assert.equal(await p.inputValue("#flt-status"), "Failed");
  assert.equal(await p.inputValue("#flt-name"), "Fail");
  assert.match(await p.locator(".more [role=status]").innerText(), /of 40/);
  // Nothing matches: said so.
  await open(p, "#/instances?prefix=nope-");
  await p.locator("#empty").waitFor();
  await p.close();
});

test("Dashboard: raise, terminate, suspend/resume, rewind and purge through the UI change the instance as the API reports", async () => {
  const p = await page();
  const openInstance = async (id) => {
    await open(p, "#/instance/" + id);
    await p.locator("#detail-title").waitFor();
  };

  // Raise "approve": AwaitApproval completes with the event's data.
  await openInstance("r-000");
  assert.match(await p.locator("#pending").innerText(), /external event/);
  // `baton why` in the page: the chain ends at the event it waits for, named.
  await p.locator("#why li[data-layer=external-event]").waitFor();
  assert.match(await p.locator("#why").innerText(), /external event 'approve'/);
  await shot(p, "instance-running");
  await p.click("[data-action=raise-event]");
  await confirm(p, { event: "approve", data: '{"by":"ui"}' });
  const raised = await until("r-000 completed", async () => { const s = await statusOf("r-000"); return s.runtimeStatus === "Completed" && s; });
  assert.deepEqual(raised.output.approval, { by: "ui" });
  await p.locator("#detail-title .badge.Completed").waitFor();

  await openInstance("r-001");
  await p.click("[data-action=terminate]");
  await confirm(p, { reason: "from the ui" });
  const terminated = await until("r-001 terminated", async () => { const s = await statusOf("r-001"); return s.runtimeStatus === "Terminated" && s; });
  assert.equal(terminated.output, "from the ui");

  await openInstance("r-002");
  await p.click("[data-action=suspend]");
  await confirm(p, { reason: "pause" });
  await until("r-002 suspended", async () => (await statusOf("r-002")).runtimeStatus === "Suspended");
  await p.locator("#detail-title .badge.Suspended").waitFor();
  await p.locator("[data-action=resume]").waitFor();
  await p.click("[data-action=resume]");
  await confirm(p, { reason: "go on" });
  await until("r-002 running again", async () => (await statusOf("r-002")).runtimeStatus === "Running");
  const events = (await statusOf("r-002")).historyEvents.map((e) => e.EventType);
  assert.ok(events.includes("ExecutionSuspended") && events.includes("ExecutionResumed"), events.join(","));

  // Rewind a Failed one: the API's history shows the rewind (FailWith then fails again).
  await openInstance("f-000");
  await p.locator("#failure").waitFor();
  assert.match(await p.locator("#failure").innerText(), /SampleFailure/);
  await shot(p, "instance-failed");
  await p.click("[data-action=rewind]");
  await confirm(p, { reason: "retry it" });
  await until("f-000 rewound", async () => {
    const s = await statusOf("f-000");
    return s.historyEvents.some((e) => e.EventType === "ExecutionRewound") && s.runtimeStatus === "Failed";
  });

  // Purge a Completed one: gone from the API and from the list.
  await openInstance("c-000");
  await p.click("[data-action=purge]");
  await confirm(p);
  assert.equal(await statusOf("c-000"), "gone");
  await p.waitForFunction(() => location.hash.startsWith("#/instances"));
  await open(p, "#/instances?prefix=c-00");
  await p.locator("#instances tbody tr").first().waitFor();
  assert.ok(!(await rowIds(p)).includes("c-000"));

  // A terminal instance offers no terminate; a running one no purge.
  await openInstance("c-001");
  assert.equal(await p.locator("[data-action=terminate]").count(), 0);
  assert.equal(await p.locator("[data-action=purge]").count(), 1);
  await openInstance("r-003");
  assert.equal(await p.locator("[data-action=purge]").count(), 0);
  await p.close();
});

test("Dashboard: the timeline shows activities with millisecond times", async () => {
  const p = await page();
  await open(p, "#/instance/c-005");
  await p.locator(".gantt .row[data-kind=activity]").first().waitFor();
  assert.equal(await p.locator(".gantt .row[data-kind=activity]").count(), 5, "Hello5 calls SayHello 5 times");
  const times = await p.locator(".events td.t").allInnerTexts();
  assert.ok(times.length > 0 && times.every((t) => /\d\d:\d\d:\d\d\.\d{3} UTC$/.test(t)), times.join("|"));
  await shot(p, "instance-timeline");
  await p.close();
});

test("Dashboard: a job's timeline shows each attempt", async () => {
  const submitted = await call(KEY, "POST", "/api/v1/jobs", {
    name: "flaky", image: IMAGE, args: ["exit", "3"], labels: { team: "ui" },
    env: { MODE: "test" }, restartPolicy: { policy: "OnFailure", maxAttempts: 2, backoffSeconds: 1 },
  });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  const id = submitted.body.id;
  const job = await until("the job to fail twice", async () => {
    const j = (await call(KEY, "GET", `/api/v1/jobs/${id}`)).body;
    return j.finishedAt && j;
  });
  assert.equal(job.status, "Failed");
  const p = await page();
  await open(p, "#/job/" + id);
  await p.locator(".gantt .row[data-kind=attempt]").nth(1).waitFor();
  assert.equal(await p.locator(".gantt .row[data-kind=attempt]").count(), 2);
  assert.equal(await p.locator("table.attempts tbody tr").count(), 2);
  const exits = await p.locator("table.attempts tbody tr td:nth-child(4)").allInnerTexts();
  assert.deepEqual(exits, ["3", "3"]);
  const factsText = await p.locator("dl.facts").innerText();
  assert.match(factsText, /Env \(names\)\s+MODE\n/, "env names, never values");
  assert.match(factsText, /team=ui/);
  assert.equal(await p.locator("[data-action=resubmit]").count(), 1);
  assert.equal(await p.locator("[data-action=cancel]").count(), 0);
  await shot(p, "job");
  // The jobs list filters by label.
  await open(p, "#/jobs?labels=team%3Dui");
  await p.locator("#jobs tbody tr").first().waitFor();
  assert.deepEqual(await rowIds(p), [id]);
  await shot(p, "jobs");
  await p.close();
});

test("Dashboard: the tenant view shows the queue while jobs wait", async () => {
  const quota = await call(ADMIN, "PUT", "/api/v1/admin/tenants/dash/quota", { jobs: 1 });
  assert.equal(quota.status, 200, JSON.stringify(quota.body));
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await call(KEY, "POST", "/api/v1/jobs", { name: `wait-${i}`, image: IMAGE, args: ["sleep", "120"] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    ids.push(r.body.id);
  }
  // Which two wait is the scheduler's choice (each job asks for quota once
  // its image is resolved); the API says which, and the page must agree.
  const waiting = await until("two jobs queued", async () => {
    const q = (await call(KEY, "GET", "/api/v1/tenant")).body.queue || [];
    return q.length === 2 && q;
  });
  assert.ok(waiting.every((e) => ids.includes(e.job)));
  const p = await page();
  await open(p, "#/tenant");
  await p.locator("table.queue tbody tr").nth(1).waitFor();
  const queued = await p.locator("table.queue tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.job));
  assert.deepEqual(queued, waiting.map((e) => e.job));
  const positions = await p.locator("table.queue tbody tr td:first-child").allInnerTexts();
  assert.deepEqual(positions, ["1", "2"]);
  await shot(p, "tenant");
  // Cancel the last one through its page; the queue shrinks.
  const last = waiting[1].job;
  await open(p, "#/job/" + last);
  // `baton why` in the page: the queued job waits on the quota, at its place.
  await p.locator("#why li[data-layer=quota]").waitFor();
  assert.match(await p.locator("#why li[data-layer=quota]").innerText(), /number \d+ in the queue/);
  await shot(p, "job-why");
  await p.click("[data-action=cancel]");
  await confirm(p);
  await until("the job canceled", async () => (await call(KEY, "GET", `/api/v1/jobs/${last}`)).body.status === "Canceled");
  await open(p, "#/tenant");
  await p.waitForFunction(() => document.querySelectorAll("table.queue tbody tr").length === 1);
  // The admin view lists the tenant with its queue.
  const admin = await page(ADMIN);
  await open(admin, "#/admin");
  await admin.locator("table.tenants tr[data-tenant=dash]").waitFor();
  await shot(admin, "admin");
  // An admin sees a tenant's hub with its own ids, and acts there.
  await admin.click("table.tenants tr[data-tenant=dash] a");
  await admin.waitForFunction(() => location.hash.includes("hub=dash") && document.getElementById("view").dataset.shown === location.hash);
  assert.equal(await admin.inputValue("#flt-hub"), "dash");
  await open(admin, "#/instances?hub=dash&prefix=r-00");
  const adminIds = await rowIds(admin);
  assert.ok(adminIds.length > 0 && adminIds.every((x) => x.startsWith("r-00")), adminIds.join(","));
  await open(admin, "#/instance/r-003?hub=dash");
  await admin.locator("#detail-title .badge.Running").waitFor();
  await admin.locator("#why li[data-layer=external-event]").waitFor();  // the why of the tenant's hub
  assert.equal(await admin.locator("[data-action=terminate]").count(), 1);
  await admin.close();
  for (const id of ids.filter((x) => x !== last)) await call(KEY, "POST", `/api/v1/jobs/${id}/cancel`);
  for (const id of ids) await until(`job ${id} finished`, async () => !!(await call(KEY, "GET", `/api/v1/jobs/${id}`)).body.finishedAt);
  await p.close();
});

test("Dashboard: entities are listed with their state apart from orchestrations", async () => {
  const p = await page();
  await open(p, "#/entities");
  await p.locator("table.entities a").first().waitFor();
  await p.click("table.entities a >> text=counter");
  await p.locator("table.entities tr[data-key=k1]").waitFor();
  assert.match(await p.locator("table.entities tr[data-key=k1]").innerText(), /5/);
  await shot(p, "entities");
  await p.close();
});

test("Dashboard: a tenant key never sees another tenant's data", async () => {
  const p = await page(OTHER);
  await open(p, "#/instances");
  await p.locator("#empty").waitFor();
  assert.equal(await p.locator("#instances tbody tr").count(), 0);
  assert.match(await p.locator(".counts").innerText(), /All 0/);
  // Its own instance, then a peek at "dash"'s by id, by prefix and by hub.
  assert.equal((await call(OTHER, "POST", `${DF}/orchestrators/Hello5/mine`, "x")).status, 202);
  await open(p, "#/instances?hub=dash");
  await p.locator("#instances tbody tr").first().waitFor();
  assert.deepEqual(await rowIds(p), ["mine"]);
  await open(p, "#/instance/r-003");
  await p.locator("h2 >> text=Not found").waitFor();
  await open(p, "#/instances?prefix=dash%3A%3A");
  await p.locator("#empty").waitFor();
  await open(p, "#/jobs");
  await p.locator("#jobs").waitFor();
  assert.equal(await p.locator("#jobs tbody tr").count(), 0);
  await open(p, "#/tenant");
  await p.locator("h2 >> text=Tenant other").waitFor();
  assert.equal(await p.locator("table.queue tbody tr").count(), 0);
  await open(p, "#/entities");
  await p.locator("#empty").waitFor();
  const text = await p.locator("body").innerText();
  assert.ok(!/\b[rcfts]-\d{3}\b/.test(text), "no id of tenant dash on the page");
  // The tenant key offers no admin view, and the admin API refuses it.
  assert.equal(await p.locator("nav [data-view=admin]").isVisible(), false);
  assert.equal((await call(OTHER, "GET", "/api/v1/admin/tenants")).status, 403);
  await p.close();
});

test("Dashboard: keyboard and phone width", async () => {
  const p = await page(KEY, { width: 390, height: 844 });
  await open(p, "#/instances");
  await p.locator("#instances tbody tr").first().waitFor();
  // Nothing but the tables' own scrollers is wider than the phone.
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page wider than the screen by ${overflow}px`);
  await shot(p, "phone-instances", false);
  // The first Tab lands on "Skip to content"; links and buttons are reachable by Tab.
  await p.keyboard.press("Tab");
  assert.equal(await p.evaluate(() => document.activeElement.textContent), "Skip to content");
  let reached = false;
  for (let i = 0; i < 100 && !reached; i++) {  // a bound on key presses: each datetime-local field takes several
    await p.keyboard.press("Tab");
    reached = await p.evaluate(() => !!document.activeElement.closest("#instances tbody"));
  }
  assert.ok(reached, "an instance link is reachable with Tab");
  const id = await p.evaluate(() => document.activeElement.textContent);
  await p.keyboard.press("Enter");
  await p.waitForFunction((x) => location.hash === "#/instance/" + encodeURIComponent(x), id);
  await p.locator("#detail-title").waitFor();
  await p.close();
});

test("Dashboard: the list APIs refuse hostile filters and change nothing", async () => {
  const before = await counts();
  const bad = [
    `${DF}/instances?top=0`, `${DF}/instances?top=1001`, `${DF}/instances?sort=sideways`,
    `${DF}/instances?runtimeStatus=Nope`, `${DF}/instances?instanceIdPrefix=${"x".repeat(201)}`,
    `${DF}/instances?name=%01`, `${DF}/instances?createdTimeFrom=2030-01-01T00:00:00Z&createdTimeTo=2020-01-01T00:00:00Z`,
    `${DF}/instances?countByStatus=maybe`, "/api/v1/jobs?labels=" + Array.from({ length: 20 }, (_, i) => `k${i}=v`).join(","), "/api/v1/jobs?idPrefix=XYZ",
    "/api/v1/jobs?sort=up", "/api/v1/jobs?status=Nope",
  ];
  for (const url of bad) assert.equal((await call(KEY, "GET", url)).status, 400, url);
  const token = await call(KEY, "GET", `${DF}/instances?top=1`, undefined, { "x-ms-continuation-token": "zz" });
  assert.equal(token.status, 400);
  const other = await call(KEY, "GET", `${DF}/instances?top=1&sort=id`);
  const crossed = await call(KEY, "GET", `${DF}/instances?top=1`, undefined,
                             { "x-ms-continuation-token": other.headers.get("x-ms-continuation-token") });
  assert.equal(crossed.status, 400, "a token of another order");
  // Error messages name ids as the tenant knows them, without the hub.
  const missing = await call(KEY, "GET", `${DF}/instances/nope`);
  assert.equal(missing.status, 404);
  assert.ok(!JSON.stringify(missing.body).includes("dash::"), JSON.stringify(missing.body));
  assert.deepEqual(await counts(), before);
});

test("Dashboard: the admin view shows this node with the leases it holds and the SDK workers per hub", async () => {
  // A bare SDK worker of tenant "dash" takes an orchestration and never
  // completes it: the instance stays leased to this node.
  const worker = connectWorker(GRPC, KEY);
  try {
    await startInstance(GRPC, KEY, "SdkHeld", "sdk-held-1");
    await until("the worker holds sdk-held-1", async () => worker.items.includes("sdk-held-1"));
    const nodes = await until("the node lists the lease", async () => {
      const r = await call(ADMIN, "GET", "/api/v1/admin/nodes");
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.nodes.length === 1 && r.body.nodes[0].leases.instanceIds.includes("dash::sdk-held-1") && r.body;
    });
    const self = nodes.nodes[0];
    assert.equal(self.id, nodes.thisNode);
    assert.equal(self.state, "up");
    assert.equal(self.version, "0.1.0");
    assert.deepEqual(self.details.roles.slice(0, 3), ["api", "worker", "jobs"]);
    assert.ok(self.details.roles.includes("sidecar"), self.details.roles.join(","));
    const workers = (await call(ADMIN, "GET", "/api/v1/admin/workers")).body;
    assert.deepEqual(workers.hubs, [{ hub: "dash", workers: 1, byNode: { [self.id]: 1 } }]);
    assert.equal(workers.streams.length, 1);
    assert.equal(workers.streams[0].hub, "dash");

    const p = await page(ADMIN);
    await open(p, "#/admin");
    const row = p.locator(`table.nodes tr[data-node="${self.id}"]`);
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /\(this node\)/);
    assert.match(text, /\bup\b/);
    assert.match(text, /api, worker, jobs, sidecar/);
    assert.match(text, /0\.1\.0/);
    assert.match(text, /\d+ instances?, \d+ tasks?/);
    // The held instance links to its view in its tenant's hub.
    const held = row.locator("td.leases a", { hasText: "dash::sdk-held-1" });
    assert.equal(await held.getAttribute("href"), "#/instance/sdk-held-1?hub=dash");
    assert.match(await p.locator('table.workers tr[data-hub="dash"]').innerText(), /dash\s+1\s+/);
    assert.equal(await p.locator("table.streams tbody tr").count(), 1);
    await row.locator("summary").click();
    await shot(p, "admin");
    await held.click();
    await p.waitForFunction(() => location.hash === "#/instance/sdk-held-1?hub=dash" && document.getElementById("view").dataset.shown === location.hash);
    // Its first episode is with the worker, which never answers: Pending.
    await p.locator("#detail-title .badge.Pending").waitFor();
    await p.close();
    // At a phone's width the admin view's tables scroll inside their boxes.
    const phone = await page(ADMIN, { width: 390, height: 844 });
    await open(phone, "#/admin");
    await phone.locator(`table.nodes tr[data-node="${self.id}"]`).waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page wider than the screen by ${overflow}px`);
    await phone.close();
  } finally {
    worker.close();
  }
  await until("the stream's end is seen", async () => (await call(ADMIN, "GET", "/api/v1/admin/workers")).body.hubs.length === 0);
});

test("Dashboard: a tenant key gets no admin view, 403 from the nodes and workers endpoints, and hostile queries get 400", async () => {
  const self = (await call(ADMIN, "GET", "/api/v1/admin/nodes")).body.thisNode;
  for (const key of [KEY, OTHER]) {
    for (const url of ["/api/v1/admin/nodes", "/api/v1/admin/workers", "/api/v1/admin/nodes?state=up", "/api/v1/admin/workers?hub=dash"]) {
      const r = await call(key, "GET", url);
      assert.equal(r.status, 403, url);
      assert.ok(!JSON.stringify(r.body).includes(self), `the 403 names no node: ${JSON.stringify(r.body)}`);
    }
  }
  assert.equal((await call("nope", "GET", "/api/v1/admin/nodes")).status, 401);
  const p = await page(KEY);
  await open(p, "#/admin");
  assert.equal(await p.locator("nav [data-view=admin]").isVisible(), false);
  await p.locator("h2 >> text=Error 403").waitFor();
  assert.equal(await p.locator("table.nodes").count(), 0);
  assert.equal(await p.locator("table.workers").count(), 0);
  await p.close();

  const before = (await call(ADMIN, "GET", "/api/v1/admin/nodes")).body.nodes.map((n) => n.id);
  const hostile = [
    "/api/v1/admin/nodes?state=bogus", "/api/v1/admin/nodes?state=", "/api/v1/admin/nodes?state=UP",
    "/api/v1/admin/nodes?limit=1", `/api/v1/admin/nodes?${"x".repeat(3000)}=1`, "/api/v1/admin/nodes?state=%00up",
    "/api/v1/admin/workers?hub=..%2F..", `/api/v1/admin/workers?hub=${"a".repeat(300)}`, "/api/v1/admin/workers?hub=a%0Ab",
    "/api/v1/admin/workers?node=x", "/api/v1/admin/nodes?state=%ff",
  ];
  for (const url of hostile) {
    const r = await call(ADMIN, "GET", url);
    assert.ok(r.status >= 400 && r.status < 500, `${url}: ${r.status}`);
    assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
  }
  assert.deepEqual((await call(ADMIN, "GET", "/api/v1/admin/nodes")).body.nodes.map((n) => n.id), before);
  // The filters that are allowed work.
  assert.deepEqual((await call(ADMIN, "GET", "/api/v1/admin/nodes?state=gone")).body.nodes, []);
  assert.equal((await call(ADMIN, "GET", "/api/v1/admin/workers?hub=")).status, 200);
});

test("Dashboard: retries of one activity are grouped on one timeline row, and Restart starts the instance again", async () => {
  await start("RetryThenGiveUp", "rt-1", "nope");
  const done = await until("rt-1 completed", async () => { const s = await statusOf("rt-1"); return s.runtimeStatus === "Completed" && s; });
  assert.equal(done.historyEvents.filter((e) => e.EventType === "TaskScheduled").length, 3, "three attempts in the history");
  const p = await page();
  await open(p, "#/instance/rt-1");
  const rows = p.locator(".gantt .row[data-kind=activity]");
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1, "one row for the three attempts");
  assert.match(await rows.first().locator(".label").innerText(), /activity FailActivity \(3 attempts\)/);
  assert.equal(await rows.first().locator(".bar.bad").count(), 3, "each failed attempt is a bar");
  // The retries' backoff timers are on the same row, between the attempts.
  assert.equal(await rows.first().locator(".bar.wait").count(), 2, "two backoffs");
  assert.equal(await p.locator(".gantt .row[data-kind=timer]").count(), 0, "no backoff on a row of its own");
  await shot(p, "instance-retries");
  // Restart with a new id: the page goes to the new instance, which runs the same orchestrator.
  await p.click("[data-action=restart]");
  await confirm(p);
  await p.waitForFunction(() => /^#\/instance\/(?!rt-1$)/.test(location.hash) && document.getElementById("view").dataset.shown === location.hash);
  const restarted = decodeURIComponent(await p.evaluate(() => location.hash.slice("#/instance/".length)));
  const again = await until("the restarted instance completed", async () => { const s = await statusOf(restarted); return s.runtimeStatus === "Completed" && s; });
  assert.equal(again.name, "RetryThenGiveUp");
  assert.deepEqual(again.input, "nope");
  // Restart with the same id: rt-1 runs again (a new execution).
  await open(p, "#/instance/rt-1");
  const before = (await statusOf("rt-1")).createdTime;
  await p.click("[data-action=restart]");
  await p.locator("#confirm[open]").waitFor();
  await p.uncheck("#f-newId");
  await confirm(p);
  await until("rt-1 restarted", async () => { const s = await statusOf("rt-1"); return s.createdTime !== before && s.runtimeStatus === "Completed"; });
  await p.close();
});

test("Dashboard: a finished job can be re-submitted and its logs downloaded", async () => {
  const r = await call(KEY, "GET", "/api/v1/jobs?labels=team%3Dui");
  const id = r.body.jobs[0].id;
  const p = await page();
  await open(p, "#/job/" + id);
  const [download] = await Promise.all([p.waitForEvent("download"), p.click("[data-action=download-logs]")]);
  assert.equal(download.suggestedFilename(), `job-${id}.log`);
  const text = fs.readFileSync(await download.path(), "utf8");
  assert.match(text, /^# attempt 1\n/);
  assert.match(text, /\n# attempt 2\n/);
  await p.click("[data-action=resubmit]");
  await confirm(p);
  await p.waitForFunction((old) => location.hash.startsWith("#/job/") && location.hash !== "#/job/" + old &&
                                   document.getElementById("view").dataset.shown === location.hash, id);
  const copy = await p.evaluate(() => location.hash.slice("#/job/".length));
  const job = (await call(KEY, "GET", `/api/v1/jobs/${copy}`)).body;
  assert.equal(job.name, "flaky");
  assert.deepEqual(job.spec.args, ["exit", "3"]);
  assert.deepEqual(job.spec.labels, { team: "ui" });
  // Let it end: no job of this test outlives it.
  await until("the copy finished", async () => !!(await call(KEY, "GET", `/api/v1/jobs/${copy}`)).body.finishedAt);
  await p.close();
});

test("Dashboard: an entity's lockedBy links to the orchestration holding its lock", async () => {
  await start("LockAndWait", "lk-1", "k1");
  await until("k1 locked by lk-1", async () => {
    const r = await call(KEY, "GET", `${DF}/entities/counter?fetchState=true`);
    return (r.body || []).some((e) => e.entityId.key === "k1" && e.lockedBy === "lk-1");
  });
  const p = await page();
  await open(p, "#/entities?name=counter");
  const link = p.locator("table.entities tr[data-key=k1] a", { hasText: "lk-1" });
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), "#/instance/lk-1");
  await link.click();
  await p.waitForFunction(() => location.hash === "#/instance/lk-1" && document.getElementById("view").dataset.shown === location.hash);
  await p.click("[data-action=raise-event]");
  await confirm(p, { event: "release" });
  await until("lk-1 completed", async () => (await statusOf("lk-1")).runtimeStatus === "Completed");
  await p.close();
});

test("Dashboard: an operation signalled to an entity through the UI changes its state as the API reports", async () => {
  const state = async () => (await call(KEY, "GET", `${DF}/entities/counter/k1`)).body;
  const before = await state();
  const p = await page();
  await open(p, "#/entities?name=counter");
  await p.locator("table.entities tr[data-key=k1] [data-action=signal]").click();
  await confirm(p, { op: "add", input: "10" });
  await until("k1 grew by 10", async () => (await state()) === before + 10);
  await p.waitForFunction((v) => (document.querySelector("table.entities tr[data-key=k1] pre") || {}).textContent === String(v), before + 10);
  await p.close();
});

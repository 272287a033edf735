// The admin view's nodes with many nodes: two `baton serve` on one
// PostgreSQL database, started by run-nodes.sh, which sets BATON_HTTP and
// BATON_GRPC (node A, the page's), BATON_HTTP_B, BATON_GRPC_B and
// BATON_PID_B (node B), BATON_ADMIN, BATON_KEY (tenant "dash") and
// BATON_OPS_KEY (tenant "ops"). Waits are for a state, never for a time.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { call, until, launch, page, shot, open } = require("./helpers");
const { connectWorker, startInstance } = require("./sdk_stream");

const ADMIN = process.env.BATON_ADMIN;
const KEY = process.env.BATON_KEY;
const OPS = process.env.BATON_OPS_KEY;
const A = { http: `http://${process.env.BATON_HTTP}`, grpc: process.env.BATON_GRPC };
const B = { http: `http://${process.env.BATON_HTTP_B}`, grpc: process.env.BATON_GRPC_B, pid: Number(process.env.BATON_PID_B) };

let browser;
test.before(async () => { browser = await launch(); });
test.after(async () => { if (browser) await browser.close(); });

const nodesOf = async (at) => {
  const r = await call(ADMIN, "GET", "/api/v1/admin/nodes", undefined, {}, at);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

test("Dashboard: two nodes on one PostgreSQL show in the admin view with the leases each holds, and a killed node goes", async () => {
  // Each node gets an SDK worker of its own hub, so the work of each hub is
  // leased to that node: "ops" on A, "dash" on B (both started through A).
  const wa = connectWorker(A.grpc, OPS);
  const wb = connectWorker(B.grpc, KEY);
  try {
    const both = await until("both nodes up", async () => {
      const n = await nodesOf(A.http);
      return n.nodes.filter((x) => x.state === "up").length === 2 && n;
    });
    const idA = both.thisNode;
    const idB = both.nodes.find((x) => x.id !== idA).id;
    assert.equal((await nodesOf(B.http)).thisNode, idB, "B names itself as A lists it");
    await startInstance(A.grpc, OPS, "SdkHeld", "held-a");
    await startInstance(A.grpc, KEY, "SdkHeld", "held-b");
    await until("each worker holds its instance", async () => wa.items.includes("held-a") && wb.items.includes("held-b"));
    await until("each node lists its lease", async () => {
      const n = await nodesOf(A.http);
      const a = n.nodes.find((x) => x.id === idA), b = n.nodes.find((x) => x.id === idB);
      return a.leases.instanceIds.includes("ops::held-a") && b.leases.instanceIds.includes("dash::held-b") &&
             !a.leases.instanceIds.includes("dash::held-b") && !b.leases.instanceIds.includes("ops::held-a");
    });
    // SDK workers per hub, across the nodes (B's from its heartbeat).
    const workers = await until("both nodes' workers counted", async () => {
      const r = await call(ADMIN, "GET", "/api/v1/admin/workers", undefined, {}, A.http);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.hubs.length === 2 && r.body;
    });
    assert.deepEqual(workers.hubs, [{ hub: "dash", workers: 1, byNode: { [idB]: 1 } }, { hub: "ops", workers: 1, byNode: { [idA]: 1 } }]);
    assert.deepEqual(workers.streams.map((s) => [s.node, s.hub]), [[idA, "ops"]], "the streams listed are A's own");
    // A tenant key gets 403 from either node.
    for (const at of [A.http, B.http]) assert.equal((await call(KEY, "GET", "/api/v1/admin/nodes", undefined, {}, at)).status, 403);

    const p = await page(browser, ADMIN);
    await open(p, "#/admin", A.http);
    const rowA = p.locator(`table.nodes tr[data-node="${idA}"]`);
    const rowB = p.locator(`table.nodes tr[data-node="${idB}"]`);
    await p.waitForFunction(([a, b]) => {
      const text = (id) => (document.querySelector(`table.nodes tr[data-node="${id}"]`) || {}).textContent || "";
      return text(a).includes("ops::held-a") && text(b).includes("dash::held-b");
    }, [idA, idB]);
    assert.match(await rowA.innerText(), /\(this node\)/);
    assert.doesNotMatch(await rowB.innerText(), /\(this node\)/);
    for (const row of [rowA, rowB]) {
      assert.equal(await row.getAttribute("data-state"), "up");
      assert.match(await row.innerText(), /api, worker, jobs, sidecar/);
    }
    assert.match(await p.locator('table.workers tr[data-hub="dash"]').innerText(), new RegExp(`${idB}: 1`));
    assert.match(await p.locator('table.workers tr[data-hub="ops"]').innerText(), new RegExp(`${idA}: 1`));
    await rowA.locator("summary").click();
    await rowB.locator("summary").click();
    await shot(p, "admin-nodes");

    // B dies: after its heartbeats stop it reads as gone, and its worker
    // no longer counts.
    process.kill(B.pid, "SIGKILL");
    await p.locator(`table.nodes tr[data-node="${idB}"][data-state="gone"]`).waitFor({ timeout: 120000 });
    assert.equal(await rowA.getAttribute("data-state"), "up");
    await p.locator('table.workers tr[data-hub="dash"]').waitFor({ state: "detached", timeout: 120000 });
    await shot(p, "admin-node-gone");
    await p.close();
  } finally {
    wa.close();
    wb.close();
  }
});

// Baton dashboard: plain browser JavaScript, no dependencies and no build
// step (docs/dashboard.md says why). It reads and acts through the same HTTP
// API as the CLI, with the key the user typed in, so it shows and offers
// exactly what that key may see and do. The view lives in the URL's hash
// (#/instances?status=Failed&name=Hello), so a view can be shared and
// reloaded. Every string from the server is put in the page as text, never
// as HTML.
"use strict";

const DF = "/runtime/webhooks/durabletask";
const INSTANCE_STATUSES = ["Running", "Pending", "Suspended", "Completed", "Failed", "Terminated", "ContinuedAsNew", "Canceled"];
const JOB_STATUSES = ["Pending", "Queued", "Starting", "Running", "BackingOff", "Completed", "Failed", "Canceled"];
const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);
const PAGE = 50;

const S = {
  who: null,        // {admin: bool, tenant: string} once the key is known
  gen: 0,           // bumped at each navigation: late answers of an old view are dropped
  list: null,       // the list on screen: {kind, rows, token, counts}
  timer: null,
  openLeases: new Set(),  // nodes whose list of leases the admin opened
};

const $ = (id) => document.getElementById(id);

// h("a", {href: "#", class: "x", onclick: f}, "text", child, ...): an element.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the view's content; null and false children are skipped.
function show(...children) {
  $("view").replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function key() { return localStorage.getItem("baton.key") || ""; }
function tz() { return localStorage.getItem("baton.tz") || "local"; }

// ---- The API ----

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + key() }, options.headers || {});
  let res;
  try {
    res = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  } catch (e) {
    connection(false);
    throw e;
  }
  connection(true);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!res.ok) {
    const message = body && body.error ? body.error.message : (typeof body === "string" && body ? body : res.statusText);
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return { body, headers: res.headers, status: res.status };
}

async function get(path) { return (await api(path)).body; }

function connection(up) {
  $("conn").className = "dot " + (up ? "up" : "down");
  $("conn-text").textContent = up ? "connected" : "unreachable: retrying";
}

function banner(text, kind) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
  $("banner").dataset.kind = kind || "";
}

// Admin or tenant: an admin key may list tenants, a tenant key may not.
async function whoAmI() {
  if (!key()) { S.who = null; return; }
  try {
    await api("/api/v1/admin/tenants");
    S.who = { admin: true, tenant: "" };
  } catch (e) {
    if (e.status === 403) {
      const t = await get("/api/v1/tenant").catch(() => null);
      S.who = { admin: false, tenant: t && t.tenant ? t.tenant : "" };
    } else {
      S.who = null;
      if (e.status === 401) banner("This key was refused: " + e.message);
      else if (e.status === undefined) banner("Baton is unreachable.");
    }
  }
  $("who").textContent = S.who ? (S.who.admin ? "admin key" : "tenant " + S.who.tenant) : "";
  document.querySelector('[data-view="jobs"]').hidden = !S.who || S.who.admin;
  document.querySelector('[data-view="tenant"]').hidden = !S.who || S.who.admin;
  document.querySelector('[data-view="admin"]').hidden = !S.who || !S.who.admin;
}

// ---- Formatting ----

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

// Milliseconds, in UTC or local time as chosen.
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  if (tz() === "utc") {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + "." +
      pad(d.getUTCMilliseconds(), 3) + " UTC";
  }
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
    pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
}

function fmtDur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(3) + " s";
  const m = Math.floor(ms / 60000);
  if (m < 60) return m + " min " + Math.round((ms % 60000) / 1000) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

// An ISO time from a datetime-local input, read in the chosen time zone.
function inputToIso(v) {
  if (!v) return "";
  const d = tz() === "utc" ? new Date(v + "Z") : new Date(v);
  return isNaN(d) ? "" : d.toISOString();
}
function isoToInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  if (tz() === "utc") return d.toISOString().slice(0, 16);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

function json(v) { return v === undefined || v === null ? "" : (typeof v === "string" ? v : JSON.stringify(v, null, 2)); }
function badge(status) { return h("span", { class: "badge " + status, text: status }); }

function facts(pairs) {
  const dl = h("dl", { class: "facts" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(h("dt", { text: k }), h("dd", {}, v instanceof Node ? v : typeof v === "object" ? JSON.stringify(v) : String(v)));
  }
  return dl;
}

function table(headers, rows, cls) {
  return h("div", { class: "table-wrap" },
    h("table", { class: cls || "" },
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: x.cls || "" }, x.text || x)))),
      h("tbody", {}, rows)));
}

function waitingOn(w) {
  if (!w) return "";
  if (w.reason === "quota") return "quota (#" + w.position + " in queue)";
  if (w.reason === "backoff") return "backoff until " + fmtTime(w.retryAt);
  if (w.reason === "imagePull") return "image pull";
  if (w.reason === "container") return "container start";
  if (w.reason === "runtime" || w.reason === "registry") {
    return (w.reason === "runtime" ? "dockerd" : "registry") + " unreachable, next try " + fmtTime(w.retryAt);
  }
  return w.reason;
}

function progress(p) {
  if (p === undefined || p === null) return "";
  if (typeof p === "object" && "step" in p && "of" in p) return p.step + " / " + p.of;
  return typeof p === "string" ? p : JSON.stringify(p);
}

// ---- Routing: the hash is the view ----

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const path = (q < 0 ? hash : hash.slice(0, q)).split("/").map(decodeURIComponent);
  const params = new URLSearchParams(q < 0 ? "" : hash.slice(q + 1));
  return { view: path[0] || "instances", id: path.slice(1).join("/"), params };
}

function go(view, id, params) {
  let hash = "#/" + view + (id ? "/" + encodeURIComponent(id) : "");
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v) p.set(k, v);
  const qs = p.toString();
  location.hash = hash + (qs ? "?" + qs : "");
}

// An array job: its size, its children's counts and a link to them; a child:
// its index and its array job.
function arrayFact(job, id) {
  const a = job.array;
  if (!a) return "";
  if (a.size !== undefined) {
    const counts = a.counts ? Object.entries(a.counts).map(([k, v]) => k + " " + v).join(", ") : "";
    return h("span", {}, a.size + " children" + (counts ? " (" + counts + ") " : " "),
             link("list them", "jobs", "", { idPrefix: id + ":" }));
  }
  if (a.index !== undefined) return h("span", {}, "index " + a.index + " of ", link(a.parentId, "job", a.parentId));
  return "";
}

function link(text, view, id, params) {
  let href = "#/" + view + (id ? "/" + encodeURIComponent(id) : "");
  const qs = new URLSearchParams(params || {}).toString();
  return h("a", { href: href + (qs ? "?" + qs : ""), text });
}

// The taskHub an admin looks at ("" = the whole store), kept in the URL.
function hubParam(r) { return S.who && S.who.admin ? (r.params.get("hub") || "") : ""; }
function hubQuery(r, sep) { const hub = hubParam(r); return hub ? sep + "taskHub=" + encodeURIComponent(hub) : ""; }

async function render() {
  const r = route();
  const gen = ++S.gen;
  clearInterval(S.timer);
  S.timer = null;
  for (const a of document.querySelectorAll("nav .tab")) {
    const on = a.dataset.view === r.view || a.dataset.view + "s" === r.view ||
      (r.view === "instance" && a.dataset.view === "instances") || (r.view === "job" && a.dataset.view === "jobs");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!key()) {
    show(h("p", {}, "Enter an API key (", h("code", {}, "baton key create --tenant …"),
      ", or the admin key that ", h("code", {}, "baton serve"), " printed) to see orchestrations, jobs and entities."));
    return;
  }
  if (!S.who) await whoAmI();
  if (!S.who) { show(h("p", { text: "This key cannot be used." })); return; }
  const views = { instances: viewInstances, instance: viewInstance, jobs: viewJobs, job: viewJob,
                  entities: viewEntities, tenant: viewTenant, admin: viewAdmin };
  const fn = views[r.view] || viewInstances;
  try {
    await fn(r, gen);
    // Which view is on screen (browser tests wait for it).
    if (gen === S.gen) $("view").dataset.shown = location.hash;
  } catch (e) {
    if (gen === S.gen) $("view").dataset.shown = location.hash;
    if (gen !== S.gen) return;
    if (e.status === 404) show(h("h2", { text: "Not found" }), h("p", { text: e.message }));
    else if (e.status) show(h("h2", { text: "Error " + e.status }), h("p", { text: e.message }));
  }
}

// Re-renders the current view every `ms` while it is on screen and no dialog is open.
function every(ms, gen, fn) {
  S.timer = setInterval(async () => {
    if (gen !== S.gen || $("confirm").open || document.hidden) return;
    try { await fn(); } catch (e) { /* the connection dot says so */ }
  }, ms);
}

// ---- Confirmation dialog ----

// Asks to confirm `title`; fields: [{name, label, type, value}]. Resolves to
// the fields' values, or null when cancelled.
function confirmAction(title, text, fields, okText) {
  const dlg = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text || "";
  const box = $("confirm-fields");
  box.replaceChildren();
  for (const f of fields || []) {
    const input = f.type === "textarea"
      ? h("textarea", { name: f.name, id: "f-" + f.name })
      : h("input", { name: f.name, id: "f-" + f.name, type: f.type || "text", required: f.required });
    if (f.type === "checkbox") input.checked = !!f.value; else if (f.value !== undefined) input.value = f.value;
    box.append(h("label", { for: "f-" + f.name }, f.label, input));
  }
  $("confirm-ok").textContent = okText || title;
  return new Promise((resolve) => {
    const form = $("confirm-form");
    const done = (v) => {
      form.removeEventListener("submit", submit);
      $("confirm-cancel").removeEventListener("click", cancel);
      dlg.removeEventListener("cancel", cancel);
      if (dlg.open) dlg.close();
      resolve(v);
    };
    const submit = (e) => {
      e.preventDefault();
      const out = {};
      for (const f of fields || []) {
        const el = $("f-" + f.name);
        out[f.name] = f.type === "checkbox" ? el.checked : el.value;
      }
      done(out);
    };
    const cancel = (e) => { if (e) e.preventDefault(); done(null); };
    form.addEventListener("submit", submit);
    $("confirm-cancel").addEventListener("click", cancel);
    dlg.addEventListener("cancel", cancel);
    dlg.showModal();
    const first = box.querySelector("input,textarea");
    (first || $("confirm-ok")).focus();
  });
}

async function act(what, fn) {
  try {
    await fn();
    banner(what + ": done.", "ok");
    return true;
  } catch (e) {
    banner(what + " failed: " + e.message);
    return false;
  }
}

// ---- Orchestrations ----

function instanceFilters(r) {
  const p = r.params;
  return { status: p.get("status") || "", name: p.get("name") || "", prefix: p.get("prefix") || "",
           from: p.get("from") || "", to: p.get("to") || "", sort: p.get("sort") || "", hub: hubParam(r) };
}

function instancesUrl(f) {
  const q = new URLSearchParams({ top: String(PAGE), countByStatus: "true" });
  if (f.status) q.set("runtimeStatus", f.status);
  if (f.name) q.set("name", f.name);
  if (f.prefix) q.set("instanceIdPrefix", f.prefix);
  if (f.from) q.set("createdTimeFrom", f.from);
  if (f.to) q.set("createdTimeTo", f.to);
  if (f.sort) q.set("sort", f.sort);
  if (f.hub) q.set("taskHub", f.hub);
  return DF + "/instances?" + q.toString();
}

function filterForm(view, f, fields) {
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filters" });
  for (const x of fields) {
    let input;
    if (x.options) {
      input = h("select", { name: x.name, id: "flt-" + x.name }, x.options.map((o) => h("option", { value: o[0], text: o[1] })));
    } else {
      input = h("input", { name: x.name, id: "flt-" + x.name, type: x.type || "text", placeholder: x.placeholder || "", size: x.size || 14 });
    }
    input.value = x.type === "datetime-local" ? isoToInput(f[x.name]) : (f[x.name] || "");
    form.append(h("label", { for: "flt-" + x.name }, x.label, input));
  }
  form.append(h("button", { type: "submit", class: "primary", text: "Apply" }),
              h("button", { type: "button", text: "Clear", onclick: () => go(view, "", {}) }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const out = {};
    for (const x of fields) {
      const v = form.elements[x.name].value.trim();
      out[x.name] = x.type === "datetime-local" ? inputToIso(v) : v;
    }
    go(view, "", out);
  });
  return form;
}

function countsBar(view, f, counts, statuses) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ul = h("ul", { class: "counts", "aria-label": "Counts by status" });
  const pick = (s) => go(view, "", Object.assign({}, f, { status: s }));
  ul.append(h("li", {}, h("button", { type: "button", "aria-pressed": String(!f.status), onclick: () => pick("") }, "All " + total)));
  for (const s of statuses) {
    if (!counts[s]) continue;
    ul.append(h("li", {}, h("button", { type: "button", "data-status": s, "aria-pressed": String(f.status === s),
                                        onclick: () => pick(s) }, s + " " + counts[s])));
  }
  return ul;
}

function parseCounts(header) {
  const out = {};
  for (const item of (header || "").split(",")) {
    const eq = item.indexOf("=");
    if (eq > 0) out[item.slice(0, eq)] = Number(item.slice(eq + 1));
  }
  return out;
}

async function viewInstances(r, gen) {
  const f = instanceFilters(r);
  const fields = [
    { name: "status", label: "Status", options: [["", "any"]].concat(INSTANCE_STATUSES.map((s) => [s, s])) },
    { name: "name", label: "Name starts with", placeholder: "Hello" },
    { name: "prefix", label: "Id starts with" },
    { name: "from", label: "Created from", type: "datetime-local" },
    { name: "to", label: "Created before", type: "datetime-local" },
    { name: "sort", label: "Order", options: [["", "newest first"], ["oldest", "oldest first"], ["id", "by id"]] },
  ];
  if (S.who.admin) fields.push({ name: "hub", label: "Task hub (tenant)", placeholder: "all", size: 10 });
  const url = instancesUrl(f);
  const first = await api(url);
  if (gen !== S.gen) return;
  const list = S.list = { kind: "instances", rows: first.body || [], token: first.headers.get("x-ms-continuation-token") || "",
                          counts: parseCounts(first.headers.get("x-baton-status-counts")) };
  const tbody = h("tbody");
  const status = h("span", { class: "muted", role: "status" });
  const more = h("button", { type: "button", id: "load-more", text: "Load more" });
  const matching = f.status ? f.status.split(",").reduce((a, s) => a + (list.counts[s] || 0), 0)
                            : Object.values(list.counts).reduce((a, b) => a + b, 0);
  const addRows = (rows) => {
    for (const s of rows) {
      tbody.append(h("tr", { "data-id": s.instanceId },
        h("td", { class: "id" }, link(s.instanceId, "instance", s.instanceId, f.hub ? { hub: f.hub } : {})),
        h("td", { text: s.name }), h("td", {}, badge(s.runtimeStatus)),
        h("td", { text: fmtTime(s.createdTime) }), h("td", { class: "hide-narrow", text: fmtTime(s.lastUpdatedTime) })));
    }
    status.textContent = "Showing " + tbody.children.length + " of " + matching;
    more.hidden = !list.token;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api(url.replace("countByStatus=true", "countByStatus=false"),
                             { headers: { "x-ms-continuation-token": list.token } });
      if (gen !== S.gen) return;
      list.token = page.headers.get("x-ms-continuation-token") || "";
      addRows(page.body || []);
    } catch (e) { banner("Loading more failed: " + e.message); }
    more.disabled = false;
  });
  addRows(list.rows);
  show(
    h("h2", { text: "Orchestrations" }),
    filterForm("instances", f, fields),
    countsBar("instances", f, list.counts, INSTANCE_STATUSES),
    h("div", { class: "table-wrap" }, h("table", { id: "instances" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Instance" }), h("th", { scope: "col", text: "Name" }),
        h("th", { scope: "col", text: "Status" }), h("th", { scope: "col", text: "Created" }),
        h("th", { scope: "col", class: "hide-narrow", text: "Updated" }))), tbody)),
    tbody.children.length ? null : h("p", { id: "empty", text: "No orchestration matches." }),
    h("div", { class: "more" }, more, status));
}

// Spans of a history: [{kind, label, start, end, ok, group, attempt, open}].
function historySpans(events) {
  const spans = [];
  const byId = new Map();      // EventId of a TaskScheduled/SubOrchestrationInstanceCreated/TimerCreated -> span
  const byRequest = new Map(); // RequestId / CriticalSectionId -> span
  const attempts = new Map();  // activity name -> its failed calls not retried yet
  const points = [];
  let started = null, ended = null, endOk = true;
  let lastFailure = null;      // the last failed activity call, until something else is scheduled
  for (const e of events) {
    const t = e.Timestamp;
    switch (e.EventType) {
      case "ExecutionStarted": started = t; break;
      case "ExecutionCompleted": ended = t; endOk = e.OrchestrationStatus === "Completed"; break;
      case "ExecutionTerminated": ended = t; endOk = false; break;
      case "TaskScheduled": {
        // A call of a name whose earlier call failed (and was not retried
        // yet) is that call's retry: same group, next attempt.
        const failed = attempts.get(e.FunctionName) || [];
        const prev = failed.shift();
        const s = { kind: "activity", label: e.FunctionName, start: t, end: null,
                    group: prev ? prev.group : "activity " + e.EventId, attempt: prev ? prev.attempt + 1 : 1 };
        lastFailure = null;
        byId.set(e.EventId, s); spans.push(s); break;
      }
      case "TaskCompleted": case "TaskFailed": {
        const s = byId.get(e.TaskScheduledId);
        if (s) {
          s.end = t; s.ok = e.EventType === "TaskCompleted";
          if (!s.ok) {
            if (e.FailureDetails) s.error = e.FailureDetails.errorType + ": " + e.FailureDetails.errorMessage;
            if (!attempts.has(s.label)) attempts.set(s.label, []);
            attempts.get(s.label).push(s);
            lastFailure = s;
          }
        }
        break;
      }
      case "SubOrchestrationInstanceCreated": {
        const s = { kind: "sub-orchestration", label: e.FunctionName, child: e.InstanceId, group: "sub " + e.InstanceId, start: t, end: null };
        byId.set(e.EventId, s); spans.push(s); break;
      }
      case "SubOrchestrationInstanceCompleted": case "SubOrchestrationInstanceFailed": {
        const s = byId.get(e.TaskScheduledId);
        if (s) { s.end = t; s.ok = e.EventType.endsWith("Completed"); }
        break;
      }
      case "TimerCreated": {
        const s = { kind: "timer", label: "timer until " + fmtTime(e.ScheduledTime), until: e.ScheduledTime, start: t, end: null };
        s.group = "timer " + e.EventId;
        // A timer right after a failed call may be its retry's backoff
        // (confirmed below, when the next attempt starts as it fires).
        if (lastFailure) s.retryOf = lastFailure;
        byId.set(e.EventId, s); spans.push(s); break;
      }
      case "TimerFired": { const s = byId.get(e.TimerId); if (s) { s.end = t; s.ok = true; } break; }
      case "EntityOperationCalled": {
        const s = { kind: "entity call", label: e.Operation + " → " + e.TargetInstanceId, start: t, end: null };
        s.group = "entity " + e.RequestId;
        byRequest.set(e.RequestId, s); spans.push(s); break;
      }
      case "EntityOperationCompleted": case "EntityOperationFailed": {
        const s = byRequest.get(e.RequestId);
        if (s) { s.end = t; s.ok = e.EventType.endsWith("Completed"); }
        break;
      }
      case "EntityLockRequested": {
        if (e.CriticalSectionId && !byRequest.has("lock " + e.CriticalSectionId)) {
          const s = { kind: "lock", label: "lock " + (e.LockSet || []).join(", "), start: t, end: null, group: "lock " + e.CriticalSectionId };
          byRequest.set("lock " + e.CriticalSectionId, s); spans.push(s);
        }
        break;
      }
      case "EntityLockGranted": { const s = byRequest.get("lock " + e.CriticalSectionId); if (s) { s.end = t; s.ok = true; } break; }
      case "EventRaised": points.push({ kind: "event", label: "event '" + e.Name + "' received", start: t, end: t, point: true }); break;
      case "EventSent": points.push({ kind: "event", label: "event '" + e.Name + "' sent to " + (e.InstanceId || ""), start: t, end: t, point: true }); break;
      case "EntityOperationSignaled": points.push({ kind: "signal", label: "signal " + e.Operation + " → " + e.TargetInstanceId, start: t, end: t, point: true }); break;
      case "ExecutionSuspended": points.push({ kind: "suspend", label: "suspended", start: t, end: t, point: true }); break;
      case "ExecutionResumed": points.push({ kind: "resume", label: "resumed", start: t, end: t, point: true }); break;
      case "ExecutionRewound": points.push({ kind: "rewind", label: "rewound", start: t, end: t, point: true }); break;
      default: break;
    }
  }
  for (const s of spans) {
    if (!s.retryOf) continue;
    const next = s.end && spans.find((x) => x.kind === "activity" && x.group === s.retryOf.group && x.attempt === s.retryOf.attempt + 1);
    if (next && Date.parse(next.start) >= Date.parse(s.end)) { s.backoffOf = next.group; s.nextAttempt = next.attempt; }
  }
  const all = spans.concat(points).sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  return { started, ended, endOk, spans: all };
}

// A Gantt chart: one row per span, bars from start to end (open spans run
// to `now`), retries of one activity on one row.
function gantt(rows, t0, t1) {
  const span = Math.max(1, t1 - t0);
  const box = h("div", { class: "gantt", role: "list", "aria-label": "Timeline" });
  box.append(h("div", { class: "axis", "aria-hidden": "true" }, h("span", { text: fmtTime(new Date(t0).toISOString()) }),
                                                                  h("span", { text: "+" + fmtDur(t1 - t0) })));
  for (const row of rows) {
    const track = h("div", { class: "track" });
    // A row's duration: from its first bar's start to its last bar's end
    // (a retried call: all its attempts and the backoffs between them).
    let first = Infinity, last = -Infinity;
    for (const b of row.bars) {
      const s = Date.parse(b.start);
      const e = b.end ? Date.parse(b.end) : t1;
      first = Math.min(first, s);
      last = Math.max(last, e);
      const bar = h("span", { class: "bar " + (b.point ? "point" : !b.end ? "open" : b.cls || (b.ok === false ? "bad" : "ok")),
                              title: (b.title || row.label) + ": " + fmtTime(b.start) + (b.point ? "" : " → " + (b.end ? fmtTime(b.end) : "now") + " (" + fmtDur(e - s) + ")") });
      bar.style.left = ((s - t0) / span * 100).toFixed(3) + "%";
      if (!b.point) bar.style.width = Math.max(0.2, (e - s) / span * 100).toFixed(3) + "%";
      track.append(bar);
    }
    const point = row.bars.every((b) => b.point);
    const open = row.bars.some((b) => !b.end);
    box.append(h("div", { class: "row", role: "listitem", "data-kind": row.kind || "" },
      h("span", { class: "label" }, row.labelNode || row.label),
      track,
      h("span", { class: "dur", text: point ? fmtTime(row.bars[0].start).slice(11) : (open ? "running " : "") + fmtDur(last - first) })));
  }
  return box;
}

function instanceTimeline(events, hub) {
  const { started, ended, endOk, spans } = historySpans(events);
  if (!started) return { chart: h("p", { class: "muted", text: "No history yet." }), pending: [], children: [] };
  const t0 = Date.parse(started);
  let t1 = ended ? Date.parse(ended) : Date.now();
  for (const s of spans) t1 = Math.max(t1, Date.parse(s.end || s.start));
  const rows = [{ label: "orchestration", kind: "orchestration", bars: [{ start: started, end: ended, ok: endOk }] }];
  const grouped = new Map();
  for (const s of spans) {
    if (s.kind === "activity" && grouped.has(s.group)) {
      // A retry: on its first attempt's row.
      const row = grouped.get(s.group);
      row.bars.push(Object.assign({ title: s.label + " attempt " + s.attempt }, s));
      row.attempts = (row.attempts || 1) + 1;
      row.labelNode = row.label + " (" + row.attempts + " attempts)";
      continue;
    }
    if (s.backoffOf && grouped.has(s.backoffOf)) {
      // A retry's backoff: a grey bar between the attempts on their row.
      grouped.get(s.backoffOf).bars.push(Object.assign({}, s, { cls: "wait", title: "backoff before attempt " + s.nextAttempt }));
      continue;
    }
    const label = s.kind === "activity" ? "activity " + s.label : s.kind === "sub-orchestration" ? "sub-orchestration " + s.label : s.label;
    const row = { label, kind: s.kind, bars: [Object.assign({ title: label }, s)] };
    if (s.child) row.labelNode = h("span", {}, "sub-orchestration " + s.label + " ", link(s.child, "instance", s.child, hub ? { hub } : {}));
    if (s.kind === "activity") grouped.set(s.group, row);
    rows.push(row);
  }
  const pending = [];
  if (!ended) {
    for (const s of spans) {
      if (s.end || s.point) continue;
      if (s.kind === "timer") pending.push("timer until " + fmtTime(s.until));
      else if (s.kind === "activity") pending.push("activity " + s.label + (s.attempt > 1 ? " attempt " + s.attempt : ""));
      else if (s.kind === "sub-orchestration") pending.push("sub-orchestration " + s.label + " (" + s.child + ")");
      else pending.push(s.kind + " " + s.label);
    }
    // Nothing in flight: it waits for an event (or a signal), which the
    // history does not name.
    if (!pending.length) pending.push("an external event (the history does not record which one it waits for)");
  }
  const children = spans.filter((s) => s.child).map((s) => s.child);
  return { chart: gantt(rows, t0, t1), pending, children };
}

function instanceActions(s, id, r) {
  const hubq = hubQuery(r, "&");
  const base = DF + "/instances/" + encodeURIComponent(id);
  const reload = () => render();
  const buttons = [];
  const add = (label, cls, fn) => buttons.push(h("button", { type: "button", class: cls || "", "data-action": label.toLowerCase().replace(/ /g, "-"), onclick: fn, text: label }));
  const running = !TERMINAL.has(s.runtimeStatus);
  if (running) {
    add("Raise event", "", async () => {
      const v = await confirmAction("Raise event", "Send an event to " + id + ".",
        [{ name: "event", label: "Event name", required: true }, { name: "data", label: "Data (JSON, empty = null)", type: "textarea" }], "Raise");
      if (!v) return;
      let body = "null";
      if (v.data.trim()) { try { body = JSON.stringify(JSON.parse(v.data)); } catch (e) { banner("The data is not JSON: " + e.message); return; } }
      if (await act("Raise event '" + v.event + "'", () => api(base + "/raiseEvent/" + encodeURIComponent(v.event) + "?" + hubq.slice(1),
        { method: "POST", headers: { "Content-Type": "application/json" }, body }))) reload();
    });
    add("Terminate", "danger", async () => {
      const v = await confirmAction("Terminate", "Terminate " + id + " and its sub-orchestrations? This cannot be undone.",
        [{ name: "reason", label: "Reason" }], "Terminate");
      if (v && await act("Terminate", () => api(base + "/terminate?reason=" + encodeURIComponent(v.reason) + hubq, { method: "POST" }))) reload();
    });
    if (s.runtimeStatus === "Suspended") {
      add("Resume", "", async () => {
        const v = await confirmAction("Resume", "Resume " + id + "?", [{ name: "reason", label: "Reason" }], "Resume");
        if (v && await act("Resume", () => api(base + "/resume?reason=" + encodeURIComponent(v.reason) + hubq, { method: "POST" }))) reload();
      });
    } else {
      add("Suspend", "", async () => {
        const v = await confirmAction("Suspend", "Suspend " + id + "? It keeps its events and runs on when resumed.",
          [{ name: "reason", label: "Reason" }], "Suspend");
        if (v && await act("Suspend", () => api(base + "/suspend?reason=" + encodeURIComponent(v.reason) + hubq, { method: "POST" }))) reload();
      });
    }
  }
  if (s.runtimeStatus === "Failed") {
    add("Rewind", "", async () => {
      const v = await confirmAction("Rewind", "Rewind " + id + ": its failed calls run again, the rest of its history is kept.",
        [{ name: "reason", label: "Reason" }], "Rewind");
      if (v && await act("Rewind", () => api(base + "/rewind?reason=" + encodeURIComponent(v.reason) + hubq, { method: "POST" }))) reload();
    });
  }
  if (!running) {
    add("Restart", "", async () => {
      const v = await confirmAction("Restart", "Start " + s.name + " again with the same input.",
        [{ name: "newId", label: "With a new instance id", type: "checkbox", value: true }], "Restart");
      if (!v) return;
      let answer = null;
      if (await act("Restart", async () => { answer = await api(base + "/restart?restartWithNewInstanceId=" + v.newId + hubq, { method: "POST" }); })) {
        const nid = answer && answer.body && answer.body.id;
        if (nid && nid !== id) go("instance", nid, r.params.get("hub") ? { hub: r.params.get("hub") } : {}); else reload();
      }
    });
    add("Purge", "danger", async () => {
      const v = await confirmAction("Purge", "Delete " + id + " and its history for good?", [], "Purge");
      if (v && await act("Purge", () => api(base + "?" + hubq.slice(1), { method: "DELETE" }))) go("instances", "", r.params.get("hub") ? { hub: r.params.get("hub") } : {});
    });
  }
  return h("div", { class: "actions", role: "group", "aria-label": "Actions" }, buttons);
}

// The chain of `baton why` (GET …/why, docs/why.md): from the thing shown to
// the root cause of its wait, one line per layer; null when there is none
// (a finished instance or job) or it cannot be read.
async function whyChain(path) {
  const w = await get(path).catch(() => null);
  if (!w || !Array.isArray(w.chain) || !w.chain.length) return null;
  const last = w.chain.length - 1;
  return h("div", { class: "why", id: "why" }, h("h3", { text: "Why" }),
    h("ol", {}, w.chain.map((l, i) => h("li", { "data-layer": l.layer || "" },
      h("span", { class: "muted", text: "[" + (l.layer || "?") + "] " }),
      i === last && last > 0 ? h("strong", { text: l.summary || "" }) : h("span", { text: l.summary || "" })))),
    w.cycle ? h("p", { class: "muted", text: "(the chain loops back here)" }) : null,
    w.truncated ? h("p", { class: "muted", text: "(the chain goes on)" }) : null);
}

async function viewInstance(r, gen) {
  const id = r.id;
  const hub = hubParam(r);
  const load = async () => {
    const s = await get(DF + "/instances/" + encodeURIComponent(id) + "?showHistory=true&showHistoryOutput=true&showInput=true" + hubQuery(r, "&"));
    if (gen !== S.gen) return;
    const events = s.historyEvents || [];
    const tl = instanceTimeline(events, hub);
    const why = TERMINAL.has(s.runtimeStatus) ? null
      : await whyChain("/api/v1/instances/" + encodeURIComponent(id) + "/why" + hubQuery(r, "?"));
    if (gen !== S.gen) return;
    const failure = s.failureDetails
      ? h("div", { class: "failure", id: "failure" }, h("strong", { text: s.failureDetails.errorType }), " ",
          h("span", { text: s.failureDetails.errorMessage }),
          s.failureDetails.details ? h("pre", { text: json(s.failureDetails.details) }) : null)
      : null;
    const pending = tl.pending.length || s.runtimeStatus === "Suspended"
      ? h("div", { class: "pending", id: "pending" }, h("strong", { text: s.runtimeStatus === "Suspended" ? "Suspended. " : "Waiting on:" }),
          h("ul", {}, tl.pending.map((p) => h("li", { text: p }))),
          s.customStatus ? h("p", { class: "muted" }, "Custom status: ", json(s.customStatus)) : null)
      : null;
    const eventsRows = events.map((e) => {
      const rest = Object.assign({}, e);
      delete rest.Timestamp; delete rest.EventType; delete rest.EventId;
      return h("tr", {}, h("td", { class: "t", text: fmtTime(e.Timestamp) }), h("td", { text: e.EventType }),
                          h("td", { text: e.EventId >= 0 ? e.EventId : "" }), h("td", { text: Object.keys(rest).length ? JSON.stringify(rest) : "" }));
    });
    show(
      h("p", {}, link("← Orchestrations", "instances", "", hub ? { hub } : {})),
      h("h2", { id: "detail-title" }, id, " ", badge(s.runtimeStatus)),
      instanceActions(s, id, r),
      facts([["Name", s.name], ["Status", s.runtimeStatus], ["Created", fmtTime(s.createdTime)],
             ["Updated", fmtTime(s.lastUpdatedTime)], ["Completed", fmtTime(s.completedTime)],
             ["Scheduled start", fmtTime(s.scheduledStartTime)],
             ["Parent", s.parentInstanceId ? link(s.parentInstanceId, "instance", s.parentInstanceId, hub ? { hub } : {}) : ""],
             ["Children", tl.children.length ? h("span", {}, tl.children.map((c, i) => [i ? ", " : "", link(c, "instance", c, hub ? { hub } : {})])) : ""]]),
      failure, pending, why,
      h("h3", { text: "Timeline" }), tl.chart,
      h("h3", { text: "Input" }), h("pre", { id: "input", text: json(s.input) || "(none)" }),
      h("h3", { text: "Output" }), h("pre", { id: "output", text: json(s.output) || "(none)" }),
      h("h3", { text: "Custom status" }), h("pre", { id: "custom-status", text: json(s.customStatus) || "(none)" }),
      h("h3", { text: "History" }), table(["Time", "Event", "Id", "Details"], eventsRows, "events"));
    return s;
  };
  const s = await load();
  if (s && !TERMINAL.has(s.runtimeStatus)) every(3000, gen, load);
}

// ---- Jobs ----

function jobFilters(r) {
  const p = r.params;
  return { status: p.get("status") || "", name: p.get("name") || "", labels: p.get("labels") || "", idPrefix: p.get("idPrefix") || "",
           from: p.get("from") || "", to: p.get("to") || "", sort: p.get("sort") || "" };
}

async function viewJobs(r, gen) {
  const f = jobFilters(r);
  const q = new URLSearchParams({ pageSize: String(PAGE), countByStatus: "true" });
  if (f.status) q.set("status", f.status);
  if (f.name) q.set("name", f.name);
  if (f.labels) q.set("labels", f.labels);
  if (f.idPrefix) q.set("idPrefix", f.idPrefix);
  if (f.from) q.set("createdFrom", f.from);
  if (f.to) q.set("createdTo", f.to);
  if (f.sort) q.set("sort", f.sort);
  const url = "/api/v1/jobs?" + q.toString();
  const first = await get(url);
  if (gen !== S.gen) return;
  let token = first.continuationToken || "";
  const tbody = h("tbody");
  const status = h("span", { class: "muted", role: "status" });
  const more = h("button", { type: "button", id: "load-more", text: "Load more" });
  const counts = first.counts || {};
  const addRows = (jobs) => {
    for (const j of jobs) {
      tbody.append(h("tr", { "data-id": j.id },
        h("td", { class: "id" }, link(j.id, "job", j.id)), h("td", { text: j.name }), h("td", {}, badge(j.status)),
        h("td", { text: waitingOn(j.waitingOn) }), h("td", { text: j.attempt || "" }),
        h("td", { class: "hide-narrow", text: progress(j.progress) }), h("td", { text: fmtTime(j.createdAt) }),
        h("td", { class: "hide-narrow", text: fmtTime(j.finishedAt) })));
    }
    status.textContent = "Showing " + tbody.children.length +
      (f.status || f.name || f.labels ? "" : " of " + ((counts.unfinished || 0) + (counts.finished || 0)));
    more.hidden = !token;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await get(url.replace("countByStatus=true", "countByStatus=false") + "&continuationToken=" + encodeURIComponent(token));
      if (gen !== S.gen) return;
      token = page.continuationToken || "";
      addRows(page.jobs || []);
    } catch (e) { banner("Loading more failed: " + e.message); }
    more.disabled = false;
  });
  addRows(first.jobs || []);
  show(
    h("h2", { text: "Jobs" }),
    filterForm("jobs", f, [
      { name: "status", label: "Status", options: [["", "any"]].concat(JOB_STATUSES.map((s) => [s, s])) },
      { name: "name", label: "Name" },
      { name: "labels", label: "Labels (k=v,…)", placeholder: "team=vfx" },
      { name: "idPrefix", label: "Id starts with", size: 10 },
      { name: "from", label: "Submitted from", type: "datetime-local" },
      { name: "to", label: "Submitted before", type: "datetime-local" },
      { name: "sort", label: "Order", options: [["", "newest first"], ["oldest", "oldest first"]] },
    ]),
    h("p", { class: "muted", text: "Unfinished " + (counts.unfinished || 0) + " · finished " + (counts.finished || 0) }),
    h("div", { class: "table-wrap" }, h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ["Job", "Name", "Status", "Waiting on", "Attempt"].map((x) => h("th", { scope: "col", text: x })),
        h("th", { scope: "col", class: "hide-narrow", text: "Progress" }), h("th", { scope: "col", text: "Submitted" }),
        h("th", { scope: "col", class: "hide-narrow", text: "Finished" }))), tbody)),
    tbody.children.length ? null : h("p", { id: "empty", text: "No job matches." }),
    h("div", { class: "more" }, more, status));
}

// The job's timeline: waiting for quota, each attempt, each backoff.
function jobTimeline(events, job) {
  if (!events.length) return h("p", { class: "muted", text: "No events yet." });
  const t0 = Date.parse(events[0].time);
  const done = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  const t1 = Math.max(done, ...events.map((e) => Date.parse(e.time)));
  const rows = [];
  let queued = null, backoff = null;
  const attempts = new Map();
  for (const e of events) {
    if (e.type === "Submitted") queued = { start: e.time, end: null };
    if (e.type === "QuotaGranted" && queued && !queued.end) { queued.end = e.time; queued.ok = true; }
    if (e.type === "BackoffStarted") backoff = { start: e.time, end: null, cls: "wait" };
    if (e.type === "AttemptStarted") {
      if (backoff && !backoff.end) { backoff.end = e.time; rows.push({ label: "backoff", kind: "backoff", bars: [backoff] }); backoff = null; }
      const a = { start: e.time, end: null, attempt: e.attempt };
      attempts.set(e.attempt, a);
      rows.push({ label: "attempt " + e.attempt, kind: "attempt", bars: [a] });
    }
    if (e.type === "AttemptEnded") {
      const a = attempts.get(e.attempt);
      if (a) { a.end = e.time; a.ok = e.exitCode === 0 && !e.oomKilled && !e.error; a.title = "attempt " + e.attempt + ", exit " + e.exitCode; }
    }
  }
  if (queued) rows.unshift({ label: "waiting for quota", kind: "queue", bars: [Object.assign({ cls: "wait" }, queued, queued.end ? {} : { end: job.finishedAt || null })] });
  if (backoff) rows.push({ label: "backoff", kind: "backoff", bars: [backoff] });
  if (job.finishedAt) for (const row of rows) for (const b of row.bars) if (!b.end) b.end = job.finishedAt;
  return gantt(rows, t0, t1);
}

async function fetchAllLogs(id, attempt) {
  const lines = [];
  let after = 0;
  for (let i = 0; i < 200; i++) {
    const page = await get("/api/v1/jobs/" + encodeURIComponent(id) + "/logs?attempt=" + attempt + "&after=" + after);
    for (const l of page.lines || []) lines.push(l.time + " " + l.stream + " " + l.text);
    if (!page.lines || !page.lines.length) break;
    after = page.next;
  }
  return lines;
}

function sparkline(values) {
  if (!values || values.length < 2) return null;
  const max = Math.max(...values) || 1;
  const pts = values.map((v, i) => (i / (values.length - 1) * 100).toFixed(1) + "," + (30 - v / max * 28).toFixed(1)).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 30"); svg.setAttribute("class", "spark"); svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts);
  svg.append(line);
  return svg;
}

async function viewJob(r, gen) {
  const id = r.id;
  const load = async () => {
    const [job, ev] = await Promise.all([get("/api/v1/jobs/" + encodeURIComponent(id)), get("/api/v1/jobs/" + encodeURIComponent(id) + "/events")]);
    if (gen !== S.gen) return null;
    const spec = job.spec || {};
    const result = job.result || {};
    const attempts = Array.isArray(result.attemptResults) ? result.attemptResults : [];
    const evs = ev.events || [];
    // Per attempt: start and end from the timeline, outcome from the result.
    const started = new Map(), ended = new Map();
    for (const e of evs) {
      if (e.type === "AttemptStarted") started.set(e.attempt, e);
      if (e.type === "AttemptEnded") ended.set(e.attempt, e);
    }
    const attemptRows = [];
    for (let a = 1; a <= Math.max(job.attempt || 0, attempts.length); a++) {
      const s = started.get(a), e = ended.get(a), res = attempts[a - 1] || {};
      const dur = s && e ? Date.parse(e.time) - Date.parse(s.time) : s ? Date.now() - Date.parse(s.time) : null;
      const exit = res.exitCode !== undefined ? res.exitCode : e ? e.exitCode : "";
      const reason = res.oomKilled ? "OOM killed" : res.error || (e && e.error) || res.reported || "";
      attemptRows.push(h("tr", { "data-attempt": a }, h("td", { text: a }), h("td", { text: s ? fmtTime(s.time) : "" }),
        h("td", { text: e ? fmtDur(dur) : dur !== null ? "running " + fmtDur(dur) : "" }),
        h("td", { text: exit === null || exit === undefined ? "" : exit }), h("td", { text: reason })));
    }
    const envNames = Object.keys(spec.env || {}).concat(Object.keys(spec.secretEnv || {}).map((k) => k + " (secret)"));
    const labels = Object.entries(spec.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
    const finished = !!job.finishedAt;
    const buttons = [];
    if (!finished) {
      buttons.push(h("button", { type: "button", class: "danger", "data-action": "cancel", text: "Cancel job", onclick: async () => {
        if (!await confirmAction("Cancel job", "Cancel job " + id + "? Its container is stopped.", [], "Cancel job")) return;
        if (await act("Cancel", () => api("/api/v1/jobs/" + encodeURIComponent(id) + "/cancel", { method: "POST" }))) render();
      } }));
    } else if (job.spec) {
      buttons.push(h("button", { type: "button", "data-action": "resubmit", text: "Re-submit", onclick: async () => {
        if (!await confirmAction("Re-submit", "Submit a new job with this job's spec?", [], "Submit")) return;
        let answer = null;
        if (await act("Re-submit", async () => { answer = await api("/api/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec) }); })) {
          if (answer && answer.body && answer.body.id) go("job", answer.body.id);
        }
      } }));
    }
    if (job.attempt) {
      buttons.push(h("button", { type: "button", "data-action": "download-logs", text: "Download logs", onclick: async () => {
        try {
          let lines = [];
          for (let a = 1; a <= job.attempt; a++) lines = lines.concat(["# attempt " + a], await fetchAllLogs(id, a));
          const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/plain" }));
          const a = h("a", { href: url, download: "job-" + id + ".log" });
          document.body.append(a); a.click(); a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        } catch (e) { banner("Download failed: " + e.message); }
      } }));
    }
    let logText = "(no attempt yet)";
    if (job.attempt) {
      const page = await get("/api/v1/jobs/" + encodeURIComponent(id) + "/logs?attempt=" + job.attempt).catch(() => null);
      const lines = page && page.lines ? page.lines : [];
      logText = lines.length ? lines.slice(-200).map((l) => (l.stream === "stderr" ? "! " : "  ") + l.text).join("\n") : "(no output yet)";
    }
    const why = finished ? null : await whyChain("/api/v1/jobs/" + encodeURIComponent(id) + "/why");
    if (gen !== S.gen) return null;
    const stats = result.stats || job.stats;
    show(
      h("p", {}, link("← Jobs", "jobs")),
      h("h2", { id: "detail-title" }, id, " ", badge(job.status)),
      h("div", { class: "actions", role: "group", "aria-label": "Actions" }, buttons),
      facts([["Name", job.name], ["Status", job.status], ["Waiting on", waitingOn(job.waitingOn)],
             ["Expected start", job.eta ? job.eta.summary : ""],
             ["Image", spec.image || ""], ["Image digest", (job.image && job.image.digest) || (typeof job.image === "string" ? job.image : "")],
             ["CPU", spec.cpu !== undefined ? spec.cpu + " cores" : ""], ["Memory", spec.memoryMb !== undefined ? spec.memoryMb + " MB" : ""],
             ["Env (names)", envNames.join(", ")], ["Labels", labels], ["Priority", spec.priority],
             ["Restart policy", spec.restartPolicy ? JSON.stringify(spec.restartPolicy) : ""],
             ["Array", arrayFact(job, id)],
             ["Parent orchestration", job.parent && job.parent.instanceId ? link(job.parent.instanceId, "instance", job.parent.instanceId) : ""],
             ["Progress", progress(job.progress)], ["Submitted", fmtTime(job.createdAt)], ["Finished", fmtTime(job.finishedAt)],
             ["Exit code", result.exitCode], ["Error", result.error],
             ["CPU use", stats && stats.cpu ? sparkline(stats.cpu) : ""], ["Memory use", stats && stats.memoryMb ? sparkline(stats.memoryMb) : ""]]),
      why,
      h("h3", { text: "Timeline" }), jobTimeline(evs, job),
      h("h3", { text: "Attempts" }), table(["Attempt", "Started", "Duration", "Exit code", "Reason"], attemptRows, "attempts"),
      h("h3", { text: "Logs (latest attempt)" }), h("pre", { id: "logs", text: logText }),
      h("h3", { text: "Events" }), table(["Time", "Event", "Details"], evs.map((e) => {
        const rest = Object.assign({}, e); delete rest.time; delete rest.type;
        return h("tr", {}, h("td", { class: "t", text: fmtTime(e.time) }), h("td", { text: e.type }), h("td", { text: Object.keys(rest).length ? JSON.stringify(rest) : "" }));
      }), "events"));
    return job;
  };
  const job = await load();
  if (job && !job.finishedAt) every(3000, gen, load);
}

// ---- Entities ----

// One entity name's keys: state, lockedBy (linked to the orchestration
// holding the lock), last operation time, and Signal….
function entityRows(r, name, hub, rows) {
  if (!rows.length) return h("p", { id: "empty", text: "No entity named " + name + " has state." });
  // Signals an operation to one entity (one-way: its state shows the effect once processed).
  const signal = (key) => async () => {
    const v = await confirmAction("Signal operation", "Send an operation to @" + name + "@" + key + ".",
      [{ name: "op", label: "Operation", required: true }, { name: "input", label: "Input (JSON, empty = none)", type: "textarea" }], "Signal");
    if (!v) return;
    let body;
    if (v.input.trim()) { try { body = JSON.stringify(JSON.parse(v.input)); } catch (e) { banner("The input is not JSON: " + e.message); return; } }
    const url = DF + "/entities/" + encodeURIComponent(name) + "/" + encodeURIComponent(key) + "?op=" + encodeURIComponent(v.op) + hubQuery(r, "&");
    await act("Signal '" + v.op + "'", () => api(url, Object.assign({ method: "POST" }, body === undefined ? {} : { headers: { "Content-Type": "application/json" }, body })));
  };
  return table(["Key", "State", "Locked by", "Last operation", "Operations"], rows.map((e) => h("tr", { "data-key": e.entityId.key },
    h("td", { class: "id", text: e.entityId.key }), h("td", {}, h("pre", { text: json(e.state) })),
    h("td", {}, e.lockedBy ? link(e.lockedBy, "instance", e.lockedBy, hub ? { hub } : {}) : ""),
    h("td", { text: fmtTime(e.lastOperationTime) }),
    h("td", {}, h("button", { type: "button", "data-action": "signal", onclick: signal(e.entityId.key), text: "Signal…" })))), "entities");
}

async function viewEntities(r, gen) {
  const name = r.params.get("name") || "";
  const hub = hubParam(r);
  const form = filterForm("entities", { name, hub }, [{ name: "name", label: "Entity name" }].concat(
    S.who.admin ? [{ name: "hub", label: "Task hub (tenant)", size: 10 }] : []));
  if (name) {
    // States and locks change (a signal is processed after its answer): the
    // keys refresh every 3 s, below the form, which keeps its focus.
    const keys = h("div", { id: "entity-keys" });
    const load = async () => {
      const rows = await get(DF + "/entities/" + encodeURIComponent(name) + "?fetchState=true&top=200" + hubQuery(r, "&"));
      if (gen === S.gen) keys.replaceChildren(entityRows(r, name, hub, rows));
    };
    await load();
    if (gen !== S.gen) return;
    show(h("h2", { text: "Entities" }), form, keys);
    every(3000, gen, load);
    return;
  }
  // Every entity's row, through the instance list (entities are instances "@name@key").
  const q = new URLSearchParams({ top: "200", showEntities: "true", instanceIdPrefix: "@", sort: "id" });
  if (hub) q.set("taskHub", hub);
  const rows = (await get(DF + "/instances?" + q.toString())) || [];
  if (gen !== S.gen) return;
  const names = new Map();
  for (const s of rows) {
    const m = /^@([^@]*)@(.*)$/.exec(s.instanceId);
    if (m) names.set(m[1], (names.get(m[1]) || 0) + 1);
  }
  show(h("h2", { text: "Entities" }), form, names.size
    ? table(["Entity", "Instances"], [...names].map(([n, c]) => h("tr", {}, h("td", {}, link(n, "entities", "", Object.assign({ name: n }, hub ? { hub } : {}))), h("td", { text: c }))), "entities")
    : h("p", { id: "empty", text: "No entities." }));
}

// ---- Tenant and admin ----

function meter(used, limit) {
  if (!limit) return h("span", { text: String(used) + " (no limit)" });
  const pct = Math.min(100, used / limit * 100);
  const bar = h("span"); bar.style.width = pct.toFixed(1) + "%";
  return h("span", {}, used + " of " + limit, h("div", { class: "meter", role: "img", "aria-label": pct.toFixed(0) + "% used" }, bar));
}

function quotaCard(t) {
  const run = t.running || {};
  return facts([["Jobs running", meter(run.jobs || 0, t.jobs)], ["CPU in use", meter(run.cpu || 0, t.cpu)],
                ["Memory in use (MB)", meter(run.memoryMb || 0, t.memoryMb)], ["Queued jobs", t.queued],
                ["Fair-share weight", t.weight]]);
}

async function viewTenant(r, gen) {
  const load = async () => {
    const [t, failedJobs, failedInstances] = await Promise.all([
      get("/api/v1/tenant"),
      get("/api/v1/jobs?status=Failed&pageSize=10"),
      get(DF + "/instances?runtimeStatus=Failed&top=10"),
    ]);
    if (gen !== S.gen) return;
    const queue = (t.queue || []).map((e) => h("tr", { "data-job": e.job }, h("td", { text: e.position }), h("td", {}, link(e.job, "job", e.job)),
      h("td", { text: e.cpu }), h("td", { text: e.memoryMb }), h("td", { text: e.priority })));
    show(
      h("h2", { text: "Tenant " + t.tenant }),
      h("div", { class: "grid2" },
        h("section", { class: "card", "aria-labelledby": "quota-h" }, h("h3", { id: "quota-h", text: "Quota and use" }), quotaCard(t)),
        h("section", { class: "card", "aria-labelledby": "queue-h" }, h("h3", { id: "queue-h", text: "Queue (" + (t.queue || []).length + " of this tenant's jobs, " + t.queueLength + " in all)" }),
          queue.length ? table(["Position", "Job", "CPU", "Memory MB", "Priority"], queue, "queue") : h("p", { id: "queue-empty", class: "muted", text: "No job waits." }))),
      h("h3", { text: "Recent failures" }),
      table(["What", "Id", "Name", "When"], [].concat(
        (failedJobs.jobs || []).map((j) => h("tr", {}, h("td", { text: "job" }), h("td", {}, link(j.id, "job", j.id)), h("td", { text: j.name }), h("td", { text: fmtTime(j.finishedAt || j.createdAt) }))),
        (failedInstances || []).map((s) => h("tr", {}, h("td", { text: "orchestration" }), h("td", {}, link(s.instanceId, "instance", s.instanceId)), h("td", { text: s.name }), h("td", { text: fmtTime(s.lastUpdatedTime) })))), "failures"));
  };
  await load();
  every(3000, gen, load);
}

// An internal instance id ("acme::order-1") as a link to its instance view,
// in its tenant's hub.
function instanceLink(internal) {
  const at = internal.indexOf("::");
  if (at > 0 && internal[0] !== "@") return link(internal, "instance", internal.slice(at + 2), { hub: internal.slice(0, at) });
  return link(internal, "instance", internal);
}

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

function ago(iso) {
  if (!iso) return "";
  const ms = Date.now() - Date.parse(iso);
  return isNaN(ms) ? "" : " (" + fmtDur(Math.max(0, ms)) + " ago)";
}

// The nodes of the store: state, roles, version, heartbeat, leases held.
function nodesTable(answer) {
  const nodes = (answer && answer.nodes) || [];
  if (!nodes.length) return h("p", { class: "muted", text: "No node reports (this store lists none)." });
  const rows = nodes.map((n) => {
    const d = n.details || {};
    const l = n.leases || {};
    const held = [].concat((l.instanceIds || []).map((id) => h("li", {}, "instance ", instanceLink(id))),
                           (l.taskList || []).map((t) => h("li", {}, "task " + t.seq + " " + t.name + " of ", instanceLink(t.instanceId))));
    const more = (l.instances || 0) + (l.tasks || 0) - held.length;
    // The lists opened stay open across the view's refreshes.
    const which = held.length ? h("details", { open: S.openLeases.has(n.id) }, h("summary", { text: "which" }),
      h("ul", {}, held, more > 0 ? h("li", { class: "muted", text: "… and " + more + " more" }) : null)) : null;
    if (which) which.addEventListener("toggle", () => { if (which.open) S.openLeases.add(n.id); else S.openLeases.delete(n.id); });
    const leases = h("td", { class: "leases" }, plural(l.instances || 0, "instance") + ", " + plural(l.tasks || 0, "task"), which);
    const roles = (d.roles || []).join(", ") + (d.runtime ? " (runtime " + d.runtime + ")" : "");
    const where = [d.http ? "HTTP " + d.http : "", d.grpc ? "gRPC " + d.grpc : ""].filter(Boolean).join(", ");
    return h("tr", { "data-node": n.id, "data-state": n.state },
      h("td", { class: "id" }, n.id, n.thisNode ? h("div", { class: "muted", text: "(this node)" }) : null),
      h("td", {}, h("span", { class: "badge node-" + n.state, text: n.state })),
      h("td", {}, roles, where ? h("div", { class: "muted", text: where }) : null),
      h("td", { text: n.version || "" }),
      h("td", { class: "hide-narrow", text: fmtTime(n.startedAt) }),
      h("td", { text: n.heartbeatAt ? fmtTime(n.heartbeatAt) + ago(n.heartbeatAt) : "never" }),
      leases);
  });
  return table(["Node", "State", "Roles", "Version", { text: "Started", cls: "hide-narrow" }, "Last heartbeat", "Leases held"], rows, "nodes");
}

// SDK workers per hub across the nodes, and this node's streams.
function workersSection(answer) {
  if (!answer) return h("p", { class: "muted", text: "No answer about SDK workers." });
  const hubs = answer.hubs || [];
  const hubName = (x) => x ? x : "(default hub)";
  const perHub = hubs.length
    ? table(["Task hub", "Workers", "By node"], hubs.map((x) => h("tr", { "data-hub": x.hub },
        h("td", {}, x.hub ? link(x.hub, "instances", "", { hub: x.hub }) : hubName(x.hub)), h("td", { text: x.workers }),
        h("td", { text: Object.entries(x.byNode || {}).map(([n, c]) => n + ": " + c).join(", ") }))), "workers")
    : h("p", { id: "no-workers", class: "muted", text: answer.grpc ? "No SDK worker is connected." : "The gRPC sidecar is off on this node." });
  const streams = answer.streams || [];
  return h("div", {}, perHub,
    streams.length ? h("div", {}, h("h4", { text: "Streams on this node (" + answer.thisNode + ")" }),
      table(["Stream", "Task hub", "Connected", "Peer", "In flight (orch/act/ent)"], streams.map((w) => h("tr", { "data-stream": w.stream },
        h("td", { text: w.stream }), h("td", { text: hubName(w.hub) }), h("td", { text: fmtTime(w.connectedAt) + ago(w.connectedAt) }),
        h("td", { class: "id", text: w.peer }),
        h("td", { text: [w.inFlight.orchestrations, w.inFlight.activities, w.inFlight.entities].join(" / ") }))), "streams")) : null,
    h("p", { class: "muted", text: "Each node counts its own streams and publishes the counts with its heartbeat (every " +
      "few seconds); the streams listed are those of the node that answered." }));
}

async function viewAdmin(r, gen) {
  const load = async () => {
    const [tenants, sched, nodes, workers] = await Promise.all([get("/api/v1/admin/tenants"), get("/api/v1/admin/scheduler"),
      get("/api/v1/admin/nodes"), get("/api/v1/admin/workers")]);
    if (gen !== S.gen) return;
    const per = (sched && sched.tenants) || {};
    const queue = (sched && sched.queue) || [];
    const cap = (sched && sched.capacity) || {};
    const rows = tenants.map((t) => {
      const s = per[t.id] || {};
      const q = s.quota || {}, u = s.used || {};
      const queued = queue.filter((e) => e.tenant === t.id).length;
      return h("tr", { "data-tenant": t.id }, h("td", {}, link(t.id, "instances", "", { hub: t.id })), h("td", { text: t.displayName }),
        h("td", { text: t.disabled ? "disabled" : "active" }), h("td", { text: (u.jobs || 0) + " / " + (q.jobs || "∞") }),
        h("td", { text: (u.cpu || 0) + " / " + (q.cpu || "∞") }), h("td", { text: (u.memoryMb || 0) + " / " + (q.memoryMb || "∞") }),
        h("td", { text: queued }), h("td", { text: s.weight !== undefined ? s.weight : 1 }));
    });
    show(
      h("h2", { text: "Admin" }),
      h("section", { class: "card" }, h("h3", { text: "Capacity" }),
        facts([["CPU", cap.cpu], ["Memory (MB)", cap.memoryMb], ["Largest node", cap.largestNode ? JSON.stringify(cap.largestNode) : ""],
               ["Queued jobs", queue.length]])),
      h("h3", { id: "nodes-h", text: "Nodes" }), nodesTable(nodes),
      h("h3", { id: "workers-h", text: "Connected SDK workers" }), workersSection(workers),
      h("h3", { text: "Tenants" }),
      table(["Tenant", "Name", "State", "Jobs running / quota", "CPU", "Memory MB", "Queued", "Weight"], rows, "tenants"),
      h("h3", { text: "Queue" }),
      queue.length ? table(["Position", "Tenant", "Job", "CPU", "Memory MB"], queue.map((e, i) => h("tr", {}, h("td", { text: i + 1 }),
        h("td", { text: e.tenant }), h("td", { class: "id", text: e.job }), h("td", { text: e.cpu }), h("td", { text: e.memoryMb })))) : h("p", { class: "muted", text: "No job waits." }));
  };
  await load();
  every(3000, gen, load);
}

// ---- Start ----

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = key();
  $("tz").value = tz();
  $("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    localStorage.setItem("baton.key", $("key").value.trim());
    S.who = null;
    banner("");
    await whoAmI();
    render();
  });
  $("tz").addEventListener("change", () => { localStorage.setItem("baton.tz", $("tz").value); render(); });
  window.addEventListener("hashchange", () => { banner(""); render(); });
  render();
});

#include "api/http/dashboard.h"

#include <string>
#include <string_view>

namespace baton::api {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baton</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Baton</h1>
  <span id="conn" class="dot" title="connection"></span><span id="conn-text">connecting…</span>
  <form id="key-form">
    <label>API key <input id="key" type="password" autocomplete="off" placeholder="bk_…" size="34"></label>
    <button type="submit">Use key</button>
  </form>
</header>
<nav>
  <button data-tab="jobs" class="tab active">Jobs</button>
  <button data-tab="instances" class="tab">Orchestrations</button>
  <label>Status <select id="status-filter"><option value="">any</option></select></label>
</nav>
<div id="banner" hidden></div>
<main>
  <section id="list">
    <table id="jobs"><thead><tr><th>Job</th><th>Name</th><th>Status</th><th>Waiting on</th><th>Attempt</th><th>Progress</th><th>Submitted</th><th>Finished</th></tr></thead><tbody></tbody></table>
    <table id="instances" hidden><thead><tr><th>Instance</th><th>Name</th><th>Status</th><th>Created</th><th>Updated</th></tr></thead><tbody></tbody></table>
    <p id="empty" hidden>Nothing yet.</p>
  </section>
  <section id="detail" hidden>
    <div class="detail-head"><h2 id="detail-title"></h2><button id="cancel" hidden>Cancel job</button><button id="close">Close</button></div>
    <dl id="facts"></dl>
    <h3>Timeline</h3><ol id="timeline"></ol>
    <h3 id="logs-title">Logs</h3><pre id="logs"></pre>
    <h3>Raw</h3><pre id="raw"></pre>
  </section>
</main>
</body>
</html>
)html";

constexpr std::string_view kCss = R"css(
:root { --ok:#1a7f37; --bad:#cf222e; --wait:#9a6700; --run:#0969da; --muted:#57606a; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1f2328; }
header { display:flex; align-items:center; gap:.6em; padding:.6em 1em; background:#f6f8fa; border-bottom:1px solid #d0d7de; }
header h1 { font-size:1.2em; margin:0 1em 0 0; }
header form { margin-left:auto; }
.dot { width:.7em; height:.7em; border-radius:50%; background:var(--muted); display:inline-block; }
.dot.up { background:var(--ok); } .dot.down { background:var(--bad); }
nav { display:flex; gap:.5em; align-items:center; padding:.5em 1em; }
nav label { margin-left:auto; }
.tab { border:1px solid #d0d7de; background:#fff; padding:.3em .8em; border-radius:6px; cursor:pointer; }
.tab.active { background:#0969da; color:#fff; border-color:#0969da; }
#banner { margin:0 1em; padding:.5em .8em; border-radius:6px; background:#fff8c5; border:1px solid #d4a72c; }
main { display:flex; gap:1em; padding:0 1em 1em; align-items:flex-start; }
#list { flex: 3; overflow-x:auto; }
#detail { flex: 2; border:1px solid #d0d7de; border-radius:6px; padding:.6em 1em; min-width: 22em; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:.35em .6em; border-bottom:1px solid #eaeef2; white-space:nowrap; }
tbody tr { cursor:pointer; } tbody tr:hover { background:#f6f8fa; } tbody tr.selected { background:#ddf4ff; }
.badge { padding:.1em .5em; border-radius:1em; font-size:.85em; color:#fff; background:var(--muted); }
.badge.Completed { background:var(--ok); } .badge.Failed, .badge.Terminated, .badge.Canceled { background:var(--bad); }
.badge.Running, .badge.Starting { background:var(--run); } .badge.Queued, .badge.Pending, .badge.BackingOff, .badge.Suspended { background:var(--wait); }
.detail-head { display:flex; align-items:center; gap:.5em; } .detail-head h2 { font-size:1.05em; margin:0; flex:1; word-break:break-all; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:.2em .8em; } dt { color:var(--muted); } dd { margin:0; word-break:break-all; }
pre { background:#f6f8fa; padding:.5em; max-height:22em; overflow:auto; font-size:12px; white-space:pre-wrap; word-break:break-all; }
#timeline { padding-left:1.4em; font-size:.95em; } #timeline li { word-break:break-all; } .muted { color:var(--muted); }
.stderr { color: var(--bad); }
)css";

// Plain browser JavaScript, no dependencies. Reads the API with the key the
// user gave; keeps retrying while the server is unreachable.
constexpr std::string_view kScript = R"js("use strict";
const JOB_STATUSES = ["Pending", "Queued", "Starting", "Running", "BackingOff", "Completed", "Failed", "Canceled"];
const INSTANCE_STATUSES = ["Pending", "Running", "Completed", "Failed", "Terminated", "Suspended", "ContinuedAsNew"];
const DF = "/runtime/webhooks/durabletask";
const state = { tab: "jobs", selected: null, logs: { id: null, attempt: 0, next: 0, text: [] }, timer: null };
const $ = (id) => document.getElementById(id);

function key() { return localStorage.getItem("baton.key") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + key() }, options.headers || {});
  let res;
  try {
    res = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  } catch (e) {
    connection(false, "Baton is unreachable: retrying every 2 s");
    throw e;
  }
  connection(true);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!res.ok && res.status !== 202) {
    const message = body && body.error ? body.error.message : (typeof body === "string" ? body : res.statusText);
    const err = new Error(res.status + ": " + message);
    err.status = res.status;
    throw err;
  }
  return body;
}

function connection(up, why) {
  $("conn").className = "dot " + (up ? "up" : "down");
  $("conn-text").textContent = up ? "connected" : "unreachable";
  if (!up) banner(why); else if ($("banner").dataset.kind === "conn") banner("");
  if (!up) $("banner").dataset.kind = "conn";
}

function banner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
  $("banner").dataset.kind = "";
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) { const b = document.createElement("span"); b.className = cls; b.textContent = text; td.appendChild(b); }
  else td.textContent = text == null ? "" : String(text);
  return td;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function waitingOn(w) {
  if (!w) return "";
  if (w.reason === "quota") return "quota (#" + w.position + " in queue)";
  if (w.reason === "backoff") return "backoff until " + when(w.retryAt);
  if (w.reason === "imagePull") return "image pull";
  if (w.reason === "runtime" || w.reason === "registry") {
    return (w.reason === "runtime" ? "dockerd" : "registry") + " unreachable, next try " + when(w.retryAt);
  }
  return w.reason;
}

function progress(p) {
  if (!p) return "";
  if (typeof p === "object" && "step" in p && "of" in p) return p.step + " / " + p.of;
  return typeof p === "string" ? p : JSON.stringify(p);
}

function fillStatuses() {
  const select = $("status-filter");
  const keep = select.value;
  select.innerHTML = '<option value="">any</option>';
  for (const s of state.tab === "jobs" ? JOB_STATUSES : INSTANCE_STATUSES) {
    const o = document.createElement("option"); o.value = s; o.textContent = s; select.appendChild(o);
  }
  select.value = keep;
}

async function refreshList() {
  if (!key()) { banner("Enter an API key (baton key create --tenant …) to see your jobs and orchestrations."); return; }
  const status = $("status-filter").value;
  const jobs = state.tab === "jobs";
  $("jobs").hidden = !jobs; $("instances").hidden = jobs;
  const tbody = document.querySelector((jobs ? "#jobs" : "#instances") + " tbody");
  let rows;
  try {
    if (jobs) {
      // Ids are time-ordered: read on to the newest (bounded), show newest first.
      rows = [];
      let token = "";
      for (let pages = 0; pages < 5; pages++) {
        const page = await api("/api/v1/jobs?pageSize=500" + (status ? "&status=" + status : "") +
                               (token ? "&continuationToken=" + encodeURIComponent(token) : ""));
        rows = rows.concat(page.jobs || []).slice(-100);
        token = page.continuationToken;
        if (!token) break;
      }
      rows.reverse();
    } else {
      rows = await api(DF + "/instances?top=100" + (status ? "&runtimeStatus=" + status : ""));
      rows = Array.isArray(rows) ? rows : [];
      rows.sort((a, b) => String(b.createdTime).localeCompare(String(a.createdTime)));
    }
  } catch (e) {
    if (e.status === 401 || e.status === 403) banner("This key was refused (" + e.message + ").");
    return;
  }
  if ($("banner").dataset.kind !== "conn" && !$("banner").hidden && key()) banner("");
  tbody.innerHTML = "";
  for (const r of rows) {
    const tr = document.createElement("tr");
    const id = jobs ? r.id : r.instanceId;
    if (id === state.selected) tr.className = "selected";
    if (jobs) {
      const result = r.result || {};
      tr.append(cell(r.id), cell(r.name), cell(r.status, "badge " + r.status), cell(waitingOn(r.waitingOn)),
                cell(r.attempt || ""), cell(progress(r.progress)), cell(when(r.createdAt)), cell(when(r.finishedAt)));
      if (result.exitCode !== undefined) tr.title = "exit code " + result.exitCode;
    } else {
      tr.append(cell(r.instanceId), cell(r.name), cell(r.runtimeStatus, "badge " + r.runtimeStatus),
                cell(when(r.createdTime)), cell(when(r.lastUpdatedTime)));
    }
    tr.addEventListener("click", () => select(id));
    tbody.appendChild(tr);
  }
  $("empty").hidden = rows.length > 0;
}

function facts(pairs) {
  const dl = $("facts"); dl.innerHTML = "";
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    dl.append(dt, dd);
  }
}

function timeline(items) {
  const ol = $("timeline"); ol.innerHTML = "";
  // A run of progress reports shows as its last one, with how many there were.
  const shown = [];
  for (const e of items) {
    const last = shown[shown.length - 1];
    if (e.type === "Progress" && last && last.type === "Progress") {
      const reports = (last.reports || 1) + 1;
      shown[shown.length - 1] = Object.assign({}, e, { reports });
    } else {
      shown.push(e);
    }
  }
  for (const e of shown) {
    const li = document.createElement("li");
    const rest = Object.assign({}, e); delete rest.time; delete rest.type;
    li.innerHTML = "<span class=muted></span> <b></b> <span></span>";
    li.children[0].textContent = when(e.time);
    li.children[1].textContent = e.type || e.EventType || "";
    li.children[2].textContent = Object.keys(rest).length ? JSON.stringify(rest) : "";
    ol.appendChild(li);
  }
}

async function refreshDetail() {
  const id = state.selected;
  if (!id) return;
  $("detail").hidden = false;
  $("detail-title").textContent = id;
  try {
    if (state.tab === "jobs") {
      const job = await api("/api/v1/jobs/" + encodeURIComponent(id));
      const result = job.result || {};
      facts([["Status", job.status], ["Waiting on", waitingOn(job.waitingOn)], ["Attempt", job.attempt],
             ["Progress", progress(job.progress)], ["Image", job.image], ["Exit code", result.exitCode],
             ["OOM killed", result.oomKilled ? "yes" : ""], ["Error", result.error],
             ["Submitted", when(job.createdAt)], ["Finished", when(job.finishedAt)]]);
      $("cancel").hidden = !!job.finishedAt;
      timeline((await api("/api/v1/jobs/" + encodeURIComponent(id) + "/events")).events || []);
      await refreshLogs(id, job.attempt);
      $("raw").textContent = JSON.stringify(job, null, 2);
      $("logs-title").hidden = $("logs").hidden = false;
    } else {
      const s = await api(DF + "/instances/" + encodeURIComponent(id) + "?showHistory=true&showInput=true");
      facts([["Name", s.name], ["Status", s.runtimeStatus], ["Custom status", s.customStatus], ["Output", s.output],
             ["Created", when(s.createdTime)], ["Updated", when(s.lastUpdatedTime)]]);
      $("cancel").hidden = true;
      timeline((s.historyEvents || []).map((e) => {
        const rest = Object.assign({}, e);
        delete rest.Timestamp; delete rest.EventType;
        if (rest.EventId === -1) delete rest.EventId;
        return Object.assign({ time: e.Timestamp, type: e.EventType }, rest);
      }));
      $("logs-title").hidden = $("logs").hidden = true;
      $("raw").textContent = JSON.stringify(s, null, 2);
    }
  } catch (e) {
    if (e.status === 404) { state.selected = null; $("detail").hidden = true; }
  }
}

async function refreshLogs(id, attempt) {
  const l = state.logs;
  if (l.id !== id || l.attempt !== attempt) Object.assign(l, { id, attempt, next: 0, text: [] });
  if (!attempt) { $("logs").textContent = "(no attempt yet)"; return; }
  const page = await api("/api/v1/jobs/" + encodeURIComponent(id) + "/logs?attempt=" + attempt + "&after=" + l.next);
  for (const line of page.lines || []) l.text.push((line.stream === "stderr" ? "! " : "  ") + line.text);
  l.next = page.next || l.next;
  if (l.text.length > 2000) l.text.splice(0, l.text.length - 2000);
  const pre = $("logs");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = l.text.length ? l.text.join("\n") : "(no output yet)";
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function select(id) {
  state.selected = id;
  refreshDetail();
  refreshList();
}

async function tick() {
  try { await refreshList(); await refreshDetail(); } catch (e) { /* shown in the banner */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = key();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("baton.key", $("key").value.trim());
    banner("");
    tick();
  });
  for (const b of document.querySelectorAll(".tab")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll(".tab")) o.classList.toggle("active", o === b);
      state.tab = b.dataset.tab; state.selected = null; $("detail").hidden = true;
      fillStatuses(); tick();
    });
  }
  $("status-filter").addEventListener("change", tick);
  $("close").addEventListener("click", () => { state.selected = null; $("detail").hidden = true; tick(); });
  $("cancel").addEventListener("click", async () => {
    if (!state.selected || !confirm("Cancel job " + state.selected + "?")) return;
    try { await api("/api/v1/jobs/" + encodeURIComponent(state.selected) + "/cancel", { method: "POST" }); }
    catch (e) { banner("Cancel failed: " + e.message); }
    tick();
  });
  fillStatuses();
  tick();
  state.timer = setInterval(tick, 2000);
});
)js";

HttpResponse Static(std::string_view body, const char* type) {
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, type);
  res.set(http::field::server, "baton");
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
          "form-action 'none'; frame-ancestors 'none'");
  res.body() = std::string(body);
  return res;
}

}  // namespace

void AddDashboard(Router& router) {
  router.Add(http::verb::get, "/dashboard",
             [](const HttpRequest&, const RouteMatch&) { return Static(kPage, "text/html; charset=utf-8"); });
  router.Add(http::verb::get, "/dashboard.js", [](const HttpRequest&, const RouteMatch&) {
    return Static(kScript, "text/javascript; charset=utf-8");
  });
  router.Add(http::verb::get, "/dashboard.css",
             [](const HttpRequest&, const RouteMatch&) { return Static(kCss, "text/css; charset=utf-8"); });
  router.Add(http::verb::get, "/favicon.ico", [](const HttpRequest&, const RouteMatch&) {
    HttpResponse res{http::status::no_content, 11};
    res.set(http::field::server, "baton");
    return res;
  });
  router.Add(http::verb::get, "/", [](const HttpRequest&, const RouteMatch&) {
    HttpResponse res{http::status::found, 11};
    res.set(http::field::location, "/dashboard");
    res.set(http::field::server, "baton");
    return res;
  });
}

}  // namespace baton::api

// What the dashboard's browser tests share (dashboard.test.js, nodes.test.js):
// calls to the API, waits for a state (never for a time), a page of headless
// Chromium with a key, and the views' readiness signal.
"use strict";
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");
const { chromium } = require("playwright-core");

const SHOTS = process.env.BATON_SCREENSHOTS || "";
const WAIT_MS = 120000;  // a bound for a state to be reached, not a timing

function base() { return `http://${process.env.BATON_HTTP}`; }

async function call(key, method, url, body, headers = {}, at = base()) {
  const res = await fetch(at + url, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + key }, body === undefined ? {} : { "Content-Type": "application/json" }, headers),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = text; }
  return { status: res.status, body: json, headers: res.headers };
}

async function until(what, predicate, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await predicate();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`never reached: ${what}`);
}

async function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
}

// A page with `key` in its storage and UTC times. A script error or a
// refused resource (CSP) fails the test at close().
async function page(browser, key, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript((k) => { localStorage.setItem("baton.key", k); localStorage.setItem("baton.tz", "utc"); }, key);
  const p = await context.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(String(e)));
  p.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
  p.close = async () => { await context.close(); assert.deepEqual(errors, [], "errors in the page"); };
  return p;
}

async function shot(p, name, fullPage = true) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage });
}

// Opens `hash` and waits until its view is on screen (the dashboard sets
// #view's data-shown to the hash it rendered, once its data is in).
async function open(p, hash, at = base()) {
  await p.goto(at + "/dashboard" + hash);
  await p.waitForFunction(() => document.getElementById("view").dataset.shown === location.hash);
}

module.exports = { call, until, launch, page, shot, open, base };

// The pushworker console: a page per hash route, redrawn from the JSON API
// every 2 s. Every value goes into the page as text, never as markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const view = document.getElementById("view");
const message = document.getElementById("message");

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") el.addEventListener("click", v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

let requestMs = 0; // the last GET's time, request to its JSON read

async function get(path) {
  const t0 = performance.now();
  const r = await fetch(path, { credentials: "same-origin" });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  requestMs = performance.now() - t0;
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function post(path, form) {
  const r = await fetch(path, { method: "POST", credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form || {}) });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function say(text, isError) {
  message.textContent = text;
  message.className = isError ? "error" : "";
}

async function act(path, form) {
  say("working…");
  try {
    const r = await post(path, form);
    say(r.message || "done");
  } catch (e) {
    say(e.message, true);
  }
  refresh();
}

const fmt = (n) => Number(n || 0).toLocaleString("en-US");
const ago = (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");

function duration(s) {
  if (!s || !isFinite(s)) return "—";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

// Pages.

async function overview() {
  const o = await get("/api/overview");
  const st = o.status;
  const rate = Math.max(0, ...o.workers.map((w) => w.rateLimit));
  const throttled = o.workers.reduce((a, w) => a + w.throttled, 0);
  return [
    h("section", {},
      h("h2", {}, "Overview"),
      h("div", { class: "figures" },
        h("div", {}, h("span", {}, "workers ready"), h("b", { id: "ready" }, o.workers.filter((w) => w.ready).length + " of " + o.workers.length)),
        h("div", {}, h("span", {}, "rate in force (calls/s)"), h("b", {}, fmt(rate))),
        h("div", {}, h("span", {}, "throttled answers"), h("b", {}, fmt(throttled))),
        h("div", {}, h("span", {}, "dead letters"), h("b", {}, h("a", { href: "#/dlq" }, fmt(st.deadLetters)))),
        h("div", {}, h("span", {}, "results kept"), h("b", {}, fmt(st.results))))),
    h("section", {},
      h("h2", {}, "Lanes"),
      h("table", { id: "lanes" },
        h("tr", {}, ["lane", "consumer", "waiting", "in flight", "redelivered", "orphaned"].map((c) => h("th", {}, c))),
        st.lanes.map((l) => h("tr", {}, h("td", {}, l.lane), h("td", {}, l.consumer), h("td", { class: "num" }, fmt(l.waiting)),
          h("td", { class: "num" }, fmt(l.inFlight)), h("td", { class: "num" }, fmt(l.redelivered)), h("td", { class: "num" }, fmt(l.orphans)))))),
    h("section", {},
      h("h2", {}, "Workers"),
      o.workers.length === 0 ? h("p", { class: "muted" }, "No worker answered.") :
      h("table", { id: "workers" },
        h("tr", {}, ["worker", "state", "jobs in hand (events / bulk)", "calls in flight", "rate (calls/s)", "throttled", "version", "started"].map((c) => h("th", {}, c))),
        o.workers.map((w) => h("tr", {},
          h("td", {}, w.worker),
          h("td", {}, w.ready ? h("span", { class: "badge ok" }, "ready") :
            w.paused.map((p) => h("div", {}, h("span", { class: "badge paused" }, "paused: " + p.cause), " ", h("span", { class: "muted" }, p.error)))),
          h("td", { class: "num" }, fmt(w.jobsInHand.default) + " / " + fmt(w.jobsInHand.bulk)),
          h("td", { class: "num" }, fmt(w.callsInFlight)),
          h("td", { class: "num" }, fmt(w.rateLimit)),
          h("td", { class: "num" }, fmt(w.throttled)),
          h("td", {}, w.version),
          h("td", {}, ago(w.started)))))),
    h("section", {},
      h("h2", {}, "Credentials"),
      (o.credentials || []).length === 0 ? h("p", { class: "muted" }, "No worker reported an AccessKey.") :
      h("table", { id: "credentials" },
        h("tr", {}, ["AccessKey", "rate in force (calls/s)", "calls", "throttled", "workers"].map((c) => h("th", {}, c))),
        o.credentials.map((c) => h("tr", {},
          h("td", {}, c.credential),
          h("td", { class: "num" }, fmt(c.rateLimit)),
          h("td", { class: "num" }, fmt(c.calls)),
          h("td", { class: "num" }, fmt(c.throttled)),
          h("td", { class: "num" }, fmt(c.workers)))))),
  ];
}

function chart(samples) {
  const el = svg("svg", { class: "chart", viewBox: "0 0 600 80", preserveAspectRatio: "none" });
  const pts = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (new Date(samples[i].at) - new Date(samples[i - 1].at)) / 1000;
    pts.push({ t: new Date(samples[i].at), v: dt > 0 ? Math.max(0, (samples[i].targets - samples[i - 1].targets) / dt) : 0 });
  }
  if (pts.length < 2) {
    return h("div", { class: "muted" }, "targets per second: collecting…");
  }
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t, max = Math.max(1, ...pts.map((p) => p.v));
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * 590 + 5;
  const y = (v) => 75 - (v / max) * 65;
  el.append(svg("polyline", { points: pts.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ") }));
  return h("div", {}, h("div", { class: "muted" }, "targets per second over the last " + duration((t1 - t0) / 1000) + " (peak " + fmt(Math.round(max)) + ")"), el);
}

function campaignCard(c) {
  let state = c.state.state || "running";
  if (state === "running" && c.jobs > 0 && c.done === c.jobs) state = "done";
  const done = c.jobs ? c.done / c.jobs : 0;
  const per = c.done ? c.totals.targets / c.done : 0;
  const published = Math.round(c.totals.targets + per * (c.queued + c.inFlight + c.parked));
  const fill = h("div", { class: "fill" });
  fill.style.width = (100 * done).toFixed(1) + "%";
  const failedBy = Object.entries(c.totals.failedBy || {});
  const name = encodeURIComponent(c.campaign);
  const pace = h("input", { class: "pace", type: "number", min: "0", step: "any", placeholder: "targets/s", "aria-label": "pace" });
  return h("section", { class: "campaign", "data-campaign": c.campaign },
    h("h2", {}, c.campaign, " ", h("span", { class: "badge " + state, "data-field": "state" }, state),
      c.state.targetsPerSecond ? h("span", { class: "badge" }, "paced at " + fmt(c.state.targetsPerSecond) + "/s") : null),
    h("div", { class: "bar" }, fill),
    h("div", { class: "progress-text", "data-field": "progress" },
      fmt(c.totals.targets) + " of about " + fmt(published) + " targets done (" + fmt(c.done) + " of " + fmt(c.jobs) + " jobs)"),
    h("div", { class: "figures" },
      h("div", {}, h("span", {}, "sent"), h("b", { "data-field": "sent" }, fmt(c.totals.sent))),
      h("div", {}, h("span", {}, "duplicates"), h("b", {}, fmt(c.totals.duplicates))),
      h("div", {}, h("span", {}, "failed"), h("b", { "data-field": "failed" }, fmt(c.totals.failed))),
      h("div", {}, h("span", {}, "queued / in flight / parked"), h("b", {}, fmt(c.queued) + " / " + fmt(c.inFlight) + " / " + fmt(c.parked))),
      h("div", {}, h("span", {}, "targets per second"), h("b", { "data-field": "rate" }, fmt(Math.round(c.targetsPerSecond)))),
      h("div", {}, h("span", {}, "time left"), h("b", {}, duration(c.secondsLeft)))),
    failedBy.length ? h("table", { class: "failed-by" }, h("tr", {}, h("th", {}, "failed: mPaaS code"), h("th", { class: "num" }, "targets")),
      failedBy.map(([code, n]) => h("tr", {}, h("td", {}, code), h("td", { class: "num" }, fmt(n))))) : null,
    chart(c.samples),
    c.hasState && c.state.updatedAt ? h("div", { class: "muted", "data-field": "change" },
      "last change: " + c.state.state + " " + ago(c.state.updatedAt) + (c.state.actor ? " by " + c.state.actor : "") +
      (c.state.reason ? " (" + c.state.reason + ")" : "")) : null,
    reportSection(c, name),
    h("div", { class: "actions" }, (c.actions || []).map((a) => controls[a](c, name, pace))));
}

// reports are the delivery reports fetched, by campaign: fetched on a click
// only (each is mPaaS calls under the shared limit), kept across redraws.
const reports = {};

async function fetchReport(c, name) {
  reports[c.campaign] = { loading: true };
  refresh();
  try {
    reports[c.campaign] = { report: await get("/api/campaigns/" + name + "/report") };
  } catch (e) {
    reports[c.campaign] = { error: e.message };
  }
  refresh();
}

const pct = (r) => (100 * r).toFixed(1) + "%";
const rate = (n, of) => (of > 0 ? n / of : 0);

function reportSection(c, name) {
  const st = reports[c.campaign] || {};
  const button = h("button", { "data-action": "report", onclick: () => fetchReport(c, name) }, st.report ? "Fetch again" : "Delivery report");
  let body = h("span", { class: "muted" }, "what mPaaS counted of its pushes (pushed, arrived, opened), fetched by a worker");
  if (st.loading) body = h("span", { class: "muted" }, "fetching…");
  if (st.error) body = h("span", { class: "error-text" }, st.error);
  const r = st.report;
  if (r) {
    const when = "fetched " + ago(r.fetchedAt) + (r.cached ? " (kept since the campaign finished)" : "");
    body = !r.ready ? h("span", {}, h("b", { "data-field": "report-state" }, "not ready yet"), ": mPaaS has no figures for its pushes so far; " + when) :
      h("div", {},
        h("div", { class: "figures" },
          h("div", {}, h("span", {}, "pushed"), h("b", { "data-field": "pushed" }, fmt(r.total.pushed))),
          h("div", {}, h("span", {}, "arrived"), h("b", { "data-field": "arrived" }, fmt(r.total.arrived) + " (" + pct(rate(r.total.arrived, r.total.pushed)) + ")")),
          h("div", {}, h("span", {}, "opened"), h("b", { "data-field": "opened" }, fmt(r.total.opened) + " (" + pct(rate(r.total.opened, r.total.pushed)) + ")"))),
        h("div", { class: "muted", "data-field": "report-state" }, when +
          (r.taskIds ? "; push tasks: " + r.tasksCounted + " of " + r.taskIds + " counted, summed" : "") +
          (r.windows || []).map((w) => "; " + w.type + " pushes of " + w.appId + ": the app's figures from " + ago(w.from) + " to " + ago(w.to) + " (other " + w.type + " pushes meanwhile included)").join("")));
  }
  return h("div", { class: "report", "data-field": "report" }, h("h3", {}, "Delivery report ", button), body);
}

// controls are the buttons a campaign offers; the server says which apply to its state.
const controls = {
  pause: (c, name) => h("button", { "data-action": "pause", onclick: () => act("/api/campaigns/" + name + "/pause") }, "Pause"),
  resume: (c, name) => h("button", { "data-action": "resume", onclick: () => act("/api/campaigns/" + name + "/resume") }, "Resume"),
  pace: (c, name, pace) => h("span", { class: "pace-control" }, pace,
    h("button", { "data-action": "pace", onclick: () => act("/api/campaigns/" + name + "/pace", { targetsPerSecond: pace.value || "0" }) }, "Pace")),
  cancel: (c, name) => h("button", { class: "danger", "data-action": "cancel", onclick: () => confirm("Cancel " + c.campaign + "? Nothing more of it is sent.") && act("/api/campaigns/" + name + "/cancel") }, "Cancel"),
  revoke: (c, name) => h("button", { class: "danger", "data-action": "revoke", onclick: () => confirm("Revoke what " + c.campaign + " sent?") && act("/api/campaigns/" + name + "/revoke") }, "Revoke"),
};

async function campaigns() {
  const list = await get("/api/campaigns");
  return [h("h2", {}, "Campaigns"),
    list.length === 0 ? h("p", { class: "muted" }, "No campaign yet: one appears once its jobs are queued.") : list.map(campaignCard)];
}

// The dead-letter page reads one page (newest first) a refresh, never the
// whole stream: the filter and the cursors of the pages seen stay here.
const dlq = { campaign: "", reason: "", error: "", cursors: [] };

function dlqQuery() {
  const q = new URLSearchParams({ limit: "50" });
  for (const k of ["campaign", "reason", "error"]) if (dlq[k]) q.set(k, dlq[k]);
  const before = dlq.cursors[dlq.cursors.length - 1];
  if (before) q.set("before", String(before));
  return q;
}

async function deadLetters() {
  const page = await get("/api/dlq?" + dlqQuery());
  const input = (k, placeholder) => {
    const el = h("input", { name: k, placeholder: placeholder, "aria-label": placeholder });
    el.value = dlq[k];
    return el;
  };
  const form = h("form", { id: "dlqfilter", class: "actions" },
    input("campaign", "campaign"), input("reason", "reason"), input("error", "error contains"),
    h("button", {}, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    for (const k of ["campaign", "reason", "error"]) dlq[k] = form.elements[k].value.trim();
    dlq.cursors = [];
    document.activeElement.blur();
    refresh();
  });
  const filtered = dlq.campaign || dlq.reason || dlq.error;
  const purge = new URLSearchParams();
  for (const k of ["campaign", "reason", "error"]) if (dlq[k]) purge.set(k, dlq[k]);
  const list = page.letters;
  return h("section", {}, h("h2", {}, "Dead letters (" + fmt(page.total) + " kept)"),
    form,
    list.length === 0 ? h("p", { class: "muted" }, "None" + (filtered ? " that match." : ".")) :
    h("table", { id: "dlq" },
      h("tr", {}, ["job", "reason", "error", "targets", "deliveries", "at", ""].map((c) => h("th", {}, c))),
      list.map((d) => h("tr", { "data-seq": d.seq },
        h("td", { "data-label": "job" }, h("a", { class: "letter", href: "#/dlq/" + d.seq }, d.jobId || "seq " + d.seq)),
        h("td", { "data-label": "reason" }, h("span", { class: "badge bad" }, d.reason)), h("td", { "data-label": "error" }, d.error),
        h("td", { class: "num", "data-label": "targets" }, fmt(d.targets)), h("td", { class: "num", "data-label": "deliveries" }, fmt(d.deliveries)),
        h("td", { "data-label": "at" }, d.at),
        h("td", { class: "row-actions" }, d.replayable ? h("button", { class: "replay", onclick: () => act("/api/dlq/" + d.seq + "/replay") }, "Replay") :
          h("span", { class: "muted", title: d.notReplayable || "" }, "not replayable"))))),
    page.capped ? h("p", { class: "muted" }, "The filter looked at " + fmt(page.scanned) + " letters and stopped here; older ones may match.") : null,
    h("div", { class: "actions" },
      dlq.cursors.length ? h("button", { id: "newest", onclick: () => { dlq.cursors = []; refresh(); } }, "newest") : null,
      page.next ? h("button", { id: "older", onclick: () => { dlq.cursors.push(page.next); refresh(); } }, "older") : null,
      filtered ? h("button", { class: "danger", id: "purge", onclick: () => confirm("Remove every dead letter that matches the filter?") &&
        act("/api/dlq/purge", Object.fromEntries(purge)) }, "Purge these") : null));
}

async function deadLetter(seq) {
  const d = await get("/api/dlq/" + encodeURIComponent(seq));
  return h("section", { id: "letter" }, h("h2", {}, "Dead letter " + (d.jobId || d.seq)),
    h("table", {},
      [["job id", d.jobId], ["reason", d.reason], ["error", d.error], ["subject", d.subject], ["campaign", d.campaign || "—"],
        ["deliveries", d.deliveries], ["targets", d.targets], ["dead-lettered at", d.at],
        ["replay", d.replayable ? "yes" : "no: " + d.notReplayable]].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
    h("h2", {}, "The job as received (template values hidden)"),
    h("pre", {}, JSON.stringify(d.job, null, 2)),
    h("div", { class: "actions" },
      d.replayable ? h("button", { id: "replay", onclick: () => act("/api/dlq/" + d.seq + "/replay") }, "Replay") : null,
      h("button", { class: "danger", id: "delete", onclick: () => confirm("Delete this dead letter?") &&
        act("/api/dlq/" + d.seq + "/delete").then(() => { location.hash = "#/dlq"; }) }, "Delete"),
      h("a", { href: "#/dlq" }, "back to the list")));
}

async function result(id) {
  const r = await get("/api/jobs/" + encodeURIComponent(id));
  return h("section", { id: "result" }, h("h2", {}, "Result of " + r.jobId + " ", h("span", { class: "badge " + (r.status === "succeeded" ? "ok" : "bad") }, r.status)),
    h("pre", {}, JSON.stringify(r, null, 2)));
}

// Routing and the 2-second refresh.

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  switch (parts[0]) {
    case "campaigns": return ["campaigns", campaigns];
    case "dlq": return parts[1] ? ["dlq", () => deadLetter(parts[1])] : ["dlq", deadLetters];
    case "job": return ["", () => result(parts[1] || "")];
    default: return ["overview", overview];
  }
}

// timings are the last refreshes, newest last: the page, when it started and
// ended (ms since the page was opened), how long its request took and the
// whole refresh (request, reading and drawing). The scale test reads them.
const timings = [];
window.consoleTimings = timings;

let drawing = false;
let again = false; // a refresh was asked for while one was drawing: run it after
async function refresh() {
  if (drawing) {
    again = true;
    return;
  }
  const active = document.activeElement;
  if (active && active.tagName === "INPUT" && view.contains(active)) return; // do not take a field away while typing
  drawing = true;
  again = false;
  const [name, page] = route();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.route === name);
  const start = performance.now();
  requestMs = 0;
  try {
    const content = await page();
    view.replaceChildren(...[content].flat(Infinity));
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    view.replaceChildren(h("section", {}, h("p", { class: "muted" }, e.message)));
  } finally {
    drawing = false;
    const end = performance.now();
    timings.push({ page: location.hash || "#/", start: start, end: end, ms: end - start, requestMs: requestMs });
    if (timings.length > 20) timings.shift();
    if (again) refresh(); // the page changed, or a button was clicked, while this one was drawn
  }
}

document.getElementById("jobform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  location.hash = "#/job/" + encodeURIComponent(document.getElementById("jobid").value.trim());
});
window.addEventListener("hashchange", () => { say(""); refresh(); });
refresh();
setInterval(refresh, 2000);

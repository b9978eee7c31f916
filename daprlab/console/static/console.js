// The lab console's page: one stream of updates from the server, drawn with plain DOM and SVG.
"use strict";

const PAGE_SIZE = 50;
const EVENTS_SHOWN = 200;
const EVENTS_KEPT = 1000;
const CHART_SECONDS = 300;
const BAD_EVENTS = ["deadlock", "503 answered", "504 answered", "process down", "source down",
                    "sidecar error", "deactivated", "model call failed", "429 answered",
                    "502 answered"];
const GOOD_EVENTS = ["activated", "process up again", "source up again", "follow-up call-back"];
// Which feature columns each step shows, after type, id, state and messages.
const STEP_COLUMNS = {
  "01": [["timer", timerCell], ["ticks", (a) => String(a.ticks)], ["seconds left", timerLeftCell]],
  "02": [["reminder", (a) => a.reminder || "—"], ["due in", dueCell]],
  "03": [["follow-up", (a) => a.follow_up || "—"]],
  "04": [["idle deadline in", idleCell]],
};
const SOURCE_NAMES = { sidecar: "the sidecar (daprd)", redis: "Redis", metrics: "daprd's metrics" };

const view = {
  summary: null, actors: new Map(), events: [], page: 0, selected: null, clockOffset: 0,
  dirty: false,
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function serverNow() { return Date.now() / 1000 + view.clockOffset; }
function secondsUntil(at) { return at == null ? null : Math.max(0, Math.ceil(at - serverNow())); }
function clock(epoch) { return new Date(epoch * 1000).toLocaleTimeString([], { hour12: false }); }
function stepColumns() { return STEP_COLUMNS[(view.summary?.step || "").slice(0, 2)] || []; }
function sourceDown(name) { return view.summary?.sources?.[name]?.ok === false; }

function timerRunning(a) { return a.active && !a.timer_stopped && secondsUntil(a.timer_ends_at) > 0; }
function timerCell(a) {
  if (a.timer_stopped) return "stopped";
  return timerRunning(a) ? "running" : "—";
}
function timerLeftCell(a) { return timerRunning(a) ? String(secondsUntil(a.timer_ends_at)) : "0"; }
function dueCell(a) {
  if (a.reminder === "armed") return `${secondsUntil(a.reminder_due_at)} s`;
  return a.reminder === "fired" ? "0 s · fired" : "—";
}
function idleCell(a) { return a.active && a.idle_deadline_at ? `≈${secondsUntil(a.idle_deadline_at)} s` : "—"; }

// ---- the stream ------------------------------------------------------------------------------
function connect() {
  const source = new EventSource("/api/stream");
  source.addEventListener("update", (message) => {
    const update = JSON.parse(message.data);
    // The chart's points come at most once a second; between them, keep the last ones.
    view.summary = { ...update.summary, series: update.summary.series || view.summary?.series || {} };
    view.clockOffset = update.summary.now - Date.now() / 1000;
    for (const actor of update.actors) view.actors.set(`${actor.type} ${actor.id}`, actor);
    if (update.events.length) {
      view.events.push(...update.events);
      if (view.events.length > EVENTS_KEPT) view.events.splice(0, view.events.length - EVENTS_KEPT);
    }
    $("connection").textContent = "live";
    $("connection").className = "tag live";
    schedule();
  });
  source.onerror = () => {
    $("connection").textContent = "console server unreachable: retrying";
    $("connection").className = "tag lost";
  };
}

function schedule() {
  if (view.dirty) return;
  view.dirty = true;
  requestAnimationFrame(() => { view.dirty = false; render(); });
}

// ---- drawing ---------------------------------------------------------------------------------
function render() {
  const s = view.summary;
  if (!s) return;
  $("step").textContent = `step ${s.step}`;
  $("dapr-version").textContent = s.dapr_version ? `Dapr ${s.dapr_version}` : "Dapr ?";
  $("unparsed").textContent = `unparsed ${s.unparsed}`;
  renderProblems(s);
  renderProcesses(s);
  renderTypes(s);
  renderActors();
  renderTimeline();
}

function renderProblems(s) {
  const lines = [];
  for (const [name, health] of Object.entries(s.sources)) {
    if (health.ok !== false) continue;
    const last = health.last_ok_at ? `; showing the values read at ${clock(health.last_ok_at)}` : "";
    lines.push(el("p", { "data-source": name }, `${SOURCE_NAMES[name] || name} is down since ${clock(health.since)}: ${health.detail}${last}`));
  }
  $("problems").replaceChildren(...lines);
}

function renderProcesses(s) {
  const items = Object.entries(s.processes).map(([name, up]) => {
    const dapr = /^(daprd|placement|scheduler)/.test(name) && s.dapr_version ? ` · Dapr ${s.dapr_version}` : "";
    const extra = name.startsWith("placement") && s.placement ? ` · ${s.placement}` : "";
    return el("li", { class: up ? "up" : "down", "data-process": name },
      el("span", { class: "dot" }), `${name} ${up ? "up" : "down"}${dapr}${extra}`);
  });
  $("processes").replaceChildren(...items);
}

function chart(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${CHART_SECONDS} 60`);
  svg.setAttribute("preserveAspectRatio", "none");
  const end = serverNow();
  const top = Math.max(1, ...points.map((p) => p[1]));
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points
    .map(([at, count]) => `${(CHART_SECONDS - (end - at)).toFixed(1)},${(56 - (count / top) * 52).toFixed(1)}`)
    .join(" "));
  svg.append(line);
  return svg;
}

function renderTypes(s) {
  const stale = sourceDown("sidecar");
  const cards = Object.keys(s.series).sort().map((type) => {
    const metrics = s.metrics[type] || {};
    const shown = Object.entries(metrics).map(([name, value]) => `${name} ${value}`).join(" · ");
    const daprd = shown ? `daprd metrics: ${shown}` : "";
    const reentrancy = s.reentrancy[type] ? el("div", { class: "metrics" }, s.reentrancy[type]) : "";
    return el("div", { class: `type-card${stale ? " stale" : ""}`, "data-type": type },
      el("div", {}, el("strong", {}, type), " active: ",
        el("span", { class: "count" }, String(s.active_counts[type] ?? 0))),
      chart(s.series[type]), el("div", { class: "metrics" }, daprd), reentrancy);
  });
  $("types").replaceChildren(...cards);
}

// The table's order changes only when a new actor shows up or the filter changes: sort then.
const byId = new Intl.Collator(undefined, { numeric: true });
const order = { keys: [], size: -1, filter: null };

function filteredActors() {
  const wanted = $("actor-filter").value.trim();
  if (order.size !== view.actors.size || order.filter !== wanted) {
    const rows = [...view.actors.values()].filter((a) => !wanted || a.id.includes(wanted));
    rows.sort((a, b) => (a.type === b.type ? byId.compare(a.id, b.id) : byId.compare(a.type, b.type)));
    order.keys = rows.map((a) => `${a.type} ${a.id}`);
    order.size = view.actors.size;
    order.filter = wanted;
  }
  return order.keys.map((key) => view.actors.get(key));
}

// Rows are kept per actor and only their changed cells rewritten: a row stays the same element
// while it is on the page (a click on it always lands), and 1,000 actors cost one page of rows.
const rowCache = new Map();

function actorColumns() {
  return [["type", (a) => a.type], ["id", (a) => a.id], ["state", stateCell],
          ["messages", (a) => (a.messages == null ? "?" : String(a.messages))], ...stepColumns()];
}

function renderActors() {
  const columns = actorColumns();
  const names = columns.map(([name]) => name).join("|");
  if ($("actor-head").dataset.columns !== names) {
    $("actor-head").replaceChildren(...columns.map(([name]) => el("th", {}, name)));
    $("actor-head").dataset.columns = names;
    rowCache.clear();
  }
  const rows = filteredActors();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  view.page = Math.min(view.page, pages - 1);
  const shown = rows.slice(view.page * PAGE_SIZE, (view.page + 1) * PAGE_SIZE);
  const staleCounts = sourceDown("sidecar");
  const staleRedis = sourceDown("redis");
  const keep = new Map();
  const trs = shown.map((a) => {
    const key = `${a.type} ${a.id}`;
    let tr = rowCache.get(key);
    if (!tr) {
      tr = el("tr", { "data-actor": key },
        ...columns.map(([name]) => el("td", { class: `col-${name.replace(/ /g, "-")}` })));
    }
    columns.forEach(([, cell], i) => {
      const value = cell(a);
      const td = tr.children[i];
      const text = typeof value === "string" ? value : value.textContent;
      if (td.dataset.text !== text) {
        td.replaceChildren(value);
        td.dataset.text = text;
      }
    });
    const classes = [a.active ? "active" : "inactive"];
    if (key === view.selected) classes.push("selected");
    if ((staleCounts && a.active) || (staleRedis && a.reminder)) classes.push("stale");
    const className = classes.join(" ");
    if (tr.className !== className) tr.className = className;
    keep.set(key, tr);
    return tr;
  });
  rowCache.clear();
  for (const [key, tr] of keep) rowCache.set(key, tr);
  const body = $("actor-rows");
  const same = body.children.length === trs.length && trs.every((tr, i) => body.children[i] === tr);
  if (!same) body.replaceChildren(...trs);
  $("actor-count").textContent = `${view.actors.size} seen`;
  $("page-label").textContent = `page ${view.page + 1} of ${pages}`;
}

function stateCell(a) {
  const word = a.active === true ? "active" : a.active === false ? "deactivated" : "?";
  return el("span", { class: `state-${word}` }, word);
}

// New events go on top of the list; the whole list is drawn again only when the filter changes.
const timeline = { seq: 0, filter: null };

function eventItem(e) {
  const tone = BAD_EVENTS.includes(e.kind) ? " bad" : GOOD_EVENTS.includes(e.kind) ? " good" : "";
  return el("li", { class: `event${tone}`, "data-kind": e.kind, "data-actor": e.actor || "" },
    el("span", { class: "when" }, clock(e.at)), " ", el("span", { class: "kind" }, e.kind), " ",
    e.actor ? el("span", { class: "who" }, e.actor) : "", " ",
    el("span", { class: "from" }, `from ${e.source}`), el("div", { class: "text" }, e.text));
}

function renderTimeline() {
  const wanted = $("event-filter").value.trim();
  const list = $("timeline");
  const matches = (e) => !wanted || (e.actor || "").includes(wanted);
  if (timeline.filter !== wanted) {
    list.replaceChildren();
    timeline.seq = 0;
    timeline.filter = wanted;
  }
  const fresh = [];
  for (let i = view.events.length - 1; i >= 0 && fresh.length < EVENTS_SHOWN; i -= 1) {
    const e = view.events[i];
    if (e.seq <= timeline.seq) break;
    if (matches(e)) fresh.push(eventItem(e));
  }
  if (view.events.length) timeline.seq = view.events[view.events.length - 1].seq;
  if (fresh.length) list.prepend(...fresh);
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
}

// ---- an actor's state in Redis ---------------------------------------------------------------
async function refreshDetail() {
  if (!view.selected) return;
  const [type, id] = view.selected.split(" ");
  const body = $("detail-body");
  try {
    const resp = await fetch(`/api/actors/${encodeURIComponent(type)}/${encodeURIComponent(id)}`);
    const found = await resp.json();
    body.textContent = JSON.stringify(found, null, 2);
    $("detail").classList.toggle("stale", !resp.ok);
  } catch (err) {
    $("detail").classList.add("stale");
  }
}

function select(key) {
  view.selected = key;
  $("detail").hidden = false;
  $("detail-actor").textContent = key;
  $("detail-body").textContent = "reading…";
  $("event-filter").value = key;
  refreshDetail();
  schedule();
}

// ---- controls --------------------------------------------------------------------------------
$("actor-rows").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-actor]");
  if (row) select(row.dataset.actor);
});
$("actor-filter").addEventListener("input", () => { view.page = 0; schedule(); });
$("event-filter").addEventListener("input", schedule);
$("event-filter-clear").addEventListener("click", () => { $("event-filter").value = ""; schedule(); });
$("prev-page").addEventListener("click", () => { view.page = Math.max(0, view.page - 1); schedule(); });
$("next-page").addEventListener("click", () => { view.page += 1; schedule(); });
$("detail-close").addEventListener("click", () => { view.selected = null; $("detail").hidden = true; schedule(); });
// Countdowns move between updates; the state shown in the detail panel is read again each second.
setInterval(() => { schedule(); refreshDetail(); }, 1000);
connect();

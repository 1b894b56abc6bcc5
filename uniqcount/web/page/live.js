// The live page of ./run.sh serve: loads /api/windows, then follows /events (server-sent events) and
// redraws as records are committed; the range picker asks /api/unique. Plain JS and SVG: no file
// from the internet.
"use strict";

const SHOWN = { minute: 240, hour: 168, rolling: 1440 };  // latest points drawn per chart
const CARDS = ["minute", "hour", "day", "week", "month", "year"];
const COLORS = ["#0891b2", "#16a34a", "#db2777", "#ca8a04"];  // rolling windows, in order of length
const state = { windows: {}, seq: 0, source: null, corrections: [], drawing: false };
const SVG = "http://www.w3.org/2000/svg";

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const iso = (t) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
const el = (tag, attrs = {}, parent = null) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
};

function put(record) {
  const windows = (state.windows[record.granularity] ??= new Map());
  const before = windows.get(record.window_start);
  windows.set(record.window_start, record);
  if (record.final && record.revision > 0 && (!before || before.revision < record.revision)) {
    state.corrections.unshift({ record, before });
    state.corrections.length = Math.min(state.corrections.length, 20);
  }
}

function latest(granularity, n) {
  const windows = state.windows[granularity];
  if (!windows) return [];
  const starts = [...windows.keys()].sort((a, b) => a - b).slice(-n);
  return starts.map((s) => windows.get(s));
}

function describe(r) {
  const bounds = r.estimate === "hll" ? `, 95% bounds ${fmt(r.lower_bound)} to ${fmt(r.upper_bound)}` : "";
  return `${r.granularity} ${iso(r.window_start)}: ${fmt(r.unique_users)} users (${r.estimate}${bounds}), ` +
    `${fmt(r.frames)} frames, revision ${r.revision}${r.late_frames ? `, ${fmt(r.late_frames)} late` : ""}` +
    `${r.final ? "" : ", provisional"}`;
}

function niceStep(max, ticks) {
  const raw = max / ticks, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
  2592000, 7776000, 31536000];

// Labels at round times (whole minutes, hours, days), at most 8 of them.
function timeTicks(t0, t1) {
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= 8) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const text = iso(t);
    ticks.push([t, step < 86400 ? text.slice(11, 16) : text.slice(0, 10)]);
  }
  return ticks;
}

// One chart: series of {name, color, points: [{t, record}]}, y from 0 to the highest bound.
function draw(svg, series) {
  svg.replaceChildren();
  const W = 960, H = 200, L = 64, R = 12, T = 10, B = 26;
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "no records yet";
    return;
  }
  let t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  const pad = Math.max(30, (t1 - t0) * 0.03);
  t0 -= pad;
  t1 += pad;
  const top = Math.max(...all.map((p) => p.record.upper_bound ?? p.record.unique_users), 1);
  const step = niceStep(top, 4), ymax = Math.ceil(top / step) * step;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / ymax) * (H - B - T);
  const grid = el("g", { class: "grid" }, svg);
  for (let v = 0; v <= ymax + step / 2; v += step) {
    el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }, grid);
    el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, grid).textContent = fmt(v);
  }
  for (const [t, label] of timeTicks(t0, t1)) {
    el("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, grid).textContent = label;
  }
  for (const s of series) {
    const hll = s.points.filter((p) => p.record.estimate === "hll");
    if (hll.length) {
      const upper = hll.map((p) => `${x(p.t)},${y(p.record.upper_bound)}`);
      const lower = hll.map((p) => `${x(p.t)},${y(p.record.lower_bound)}`).reverse();
      el("polygon", { class: "band", points: [...upper, ...lower].join(" ") }, svg);
    }
    const line = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.t)},${y(p.record.unique_users)}`).join("");
    el("path", { class: "line", d: line, style: `stroke:${s.color || "var(--exact)"}` }, svg);
    if (s.points.length > 400) continue;
    for (const p of s.points) {
      const r = p.record;
      const kind = r.revision > 0 ? "corrected" : r.estimate;
      const dot = el("circle", {
        cx: x(p.t), cy: y(r.unique_users), r: 3, class: `${kind}${r.final ? "" : " provisional"}`,
        "data-key": `${r.granularity}:${r.window_start}`, "data-users": r.unique_users,
        "data-revision": r.revision, "data-final": r.final,
      }, svg);
      if (s.color && kind !== "corrected") dot.setAttribute("style", `fill:${s.color};stroke:${s.color}`);
      el("title", {}, dot).textContent = describe(r);
    }
  }
  if (series.length > 1) {
    series.forEach((s, i) => {
      el("text", { x: L + 8 + i * 110, y: T + 12, style: `fill:${s.color};font-weight:600` }, svg).textContent = s.name;
    });
  }
}

function drawCharts() {
  for (const g of ["minute", "hour"]) {
    const points = latest(g, SHOWN[g]).map((record) => ({ t: record.window_start, record }));
    draw(document.querySelector(`#chart-${g} svg`), [{ name: g, color: "", points }]);
  }
  const rolling = Object.keys(state.windows).filter((g) => g.startsWith("rolling_"))
    .sort((a, b) => latest(a, 1)[0].window_end - latest(a, 1)[0].window_start -
                    (latest(b, 1)[0].window_end - latest(b, 1)[0].window_start));
  const section = document.getElementById("chart-rolling");
  section.hidden = !rolling.length;
  if (rolling.length) {
    draw(section.querySelector("svg"), rolling.map((g, i) => ({
      name: g.slice(8), color: COLORS[i % COLORS.length],
      points: latest(g, SHOWN.rolling).map((record) => ({ t: record.window_end, record })),
    })));
  }
}

function drawCards() {
  const cards = document.getElementById("latest");
  cards.replaceChildren();
  const names = [...CARDS, ...Object.keys(state.windows).filter((g) => g.startsWith("rolling_")).sort()];
  for (const g of names) {
    const r = latest(g, 1)[0];
    if (!r) continue;
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.granularity = g;
    card.dataset.users = r.unique_users;
    card.title = describe(r);
    const when = g.startsWith("rolling_") ? `last ${g.slice(8)} to ${iso(r.window_end).slice(11, 16)}`
      : `${g} ${iso(r.window_start).replace(":00Z", "").replace("T", " ")}`;
    const bounds = r.estimate === "hll" ? `${fmt(r.lower_bound)} to ${fmt(r.upper_bound)}` : "exact";
    card.innerHTML = `<div class="what"></div><div class="users"></div><div class="bounds"></div>`;
    card.children[0].textContent = `${when}${r.final ? "" : " (open)"}`;
    card.children[1].textContent = fmt(r.unique_users);
    card.children[2].textContent = bounds;
    cards.appendChild(card);
  }
}

function drawCorrections() {
  const list = document.getElementById("corrected");
  if (!state.corrections.length) return;
  list.replaceChildren(...state.corrections.map(({ record, before }) => {
    const item = document.createElement("li");
    item.dataset.key = `${record.granularity}:${record.window_start}`;
    item.textContent = describe(record) + (before ? `; was ${fmt(before.unique_users)}` : "");
    return item;
  }));
}

function redraw() {
  if (state.drawing) return;
  state.drawing = true;
  requestAnimationFrame(() => {
    state.drawing = false;
    drawCards();
    drawCharts();
    drawCorrections();
    document.body.dataset.seq = state.seq;
  });
}

function showStatus(status, connection = "live") {
  const line = document.getElementById("status");
  const windows = Object.values(status.windows ?? {}).reduce((a, b) => a + b, 0);
  const phase = connection !== "live" ? connection : status.caught_up ? "live" : "catching-up";
  line.className = phase;
  line.textContent = `${phase === "catching-up" ? "reading the history of" : phase === "live" ? "following" : phase}` +
    ` ${status.topic}: ${fmt(windows)} windows, ${fmt(status.stored_windows)} stored for ranges` +
    (status.unreadable ? `, ${fmt(status.unreadable)} unreadable records skipped` : "");
  state.status = status;
}

function prefillPicker() {
  const minutes = latest("minute", Infinity).filter((r) => r.final);
  const from = document.getElementById("from"), to = document.getElementById("to");
  if (minutes.length && !from.value && !to.value) {
    from.value = iso(minutes[0].window_start);
    to.value = iso(minutes[minutes.length - 1].window_end);
  }
}

async function load() {
  const response = await fetch("/api/windows");
  const body = await response.json();
  state.windows = {};
  state.corrections = [];
  for (const records of Object.values(body.windows)) records.forEach(put);
  state.seq = body.status.seq;
  showStatus(body.status);
  prefillPicker();
  redraw();
  follow();
}

function follow() {
  if (state.source) state.source.close();
  const source = (state.source = new EventSource(`/events?after=${state.seq}`));
  source.onmessage = (event) => {
    JSON.parse(event.data).forEach(put);
    state.seq = Number(event.lastEventId);
    prefillPicker();
    redraw();
  };
  source.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
  source.addEventListener("reset", () => { source.close(); load(); });
  source.onerror = () => state.status && showStatus(state.status, "reconnecting");
  source.onopen = () => state.status && showStatus(state.status);
}

async function ask(event) {
  event.preventDefault();
  const answer = document.getElementById("answer");
  const from = document.getElementById("from").value.trim(), to = document.getElementById("to").value.trim();
  answer.className = "asking";
  answer.textContent = "counting ...";
  const response = await fetch(`/api/unique?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  const body = await response.json();
  if (!response.ok) {
    answer.className = "error";
    answer.textContent = body.error;
    return;
  }
  const bounds = body.estimate === "hll" ? `, 95% bounds ${fmt(body.lower_bound)} to ${fmt(body.upper_bound)}` : "";
  const missing = body.complete ? "" : `; incomplete: ${body.missing.map(([a, b]) => `${iso(a)} to ${iso(b)}`).join(", ")} not stored or not final`;
  answer.className = "answered";
  answer.innerHTML = `<span class="users"></span> unique users <span class="detail"></span>`;
  answer.dataset.users = body.unique_users;
  answer.dataset.estimate = body.estimate;
  answer.children[0].textContent = fmt(body.unique_users);
  answer.children[1].textContent = `from ${body.from_iso} to ${body.to_iso}: ${body.estimate}${bounds}, ` +
    `${fmt(body.frames)} frames, ${body.windows.length} stored windows united${missing}`;
}

document.getElementById("picker").addEventListener("submit", ask);
window.addEventListener("load", load);

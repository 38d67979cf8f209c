// archcast web page: a view on the HTTP API (no libraries, nothing fetched from elsewhere).
"use strict";
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";

function token() { return localStorage.getItem("archcast-token") || ""; }
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.detail) || (r.status + " " + r.statusText));
  return body;
}
function ms(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}
function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function showError(e) { const p = $("error"); if (p) { p.textContent = e.message || String(e); p.hidden = false; } }
function clearError() { const p = $("error"); if (p) p.hidden = true; }
function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) { if (v === null || v === undefined || v === "") continue; dl.append(el("dt", {}, k)); const dd = el("dd"); if (v instanceof Node) dd.append(v); else dd.textContent = v; dl.append(dd); }
}
function table(t, header, rows, numeric = []) {
  t.replaceChildren();
  const tr = el("tr"); header.forEach((h, i) => tr.append(el("th", numeric.includes(i) ? { class: "num" } : {}, h))); t.append(tr);
  for (const r of rows) {
    const row = el("tr");
    r.cells.forEach((c, i) => { const td = el("td", numeric.includes(i) ? { class: "num" } : {}); if (c instanceof Node) td.append(c); else td.textContent = c; row.append(td); });
    if (r.onclick) { row.classList.add("clickable"); row.addEventListener("click", r.onclick); }
    t.append(row);
  }
}
function barTable(t, pairs, total) {
  t.replaceChildren();
  const max = Math.max(...pairs.map((p) => p[1]), 1e-12);
  for (const [name, v, extra] of pairs) {
    const row = el("tr");
    row.append(el("td", {}, name));
    const cell = el("td", { style: "width:55%" }); cell.append(el("div", { class: "bar", style: `width:${(100 * v / max).toFixed(1)}%` })); row.append(cell);
    row.append(el("td", { class: "num" }, extra !== undefined ? extra : ms(v) + " ms" + (total ? ` (${(100 * v / total).toFixed(0)}%)` : "")));
    t.append(row);
  }
}

// ------------------------------------------------------------------ charts
function barChart(box, ops, total) {
  const W = Math.max(640, box.clientWidth || 900), rowH = 22, left = 330, right = 120, top = 8;
  const H = top + ops.length * rowH + 28;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "slowest operators" });
  const max = Math.max(...ops.map((o) => o.ms), 1e-12), span = W - left - right;
  ops.forEach((o, i) => {
    const y = top + i * rowH;
    const label = `${(o.name || "-").slice(-38)} (${o.op_type})`;
    s.append(svg("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, label));
    s.append(svg("rect", { class: "op", x: left, y: y + 4, width: Math.max(1, span * o.ms / max), height: rowH - 8, rx: 2 }));
    s.append(svg("text", { x: left + span * o.ms / max + 6, y: y + 15 }, `${ms(o.ms)} ms · ${(100 * o.ms / total).toFixed(1)}%`));
  });
  s.append(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: H - 24 }));
  s.append(svg("text", { x: left, y: H - 6 }, "predicted milliseconds per operator (ensemble mean)"));
  box.replaceChildren(s);
}
function logScale(lo, hi, a, b) { const l0 = Math.log10(lo), l1 = Math.log10(hi); return (v) => a + (b - a) * (Math.log10(v) - l0) / (l1 - l0 || 1); }
function scatterChart(box, points) {
  const pts = points.filter((p) => p.measured_ms > 0 && p.predicted_ms > 0);
  if (!pts.length) { box.replaceChildren(el("p", { class: "muted" }, "No graph of this platform has both a measurement and a prediction.")); return 0; }
  const W = 560, H = 400, m = { l: 60, r: 20, t: 14, b: 46 };
  const all = pts.flatMap((p) => [p.measured_ms, p.predicted_ms]);
  const lo = Math.min(...all) / 1.25, hi = Math.max(...all) * 1.25;
  const x = logScale(lo, hi, m.l, W - m.r), y = logScale(lo, hi, H - m.b, m.t);
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "predicted vs measured" });
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e; if (v < lo || v > hi) continue;
      s.append(svg("line", { class: "gridline", x1: x(v), x2: x(v), y1: m.t, y2: H - m.b }));
      s.append(svg("line", { class: "gridline", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      s.append(svg("text", { x: x(v), y: H - m.b + 16, "text-anchor": "middle" }, ms(v)));
      s.append(svg("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end" }, ms(v)));
    }
  }
  s.append(svg("line", { class: "axis", x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi), "stroke-dasharray": "4 4" }));
  for (const p of pts) {
    const c = svg("circle", { class: "pt", cx: x(p.measured_ms), cy: y(p.predicted_ms), r: 4.5 });
    c.append(svg("title", {}, `${p.name || p.fingerprint}: measured ${ms(p.measured_ms)} ms, predicted ${ms(p.predicted_ms)} ms`));
    s.append(c);
  }
  s.append(svg("text", { x: (m.l + W - m.r) / 2, y: H - 8, "text-anchor": "middle" }, "measured ms (median)"));
  s.append(svg("text", { x: 14, y: (m.t + H - m.b) / 2, transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle" }, "predicted ms"));
  box.replaceChildren(s);
  return pts.length;
}

// ------------------------------------------------------------------ predict page
async function initPredict() {
  const [plats, store] = await Promise.all([api("/v1/platforms"), api("/v1/store")]);
  const ps = $("platform");
  for (const p of plats.platforms.filter((p) => p.has_predictor)) ps.append(el("option", { value: p.name }, p.name + (p.device ? ` · ${p.device}` : "")));
  const fam = $("family");
  for (const f of store.zoo_families) fam.append(el("option", { value: f }, f));
  $("file").addEventListener("change", () => { document.querySelector("input[name=kind][value=file]").checked = true; });
  fam.addEventListener("change", () => { document.querySelector("input[name=kind][value=zoo]").checked = true; });
  $("predict-form").addEventListener("submit", async (ev) => {
    ev.preventDefault(); clearError();
    const fd = new FormData();
    const kind = document.querySelector("input[name=kind]:checked").value;
    if (kind === "file") {
      const f = $("file").files[0];
      if (!f) { showError(new Error("choose an .onnx file first")); return; }
      fd.append("file", f);
    } else { fd.append("family", fam.value); fd.append("seed", $("seed").value || "0"); }
    if (ps.value) fd.append("platform", ps.value);
    if ($("batch").value) fd.append("batch_size", $("batch").value);
    $("go").disabled = true; $("go").textContent = "Predicting…";
    try { renderPrediction(await api("/v1/predict", { method: "POST", body: fd })); }
    catch (e) { showError(e); }
    finally { $("go").disabled = false; $("go").textContent = "Predict"; }
  });
}
function renderPrediction(p) {
  $("result").hidden = false;
  $("latency").textContent = ms(p.latency_ms);
  $("interval").textContent = `${Math.round(100 * p.level)}% interval ${ms(p.low_ms)}–${ms(p.high_ms)} ms · ${p.members_ms.length}-member ensemble · ${p.platform}`;
  const m = $("measured");
  if (p.measured) { m.className = "measured"; m.textContent = `Measured in the store: ${ms(p.measured.latency_ms)} ms (median${p.measured.n_runs ? " of " + p.measured.n_runs + " runs" : ""}, ${String(p.measured.measured_at).slice(0, 10)})`; }
  else { m.className = "measured none"; m.textContent = "No measurement of this graph on this platform in the store yet."; }
  const g = p.graph, link = el("a", { href: "/graphs/" + g.fingerprint }, g.fingerprint);
  facts($("facts"), [["model", g.source || g.name], ["nodes", g.n_nodes], ["FLOPs", (g.flops / 1e9).toPrecision(3) + " G"],
    ["params", (g.params / 1e6).toPrecision(3) + " M"], ["batch", g.batch_size], ["fingerprint", link], ["predicted in", (p.predict_s * 1000).toFixed(1) + " ms"]]);
  const top = [...p.operators].sort((a, b) => b.ms - a.ms).slice(0, 15);
  $("chart-caption").textContent = `top ${top.length} of ${p.operators.length} operators`;
  barChart($("chart"), top, p.latency_ms);
  barTable($("optypes"), Object.entries(p.by_op_type).slice(0, 12), p.latency_ms);
  const u = $("unknown");
  const unk = Object.entries(p.unknown_ops);
  u.textContent = unk.length ? `Unknown op types: ${unk.map(([k, v]) => `${k} ×${v}`).join(", ")} (${(100 * p.unknown_share).toFixed(1)}% of nodes)` : "Unknown op types: none — every operator is in the predictor's vocabulary.";
  const w = $("warnings"); w.replaceChildren();
  for (const s of p.warnings) w.append(el("li", {}, s));
  if (!p.warnings.length) w.append(el("li", { class: "muted", style: "color:inherit" }, "No warnings."));
}

// ------------------------------------------------------------------ store page
let pageAfter = null;
async function initStore() {
  const [plats, store] = await Promise.all([api("/v1/platforms"), api("/v1/store")]);
  table($("platforms"), ["platform", "id", "device", "predictor", "ok", "failed"],
    plats.platforms.map((p) => ({ cells: [p.name, p.platform_id || "–", p.device || "", p.has_predictor ? "yes" : "no", p.measurements_ok, p.measurements_failed],
      onclick: () => { if (p.platform_id) { $("f-platform").value = p.platform_id; loadMeasurements(true); } } })), [4, 5]);
  table($("families"), ["family", "ok", "failed"], Object.entries(store.per_family).map(([f, c]) => ({ cells: [f, c.ok, c.failed],
    onclick: () => { $("f-family").value = f; loadMeasurements(true); } })), [1, 2]);
  for (const p of plats.platforms.filter((p) => p.platform_id && p.measurements_ok)) {
    $("f-platform").append(el("option", { value: p.platform_id }, p.name));
    $("scatter-platform").append(el("option", { value: p.platform_id }, p.name));
  }
  for (const f of Object.keys(store.per_family)) $("f-family").append(el("option", { value: f }, f));
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadMeasurements(true); });
  $("next").addEventListener("click", () => loadMeasurements(false));
  $("scatter-platform").addEventListener("change", loadScatter);
  await Promise.all([loadMeasurements(true), loadScatter()]);
}
async function loadScatter() {
  const p = $("scatter-platform").value;
  if (!p) { $("scatter").replaceChildren(el("p", { class: "muted" }, "No platform has measurements yet.")); return; }
  $("scatter-caption").textContent = "predicting…";
  try {
    const s = await api(`/v1/scatter?platform=${encodeURIComponent(p)}&limit=300`);
    if (!s.has_predictor) { $("scatter").replaceChildren(el("p", { class: "muted" }, `No latency predictor for ${s.platform}: only measurements.`)); $("scatter-caption").textContent = ""; return; }
    const n = scatterChart($("scatter"), s.points);
    $("scatter-caption").textContent = `${n} graphs, log-log, dashed line = exact`;
  } catch (e) { showError(e); }
}
async function loadMeasurements(reset) {
  clearError();
  if (reset) pageAfter = null;
  const q = new URLSearchParams({ limit: "25" });
  if ($("f-platform").value) q.set("platform", $("f-platform").value);
  if ($("f-family").value) q.set("family", $("f-family").value);
  if ($("f-fingerprint").value.trim()) q.set("fingerprint", $("f-fingerprint").value.trim());
  if ($("f-history").checked) q.set("history", "true");
  if (pageAfter !== null) q.set("after", pageAfter);
  try {
    const r = await api("/v1/measurements?" + q);
    table($("measurements"), ["id", "graph", "family", "platform", "batch", "status", "median ms", "min ms", "runs", "measured at"],
      r.items.map((m) => { const a = el("a", { href: "/graphs/" + m.fingerprint }, m.name || m.fingerprint.slice(0, 12));
        return { cells: [m.id, a, m.family || "", m.platform_name, m.batch_size, m.status + (m.is_current ? "" : " (old)"), ms(m.latency_ms_median), ms(m.latency_ms_min), m.n_runs ?? "", m.measured_at.replace("T", " ").slice(0, 19)] }; }),
      [0, 4, 6, 7, 8]);
    $("page-info").textContent = r.items.length ? `rows ${r.items[0].id}–${r.items[r.items.length - 1].id}` : "no measurements match";
    pageAfter = r.next_after; $("next").hidden = r.next_after === null;
  } catch (e) { showError(e); }
}

// ------------------------------------------------------------------ graph page
async function initGraph() {
  const fp = document.body.dataset.fingerprint;
  let g;
  try { g = await api("/v1/graphs/" + encodeURIComponent(fp)); } catch (e) { showError(e); return; }
  $("graph-title").textContent = (g.name || "graph") + (g.family ? ` · ${g.family}${g.seed !== null ? " seed " + g.seed : ""}` : "");
  facts($("graph-facts"), [["fingerprint", g.fingerprint], ["nodes", g.n_nodes], ["FLOPs", g.flops !== null ? (g.flops / 1e9).toPrecision(3) + " G" : null],
    ["params", g.params !== null ? (g.params / 1e6).toPrecision(3) + " M" : null], ["memory", g.memory_bytes !== null ? (g.memory_bytes / 1e6).toPrecision(3) + " MB" : null],
    ["generator", g.generator_config], ["stored", g.created.replace("T", " ").slice(0, 19)]]);
  const rows = g.measurements;
  table($("history"), ["id", "platform", "batch", "status", "median ms", "min ms", "p90 ms", "cv", "runs", "host", "measured at"],
    rows.map((m) => ({ cells: [m.id, m.platform_name, m.batch_size, m.status + (m.is_current ? " (current)" : ""), ms(m.latency_ms_median), ms(m.latency_ms_min), ms(m.latency_ms_p90),
      m.latency_cv !== null ? (100 * m.latency_cv).toFixed(1) + "%" : "–", m.n_runs ?? "", m.host || "", m.measured_at.replace("T", " ").slice(0, 19)] })), [0, 2, 4, 5, 6, 7, 8]);
  const ok = rows.filter((m) => m.status === "ok");
  if (ok.length) barTable($("history-chart").appendChild(el("table", { class: "bars" })), ok.map((m) => [`#${m.id} ${m.platform_name} ${m.measured_at.slice(0, 10)}`, m.latency_ms_median]));
  if (g.op_counts) barTable($("ops"), Object.entries(g.op_counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v, "×" + v]));
}

document.addEventListener("DOMContentLoaded", () => {
  const t = $("token");
  if (t) { t.value = token(); t.addEventListener("change", () => localStorage.setItem("archcast-token", t.value.trim())); }
  const init = { predict: initPredict, store: initStore, graph: initGraph }[document.body.dataset.page];
  if (init) init().catch(showError);
});

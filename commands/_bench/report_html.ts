/**
 * `--report FILE.html`: one self-contained page (no network: its styles, script and data are in
 * it, and its Content-Security-Policy allows nothing else) with, for one run or several side by
 * side: a summary table, throughput over time, latency (p50, p99, max) over time, and latency by
 * percentile on a log scale (HdrHistogram's plot: 90%, 99%, 99.9%, … equally spaced).
 *
 * The charts are SVG drawn by the page's script from the runs' `--json` results, embedded as JSON.
 * Each drawn series carries `data-series="KIND:RUN"` (`throughput`, `latency-p50`, `latency-p99`,
 * `latency-max`, `percentiles`), which is what the browser test looks for.
 *
 * @example A page for one run
 * ```ts
 * import { renderReport } from "./report_html.ts";
 * import assert from "node:assert/strict";
 *
 * const html = renderReport([]);
 * assert.match(html, /^<!doctype html>/);
 * assert.match(html, /Content-Security-Policy/);
 * assert.doesNotMatch(html, /\b(src|href)=/);
 * ```
 *
 * @module
 */
import type { BenchResult } from "./result.ts";

/**
 * The report page.
 * @param results The runs (one, or several to compare).
 * @param title The page's title.
 * @returns The HTML.
 */
export function renderReport(results: readonly BenchResult[], title = "linesock bench"): string {
  // Inside a <script> element, "</" could end it: JSON allows escaping every "<".
  const data = JSON.stringify(results.map(slim)).replaceAll("<", "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p id="subtitle"></p>
<label class="toggle"><input type="checkbox" id="log-y" checked> logarithmic y axes</label></header>
<main>
<section><h2>Summary</h2><div class="scroll"><table id="summary"></table></div></section>
<div id="legend" class="legend-row"></div>
<section class="charts">
<figure><figcaption>Throughput over time (requests answered per second)</figcaption><div id="throughput" class="chart"></div></figure>
<figure><figcaption>Latency over time (p50 solid, p99 dashed, max dotted; ms)</figcaption><div id="latency" class="chart"></div></figure>
<figure class="wide"><figcaption>Latency by percentile (ms; percentiles on a log scale)</figcaption><div id="percentiles" class="chart"></div></figure>
</section>
<section id="errors-section"><h2>Errors</h2><div id="errors"></div></section>
</main>
<script type="application/json" id="bench-data">${data}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** What the page needs of a result. */
function slim(result: BenchResult): Partial<BenchResult> {
  return {
    label: result.label,
    target: result.target,
    tls: result.tls,
    startedAt: result.startedAt,
    mode: result.mode,
    connections: result.connections,
    pipeline: result.pipeline,
    rate: result.rate,
    count: result.count,
    durationMs: result.durationMs,
    warmupMs: result.warmupMs,
    elapsedMs: result.elapsedMs,
    sent: result.sent,
    answered: result.answered,
    requestsPerSecond: result.requestsPerSecond,
    sentBytesPerSecond: result.sentBytesPerSecond,
    receivedBytesPerSecond: result.receivedBytesPerSecond,
    latencyMs: result.latencyMs,
    errors: result.errors,
    errorMessages: result.errorMessages.slice(0, 10),
    stall: result.stall,
    wasInterrupted: result.wasInterrupted,
    passed: result.passed,
    workload: result.workload,
    intervals: result.intervals,
    distribution: result.distribution,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const STYLE = `
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b6470; --grid: #e3e6ea; --panel: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f4f5f7; }
header { padding: 18px 28px 6px; }
h1 { margin: 0; font-size: 22px; }
h2 { font-size: 16px; margin: 0 0 10px; }
#subtitle { margin: 4px 0 0; color: var(--muted); }
main { padding: 8px 28px 28px; }
section { background: var(--panel); border: 1px solid #dde0e4; border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; background: none; border: 0; padding: 0; }
figure { margin: 0; background: var(--panel); border: 1px solid #dde0e4; border-radius: 8px; padding: 10px 12px; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.chart svg { width: 100%; height: auto; display: block; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid var(--grid); white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; }
th { color: var(--muted); font-weight: 600; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.axis { font-size: 11px; fill: var(--muted); }
.empty { color: var(--muted); padding: 30px; text-align: center; }
.toggle { display: inline-block; margin-top: 6px; color: var(--muted); user-select: none; }
.legend-row { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 4px 2px; }
.legend-row span { white-space: nowrap; }
ul.errors { margin: 4px 0 0; padding-left: 20px; font-family: ui-monospace, monospace; font-size: 12px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
`;

const SCRIPT = `
"use strict";
(function () {
  const runs = JSON.parse(document.getElementById("bench-data").textContent);
  const COLORS = ["#0969da", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#57606a"];
  const SVG = "http://www.w3.org/2000/svg";
  const color = (i) => COLORS[i % COLORS.length];
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  const ms = (v) => v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(max, count) {
    if (!(max > 0)) return [0, 1];
    const raw = max / count;
    const step = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = [1, 2, 2.5, 5, 10].map((f) => f * step).find((s) => s >= raw) || 10 * step;
    const ticks = [];
    for (let v = 0; v <= max + unit * 0.001; v += unit) ticks.push(Number(v.toPrecision(12)));
    if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + unit).toPrecision(12)));
    return ticks;
  }

  function tickLabel(v) {
    if (v >= 1e6) return (v / 1e6).toLocaleString("en-US", { maximumFractionDigits: 2 }) + "M";
    if (v >= 1e4) return (v / 1e3).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "k";
    return v.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }

  // series: [{ id, run, color, dash, width, points: [[x, y]] }]; x: { ticks, label, log }.
  function chart(container, series, options) {
    const drawn = series.filter((s) => s.points.length > 0);
    if (drawn.length === 0) {
      const empty = document.createElement("div");
      empty.className = "empty";
      empty.textContent = "no data";
      container.appendChild(empty);
      return;
    }
    const W = options.width || 560, H = 300, L = 64, R = options.xTicks ? 36 : 14, T = 12, B = 44;
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": options.title }, container);
    const xs = drawn.flatMap((s) => s.points.map((p) => p[0]));
    const ys = drawn.flatMap((s) => s.points.map((p) => p[1]));
    const xMax = options.xTicks ? options.xTicks[options.xTicks.length - 1][0] : Math.max(...xs, 1e-9);
    const logY = document.getElementById("log-y").checked;
    let yTicks, Y;
    if (logY) {
      const positive = ys.filter((y) => y > 0);
      const low = Math.floor(Math.log10(Math.min(...positive, 1)));
      const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(...positive, 1))));
      yTicks = [];
      for (let e = low; e <= high; e++) yTicks.push(Number(Math.pow(10, e).toPrecision(12)));
      Y = (y) => H - B - ((Math.log10(Math.max(y, yTicks[0])) - low) / (high - low)) * (H - T - B);
    } else {
      yTicks = niceTicks(Math.max(...ys, 0), 5);
      const yMax = yTicks[yTicks.length - 1] || 1;
      Y = (y) => H - B - (y / yMax) * (H - T - B);
    }
    const X = (x) => L + (x / xMax) * (W - L - R);
    for (const v of yTicks) {
      el("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: "#e3e6ea" }, svg);
      el("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end", class: "axis" }, svg).textContent = tickLabel(v);
    }
    const xTicks = options.xTicks || niceTicks(xMax, 6).map((v) => [v, tickLabel(v)]);
    for (const [v, label] of xTicks) {
      if (v > xMax * 1.0001) continue;
      el("line", { x1: X(v), x2: X(v), y1: T, y2: H - B, stroke: "#eef0f2" }, svg);
      el("text", { x: X(v), y: H - B + 16, "text-anchor": "middle", class: "axis" }, svg).textContent = label;
    }
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#8c959f" }, svg);
    el("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#8c959f" }, svg);
    el("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, svg).textContent = options.xLabel;
    el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis", transform: "rotate(-90 14 " + (T + H - B) / 2 + ")" }, svg).textContent = options.yLabel;
    for (const s of drawn) {
      const d = s.points.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
      const path = el("path", {
        d, fill: "none", stroke: s.color, "stroke-width": s.width || 2,
        "stroke-dasharray": s.dash || "none", "stroke-linejoin": "round",
        "data-series": s.id, "data-points": s.points.length,
      }, svg);
      el("title", {}, path).textContent = s.title;
      if (s.points.length === 1) {
        el("circle", { cx: X(s.points[0][0]), cy: Y(s.points[0][1]), r: 3, fill: s.color }, svg);
      }
    }
  }

  function mid(interval) { return (interval.startMs + interval.endMs) / 2000; }

  function legend() {
    const box = document.getElementById("legend");
    if (runs.length < 2) { box.remove(); return; }
    runs.forEach((run, i) => {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = color(i);
      item.append(swatch, run.label);
      box.appendChild(item);
    });
  }

  function summary() {
    const table = document.getElementById("summary");
    // One target for every run: it goes in the subtitle instead of a column.
    const oneTarget = runs.every((run) => run.target === runs[0].target);
    const head = ["run", "target", "load", "requests/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "result"]
      .filter((name) => !(oneTarget && name === "target"));
    const tr = table.insertRow();
    head.forEach((name, c) => {
      const th = document.createElement("th");
      th.textContent = name;
      if (c < (oneTarget ? 2 : 3)) th.style.textAlign = "left";
      tr.appendChild(th);
    });
    runs.forEach((run, i) => {
      const row = table.insertRow();
      const label = row.insertCell();
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = color(i);
      label.append(swatch, run.label);
      const load = run.mode === "churn" ? "churn, " + run.connections + " at once"
        : run.mode === "open" ? fmt(run.rate) + "/s, -c " + run.connections + " -P " + run.pipeline
        : "-c " + run.connections + " -P " + run.pipeline;
      const cells = [run.target, load, fmt(run.requestsPerSecond), ms(run.latencyMs.p50), ms(run.latencyMs.p90),
        ms(run.latencyMs.p99), ms(run.latencyMs.p999), ms(run.latencyMs.max), fmt(run.errors.total)]
        .slice(oneTarget ? 1 : 0);
      const texts = oneTarget ? 1 : 2;
      cells.forEach((text, c) => { const td = row.insertCell(); td.textContent = text; if (c < texts) td.className = "text"; });
      const result = row.insertCell();
      result.textContent = run.wasInterrupted ? "interrupted" : run.passed ? "passed" : "failed";
      result.className = run.passed && !run.wasInterrupted ? "ok" : "bad";
    });
    document.getElementById("subtitle").textContent = runs.length === 0 ? "no runs"
      : runs.length === 1 ? runs[0].target + ", " + new Date(runs[0].startedAt).toLocaleString("en-US")
      : runs.length + " runs side by side" + (oneTarget ? ", " + runs[0].target : "");
  }

  function errors() {
    const box = document.getElementById("errors");
    const failing = runs.filter((run) => run.errorMessages.length > 0 || run.stall);
    if (failing.length === 0) { box.textContent = "No errors: every reply was verified and right."; return; }
    for (const run of failing) {
      const h = document.createElement("p");
      h.textContent = run.label + (run.stall ? " (" + run.stall + ")" : "");
      const list = document.createElement("ul");
      list.className = "errors";
      for (const message of run.errorMessages) { const li = document.createElement("li"); li.textContent = message; list.appendChild(li); }
      box.append(h, list);
    }
  }

  summary();
  legend();
  errors();
  if (location.hash === "#linear") document.getElementById("log-y").checked = false;
  draw();
  document.getElementById("log-y").addEventListener("change", draw);
  document.body.dataset.rendered = "true";

  function draw() {
  for (const id of ["throughput", "latency", "percentiles"]) document.getElementById(id).replaceChildren();
  chart(document.getElementById("throughput"), runs.map((run, i) => ({
    id: "throughput:" + i, title: run.label + ": requests/s", color: color(i),
    points: run.intervals.map((iv) => [mid(iv), iv.requestsPerSecond]),
  })), { title: "throughput", xLabel: "time (s)", yLabel: "requests/s" });
  const latency = [];
  runs.forEach((run, i) => {
    const at = (key) => run.intervals.filter((iv) => iv.latencyMs).map((iv) => [mid(iv), iv.latencyMs[key]]);
    latency.push({ id: "latency-p50:" + i, title: run.label + ": p50 ms", color: color(i), points: at("p50") });
    latency.push({ id: "latency-p99:" + i, title: run.label + ": p99 ms", color: color(i), dash: "6 4", points: at("p99") });
    latency.push({ id: "latency-max:" + i, title: run.label + ": max ms", color: color(i), dash: "1 4", width: 1.5, points: at("max") });
  });
  chart(document.getElementById("latency"), latency, { title: "latency", xLabel: "time (s)", yLabel: "ms" });
  // HdrHistogram's plot: x = log10(1 / (1 - percentile)), so 90%, 99%, 99.9% are equally spaced.
  const finite = (row) => row[1] < 1;
  const maxNines = Math.max(2, ...runs.map((run) => {
    const rows = run.distribution.filter(finite);
    return rows.length ? Math.ceil(Math.log10(1 / (1 - rows[rows.length - 1][1]))) : 2;
  }));
  const ticks = [[0, "0%"]];
  for (let n = 1; n <= maxNines; n++) ticks.push([n, (100 - Math.pow(10, 2 - n)).toFixed(Math.max(0, n - 2)) + "%"]);
  chart(document.getElementById("percentiles"), runs.map((run, i) => ({
    id: "percentiles:" + i, title: run.label + ": latency by percentile", color: color(i),
    points: run.distribution.filter(finite).map((row) => [Math.log10(1 / (1 - row[1])), row[0]]),
  })), { title: "percentiles", xLabel: "percentile", yLabel: "ms", xTicks: ticks, width: 1140 });
  }
})();
`;

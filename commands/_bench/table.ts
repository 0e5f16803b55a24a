/**
 * What `linesock bench` prints for people: the final table of a run ({@linkcode formatTable}), with
 * `-v` its seconds one by one ({@linkcode formatIntervals}) and with `-vv` its latency distribution
 * ({@linkcode formatDistribution}); the errors alone for `-q` ({@linkcode formatErrors}); the table
 * of runs side by side (`--compare`, {@linkcode formatComparison}); and the live progress line on a
 * terminal ({@linkcode formatProgress}).
 *
 * @example A progress line
 * ```ts
 * import { formatProgress } from "./table.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatProgress({
 *   elapsedMs: 1500, warmingUp: false, sent: 10, answered: 10, bytesReceived: 50,
 *   currentPerSecond: 12345.6, currentP99Ms: 0.25, fraction: 0.5, errors: 0,
 * });
 * assert.equal(line, "[############------------]  50%  1.5 s  12,346 req/s  p99 0.250 ms  0 errors");
 * ```
 *
 * @module
 */
import type { BenchProgress, LatencySummary } from "./engine.ts";
import type { BenchResult } from "./result.ts";

/** How many wrong replies and failures the table shows (the JSON has more). */
const ERRORS_SHOWN = 5;
const LABEL = 16;

/**
 * A count as people read it.
 * @param n The count.
 * @returns `1,234,567`.
 */
export function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * Milliseconds with about three significant digits.
 * @param value Milliseconds.
 * @returns `0.123`, `1.23`, `12.3`, `123`.
 */
export function millis(value: number): string {
  if (value < 1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return value.toFixed(0);
}

/**
 * Bytes per second in decimal units.
 * @param bytesPerSecond Bytes per second.
 * @returns `6.17 MB/s`, `5.00 kB/s`, `12 B/s`.
 */
export function byteRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1e6) return `${(bytesPerSecond / 1e6).toFixed(2)} MB/s`;
  if (bytesPerSecond >= 1e3) return `${(bytesPerSecond / 1e3).toFixed(2)} kB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}

/**
 * The live progress line (without the carriage return and the erase sequence).
 * @param progress The counters.
 * @returns One line.
 */
export function formatProgress(progress: BenchProgress): string {
  const width = 24;
  const filled = Math.round(Math.min(1, progress.fraction) * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const phase = progress.warmingUp ? "warm-up " : "";
  return `[${bar}] ${String(Math.floor(progress.fraction * 100)).padStart(3)}%  ${phase}${
    (progress.elapsedMs / 1000).toFixed(1)
  } s  ${count(progress.currentPerSecond)} req/s  p99 ${millis(progress.currentP99Ms)} ms  ${
    count(progress.errors)
  } errors`;
}

/** What kind of load it was, in one line. */
export function describeLoad(result: BenchResult): string {
  const parts: string[] = [];
  if (result.mode === "churn") {
    parts.push(
      `churn: a new connection per request, up to ${count(result.connections)} at once` +
        (result.rate > 0 ? `, ${count(result.rate)} connections/s` : ""),
    );
  } else if (result.mode === "open") {
    parts.push(
      `open loop at ${count(result.rate)} requests/s, ${count(result.connections)} connection${
        result.connections === 1 ? "" : "s"
      }, up to ${count(result.pipeline)} in flight each`,
    );
  } else {
    parts.push(
      `closed loop, ${count(result.connections)} connection${
        result.connections === 1 ? "" : "s"
      } × pipeline ${count(result.pipeline)}`,
    );
  }
  if (result.count !== null) parts.push(`${count(result.count)} requests`);
  if (result.durationMs !== null) parts.push(seconds(result.durationMs));
  if (result.warmupMs > 0) parts.push(`warm-up ${seconds(result.warmupMs)}`);
  return parts.join(", ");
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms / 1000} s`;
}

function row(label: string, ...cells: string[]): string {
  return `${label.padEnd(LABEL)}${cells.join("  ")}`.trimEnd();
}

function latencyRows(label: string, latency: LatencySummary): string[] {
  const names = ["min", "p50", "p90", "p99", "p99.9", "max", "mean"];
  const values = [
    latency.min,
    latency.p50,
    latency.p90,
    latency.p99,
    latency.p999,
    latency.max,
    latency.mean,
  ].map(millis);
  const widths = names.map((name, i) => Math.max(name.length, values[i]!.length));
  return [
    row(label, ...names.map((name, i) => name.padStart(widths[i]!))),
    row("", ...values.map((value, i) => value.padStart(widths[i]!))),
  ];
}

/**
 * The errors by kind, in a few words.
 * @param result The run.
 * @returns `none`, or `3 wrong replies, 12 requests timed out, …`.
 */
export function describeErrors(result: BenchResult): string {
  const errors = result.errors;
  const parts: string[] = [];
  const plural = (n: number, one: string, many: string) => `${count(n)} ${n === 1 ? one : many}`;
  if (errors.mismatched > 0) parts.push(plural(errors.mismatched, "wrong reply", "wrong replies"));
  if (errors.timedOut > 0) {
    parts.push(`${plural(errors.timedOut, "request", "requests")} timed out`);
  }
  if (errors.lost > 0) {
    parts.push(`${plural(errors.lost, "request", "requests")} lost with a closed connection`);
  }
  const otherFailures = errors.connections - errors.stalled;
  if (otherFailures > 0) {
    parts.push(`${plural(otherFailures, "connection", "connections")} closed or failed`);
  }
  if (errors.stalled > 0) {
    parts.push(`${plural(errors.stalled, "connection", "connections")} stalled`);
  }
  if (errors.protocol > 0) {
    parts.push(`${plural(errors.protocol, "connection", "connections")} sent data out of turn`);
  }
  if (errors.connect > 0) parts.push(`${plural(errors.connect, "connect", "connects")} failed`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

/**
 * The final table of a run.
 * @param result The run.
 * @returns Lines, ending in PASSED, FAILED or INTERRUPTED.
 */
export function formatTable(result: BenchResult): string {
  const seconds = Math.max(0.001, result.elapsedMs / 1000);
  const totalWidth = Math.max(
    "total".length,
    count(result.sent).length,
    count(result.bytesReceived).length,
    count(result.bytesSent).length,
  );
  const total = (text: string) => text.padStart(totalWidth);
  const lines = [
    `linesock bench ${result.target}${result.tls ? " (TLS)" : ""}: ${
      result.workload.requests.slice(0, 3).map((line) => JSON.stringify(line)).join(", ")
    }${
      result.workload.requestCount > 3 ? `, … (${count(result.workload.requestCount)})` : ""
    } → ${result.workload.reply}`,
    describeLoad(result),
    "",
    row("", total("total"), "per second"),
    row("requests sent", total(count(result.sent)), count(result.sent / seconds)),
    row("answered", total(count(result.answered)), count(result.requestsPerSecond)),
    row("bytes sent", total(count(result.bytesSent)), byteRate(result.sentBytesPerSecond)),
    row(
      "bytes received",
      total(count(result.bytesReceived)),
      byteRate(result.receivedBytesPerSecond),
    ),
  ];
  if (result.connectionsOpened !== undefined) {
    lines.push(
      row(
        "connections",
        total(count(result.connectionsOpened)),
        count(result.connectionsPerSecond ?? 0),
      ),
    );
  }
  lines.push(row("time", `${(result.elapsedMs / 1000).toFixed(3)} s`), "");
  lines.push(...latencyRows("latency (ms)", result.latencyMs));
  if (result.connectMs) lines.push(...latencyRows("connect (ms)", result.connectMs));
  if (result.mode === "open" && result.scheduleLagMs >= 10) {
    lines.push(
      row(
        "schedule",
        `fell behind by up to ${millis(result.scheduleLagMs)} ms (the server, or -c × -P, did ` +
          "not keep up; latency counts the wait)",
      ),
    );
  }
  lines.push("", row("errors", describeErrors(result)));
  const shown = result.errorMessages.slice(0, ERRORS_SHOWN);
  for (const message of shown) lines.push(`  ${message}`);
  const hidden = result.errors.mismatched + result.errors.connections + result.errors.connect -
    shown.length;
  if (hidden > 0 && shown.length > 0) lines.push(`  … and ${count(hidden)} more`);
  if (result.errors.protocol > 0 && result.workload.greetingLines === 0) {
    // Lines before the first reply, or one line too many on each connection: most often a greeting.
    lines.push(
      "  hint: lines arrived that answer no request; if the server greets each new connection " +
        "(serve --greeting), give --greeting-lines N",
    );
  }
  if (result.stall) lines.push(row("stalled", result.stall));
  if (result.wasInterrupted) {
    lines.push(
      `INTERRUPTED: partial results${
        result.interrupted > 0
          ? `; ${count(result.interrupted)} requests in flight were not awaited`
          : ""
      }`,
    );
  } else {
    lines.push(result.passed ? "PASSED" : "FAILED");
  }
  return lines.join("\n");
}

/**
 * Runs side by side (`--compare`).
 * @param results The runs.
 * @returns A table, one run a row.
 */
export function formatComparison(results: readonly BenchResult[]): string {
  const header = [
    "run",
    "requests/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "errors",
  ];
  const rows = results.map((result) => [
    result.label,
    count(result.requestsPerSecond),
    millis(result.latencyMs.p50),
    millis(result.latencyMs.p90),
    millis(result.latencyMs.p99),
    millis(result.latencyMs.p999),
    millis(result.latencyMs.max),
    count(result.errors.total),
  ]);
  return alignTable(header, rows);
}

/**
 * A failed run's errors alone (what `-q` prints, on stderr).
 * @param result The run.
 * @returns Lines: the errors by kind, the first few described, the stall.
 */
export function formatErrors(result: BenchResult): string {
  const lines = [`${result.passed ? "interrupted" : "FAILED"}: ${describeErrors(result)}`];
  for (const message of result.errorMessages.slice(0, ERRORS_SHOWN)) lines.push(`  ${message}`);
  if (result.stall) lines.push(`stalled: ${result.stall}`);
  return lines.join("\n");
}

/**
 * The run second by second (`-v`).
 * @param result The run.
 * @returns A table, one interval a row.
 */
export function formatIntervals(result: BenchResult): string {
  const header = ["second", "sent", "answered/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"];
  const rows = result.intervals.map((interval) => [
    `${(interval.startMs / 1000).toFixed(1)}-${(interval.endMs / 1000).toFixed(1)}`,
    count(interval.sent),
    count(interval.requestsPerSecond),
    ...(interval.latencyMs
      ? [
        interval.latencyMs.p50,
        interval.latencyMs.p90,
        interval.latencyMs.p99,
        interval.latencyMs.max,
      ]
        .map(millis)
      : ["-", "-", "-", "-"]),
    count(interval.errors),
  ]);
  return ["", "per second", alignTable(header, rows)].join("\n");
}

/**
 * The latency distribution (`-vv`): HdrHistogram's rows.
 * @param result The run.
 * @returns A table: latency, percentile, requests up to it.
 */
export function formatDistribution(result: BenchResult): string {
  const rows = result.distribution.map(([value, percentile, total]) => [
    millis(value),
    `${(percentile * 100).toFixed(percentile < 0.99 ? 1 : 4)}%`,
    count(total),
  ]);
  return ["", "latency distribution", alignTable(["ms", "percentile", "requests"], rows)].join(
    "\n",
  );
}

function alignTable(header: string[], rows: string[][]): string {
  const widths = header.map((name, i) =>
    Math.max(name.length, ...rows.map((row) => row[i]!.length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

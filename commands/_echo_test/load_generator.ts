/**
 * {@linkcode runEchoLoad}: the load of `echo-test --load`, which is `linesock bench`'s engine
 * ({@linkcode runBench}) with echo verification: it opens `connections` connections, keeps up to
 * `pipeline` lines in flight on each (1 = request/response), optionally paces the total rate, and
 * verifies every byte that comes back. Lost and corrupted lines are counted and fail the run.
 *
 * The lines are slices of one pre-generated tape of random printable lines (deterministic per
 * connection and sequence, so nothing sent is stored); each received chunk is checked with one
 * native compare against the tape, and a chunk that differs is walked line by line, by the lengths
 * sent, to report the stream byte that differs.
 *
 * Latency is measured from the moment a line was written to the moment its `\n` came back; when paced,
 * from the moment it was due if it left later, so a server that holds the sender back cannot hide
 * that wait (no coordinated omission).
 *
 * @example A short verified run against linesock's echo server
 * ```ts
 * import { runEchoLoad } from "./load_generator.ts";
 * import { startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const report = await runEchoLoad({
 *   target: echo.target,
 *   connections: 2,
 *   lines: 1000,
 *   size: { min: 16, max: 256 },
 *   pipeline: 32,
 * });
 * assert.equal(report.passed, true);
 * assert.equal(report.linesReceived, 1000);
 * assert.equal(report.bytesReceived, report.bytesSent);
 * ```
 *
 * @module
 */
import { type BenchInterval, type BenchProgress, runBench } from "../_bench/engine.ts";
import type { DistributionRow } from "../_bench/histogram.ts";
import type { LineSizeRange } from "./_load_tape.ts";
import type { EchoTarget } from "./echo_target.ts";

export type { LineSizeRange } from "./_load_tape.ts";

/** Options of {@linkcode runEchoLoad}. */
export interface EchoLoadOptions {
  /** The server. */
  target: EchoTarget;
  /** Connections open at once. @default {4} */
  connections?: number;
  /** Lines to send in total (spread over the connections). @default {100000, or unlimited with durationMs} */
  lines?: number;
  /** Send for this long instead of a number of lines, in ms; lines in flight are still awaited. */
  durationMs?: number;
  /** Line size in bytes, `\n` included: one size, or a range picked per line. @default {64} */
  size?: number | LineSizeRange;
  /** Lines in flight per connection; 1 is request/response. @default {1} */
  pipeline?: number;
  /** Pace sending to this many lines per second in total; 0 or absent sends as fast as possible. */
  rate?: number;
  /** Give up on a connection whose echo makes no progress for this long, in ms. @default {10000} */
  timeoutMs?: number;
  /** The longest wait for a connection, in ms; 0 for no limit. @default {timeoutMs} */
  connectTimeoutMs?: number;
  /** Called about every `progressIntervalMs` with the counters so far. */
  onProgress?: (progress: EchoLoadProgress) => void;
  /** How often `onProgress` is called, in ms. @default {250} */
  progressIntervalMs?: number;
  /** Stops sending when aborted; lines in flight are still awaited. */
  signal?: AbortSignal;
}

/** Counters during a run. */
export interface EchoLoadProgress {
  /** Time since the start, in ms. */
  elapsedMs: number;
  /** Lines sent so far. */
  linesSent: number;
  /** Lines echoed so far (correct or not). */
  linesReceived: number;
  /** Lines echoed per second over the last interval. */
  currentLinesPerSecond: number;
  /** Bytes echoed so far. */
  bytesReceived: number;
  /** How far along, from 0 to 1 (by lines, or by time with a duration). */
  fraction: number;
  /** Mismatched plus lost lines so far, and connection errors. */
  errors: number;
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** The largest. */
  max: number;
  /** The mean. */
  mean: number;
}

/** The outcome of a run. */
export interface EchoLoadReport {
  /** Connections used. */
  connections: number;
  /** Lines in flight per connection. */
  pipeline: number;
  /** Line sizes. */
  size: LineSizeRange;
  /** The pacing rate, 0 for none. */
  rate: number;
  /** Wall time from the first write to the last echo, in ms. */
  elapsedMs: number;
  /** Lines sent. */
  linesSent: number;
  /** Lines that came back (correct or not). */
  linesReceived: number;
  /** Lines that came back with a wrong byte. */
  linesMismatched: number;
  /** Lines sent that never came back. */
  linesLost: number;
  /** Bytes sent. */
  bytesSent: number;
  /** Bytes received. */
  bytesReceived: number;
  /** Lines echoed per second. */
  linesPerSecond: number;
  /** Megabytes (10^6 bytes) per second sent. */
  sentMBps: number;
  /** Megabytes (10^6 bytes) per second received. */
  receivedMBps: number;
  /** Round-trip latency of the lines that came back. */
  latencyMs: LatencySummary;
  /** How many errors (mismatched lines, lost lines, connection failures) there were. */
  errorCount: number;
  /** The first few errors of each kind (wrong lines, then failed connections), one line each. */
  errors: string[];
  /** Whether every line came back exactly. */
  passed: boolean;
  /** The run second by second (`echo-test --load -v`; left out of `--json`). */
  intervals: BenchInterval[];
  /** The latency distribution, HdrHistogram's rows in ms (`-vv`; left out of `--json`). */
  distribution: DistributionRow[];
}

/**
 * Runs a verified load against an echo server.
 * @param options The target, shape of the load, and limits.
 * @returns Counts, throughput, latency and errors.
 * @throws {ConnectError} When the first connections cannot be made.
 * @throws {RangeError} For impossible options (no connections, a line size below 1, …).
 * @example Request/response latency
 * ```ts
 * import { runEchoLoad } from "./load_generator.ts";
 * import { startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const report = await runEchoLoad({ target: echo.target, connections: 1, lines: 200, pipeline: 1 });
 * assert.equal(report.linesReceived, 200);
 * assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.max);
 * ```
 */
export async function runEchoLoad(options: EchoLoadOptions): Promise<EchoLoadReport> {
  const size = typeof options.size === "number"
    ? { min: options.size, max: options.size }
    : options.size ?? { min: 64, max: 64 };
  const whole = (value: number, least: number, what: string) => {
    if (!(Number.isInteger(value) && value >= least)) {
      throw new RangeError(`${what} must be a whole number >= ${least}, not ${value}`);
    }
  };
  whole(size.min, 1, "The line size");
  whole(size.max, size.min, "The largest line size");
  const onProgress = options.onProgress;
  const { report } = await runBench({
    target: options.target,
    workload: { requests: [], greeting: [], crlf: false, echoSizes: size },
    ...(options.connections !== undefined ? { connections: options.connections } : {}),
    ...(options.lines !== undefined ? { count: options.lines } : {}),
    ...(options.durationMs !== undefined && options.durationMs > 0
      ? { durationMs: options.durationMs }
      : {}),
    ...(options.pipeline !== undefined ? { pipeline: options.pipeline } : {}),
    ...(options.rate !== undefined ? { rate: options.rate } : {}),
    timeoutMs: options.timeoutMs ?? 10_000,
    connectTimeoutMs: options.connectTimeoutMs ?? options.timeoutMs ?? 10_000,
    ...(options.progressIntervalMs !== undefined
      ? { progressIntervalMs: options.progressIntervalMs }
      : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(onProgress
      ? {
        onProgress: (progress: BenchProgress) =>
          onProgress({
            elapsedMs: progress.elapsedMs,
            linesSent: progress.sent,
            linesReceived: progress.answered,
            currentLinesPerSecond: progress.currentPerSecond,
            bytesReceived: progress.bytesReceived,
            fraction: progress.fraction,
            errors: progress.errors,
          }),
      }
      : {}),
  });
  const seconds = Math.max(0.000001, report.elapsedMs / 1000);
  const latency = report.latencyMs;
  return {
    connections: report.connections,
    pipeline: report.pipeline,
    size,
    rate: report.rate,
    elapsedMs: report.elapsedMs,
    linesSent: report.sent,
    linesReceived: report.answered,
    linesMismatched: report.errors.mismatched,
    linesLost: report.sent - report.answered,
    bytesSent: report.bytesSent,
    bytesReceived: report.bytesReceived,
    linesPerSecond: Math.round(report.answered / seconds),
    sentMBps: Math.round(report.bytesSent / seconds / 1e4) / 100,
    receivedMBps: Math.round(report.bytesReceived / seconds / 1e4) / 100,
    latencyMs: {
      p50: latency.p50,
      p90: latency.p90,
      p99: latency.p99,
      p999: latency.p999,
      max: latency.max,
      mean: latency.mean,
    },
    errorCount: report.errors.total,
    errors: report.errorMessages,
    passed: report.passed && report.sent === report.answered,
    intervals: report.intervals,
    distribution: report.distribution,
  };
}

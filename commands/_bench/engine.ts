/**
 * {@linkcode runBench}: the load engine of `linesock bench` (and of `echo-test --load`). It opens
 * the connections (an unreachable target fails here, before anything is measured), reads their
 * greetings, then runs one of three loads until a count of requests (`count`) or a duration
 * (`durationMs`) is done:
 *
 * - **closed loop**: each connection keeps up to `pipeline` requests in flight;
 * - **open loop** (`rate`): requests leave on a fixed schedule whatever the server does, at most
 *   `pipeline` in flight per connection, each timed from when it was due (coordinated omission
 *   corrected, as wrk2 does);
 * - **churn** (`churn`): a new connection for every request.
 *
 * Every reply is verified ({@linkcode ReplyVerifier}); latencies go to HDR histograms, and the
 * figures are also taken per interval (one second by default) for plots over time. A warm-up
 * (`warmupMs`) runs the load first without measuring it.
 *
 * Ending: a connection with requests in flight and no reply for `timeoutMs` has stalled and ends;
 * after the last request of a duration run, what is in flight gets `timeoutMs` more (the run's
 * deadline), then counts as timed out. `signal` stops sending and awaits what is in flight;
 * `abortSignal` ends at once (Ctrl-C), and what was in flight counts as interrupted, not as errors.
 *
 * @example PING and PONG against linesock's text protocol
 * ```ts
 * import { runBench } from "./engine.ts";
 * import { LineTemplate } from "./template.ts";
 * import { serve, textProtocol } from "../../lib/mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, textProtocol());
 * const { report } = await runBench({
 *   target: { port: (server.addr as Deno.NetAddr).port },
 *   workload: {
 *     requests: [{
 *       line: LineTemplate.fromText("PING"),
 *       reply: [{ kind: "exact", line: LineTemplate.fromText("PONG") }],
 *     }],
 *     greeting: [],
 *     crlf: false,
 *   },
 *   connections: 2,
 *   pipeline: 8,
 *   count: 1000,
 * });
 * assert.equal(report.answered, 1000);
 * assert.equal(report.errors.mismatched, 0);
 * assert.equal(report.passed, true);
 * ```
 *
 * @module
 */
import {
  openTransport,
  type Transport,
  type TransportOptions,
} from "../../lib/client/transport.ts";
import { ConnectionLostError, TimeoutError } from "../../lib/errors.ts";
import { ChurnLoad } from "./churn_load.ts";
import { ConnectionLoad, type LoadWorker, type RunContext, type Words } from "./connection_load.ts";
import { GreetingError, readGreeting } from "./greeting.ts";
import {
  type DistributionRow,
  type LatencyHistogram,
  type LatencySummary,
  loadHistograms,
} from "./histogram.ts";
import { type ErrorCounts, RunStats } from "./run_stats.ts";
import { type LoadPlan, planWorkload, type Workload } from "./workload.ts";

export type { LatencySummary } from "./histogram.ts";

/** Options of {@linkcode runBench}. */
export interface BenchOptions {
  /** The server (`hostname`/`port`, or `path`; `tls`). */
  target: TransportOptions;
  /** What to send and expect. */
  workload: Workload;
  /** Connections (closed and open loop), or transactions at once (churn). @default {4} */
  connections?: number;
  /** Requests in flight per connection, at most. @default {1} */
  pipeline?: number;
  /** Open loop: requests (churn: connections) per second in all; 0 for closed loop. @default {0} */
  rate?: number;
  /** A new connection for every request. @default {false} */
  churn?: boolean;
  /** Requests to measure. @default {100000, or unlimited with durationMs} */
  count?: number;
  /** Measure for this long instead, in ms. */
  durationMs?: number;
  /** Run this long first without measuring, in ms. @default {0} */
  warmupMs?: number;
  /** A connection with requests in flight and no reply for this long has stalled, in ms. @default {5000} */
  timeoutMs?: number;
  /** The longest wait for a connection, in ms. @default {10000} */
  connectTimeoutMs?: number;
  /** The longest reply line checked whole. @default {1048576} */
  maxLineBytes?: number;
  /** Length of the intervals of the per-interval figures, in ms. @default {1000} */
  intervalMs?: number;
  /** Called about every `progressIntervalMs`. */
  onProgress?: (progress: BenchProgress) => void;
  /** How often `onProgress` is called, in ms. @default {250} */
  progressIntervalMs?: number;
  /** Stops sending when aborted; what is in flight is still awaited (up to the deadline). */
  signal?: AbortSignal;
  /** Ends the run at once when aborted; what is in flight counts as interrupted. */
  abortSignal?: AbortSignal;
}

/** Counters during a run. */
export interface BenchProgress {
  /** Time since the start (warm-up included), in ms. */
  elapsedMs: number;
  /** Whether the warm-up is still running. */
  warmingUp: boolean;
  /** Requests sent so far (warm-up included). */
  sent: number;
  /** Requests answered so far (warm-up included). */
  answered: number;
  /** Bytes received so far. */
  bytesReceived: number;
  /** Requests answered per second since the last progress call. */
  currentPerSecond: number;
  /** Latency p99 of the current interval, in ms. */
  currentP99Ms: number;
  /** How far along, from 0 to 1. */
  fraction: number;
  /** Errors so far. */
  errors: number;
}

/** The figures of one interval. */
export interface BenchInterval {
  /** Its start, in ms since measuring began. */
  startMs: number;
  /** Its end, in ms since measuring began. */
  endMs: number;
  /** Requests sent in it. */
  sent: number;
  /** Requests answered in it. */
  answered: number;
  /** Errors in it. */
  errors: number;
  /** Requests answered per second. */
  requestsPerSecond: number;
  /** Bytes sent per second. */
  sentBytesPerSecond: number;
  /** Bytes received per second. */
  receivedBytesPerSecond: number;
  /** Latency of the requests answered in it, in ms (`null` when none were). */
  latencyMs: { p50: number; p90: number; p99: number; max: number } | null;
}

/** Every figure of a run. */
export interface BenchReport {
  /** `closed`, `open` (fixed rate) or `churn`. */
  mode: "closed" | "open" | "churn";
  /** Connections (churn: transactions at once). */
  connections: number;
  /** Requests in flight per connection, at most. */
  pipeline: number;
  /** The fixed rate, 0 for closed loop. */
  rate: number;
  /** The requests asked for (`null` for a duration run). */
  count: number | null;
  /** The duration asked for, in ms (`null` for a count run). */
  durationMs: number | null;
  /** The warm-up, in ms. */
  warmupMs: number;
  /** The stall timeout, in ms. */
  timeoutMs: number;
  /** How replies were verified: `tape` (fixed bytes), `count` (any line) or `lines`. */
  verify: LoadPlan["verify"];
  /** The measured window: from the warm-up's end to the last reply, in ms. */
  elapsedMs: number;
  /** Requests sent in the window. */
  sent: number;
  /** Requests answered in the window (right or wrong). */
  answered: number;
  /** Bytes sent in the window. */
  bytesSent: number;
  /** Bytes received in the window. */
  bytesReceived: number;
  /** Requests answered per second. */
  requestsPerSecond: number;
  /** Bytes sent per second. */
  sentBytesPerSecond: number;
  /** Bytes received per second. */
  receivedBytesPerSecond: number;
  /** Churn: connections opened in the window and per second. */
  connectionsOpened?: number;
  /** Churn: connections opened per second. */
  connectionsPerSecond?: number;
  /** Latency of the measured requests. */
  latencyMs: LatencySummary;
  /** Churn: connect times. */
  connectMs?: LatencySummary;
  /** Errors by kind (the whole run, warm-up included), and their total. */
  errors: ErrorCounts & { total: number };
  /** The first few errors of each kind, one line each (wrong replies first). */
  errorMessages: string[];
  /** What stalled, when something did. */
  stall: string | null;
  /** Open loop: how far the sends fell behind their schedule at worst, in ms. */
  scheduleLagMs: number;
  /** Requests in flight when the run was interrupted (not errors). */
  interrupted: number;
  /** Whether the run was interrupted (Ctrl-C). */
  wasInterrupted: boolean;
  /** Whether every request was answered rightly. */
  passed: boolean;
  /** Per-interval figures. */
  intervals: BenchInterval[];
  /** The latency distribution (HdrHistogram's percentile rows, values in ms). */
  distribution: DistributionRow[];
}

/** A finished run: the report and the `.hgrm` text of its latencies. */
export interface BenchOutcome {
  /** The figures. */
  report: BenchReport;
  /** HdrHistogram's percentile distribution of the latencies (values in ms). */
  hgrm: string;
}

const WRITE_BATCH_BYTES = 256 * 1024;
const DEFAULT_COUNT = 100_000;

/**
 * Runs a load.
 * @param options The target, the workload, the shape of the load and its limits.
 * @returns The report and the latency distribution.
 * @throws {ConnectError} When the connections cannot be made (before anything is measured).
 * @throws {TimeoutError} When connecting, or a greeting, takes too long.
 * @throws {RangeError} For impossible options (no connections, a pipeline of 0, …).
 */
export async function runBench(options: BenchOptions): Promise<BenchOutcome> {
  const settings = validate(options);
  const create = await loadHistograms();
  const histograms: LatencyHistogram[] = [create(), create()];
  if (settings.churn) histograms.push(create());
  const stats = new RunStats(histograms[0]!, histograms[1]!, histograms[2]);
  try {
    return await new BenchRun(settings, stats, options).execute();
  } finally {
    for (const histogram of histograms) histogram.destroy();
  }
}

interface Settings {
  target: TransportOptions;
  workload: Workload;
  connections: number;
  pipeline: number;
  rate: number;
  churn: boolean;
  count: number | undefined;
  durationMs: number | undefined;
  warmupMs: number;
  timeoutMs: number;
  connectTimeoutMs: number;
  maxLineBytes: number;
  intervalMs: number;
  progressIntervalMs: number;
}

function validate(options: BenchOptions): Settings {
  const whole = (value: number, least: number, what: string) => {
    if (!(Number.isInteger(value) && value >= least)) {
      throw new RangeError(`${what} must be a whole number >= ${least}, not ${value}`);
    }
  };
  const atLeastZero = (value: number, what: string) => {
    if (!(value >= 0 && Number.isFinite(value))) {
      throw new RangeError(`${what} must be >= 0, not ${value}`);
    }
  };
  const connections = options.connections ?? 4;
  const pipeline = options.pipeline ?? 1;
  whole(connections, 1, "Connections");
  whole(pipeline, 1, "Pipeline");
  const durationMs = options.durationMs;
  if (durationMs !== undefined) atLeastZero(durationMs, "The duration");
  const count = options.count ?? (durationMs === undefined ? DEFAULT_COUNT : undefined);
  if (count !== undefined) whole(count, 1, "Count");
  const rate = options.rate ?? 0;
  atLeastZero(rate, "The rate");
  const warmupMs = options.warmupMs ?? 0;
  atLeastZero(warmupMs, "The warm-up");
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs > 0)) throw new RangeError(`The timeout must be > 0, not ${timeoutMs}`);
  return {
    target: options.target,
    workload: options.workload,
    connections,
    pipeline,
    rate,
    churn: options.churn ?? false,
    count,
    durationMs,
    warmupMs,
    timeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    maxLineBytes: options.maxLineBytes ?? 1024 * 1024,
    intervalMs: options.intervalMs ?? 1000,
    progressIntervalMs: options.progressIntervalMs ?? 250,
  };
}

/** Sums of the workers' counters at a moment. */
interface Totals {
  at: number;
  sent: number;
  answered: number;
  bytesSent: number;
  bytesReceived: number;
  errors: number;
  opened: number;
}

class BenchRun {
  readonly #settings: Settings;
  readonly #stats: RunStats;
  readonly #options: BenchOptions;
  readonly #workers: LoadWorker[] = [];
  readonly #intervals: BenchInterval[] = [];
  /** The totals each interval started from. */
  readonly #intervalFrom: Totals[] = [];
  readonly #timers: ReturnType<typeof setTimeout>[] = [];
  #churn: ChurnLoad | undefined;
  #startedAt = 0;
  /** Totals when measuring began (undefined while warming up). */
  #window: Totals | undefined;
  #intervalStart: Totals | undefined;
  #stopped = false;
  #deadlineArmed = false;
  #interrupted = false;

  constructor(settings: Settings, stats: RunStats, options: BenchOptions) {
    this.#settings = settings;
    this.#stats = stats;
    this.#options = options;
  }

  async execute(): Promise<BenchOutcome> {
    const settings = this.#settings;
    const readBufferBytes = settings.churn
      ? 16 * 1024
      : settings.connections <= 16
      ? 256 * 1024
      : settings.connections <= 256
      ? 64 * 1024
      : 16 * 1024;
    const plan = planWorkload(settings.workload, {
      connections: settings.churn ? 1 : settings.connections,
      overhang: WRITE_BATCH_BYTES + readBufferBytes,
    });
    const target: TransportOptions = {
      ...settings.target,
      connectTimeoutMs: settings.connectTimeoutMs,
    };
    const opened = settings.churn ? [] : await this.#openAll(plan, target);
    if (settings.churn) (await openTransport(target)).close();

    const now = performance.now();
    this.#startedAt = now;
    // Nothing is measured until the warm-up ends (#beginMeasuring).
    this.#stats.measureFrom = Infinity;
    const context: RunContext = {
      plan,
      stats: this.#stats,
      connections: settings.connections,
      pipeline: settings.pipeline,
      rate: settings.rate,
      timeoutMs: settings.timeoutMs,
      maxLineBytes: settings.maxLineBytes,
      writeBatchBytes: WRITE_BATCH_BYTES,
      readBufferBytes,
      words: wordsOf(plan),
      startedAt: now,
    };
    this.#createWorkers(context, opened, target);
    this.#startTimers();
    const { signal, abortSignal } = this.#options;
    const onStop = () => this.#stop();
    const onAbort = () => this.#abort("interrupted");
    signal?.addEventListener("abort", onStop, { once: true });
    abortSignal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onStop();
    if (abortSignal?.aborted) onAbort();
    try {
      await Promise.all(this.#workers.map((worker) => worker.run()));
    } finally {
      for (const timer of this.#timers) {
        clearTimeout(timer);
        clearInterval(timer);
      }
      signal?.removeEventListener("abort", onStop);
      abortSignal?.removeEventListener("abort", onAbort);
    }
    return this.#outcome(plan);
  }

  /** Opens every connection and reads its greeting; the first failure fails the run. */
  async #openAll(
    plan: LoadPlan,
    target: TransportOptions,
  ): Promise<{ conn: Transport; leftover: Uint8Array }[]> {
    const settings = this.#settings;
    const results = await Promise.allSettled(
      Array.from({ length: settings.connections }, async (_, index) => {
        const conn = await openTransport(target);
        try {
          const leftover = await readGreeting(
            conn,
            plan,
            index + 1,
            settings.timeoutMs,
            settings.maxLineBytes,
            (message) => this.#stats.mismatch(message),
          );
          return { conn, leftover };
        } catch (error) {
          conn.close();
          if (error instanceof GreetingError) {
            throw error.timedOut
              ? new TimeoutError(`the greeting of connection ${index + 1}`, settings.timeoutMs)
              : new ConnectionLostError(`connection ${index + 1}: ${error.message}`);
          }
          throw error;
        }
      }),
    );
    const failed = results.find((result) => result.status === "rejected");
    if (failed) {
      for (const result of results) if (result.status === "fulfilled") result.value.conn.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return results.map((result) =>
      (result as PromiseFulfilledResult<{ conn: Transport; leftover: Uint8Array }>).value
    );
  }

  #createWorkers(
    context: RunContext,
    opened: { conn: Transport; leftover: Uint8Array }[],
    target: TransportOptions,
  ): void {
    const settings = this.#settings;
    const { count, durationMs, warmupMs, rate } = settings;
    // Open loop: the schedule says how many requests there are, warm-up included.
    let total = Infinity;
    if (rate > 0) {
      const warm = Math.round((rate * warmupMs) / 1000);
      total = warm + (count ?? Math.max(1, Math.round((rate * durationMs!) / 1000)));
    } else if (count !== undefined && warmupMs === 0) {
      total = count;
    }
    if (settings.churn) {
      this.#churn = new ChurnLoad(context, target, total);
      this.#workers.push(this.#churn);
      return;
    }
    opened.forEach(({ conn, leftover }, index) => {
      this.#workers.push(
        new ConnectionLoad(
          context,
          conn,
          index,
          rate > 0 ? share(total, settings.connections, index) : shareOf(total, settings, index),
          leftover,
        ),
      );
    });
  }

  #startTimers(): void {
    const settings = this.#settings;
    const start = this.#startedAt;
    if (settings.warmupMs > 0) {
      this.#later(settings.warmupMs, () => this.#beginMeasuring());
    } else {
      this.#beginMeasuring();
    }
    if (settings.durationMs !== undefined) {
      this.#later(settings.warmupMs + settings.durationMs, () => {
        if (settings.rate > 0) this.#armDeadline();
        else this.#stop();
      });
    }
    let lastAnswered = 0;
    let lastAt = start;
    const ticker = setInterval(() => {
      const now = performance.now();
      for (const worker of this.#workers) worker.checkStall(now);
      const onProgress = this.#options.onProgress;
      if (onProgress) {
        const totals = this.#totals(now);
        const elapsedMs = now - start;
        const planned = settings.warmupMs + (settings.durationMs ?? 0);
        onProgress({
          elapsedMs,
          warmingUp: this.#window === undefined,
          sent: totals.sent,
          answered: totals.answered,
          bytesReceived: totals.bytesReceived,
          currentPerSecond: (totals.answered - lastAnswered) /
            Math.max(0.001, (now - lastAt) / 1000),
          currentP99Ms: this.#stats.interval.count > 0 ? this.#stats.interval.summary().p99 : 0,
          fraction: Math.min(
            1,
            settings.durationMs !== undefined
              ? elapsedMs / planned
              : this.#window
              ? (totals.answered - this.#window.answered) / settings.count!
              : 0,
          ),
          errors: totals.errors,
        });
        lastAnswered = totals.answered;
        lastAt = now;
      }
    }, settings.progressIntervalMs);
    this.#timers.push(ticker);
  }

  #later(ms: number, run: () => void): void {
    this.#timers.push(setTimeout(run, ms));
  }

  /** The warm-up's end: what came before is not measured. */
  #beginMeasuring(): void {
    const settings = this.#settings;
    // Without a warm-up, measuring starts with the run (the first request is due at its start).
    const now = settings.warmupMs > 0 ? performance.now() : this.#startedAt;
    this.#stats.measureFrom = now;
    if (settings.warmupMs > 0) {
      this.#stats.connect?.reset();
      // A count run measures `count` requests from here on.
      if (settings.rate === 0 && settings.count !== undefined) {
        this.#workers.forEach((worker, index) =>
          worker.measureMore(
            this.#churn ? settings.count! : share(settings.count!, this.#workers.length, index),
          )
        );
      }
    }
    this.#stats.interval.reset();
    // Replies to requests sent during the warm-up are not counted: each connection answers in
    // order, so every reply after the first `sent` ones answers a measured request.
    const totals = this.#totals(now);
    this.#window = { ...totals, answered: totals.sent };
    this.#intervalStart = this.#window;
    const tick = () => {
      this.#closeInterval(performance.now());
      const next = this.#window!.at + (this.#intervals.length + 1) * settings.intervalMs;
      this.#timers.push(setTimeout(tick, Math.max(0, next - performance.now())));
    };
    this.#timers.push(setTimeout(tick, settings.intervalMs));
  }

  /**
   * Ends the current interval. The run's last, partial interval is folded into the one before
   * when it is short, so that a few milliseconds of draining do not plot as a spike.
   */
  #closeInterval(now: number, last = false): void {
    let from = this.#intervalStart;
    if (!from) return;
    const to = this.#totals(now);
    const summary = this.#stats.closeInterval();
    let latency: BenchInterval["latencyMs"] = summary
      ? { p50: summary.p50, p90: summary.p90, p99: summary.p99, max: summary.max }
      : null;
    const previous = this.#intervals.at(-1);
    if (last && previous && to.at - from.at < this.#settings.intervalMs / 4) {
      this.#intervals.pop();
      from = this.#intervalFrom.pop()!;
      // The longer interval's percentiles stand; the largest latency is the larger one.
      latency = previous.latencyMs && latency
        ? { ...previous.latencyMs, max: Math.max(previous.latencyMs.max, latency.max) }
        : previous.latencyMs ?? latency;
    }
    this.#intervalFrom.push(from);
    const seconds = Math.max(0.001, (to.at - from.at) / 1000);
    const base = this.#window!.at;
    this.#intervals.push({
      startMs: round(from.at - base),
      endMs: round(to.at - base),
      sent: to.sent - from.sent,
      answered: Math.max(0, to.answered - from.answered),
      errors: to.errors - from.errors,
      requestsPerSecond: round(Math.max(0, to.answered - from.answered) / seconds),
      sentBytesPerSecond: Math.round((to.bytesSent - from.bytesSent) / seconds),
      receivedBytesPerSecond: Math.round((to.bytesReceived - from.bytesReceived) / seconds),
      latencyMs: latency,
    });
    this.#intervalStart = to;
  }

  #totals(at: number): Totals {
    const totals: Totals = {
      at,
      sent: 0,
      answered: 0,
      bytesSent: 0,
      bytesReceived: 0,
      errors: this.#stats.errorCount,
      opened: this.#churn?.opened ?? 0,
    };
    for (const worker of this.#workers) {
      totals.sent += worker.sent;
      totals.answered += worker.answered;
      totals.bytesSent += worker.bytesSent;
      totals.bytesReceived += worker.bytesReceived;
    }
    return totals;
  }

  /** Sends no more; what is in flight gets until the deadline. */
  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const worker of this.#workers) worker.stop();
    this.#armDeadline();
  }

  #armDeadline(): void {
    if (this.#deadlineArmed) return;
    this.#deadlineArmed = true;
    this.#later(this.#settings.timeoutMs, () => this.#abort("deadline"));
  }

  #abort(reason: "interrupted" | "deadline"): void {
    if (reason === "interrupted") this.#interrupted = true;
    this.#stopped = true;
    for (const worker of this.#workers) worker.abort(reason);
  }

  #outcome(plan: LoadPlan): BenchOutcome {
    const settings = this.#settings;
    const stats = this.#stats;
    const now = performance.now();
    const end = Math.min(now, Math.max(...this.#workers.map((worker) => worker.finishedAt || now)));
    const totals = this.#totals(end);
    // A run that ended during its warm-up measured nothing.
    const window = this.#window ?? totals;
    if (this.#intervalStart && (end - this.#intervalStart.at >= 1 || stats.interval.count > 0)) {
      this.#closeInterval(end, true);
    }
    stats.closeInterval();
    const elapsedMs = Math.max(0, end - window.at);
    const seconds = Math.max(0.001, elapsedMs / 1000);
    const answered = Math.max(0, totals.answered - window.answered);
    const bytesSent = totals.bytesSent - window.bytesSent;
    const bytesReceived = totals.bytesReceived - window.bytesReceived;
    const errors = { ...stats.errors, total: stats.errorCount };
    const stall = stats.errors.stalled === 0
      ? null
      : `${
        stats.errors.stalled === 1 ? "1 connection" : `${stats.errors.stalled} connections`
      } stalled: no reply within ${settings.timeoutMs} ms, ${stats.errors.timedOut} request${
        stats.errors.timedOut === 1 ? "" : "s"
      } unanswered`;
    const report: BenchReport = {
      mode: settings.churn ? "churn" : settings.rate > 0 ? "open" : "closed",
      connections: settings.connections,
      pipeline: settings.pipeline,
      rate: settings.rate,
      count: settings.count ?? null,
      durationMs: settings.durationMs ?? null,
      warmupMs: settings.warmupMs,
      timeoutMs: settings.timeoutMs,
      verify: plan.verify,
      elapsedMs: round(elapsedMs),
      sent: totals.sent - window.sent,
      answered,
      bytesSent,
      bytesReceived,
      requestsPerSecond: round(answered / seconds),
      sentBytesPerSecond: Math.round(bytesSent / seconds),
      receivedBytesPerSecond: Math.round(bytesReceived / seconds),
      ...(settings.churn
        ? {
          connectionsOpened: totals.opened - window.opened,
          connectionsPerSecond: round((totals.opened - window.opened) / seconds),
        }
        : {}),
      latencyMs: stats.latency.summary(),
      ...(stats.connect ? { connectMs: stats.connect.summary() } : {}),
      errors,
      errorMessages: [...stats.mismatches, ...stats.failures],
      stall,
      scheduleLagMs: round(stats.scheduleLagMs),
      interrupted: stats.interrupted,
      wasInterrupted: this.#interrupted,
      passed: errors.total === 0,
      intervals: this.#intervals,
      distribution: stats.latency.distribution(),
    };
    return { report, hgrm: stats.latency.hgrm() };
  }
}

/** Closed loop: a count run splits the count; otherwise no limit (until stopped). */
function shareOf(total: number, settings: Settings, index: number): number {
  return total === Infinity ? Infinity : share(total, settings.connections, index);
}

/** Connection `index`'s part of `total` requests taken in turns. */
function share(total: number, connections: number, index: number): number {
  return Math.floor(total / connections) + (index < total % connections ? 1 : 0);
}

function wordsOf(plan: LoadPlan): Words {
  return plan.byteAligned
    ? { reply: "echo", count: (n) => `${n} lines` }
    : { reply: "reply", count: (n) => `${n} request${n === 1 ? "" : "s"}` };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

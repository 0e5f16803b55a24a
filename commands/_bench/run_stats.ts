/**
 * {@linkcode RunStats}: what every loaded connection of a run reports into: latencies (the whole
 * measured window, the current per-second interval, and connect times in churn mode), and errors by
 * kind with the first few of each described. Counters of requests and bytes stay on the
 * connections themselves (plain fields on the hot path) and are summed when read.
 *
 * Warm-up: latencies of requests sent (or due) before {@linkcode RunStats.measureFrom} are not
 * recorded; errors always are. Latencies are recorded once, into the current interval's histogram,
 * which is added to the window's when the interval closes.
 *
 * @module
 */
import type { LatencyHistogram, LatencySummary } from "./histogram.ts";

/** Errors by kind. */
export interface ErrorCounts {
  /** Requests whose reply was wrong. */
  mismatched: number;
  /** Requests unanswered when their connection stalled (no reply for `--timeout`) or the run's deadline passed. */
  timedOut: number;
  /** Requests unanswered when their connection was closed, reset or failed. */
  lost: number;
  /** Connections ended by data that answered no request, or by a reply line too long. */
  protocol: number;
  /** Connections that could not be opened during the run (churn mode). */
  connect: number;
  /** Connections that failed: closed or reset by the server, stalled, or ended by bad data. */
  connections: number;
  /** Of those, connections that stalled (no reply for `--timeout`, or unanswered at the deadline). */
  stalled: number;
}

/** Why a connection ended early. */
export type FailureKind = "closed" | "timeout" | "protocol";

/** How many errors of each kind are described (the rest are counted). */
export const ERRORS_DESCRIBED = 10;

/** The shared statistics of a run. */
export class RunStats {
  /** Latencies in the measured window. */
  readonly latency: LatencyHistogram;
  /** Latencies in the current interval. */
  readonly interval: LatencyHistogram;
  /** Connect times (churn mode). */
  readonly connect: LatencyHistogram | undefined;
  /** When measuring started (the warm-up's end), as `performance.now()`; `Infinity` before. */
  measureFrom = Infinity;
  /** The errors. */
  readonly errors: ErrorCounts = {
    mismatched: 0,
    timedOut: 0,
    lost: 0,
    protocol: 0,
    connect: 0,
    connections: 0,
    stalled: 0,
  };
  /** Requests left unanswered by an interruption (Ctrl-C): not errors. */
  interrupted = 0;
  /** The first few wrong replies. */
  readonly mismatches: string[] = [];
  /** The first few connection failures. */
  readonly failures: string[] = [];
  /** How late the open loop's sends were behind their schedule, at most, in ms. */
  scheduleLagMs = 0;

  /**
   * @param latency The window's histogram.
   * @param interval The interval's histogram.
   * @param connect The connect times' histogram (churn mode).
   */
  constructor(
    latency: LatencyHistogram,
    interval: LatencyHistogram,
    connect?: LatencyHistogram,
  ) {
    this.latency = latency;
    this.interval = interval;
    this.connect = connect;
  }

  /**
   * Records latencies (in the current interval; {@linkcode RunStats.closeInterval} moves them to
   * the window's histogram, so that each is recorded once on the hot path).
   * @param ms The latency in milliseconds.
   * @param count How many requests had it.
   */
  record(ms: number, count: number): void {
    this.interval.record(ms * 1000, count);
  }

  /**
   * Ends the current interval: its latencies join the window's.
   * @returns The interval's percentiles, or `undefined` when it recorded none.
   */
  closeInterval(): LatencySummary | undefined {
    if (this.interval.count === 0) return undefined;
    const summary = this.interval.summary();
    this.latency.add(this.interval);
    this.interval.reset();
    return summary;
  }

  /**
   * Counts a wrong reply.
   * @param message What was wrong.
   */
  mismatch(message: string): void {
    this.errors.mismatched++;
    if (this.mismatches.length < ERRORS_DESCRIBED) this.mismatches.push(message);
  }

  /**
   * Counts a connection that failed, and the requests it left unanswered.
   * @param kind Why.
   * @param message What happened.
   * @param unanswered Requests in flight on it.
   */
  failure(kind: FailureKind, message: string, unanswered: number): void {
    this.errors.connections++;
    if (kind === "timeout") {
      this.errors.timedOut += unanswered;
      this.errors.stalled++;
    } else {
      this.errors.lost += unanswered;
    }
    if (kind === "protocol") this.errors.protocol++;
    if (this.failures.length < ERRORS_DESCRIBED) this.failures.push(message);
  }

  /**
   * Counts a connection that could not be opened.
   * @param message Why.
   */
  connectFailure(message: string): void {
    this.errors.connect++;
    if (this.failures.length < ERRORS_DESCRIBED) this.failures.push(message);
  }

  /** All errors: wrong replies, failed connections, failed connects. */
  get errorCount(): number {
    return this.errors.mismatched + this.errors.connections + this.errors.connect;
  }
}

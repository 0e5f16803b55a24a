/**
 * {@linkcode runEchoLoad}: a load generator for line-echo servers. It opens `connections` connections,
 * keeps up to `pipeline` lines in flight on each (1 = request/response), optionally paces the total
 * rate, and verifies every byte that comes back. Lost and corrupted lines are counted and fail the
 * run. Latency percentiles come from an HDR histogram (`hdr-histogram-js`, loaded only when a load
 * runs).
 *
 * The generator is built not to be the bottleneck: the lines are slices of one pre-generated tape
 * (deterministic per connection and sequence, so nothing sent is stored), many lines leave in one
 * write, replies are read into large buffers, and each received chunk is checked with one native
 * compare against the tape; line boundaries are only walked for counting and latency.
 *
 * Latency is measured from the moment a line was written to the moment its `\n` came back; when paced,
 * from the moment it was due if it left later, so a server that holds the sender back cannot hide
 * that wait (no coordinated omission).
 *
 * @example A short verified run against linesock's echo server
 * ```ts
 * import { runEchoLoad } from "./load_generator.ts";
 * import { startEmbeddedEcho } from "./target.ts";
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
import { describeSocketError } from "./_socket_errors.ts";
import { bytesEqual, firstDifference } from "./_byte_compare.ts";
import { buildLoadTape, type LineSizeRange, type LoadTape } from "./_load_tape.ts";
import { type EchoTarget, openEchoConnection } from "./target.ts";
import type { Transport } from "../../lib/client/transport.ts";

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
}

const WRITE_BATCH_BYTES = 256 * 1024;
const READ_BUFFER_BYTES = 256 * 1024;
const MAX_ERRORS_KEPT = 10;
/** Paced lines due within this many ms are sent at once (about the timer resolution). */
const PACING_LOOKAHEAD_MS = 1;
/** Microseconds; the histogram tracks latencies up to an hour. */
const HIGHEST_TRACKABLE_US = 3_600_000_000;

/** The part of an hdr-histogram-js histogram used here. */
interface Histogram {
  recordValueWithCount(value: number, count: number): void;
  getValueAtPercentile(percentile: number): number;
  readonly maxValue: number;
  readonly mean: number;
  readonly totalCount: number;
  destroy(): void;
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
 * import { startEmbeddedEcho } from "./target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const report = await runEchoLoad({ target: echo.target, connections: 1, lines: 200, pipeline: 1 });
 * assert.equal(report.linesReceived, 200);
 * assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.max);
 * ```
 */
export async function runEchoLoad(options: EchoLoadOptions): Promise<EchoLoadReport> {
  const settings = validate(options);
  const { build } = await import("hdr-histogram-js");
  const histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
  }) as unknown as Histogram;
  const tape = buildLoadTape(
    settings.size,
    settings.connections,
    Math.max(WRITE_BATCH_BYTES, settings.size.max) + READ_BUFFER_BYTES,
  );
  const run = new LoadRun(settings, tape, histogram);
  try {
    return await run.execute(options);
  } finally {
    histogram.destroy();
  }
}

interface Settings {
  target: EchoTarget;
  connections: number;
  lines: number;
  durationMs: number;
  size: LineSizeRange;
  pipeline: number;
  rate: number;
  timeoutMs: number;
}

function validate(options: EchoLoadOptions): Settings {
  const connections = options.connections ?? 4;
  const size = typeof options.size === "number"
    ? { min: options.size, max: options.size }
    : options.size ?? { min: 64, max: 64 };
  const pipeline = options.pipeline ?? 1;
  const durationMs = options.durationMs ?? 0;
  const lines = options.lines ?? (durationMs > 0 ? Infinity : 100_000);
  const whole = (value: number, least: number, what: string) => {
    if (!(Number.isInteger(value) && value >= least)) {
      throw new RangeError(`${what} must be a whole number >= ${least}, not ${value}`);
    }
  };
  whole(connections, 1, "Connections");
  whole(pipeline, 1, "Pipeline");
  whole(size.min, 1, "The line size");
  whole(size.max, size.min, "The largest line size");
  if (lines !== Infinity) whole(lines, 1, "Lines");
  if (!(durationMs >= 0)) throw new RangeError(`The duration must be >= 0, not ${durationMs}`);
  const rate = options.rate ?? 0;
  if (!(rate >= 0)) throw new RangeError(`The rate must be >= 0, not ${rate}`);
  return {
    target: options.target,
    connections,
    lines,
    durationMs,
    size,
    pipeline,
    rate,
    timeoutMs: options.timeoutMs ?? 10_000,
  };
}

class LoadRun {
  readonly settings: Settings;
  readonly tape: LoadTape;
  readonly histogram: Histogram;
  readonly lineErrors: string[] = [];
  readonly connectionErrors: string[] = [];
  errorCount = 0;
  startedAt = 0;
  stopSending = false;
  readonly workers: ConnectionLoad[] = [];

  constructor(settings: Settings, tape: LoadTape, histogram: Histogram) {
    this.settings = settings;
    this.tape = tape;
    this.histogram = histogram;
  }

  /** Counts an error; the first few of each kind are kept, so a flood of bad lines hides no failure. */
  error(message: string, kind: "line" | "connection"): void {
    this.errorCount++;
    const kept = kind === "line" ? this.lineErrors : this.connectionErrors;
    if (kept.length < MAX_ERRORS_KEPT) kept.push(message);
  }

  async execute(options: EchoLoadOptions): Promise<EchoLoadReport> {
    const { settings } = this;
    const conns = await Promise.all(
      Array.from(
        { length: settings.connections },
        () =>
          openEchoConnection(settings.target, settings.timeoutMs).then(
            (conn) => conn,
            (error) => error as Error,
          ),
      ),
    );
    const failed = conns.find((conn): conn is Error => conn instanceof Error);
    if (failed) {
      for (const conn of conns) if (!(conn instanceof Error)) conn.close();
      throw failed;
    }
    const perConnection = settings.lines / settings.connections;
    this.startedAt = performance.now();
    (conns as Transport[]).forEach((conn, index) => {
      const quota = settings.lines === Infinity
        ? Infinity
        : Math.floor(perConnection) + (index < settings.lines % settings.connections ? 1 : 0);
      this.workers.push(new ConnectionLoad(this, conn, index, quota));
    });
    const onAbort = () => this.stop();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) this.stop();
    const durationTimer = settings.durationMs > 0
      ? setTimeout(() => this.stop(), settings.durationMs)
      : undefined;
    let lastReceived = 0;
    let lastAt = this.startedAt;
    const watchdog = setInterval(() => {
      const now = performance.now();
      for (const worker of this.workers) worker.checkStall(now);
      if (options.onProgress) {
        const received = this.sum((worker) => worker.linesReceived);
        options.onProgress({
          ...this.progress(now),
          currentLinesPerSecond: (received - lastReceived) / ((now - lastAt) / 1000),
        });
        lastReceived = received;
        lastAt = now;
      }
    }, options.progressIntervalMs ?? 250);
    try {
      await Promise.all(this.workers.map((worker) => worker.run()));
    } finally {
      clearInterval(watchdog);
      clearTimeout(durationTimer);
      options.signal?.removeEventListener("abort", onAbort);
    }
    return this.report();
  }

  stop(): void {
    this.stopSending = true;
    for (const worker of this.workers) worker.stop();
  }

  sum(of: (worker: ConnectionLoad) => number): number {
    return this.workers.reduce((total, worker) => total + of(worker), 0);
  }

  progress(now: number): EchoLoadProgress {
    const elapsedMs = now - this.startedAt;
    const linesReceived = this.sum((worker) => worker.linesReceived);
    const { lines, durationMs } = this.settings;
    return {
      elapsedMs,
      linesSent: this.sum((worker) => worker.linesSent),
      linesReceived,
      currentLinesPerSecond: 0,
      bytesReceived: this.sum((worker) => worker.bytesReceived),
      fraction: Math.min(1, lines !== Infinity ? linesReceived / lines : elapsedMs / durationMs),
      errors: this.errorCount,
    };
  }

  report(): EchoLoadReport {
    const elapsedMs = Math.max(
      0.001,
      Math.max(...this.workers.map((worker) => worker.finishedAt)) - this.startedAt,
    );
    const seconds = elapsedMs / 1000;
    const linesReceived = this.sum((worker) => worker.linesReceived);
    const linesMismatched = this.sum((worker) => worker.linesMismatched);
    const linesLost = this.sum((worker) => worker.linesSent - worker.linesReceived);
    const bytesSent = this.sum((worker) => worker.bytesSent);
    const bytesReceived = this.sum((worker) => worker.bytesReceived);
    const h = this.histogram;
    const ms = (us: number) => Math.round(us) / 1000;
    const empty = h.totalCount === 0;
    return {
      connections: this.settings.connections,
      pipeline: this.settings.pipeline,
      size: this.settings.size,
      rate: this.settings.rate,
      elapsedMs: Math.round(elapsedMs * 1000) / 1000,
      linesSent: this.sum((worker) => worker.linesSent),
      linesReceived,
      linesMismatched,
      linesLost,
      bytesSent,
      bytesReceived,
      linesPerSecond: Math.round(linesReceived / seconds),
      sentMBps: Math.round(bytesSent / seconds / 1e4) / 100,
      receivedMBps: Math.round(bytesReceived / seconds / 1e4) / 100,
      latencyMs: {
        p50: empty ? 0 : ms(h.getValueAtPercentile(50)),
        p90: empty ? 0 : ms(h.getValueAtPercentile(90)),
        p99: empty ? 0 : ms(h.getValueAtPercentile(99)),
        p999: empty ? 0 : ms(h.getValueAtPercentile(99.9)),
        max: empty ? 0 : ms(h.maxValue),
        mean: empty ? 0 : ms(h.mean),
      },
      errorCount: this.errorCount,
      errors: [...this.lineErrors, ...this.connectionErrors],
      passed: this.errorCount === 0 && linesMismatched === 0 && linesLost === 0,
    };
  }
}

/** One connection's sender and verifier. */
class ConnectionLoad {
  readonly #run: LoadRun;
  readonly #conn: Transport;
  readonly #index: number;
  readonly #quota: number;
  readonly #pipeline: number;
  readonly #linesPerMs: number;
  // Sending.
  linesSent = 0;
  bytesSent = 0;
  #sendLine: number;
  // Receiving and verifying.
  linesReceived = 0;
  linesMismatched = 0;
  bytesReceived = 0;
  #recvLine: number;
  #recvLineEnd: number;
  #tapeCursor: number;
  #lineBad = false;
  // Batches in flight: the sequence after each batch's last line, and when it was sent.
  #batchEnds: number[] = [];
  #batchSentAt: number[] = [];
  #batchHead = 0;
  #lastProgressAt = 0;
  #wake: (() => void) | undefined;
  #failed = false;
  #closed = false;
  finishedAt = 0;

  constructor(run: LoadRun, conn: Transport, index: number, quota: number) {
    this.#run = run;
    this.#conn = conn;
    this.#index = index;
    this.#quota = quota;
    this.#pipeline = run.settings.pipeline;
    this.#linesPerMs = run.settings.rate / run.settings.connections / 1000;
    const phase = run.tape.phase(index);
    this.#sendLine = phase;
    this.#recvLine = phase;
    this.#tapeCursor = run.tape.lineOffsets[phase]!;
    this.#recvLineEnd = run.tape.lineLengths[phase]!;
  }

  get #done(): boolean {
    return this.linesSent >= this.#quota || this.#run.stopSending || this.#failed;
  }

  /** Ends sending; a connection with nothing in flight is closed at once (its pending read ends). */
  stop(): void {
    this.wake();
    if (this.linesSent === this.linesReceived) this.#close();
  }

  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async run(): Promise<void> {
    this.#lastProgressAt = performance.now();
    const sending = this.#send().catch((error) =>
      this.#fail(`write failed: ${describeSocketError(error)}`)
    );
    try {
      await this.#receive();
    } finally {
      this.#fail(""); // Stops the sender if the receiver ended first.
      this.wake();
      await sending;
      this.#close();
      this.finishedAt ||= performance.now();
    }
  }

  checkStall(now: number): void {
    const outstanding = this.linesSent - this.linesReceived;
    if (outstanding > 0 && now - this.#lastProgressAt > this.#run.settings.timeoutMs) {
      this.#fail(
        `no echo for ${this.#run.settings.timeoutMs} ms with ${outstanding} lines outstanding`,
      );
      this.#close();
    } else if (outstanding === 0) {
      this.#lastProgressAt = now;
    }
  }

  async #send(): Promise<void> {
    const { tape } = this.#run;
    const lines = tape.lineLengths.length;
    const started = this.#run.startedAt;
    while (!this.#done) {
      let allowed = this.#pipeline - (this.linesSent - this.linesReceived);
      if (this.#linesPerMs > 0) {
        // Lines due within the timer resolution go now: sleeping for less than that oversleeps.
        const horizon = performance.now() + PACING_LOOKAHEAD_MS - started;
        const due = Math.floor(horizon * this.#linesPerMs) + 1;
        allowed = Math.min(allowed, due - this.linesSent);
        if (allowed <= 0 && this.#pipeline > this.linesSent - this.linesReceived) {
          // Not due yet: sleep until the next line is nearly due.
          const at = started + this.linesSent / this.#linesPerMs - PACING_LOOKAHEAD_MS;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              this.#wake = undefined;
              resolve();
            }, Math.max(0, at - performance.now()));
            this.#wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          continue;
        }
      }
      allowed = Math.min(allowed, this.#quota - this.linesSent);
      if (allowed <= 0) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      // As many lines as allowed and fit in one write (at least one line).
      const start = tape.lineOffsets[this.#sendLine]!;
      let bytes = 0;
      let count = 0;
      let line = this.#sendLine;
      while (count < allowed) {
        const length = tape.lineLengths[line]!;
        if (count > 0 && bytes + length > WRITE_BATCH_BYTES) break;
        bytes += length;
        count++;
        if (++line === lines) line = 0;
      }
      this.#batchEnds.push(this.linesSent + count);
      this.#batchSentAt.push(performance.now());
      this.#sendLine = line;
      this.linesSent += count;
      const chunk = tape.bytes.subarray(start, start + bytes);
      for (let offset = 0; offset < chunk.length;) {
        offset += await this.#conn.write(chunk.subarray(offset));
      }
      this.bytesSent += bytes;
    }
  }

  async #receive(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const { tape, histogram } = this.#run;
    const lines = tape.lineLengths.length;
    const paced = this.#linesPerMs > 0;
    const started = this.#run.startedAt;
    while (!(this.#done && this.linesReceived >= this.linesSent)) {
      let count: number | null;
      try {
        count = await this.#conn.read(buffer);
      } catch (error) {
        const finished = this.#done && this.linesReceived >= this.linesSent;
        if (!finished && !this.#failed) this.#fail(`read failed: ${describeSocketError(error)}`);
        return;
      }
      if (count === null) {
        if (this.linesReceived < this.linesSent) {
          this.#fail(
            `connection closed by the server with ${
              this.linesSent - this.linesReceived
            } lines outstanding`,
          );
        }
        return;
      }
      const now = performance.now();
      this.#lastProgressAt = now;
      const chunkStart = this.bytesReceived;
      const chunkEnd = chunkStart + count;
      if (chunkEnd > this.bytesSent) {
        this.#fail(`received ${chunkEnd - this.bytesSent} bytes more than were sent`);
        return;
      }
      const chunk = buffer.subarray(0, count);
      const cursor = this.#tapeCursor;
      const differs = !bytesEqual(chunk, tape.bytes.subarray(cursor, cursor + count));
      // Walk the lines that end in this chunk: count them, time them, and (only when the chunk
      // differs) find which of them are wrong.
      let segmentStart = chunkStart;
      let batchCount = 0;
      while (segmentStart < chunkEnd) {
        const segmentEnd = Math.min(this.#recvLineEnd, chunkEnd);
        if (differs && !this.#lineBad) {
          const from = segmentStart - chunkStart;
          const expectedAt = cursor + from;
          const at = firstDifference(
            chunk.subarray(from, segmentEnd - chunkStart),
            tape.bytes.subarray(expectedAt, expectedAt + segmentEnd - segmentStart),
          );
          if (at !== -1) {
            this.#lineBad = true;
            this.#run.error(
              `connection ${this.#index + 1}, line ${this.linesReceived + 1}: byte ${
                segmentStart + at
              } of the stream differs (expected 0x${hex(tape.bytes[expectedAt + at]!)}, got 0x${
                hex(chunk[from + at]!)
              })`,
              "line",
            );
          }
        }
        if (segmentEnd < this.#recvLineEnd) break;
        // A line is complete.
        if (this.#lineBad) {
          this.linesMismatched++;
          this.#lineBad = false;
        }
        this.linesReceived++;
        if (paced) {
          // From when the line was due (so a sender held back by a slow server counts the wait), or
          // from when it left, if it left early.
          const due = started + (this.linesReceived - 1) / this.#linesPerMs;
          const sentAt = this.#batchSentAt[this.#batchHead]!;
          histogram.recordValueWithCount(latencyUs(now - Math.min(due, sentAt)), 1);
        } else {
          batchCount++;
        }
        if (this.linesReceived === this.#batchEnds[this.#batchHead]) {
          if (!paced) {
            histogram.recordValueWithCount(
              latencyUs(now - this.#batchSentAt[this.#batchHead]!),
              batchCount,
            );
            batchCount = 0;
          }
          this.#batchHead++;
          if (this.#batchHead > 1024) this.#compactBatches();
        }
        if (++this.#recvLine === lines) this.#recvLine = 0;
        segmentStart = this.#recvLineEnd;
        this.#recvLineEnd += tape.lineLengths[this.#recvLine]!;
      }
      if (batchCount > 0) {
        histogram.recordValueWithCount(
          latencyUs(now - this.#batchSentAt[this.#batchHead]!),
          batchCount,
        );
      }
      this.bytesReceived = chunkEnd;
      this.#tapeCursor = cursor + count >= tape.period
        ? cursor + count - tape.period
        : cursor + count;
      this.wake();
    }
  }

  #compactBatches(): void {
    this.#batchEnds = this.#batchEnds.slice(this.#batchHead);
    this.#batchSentAt = this.#batchSentAt.slice(this.#batchHead);
    this.#batchHead = 0;
  }

  #fail(message: string): void {
    if (this.#failed) return;
    this.#failed = true;
    this.finishedAt ||= performance.now();
    if (message) this.#run.error(`connection ${this.#index + 1}: ${message}`, "connection");
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }
}

function latencyUs(ms: number): number {
  return Math.min(HIGHEST_TRACKABLE_US, Math.max(1, Math.round(ms * 1000)));
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

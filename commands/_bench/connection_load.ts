/**
 * {@linkcode ConnectionLoad}: one connection of a closed- or open-loop run. It keeps up to
 * `pipeline` requests in flight, sends them in batches (slices of the request tape, or rendered
 * when they have placeholders), hands every received chunk to its {@linkcode ReplyVerifier}, and
 * times each completed request from the write of its batch (closed loop) or from when it was due
 * (open loop: the schedule does not wait for the server, so a slow reply cannot hide the requests
 * that should have left meanwhile; coordinated omission corrected).
 *
 * There is no sender task: {@linkcode ConnectionLoad.pump} is called after each write, after each
 * received chunk, and by a timer when the next scheduled request is due, and starts at most one
 * write at a time. In closed loop with a deep pipeline it waits until a quarter of the window (at
 * most 64 KiB of requests) is free, so that writes stay large.
 *
 * @module
 */
import type { Transport } from "../../lib/client/transport.ts";
import { describeDisconnect } from "../../lib/_disconnect.ts";
import type { FailureKind, RunStats } from "./run_stats.ts";
import { createVerifier, type ReplyVerifier } from "./verifiers.ts";
import { tapeSlice } from "./tape.ts";
import type { LoadPlan } from "./workload.ts";

/** What the connections of a run share. */
export interface RunContext {
  /** What to send and expect. */
  readonly plan: LoadPlan;
  /** Where latencies and errors go. */
  readonly stats: RunStats;
  /** Connections in the run. */
  readonly connections: number;
  /** Requests in flight per connection, at most. */
  readonly pipeline: number;
  /** Requests per second in all (open loop); 0 for closed loop. */
  readonly rate: number;
  /** A connection with requests in flight and no reply for this long has stalled, in ms. */
  readonly timeoutMs: number;
  /** The longest reply line. */
  readonly maxLineBytes: number;
  /** The most bytes in one write (besides one request). */
  readonly writeBatchBytes: number;
  /** The read buffer of each connection. */
  readonly readBufferBytes: number;
  /** How messages name a reply and a request ("echo"/"lines" for echo-test). */
  readonly words: Words;
  /** The run's start: the open loop's schedule starts here. */
  readonly startedAt: number;
}

/** How messages name replies and requests. */
export interface Words {
  /** "reply" or "echo". */
  readonly reply: string;
  /** `3 requests`, `1 request`, or echo-test's `3 lines`. */
  count(n: number): string;
}

/** What the engine asks of a loaded connection (or of churn mode's stream of connections). */
export interface LoadWorker {
  /** Requests sent. */
  readonly sent: number;
  /** Requests whose reply completed (right or wrong). */
  readonly answered: number;
  /** Bytes sent. */
  readonly bytesSent: number;
  /** Bytes received. */
  readonly bytesReceived: number;
  /** When it finished, as `performance.now()` (0 until then). */
  readonly finishedAt: number;
  /** Runs until its quota is answered, it is stopped and drained, or it fails. */
  run(): Promise<void>;
  /** From now on, sends this many more requests and no more (a count run's warm-up ended). */
  measureMore(count: number): void;
  /** Sends no more; what is in flight is still awaited. */
  stop(): void;
  /** Ends now; requests in flight count as interrupted, or as timed out at the run's deadline. */
  abort(reason: "interrupted" | "deadline"): void;
  /** Ends the connection if it has stalled. */
  checkStall(now: number): void;
}

/** Scheduled requests due within this many ms go now (about the timer resolution). */
const PACING_LOOKAHEAD_MS = 1;
/** A deep pipeline is refilled when this many bytes of requests fit (or a quarter of it). */
const REFILL_BYTES = 64 * 1024;

/** One loaded connection. */
export class ConnectionLoad implements LoadWorker {
  readonly #run: RunContext;
  readonly #conn: Transport;
  readonly #index: number;
  readonly #phase: number;
  readonly #verifier: ReplyVerifier;
  readonly #refill: number;
  readonly #leftover: Uint8Array | undefined;
  #quota: number;
  sent = 0;
  answered = 0;
  bytesSent = 0;
  bytesReceived = 0;
  finishedAt = 0;
  // Batches in flight: the request count after each batch, and when it left.
  #batchEnds: number[] = [];
  #batchSentAt: number[] = [];
  #batchHead = 0;
  #writing = false;
  #stopped = false;
  #finished = false;
  #lastProgressAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #done = Promise.withResolvers<void>();

  /**
   * @param run What the run's connections share.
   * @param conn The connection (greeting already read).
   * @param index The connection's index (0-based).
   * @param quota Requests to send in all (`Infinity` until stopped).
   * @param leftover Bytes that arrived after the greeting.
   */
  constructor(
    run: RunContext,
    conn: Transport,
    index: number,
    quota: number,
    leftover?: Uint8Array,
  ) {
    this.#run = run;
    this.#conn = conn;
    this.#index = index;
    this.#quota = quota;
    this.#leftover = leftover && leftover.length > 0 ? leftover : undefined;
    this.#phase = run.plan.phase(index);
    // deno-lint-ignore no-this-alias
    const load = this;
    this.#verifier = createVerifier(run.plan, index, {
      get sent() {
        return load.sent;
      },
      mismatch: (message) => run.stats.mismatch(message),
      fatal: (message) => this.#fail("protocol", message),
    }, run.maxLineBytes);
    const tape = run.plan.sendTape;
    const averageRequest = tape ? tape.lines.period / tape.lines.items : run.plan.longestRequest;
    this.#refill = run.rate > 0 ? 1 : Math.max(
      1,
      Math.min(Math.ceil(run.pipeline / 4), Math.floor(REFILL_BYTES / averageRequest)),
    );
  }

  measureMore(count: number): void {
    this.#quota = this.sent + count;
    this.pump();
    this.#finishIfDone();
  }

  async run(): Promise<void> {
    this.#lastProgressAt = performance.now();
    const receiving = this.#receive();
    this.pump();
    this.#finishIfDone();
    await this.#done.promise;
    await receiving;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#finishIfDone();
  }

  abort(reason: "interrupted" | "deadline"): void {
    if (this.#finished) return;
    const unanswered = this.sent - this.answered;
    if (reason === "interrupted") {
      this.#run.stats.interrupted += unanswered;
      this.#finish();
    } else {
      this.#fail(
        "timeout",
        `${this.#run.words.count(unanswered)} still unanswered when the run ended at its deadline`,
      );
    }
  }

  checkStall(now: number): void {
    if (this.#finished) return;
    const outstanding = this.sent - this.answered;
    if (outstanding === 0) {
      this.#lastProgressAt = now;
    } else if (now - this.#lastProgressAt > this.#run.timeoutMs) {
      this.#fail(
        "timeout",
        `no ${this.#run.words.reply} for ${this.#run.timeoutMs} ms with ${
          this.#run.words.count(outstanding)
        } outstanding`,
      );
    }
  }

  /**
   * Starts a write if requests may leave now.
   * @param at The time now, when the caller knows it.
   */
  pump(at = 0): void {
    if (this.#writing || this.#finished || this.#stopped) return;
    const run = this.#run;
    const inFlight = this.sent - this.answered;
    let allowed = Math.min(run.pipeline - inFlight, this.#quota - this.sent);
    if (allowed <= 0) return;
    let now = at;
    if (run.rate > 0) {
      now ||= performance.now();
      const due = this.#dueBy(now + PACING_LOOKAHEAD_MS) - this.sent;
      if (due <= 0) {
        this.#sleepUntilDue(now);
        return;
      }
      allowed = Math.min(allowed, due);
      const lag = now - this.#dueAt(this.sent);
      if (lag > run.stats.scheduleLagMs) run.stats.scheduleLagMs = lag;
    } else if (inFlight > 0 && allowed < this.#refill && this.sent + allowed < this.#quota) {
      return;
    }
    const batch = this.#take(allowed);
    this.#batchEnds.push(this.sent + batch.count);
    this.#batchSentAt.push(now || performance.now());
    this.sent += batch.count;
    this.bytesSent += batch.bytes.length;
    this.#writing = true;
    this.#write(batch.bytes);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      for (let offset = 0; offset < bytes.length;) {
        offset += await this.#conn.write(bytes.subarray(offset));
      }
    } catch (error) {
      this.#writing = false;
      this.#fail("closed", `write failed: ${describeDisconnect(error)}`);
      return;
    }
    this.#writing = false;
    this.pump();
    this.#finishIfDone();
  }

  /** Up to `count` requests as bytes for one write (at least one request). */
  #take(count: number): { bytes: Uint8Array; count: number } {
    const run = this.#run;
    const first = this.#phase + this.sent;
    const tape = run.plan.sendTape;
    if (tape) {
      const lines = tape.lines;
      const fit = lines.endedBy(lines.start(first) + run.writeBatchBytes) - first;
      const taken = Math.max(1, Math.min(count, fit));
      return { bytes: tapeSlice(tape, first, first + taken), count: taken };
    }
    const parts: Uint8Array[] = [];
    let bytes = 0;
    let taken = 0;
    const terminator = run.plan.terminator;
    const conn = this.#index + 1;
    while (taken < count && (taken === 0 || bytes < run.writeBatchBytes)) {
      const line = run.plan.request(first + taken).line.render(this.sent + taken + 1, conn);
      parts.push(line, terminator);
      bytes += line.length + terminator.length;
      taken++;
    }
    const out = new Uint8Array(bytes);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return { bytes: out, count: taken };
  }

  /** When this connection's request `k` (0-based) is due: connections take turns in the schedule. */
  #dueAt(k: number): number {
    const run = this.#run;
    return run.startedAt + ((k * run.connections + this.#index) * 1000) / run.rate;
  }

  /** How many of this connection's requests are due by `time`. */
  #dueBy(time: number): number {
    const run = this.#run;
    const slots = ((time - run.startedAt) * run.rate) / 1000 - this.#index;
    return slots < 0 ? 0 : Math.floor(slots / run.connections) + 1;
  }

  #sleepUntilDue(now: number): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#dueAt(this.sent) - PACING_LOOKAHEAD_MS - now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.pump();
    }, wait);
  }

  async #receive(): Promise<void> {
    if (this.#leftover) this.#onChunk(this.#leftover);
    const buffer = new Uint8Array(this.#run.readBufferBytes);
    while (!this.#finished) {
      let count: number | null;
      try {
        count = await this.#conn.read(buffer);
      } catch (error) {
        if (!this.#finished) this.#fail("closed", `read failed: ${describeDisconnect(error)}`);
        return;
      }
      if (count === null) {
        if (!this.#finished) {
          const unanswered = this.sent - this.answered;
          if (unanswered > 0 || !this.#stopped && this.sent < this.#quota) {
            this.#fail(
              "closed",
              `connection closed by the server with ${
                this.#run.words.count(unanswered)
              } outstanding`,
            );
          } else {
            this.#finish();
          }
        }
        return;
      }
      this.#onChunk(buffer.subarray(0, count));
    }
  }

  #onChunk(chunk: Uint8Array): void {
    const now = performance.now();
    this.#lastProgressAt = now;
    this.bytesReceived += chunk.length;
    const completed = this.#verifier.consume(chunk);
    if (this.#finished) return;
    if (completed > 0) this.#complete(completed, now);
    this.pump(now);
    this.#finishIfDone();
  }

  /** Times the requests just completed. */
  #complete(count: number, now: number): void {
    const stats = this.#run.stats;
    const measureFrom = stats.measureFrom;
    let first = this.answered;
    const end = first + count;
    this.answered = end;
    if (this.#run.rate > 0) {
      // From when each was due, or from when it left if it left early.
      for (let k = first; k < end; k++) {
        while (k >= this.#batchEnds[this.#batchHead]!) this.#batchHead++;
        const due = this.#dueAt(k);
        if (due >= measureFrom) {
          stats.record(now - Math.min(due, this.#batchSentAt[this.#batchHead]!), 1);
        }
      }
      if (end === this.#batchEnds[this.#batchHead]) this.#batchHead++;
    } else {
      while (first < end) {
        const batchEnd = this.#batchEnds[this.#batchHead]!;
        const sentAt = this.#batchSentAt[this.#batchHead]!;
        const upTo = Math.min(batchEnd, end);
        if (sentAt >= measureFrom) stats.record(now - sentAt, upTo - first);
        first = upTo;
        if (upTo === batchEnd) this.#batchHead++;
      }
    }
    if (this.#batchHead > 1024) {
      this.#batchEnds = this.#batchEnds.slice(this.#batchHead);
      this.#batchSentAt = this.#batchSentAt.slice(this.#batchHead);
      this.#batchHead = 0;
    }
  }

  #finishIfDone(): void {
    if (this.#finished || this.#writing) return;
    if ((this.#stopped || this.sent >= this.#quota) && this.answered >= this.sent) this.#finish();
  }

  #fail(kind: FailureKind, message: string): void {
    if (this.#finished) return;
    this.#run.stats.failure(
      kind,
      `connection ${this.#index + 1}: ${message}`,
      this.sent - this.answered,
    );
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.finishedAt = performance.now();
    clearTimeout(this.#timer);
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    this.#done.resolve();
  }
}

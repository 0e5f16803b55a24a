/**
 * The synchronous, bounded, byte-level line framing engine that every part of linesock sits on.
 *
 * Push byte chunks in; complete lines come out through callbacks, without their terminator. The engine
 * scans only bytes it has not seen before (no quadratic re-scan of a growing line), hands out lines that
 * lie fully inside a chunk as zero-copy views, and never holds more than `maxLineBytes` (+1 for a pending
 * `\r`) of any line: an over-long line is reported once and the rest of it is skipped up to the next `\n`.
 *
 * Use {@linkcode LineSplitter} for a web stream; use this class directly where a loop reads chunks
 * itself (a socket read loop), which avoids a stream hop per chunk.
 *
 * @example Framing chunks that split lines anywhere
 * ```ts
 * import { LineFramer } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const framer = new LineFramer({}, {
 *   onLine: (bytes) => lines.push(new TextDecoder().decode(bytes)),
 * });
 * const encoder = new TextEncoder();
 * framer.push(encoder.encode("PI"));
 * framer.push(encoder.encode("NG\r\nHEL"));
 * framer.push(encoder.encode("LO\n"));
 * framer.end();
 * assert.deepEqual(lines, ["PING", "HELLO"]);
 * ```
 *
 * @example Pausing after a line, then pushing the rest
 * ```ts
 * import { LineFramer } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const framer = new LineFramer({}, {
 *   onLine(bytes) {
 *     lines.push(new TextDecoder().decode(bytes));
 *     // false stops framing after this line (for example while its reply is pending).
 *     return false;
 *   },
 * });
 * const chunk = new TextEncoder().encode("one\ntwo\nthree\n");
 * const consumed = framer.push(chunk);
 * assert.equal(consumed, 4);
 * assert.deepEqual(lines, ["one"]);
 * // Later, the unconsumed rest of the same chunk goes in, before any new chunk.
 * let rest = chunk.subarray(consumed);
 * while (rest.length > 0) rest = rest.subarray(framer.push(rest));
 * assert.deepEqual(lines, ["one", "two", "three"]);
 * ```
 *
 * @module
 */
import { LineTooLongError } from "../errors.ts";

/** 1 MiB: the default line limit. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
/** A carry buffer above this size is released after its line so idle connections stay small. */
const RETAINED_CARRY_BYTES = 64 * 1024;
const INITIAL_CARRY_BYTES = 256;
/** The carry of a framer that holds nothing: shared, never written to (any hold grows it first). */
const EMPTY = new Uint8Array(0);

/** Options of {@linkcode LineFramer} and {@linkcode LineSplitter}. */
export interface LineFramerOptions {
  /**
   * The longest line accepted, in bytes, without its terminator. `Infinity` disables the limit (only
   * for consumers that can hold any line).
   * @default {1048576}
   */
  maxLineBytes?: number;
  /**
   * Strip one `\r` before each `\n` (text protocols). Off for byte-exact framing.
   * @default {true}
   */
  stripCR?: boolean;
  /**
   * Emit a final line that has no `\n` when the input ends.
   * @default {true}
   */
  emitUnterminated?: boolean;
}

/** Where {@linkcode LineFramer} delivers its results. */
export interface LineFramerSink {
  /**
   * Called for each complete line, without its terminator. The bytes are only valid during the call:
   * they may be a view into the pushed chunk or into the framer's own buffer. Copy them to keep them.
   * @returns `false` to pause: {@linkcode LineFramer.push} returns right after this line, and the
   * caller pushes the rest of the chunk later. Anything else (or nothing) carries on.
   */
  // `unknown`, not `boolean | void`: callbacks written as expressions (`(b) => list.push(b)`) fit.
  onLine(bytes: Uint8Array, lineNumber: number): unknown;
  /**
   * Called once for each over-long line, as soon as it is known to be too long; the rest of the line
   * is then skipped. Without this callback the error is thrown from {@linkcode LineFramer.push}.
   */
  onTooLong?(error: LineTooLongError): void;
}

/** A synchronous push parser from byte chunks to lines. See the module documentation. */
export class LineFramer {
  readonly #limit: number;
  readonly #stripCR: boolean;
  readonly #emitUnterminated: boolean;
  readonly #sink: LineFramerSink;
  #carry: Uint8Array = EMPTY;
  #carryLength = 0;
  #discarding = false;
  #lineNumber = 0;

  /**
   * Creates the instance.
   * @param options Limits and line-ending rules.
   * @param sink Receives lines and over-long line reports.
   */
  constructor(options: LineFramerOptions, sink: LineFramerSink) {
    const limit = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!(limit >= 0)) throw new RangeError(`maxLineBytes must be >= 0, got ${limit}`);
    this.#limit = limit;
    this.#stripCR = options.stripCR ?? true;
    this.#emitUnterminated = options.emitUnterminated ?? true;
    this.#sink = sink;
  }

  /** How many bytes of an incomplete line are held right now (never more than the limit + 1). */
  get bufferedBytes(): number {
    return this.#carryLength;
  }

  /** Whether a line has begun and not ended (held, or an over-long one being skipped). */
  get midLine(): boolean {
    return this.#carryLength > 0 || this.#discarding;
  }

  /** How many lines (including over-long ones) have been seen so far. */
  get lineCount(): number {
    return this.#lineNumber;
  }

  /**
   * Feeds a chunk. Complete lines are delivered before this returns, unless `onLine` pauses.
   * @param chunk Bytes in any chunking; not retained after the call unless a line spans chunks (then
   * the relevant part is copied).
   * @returns How many bytes of `chunk` were consumed: all of them, or, when `onLine` returned
   * `false`, those up to and including that line's `\n`. Push the rest (`chunk.subarray(consumed)`)
   * before any later chunk.
   */
  push(chunk: Uint8Array): number {
    const length = chunk.length;
    let start = 0;
    while (start < length) {
      const newline = chunk.indexOf(LF, start);
      if (newline === -1) {
        this.#hold(chunk, start, length);
        return length;
      }
      let proceed = true;
      if (this.#discarding) {
        this.#discarding = false;
      } else if (this.#carryLength === 0) {
        proceed = this.#deliver(chunk, start, newline);
      } else {
        this.#hold(chunk, start, newline);
        if (!this.#discarding) proceed = this.#deliver(this.#carry, 0, this.#carryLength);
        this.#releaseCarry();
        this.#discarding = false;
      }
      start = newline + 1;
      if (!proceed) return start;
    }
    return length;
  }

  /** Signals the end of input: delivers a final unterminated line if configured, and resets. */
  end(): void {
    if (this.#carryLength > 0 && !this.#discarding && this.#emitUnterminated) {
      const line = this.#carry.subarray(0, this.#carryLength);
      this.#lineNumber++;
      if (line.length > this.#limit) this.#tooLong();
      else this.#sink.onLine(line, this.#lineNumber);
    }
    this.#releaseCarry();
    this.#discarding = false;
  }

  /**
   * Delivers the line in `bytes[from, to)`, where `to` is the index of its `\n`.
   * @returns Whether to carry on (the sink did not pause).
   */
  #deliver(bytes: Uint8Array, from: number, to: number): boolean {
    let end = to;
    if (this.#stripCR && end > from && bytes[end - 1] === CR) end--;
    this.#lineNumber++;
    if (end - from > this.#limit) {
      this.#tooLong();
      return true;
    }
    return this.#sink.onLine(bytes.subarray(from, end), this.#lineNumber) !== false;
  }

  /** Appends `chunk[from, to)` to the carry, or detects that the pending line is too long. */
  #hold(chunk: Uint8Array, from: number, to: number): void {
    if (this.#discarding) return;
    const needed = this.#carryLength + (to - from);
    // One extra byte may be a `\r` that is stripped once its `\n` arrives.
    if (needed > this.#limit + (this.#stripCR ? 1 : 0)) {
      this.#lineNumber++;
      this.#releaseCarry();
      this.#discarding = true;
      this.#tooLong();
      return;
    }
    if (needed > this.#carry.length) {
      const grown = new Uint8Array(
        Math.min(Math.max(needed, this.#carry.length * 2, INITIAL_CARRY_BYTES), this.#limit + 1),
      );
      grown.set(this.#carry.subarray(0, this.#carryLength));
      this.#carry = grown;
    }
    this.#carry.set(chunk.subarray(from, to), this.#carryLength);
    this.#carryLength = needed;
  }

  #releaseCarry(): void {
    this.#carryLength = 0;
    if (this.#carry.length > RETAINED_CARRY_BYTES) this.#carry = EMPTY;
  }

  #tooLong(): void {
    const error = new LineTooLongError(this.#limit, this.#lineNumber);
    if (this.#sink.onTooLong) this.#sink.onTooLong(error);
    else throw error;
  }
}

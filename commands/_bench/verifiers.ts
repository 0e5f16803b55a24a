/**
 * The receiving half of a loaded connection: a {@linkcode ReplyVerifier} takes each chunk as it
 * arrives, checks it against the replies expected, and says how many requests it completed. One of
 * three, chosen by the plan ({@linkcode LoadPlan.verify}):
 *
 * - {@linkcode TapeVerifier}: every expected byte is known. A chunk equal to the expected tape at
 *   the current position (one native compare) completes the requests whose last line it finishes,
 *   found by a binary search over line ends, not by walking the lines. Only a chunk that differs is
 *   walked: line by line (a reply of another length is one wrong reply), or for echo-test's lines by
 *   expected length, reporting the stream byte that differs.
 * - {@linkcode CountVerifier}: any line will do; `\n` bytes are counted, four at a time.
 * - {@linkcode LineVerifier}: each line is framed and checked (regular expressions, JSON,
 *   placeholders, sets).
 *
 * A wrong reply is counted once per request, with the first few described; data that arrives with
 * no request outstanding ends the connection (its replies can no longer be told apart).
 *
 * @example Verifying PONGs, one of them wrong
 * ```ts
 * import { planWorkload } from "./workload.ts";
 * import { LineTemplate } from "./template.ts";
 * import { createVerifier } from "./verifiers.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = planWorkload({
 *   requests: [{
 *     line: LineTemplate.fromText("PING"),
 *     reply: [{ kind: "exact", line: LineTemplate.fromText("PONG") }],
 *   }],
 *   greeting: [],
 *   crlf: false,
 * }, { connections: 1, overhang: 1024 });
 * const wrong: string[] = [];
 * const verifier = createVerifier(plan, 0, {
 *   sent: 3,
 *   mismatch: (message) => wrong.push(message),
 *   fatal: (message) => assert.fail(message),
 * });
 * const encode = (text: string) => new TextEncoder().encode(text);
 * assert.equal(verifier.consume(encode("PONG\nPO")), 1);
 * assert.equal(verifier.consume(encode("NG\nPANG\n")), 2);
 * assert.deepEqual(wrong, ['connection 1, request 3 ("PING"): expected "PONG", got "PANG"']);
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { checkLine, type LineCheck, show } from "./expectation.ts";
import type { LoadPlan } from "./workload.ts";
import { countNewlines } from "../../lib/framing/_count_newlines.ts";

/** What a verifier reports to its connection. */
export interface VerifierSink {
  /** Requests sent so far on the connection. */
  readonly sent: number;
  /** One request's reply is wrong; called once per request. */
  mismatch(message: string): void;
  /** The connection cannot go on (data with no request outstanding, a line too long). */
  fatal(message: string): void;
}

/** Checks replies as they arrive. */
export interface ReplyVerifier {
  /**
   * Checks a received chunk.
   * @param chunk The bytes (valid only during the call).
   * @returns How many requests it completed (their last reply line arrived, right or wrong).
   */
  consume(chunk: Uint8Array): number;
}

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder();

/**
 * The verifier of a plan, for one connection.
 * @param plan The plan.
 * @param connection The connection's index (0-based).
 * @param sink Where problems go.
 * @param maxLineBytes The longest reply line kept whole (`lines` mode).
 * @returns The verifier.
 */
export function createVerifier(
  plan: LoadPlan,
  connection: number,
  sink: VerifierSink,
  maxLineBytes = 1024 * 1024,
): ReplyVerifier {
  switch (plan.verify) {
    case "tape":
      return new TapeVerifier(plan, connection, sink);
    case "count":
      return new CountVerifier(plan, connection, sink);
    case "lines":
      return new LineVerifier(plan, connection, sink, maxLineBytes);
  }
}

/** Reply lines expected up to request position `position` (exclusive), in tape line numbers. */
function lineOf(plan: LoadPlan, position: number): number {
  return plan.replyLineIndex ? plan.replyLineIndex.start(position) : position;
}

/** The request position a reply line belongs to. */
function requestOfLine(plan: LoadPlan, line: number): number {
  return plan.replyLineIndex ? plan.replyLineIndex.endedBy(line) : line;
}

/** Fixed expected bytes: compared a chunk at a time. */
export class TapeVerifier implements ReplyVerifier {
  readonly #plan: LoadPlan;
  readonly #sink: VerifierSink;
  readonly #connection: number;
  readonly #phase: number;
  readonly #tape: Uint8Array;
  readonly #period: number;
  /** The expected line being received (tape line number). */
  #line: number;
  /** Its bytes received so far. */
  #progress = 0;
  #lineBad = false;
  /** The request position whose reply was last found wrong. */
  #badRequest = -1;
  /** Requests completed (as a tape position). */
  #requestsEnded: number;
  /** Bytes received (for echo-test's messages). */
  #received = 0;

  /**
   * @param plan A plan with an expected tape.
   * @param connection The connection's index.
   * @param sink Where problems go.
   */
  constructor(plan: LoadPlan, connection: number, sink: VerifierSink) {
    this.#plan = plan;
    this.#sink = sink;
    this.#connection = connection;
    this.#phase = plan.phase(connection);
    this.#tape = plan.expectTape!.bytes;
    this.#period = plan.expectTape!.lines.period;
    this.#line = lineOf(plan, this.#phase);
    this.#requestsEnded = this.#phase;
  }

  consume(chunk: Uint8Array): number {
    const lines = this.#plan.expectTape!.lines;
    const count = chunk.length;
    const from = lines.start(this.#line) + this.#progress;
    const limit = lines.start(lineOf(this.#plan, this.#phase + this.#sink.sent));
    const offset = from % this.#period;
    if (
      !this.#lineBad && from + count <= limit &&
      Buffer.compare(chunk, this.#tape.subarray(offset, offset + count)) === 0
    ) {
      const to = from + count;
      this.#line = lines.endedBy(to);
      this.#progress = to - lines.start(this.#line);
    } else if (this.#plan.byteAligned) {
      this.#walkByLength(chunk, lines.start(lineOf(this.#plan, this.#phase + this.#sink.sent)));
    } else {
      this.#walkByLine(chunk);
    }
    this.#received += count;
    const ended = requestOfLine(this.#plan, this.#line);
    const completed = ended - this.#requestsEnded;
    this.#requestsEnded = ended;
    return completed;
  }

  /** Frames the chunk by `\n`: a reply of another length is one wrong reply, then back in step. */
  #walkByLine(chunk: Uint8Array): void {
    const lines = this.#plan.expectTape!.lines;
    const lineLimit = lineOf(this.#plan, this.#phase + this.#sink.sent);
    for (let at = 0; at < chunk.length;) {
      if (this.#line >= lineLimit) {
        this.#sink.fatal(
          `data arrived with no request outstanding: ${show(decoder.decode(chunk.subarray(at)))}`,
        );
        return;
      }
      const newline = chunk.indexOf(LF, at);
      const end = newline === -1 ? chunk.length : newline + 1;
      if (!this.#lineBad) {
        const length = lines.size(this.#line);
        const start = lines.start(this.#line) % this.#period + this.#progress;
        const segment = chunk.subarray(at, end);
        if (
          this.#progress + segment.length > length ||
          Buffer.compare(segment, this.#tape.subarray(start, start + segment.length)) !== 0
        ) {
          this.#lineBad = true;
          const expected = this.#tape.subarray(
            start - this.#progress,
            start - this.#progress +
              length,
          );
          this.#wrong(
            `expected ${show(decoder.decode(withoutEnding(expected)))}, got ${
              this.#progress > 0 ? "…" : ""
            }${show(decoder.decode(withoutEnding(segment)))}`,
          );
        }
      }
      this.#progress += end - at;
      if (newline !== -1) {
        this.#line++;
        this.#progress = 0;
        this.#lineBad = false;
      }
      at = end;
    }
  }

  /** Echo-test's lines: each line is as long as the one sent; a difference is told by its byte. */
  #walkByLength(chunk: Uint8Array, limit: number): void {
    const lines = this.#plan.expectTape!.lines;
    for (let at = 0; at < chunk.length;) {
      const position = lines.start(this.#line) + this.#progress;
      if (position >= limit) {
        this.#sink.fatal(`received ${chunk.length - at} bytes more than were sent`);
        return;
      }
      const length = lines.size(this.#line);
      const take = Math.min(length - this.#progress, chunk.length - at);
      if (!this.#lineBad) {
        const start = position % this.#period;
        const segment = chunk.subarray(at, at + take);
        const expected = this.#tape.subarray(start, start + take);
        const differs = firstDifference(segment, expected);
        if (differs !== -1) {
          this.#lineBad = true;
          this.#wrong(
            `byte ${this.#received + at + differs} of the stream differs (expected 0x${
              hex(expected[differs]!)
            }, got 0x${hex(segment[differs]!)})`,
            "line",
          );
        }
      }
      this.#progress += take;
      at += take;
      if (this.#progress === length) {
        this.#line++;
        this.#progress = 0;
        this.#lineBad = false;
      }
    }
  }

  #wrong(detail: string, noun: "request" | "line" = "request"): void {
    const position = requestOfLine(this.#plan, this.#line);
    if (position === this.#badRequest) return;
    this.#badRequest = position;
    const seq = position - this.#phase + 1;
    const request = noun === "line" ? "" : ` (${requestText(this.#plan, position)})`;
    this.#sink.mismatch(`connection ${this.#connection + 1}, ${noun} ${seq}${request}: ${detail}`);
  }
}

/** Any line will do: replies are counted. */
export class CountVerifier implements ReplyVerifier {
  readonly #plan: LoadPlan;
  readonly #sink: VerifierSink;
  readonly #phase: number;
  #line: number;
  #requestsEnded: number;

  /**
   * @param plan A plan whose replies are all "any line".
   * @param connection The connection's index.
   * @param sink Where problems go.
   */
  constructor(plan: LoadPlan, connection: number, sink: VerifierSink) {
    this.#plan = plan;
    this.#sink = sink;
    this.#phase = plan.phase(connection);
    this.#line = lineOf(plan, this.#phase);
    this.#requestsEnded = this.#phase;
  }

  consume(chunk: Uint8Array): number {
    this.#line += countNewlines(chunk);
    const limit = lineOf(this.#plan, this.#phase + this.#sink.sent);
    if (this.#line > limit) {
      this.#sink.fatal(`${this.#line - limit} line(s) arrived with no request outstanding`);
      this.#line = limit;
    }
    const ended = requestOfLine(this.#plan, this.#line);
    const completed = ended - this.#requestsEnded;
    this.#requestsEnded = ended;
    return completed;
  }
}

/** Each line framed and checked. */
export class LineVerifier implements ReplyVerifier {
  readonly #plan: LoadPlan;
  readonly #sink: VerifierSink;
  readonly #connection: number;
  readonly #phase: number;
  readonly #maxLineBytes: number;
  /** The part of a line that arrived in earlier chunks. */
  #carry: Uint8Array = new Uint8Array(0);
  #carryLength = 0;
  /** The request awaiting its reply (cycle position) and the check its next line meets. */
  #position: number;
  #check = 0;
  /** What a set still expects. */
  #setLeft: string[] | undefined;
  #requestBad = false;
  #dead = false;

  /**
   * @param plan The plan.
   * @param connection The connection's index.
   * @param sink Where problems go.
   * @param maxLineBytes The longest line kept.
   */
  constructor(plan: LoadPlan, connection: number, sink: VerifierSink, maxLineBytes: number) {
    this.#plan = plan;
    this.#sink = sink;
    this.#connection = connection;
    this.#phase = plan.phase(connection);
    this.#position = this.#phase;
    this.#maxLineBytes = maxLineBytes;
  }

  consume(chunk: Uint8Array): number {
    const before = this.#position;
    let at = 0;
    while (at < chunk.length && !this.#dead) {
      const newline = chunk.indexOf(LF, at);
      if (newline === -1) {
        this.#keep(chunk.subarray(at));
        break;
      }
      let line: Uint8Array;
      if (this.#carryLength > 0) {
        this.#keep(chunk.subarray(at, newline));
        line = this.#carry.subarray(0, this.#carryLength);
        this.#carryLength = 0;
      } else {
        line = chunk.subarray(at, newline);
      }
      if (this.#plan.crlf && line[line.length - 1] === CR) line = line.subarray(0, -1);
      this.#onLine(line);
      at = newline + 1;
    }
    return this.#position - before;
  }

  #keep(bytes: Uint8Array): void {
    if (this.#dead) return;
    const length = this.#carryLength + bytes.length;
    if (length > this.#maxLineBytes) {
      this.#dead = true;
      this.#sink.fatal(`a reply line is longer than ${this.#maxLineBytes} bytes (--max-line)`);
      return;
    }
    if (length > this.#carry.length) {
      const grown = new Uint8Array(Math.min(this.#maxLineBytes, Math.max(length, 2 * length)));
      grown.set(this.#carry.subarray(0, this.#carryLength));
      this.#carry = grown;
    }
    this.#carry.set(bytes, this.#carryLength);
    this.#carryLength = length;
  }

  #onLine(line: Uint8Array): void {
    if (this.#position >= this.#phase + this.#sink.sent) {
      this.#dead = true;
      this.#sink.fatal(`a line arrived with no request outstanding: ${show(decoder.decode(line))}`);
      return;
    }
    const request = this.#plan.request(this.#position);
    const check: LineCheck = request.reply[this.#check]!;
    const seq = this.#position - this.#phase + 1;
    const conn = this.#connection + 1;
    const sent = request.line.render(seq, conn);
    let problem: string | undefined;
    if (check.kind === "set") {
      this.#setLeft ??= check.lines.map((item) => decoder.decode(item.render(seq, conn)));
      const text = decoder.decode(line);
      const found = this.#setLeft.indexOf(text);
      if (found === -1) {
        problem = `one of ${this.#setLeft.map(show).join(", ")}`;
        this.#setLeft.shift();
      } else {
        this.#setLeft.splice(found, 1);
      }
      if (this.#setLeft.length === 0) {
        this.#setLeft = undefined;
        this.#check++;
      }
    } else {
      problem = checkLine(check, line, { request: sent, seq, conn });
      this.#check++;
    }
    if (problem !== undefined && !this.#requestBad) {
      this.#requestBad = true;
      this.#sink.mismatch(
        `connection ${conn}, request ${seq} (${
          show(decoder.decode(sent))
        }): expected ${problem}, ` +
          `got ${show(decoder.decode(line))}`,
      );
    }
    if (this.#check === request.reply.length) {
      this.#position++;
      this.#check = 0;
      this.#requestBad = false;
    }
  }
}

function requestText(plan: LoadPlan, position: number): string {
  const line = plan.request(position).line;
  return show(line.fixed ? decoder.decode(line.fixed) : line.source);
}

function withoutEnding(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === LF) end--;
  if (end > 0 && bytes[end - 1] === CR) end--;
  return bytes.subarray(0, end);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

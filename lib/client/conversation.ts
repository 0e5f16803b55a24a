/**
 * The client's conversation engine: one for `linesock send`, the repl's scripted mode (stdin not a
 * terminal) and the interactive repl. Internal to the CLI (not exported from `lib/client/mod.ts`).
 *
 * - {@linkcode isErrorReply} and {@linkcode classifyReply}: the one rule for an error reply, and the
 *   one parse of a JSON response ({@linkcode parseJsonResponse}).
 * - {@linkcode ReplyLedger}: which request a reply answers, and so its round-trip time — or none
 *   when that cannot be known.
 * - {@linkcode Conversation}: a connection with the two above (lines written with what is known of
 *   their replies; replies read, classified and credited).
 * - {@linkcode runExchange}: a whole scripted exchange: input in, replies out, and one explicit
 *   rule for when it ends (the server closes, silence, `--timeout`, `-n` counts, `--until`).
 *
 * **An error reply, one rule.** In text mode a reply is an error when it starts with the word `ERR`:
 * those three capital letters, then the end of the line or a character that is not an ASCII letter,
 * digit or underscore (`/^ERR\b/`). So `ERR`, `ERR busy` and `ERR:full` are errors; `ERRATA`,
 * `ERR_X` and `err x` are not. In JSON mode a reply is an error when it is not a JSON response (an
 * object with a numeric `status`) or when its `status` is not 0.
 *
 * **Which request a reply answers.** Each line is sent with an {@linkcode Expectation}: a fixed
 * number of reply lines (`{ replies: 1 }`), one JSON response carrying an `id` (`{ id: 7 }`), or
 * `"unknown"`. Replies are credited by `id` when they carry one that is waited for; otherwise in
 * order, to the oldest line still waiting, as long as every line before it is accounted for. A line
 * whose replies cannot be counted stops the crediting by order while anything was sent after it:
 * those replies are credited to nothing (no round-trip time) rather than to the wrong request.
 *
 * @example Round-trip times only where the request is known
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import { Conversation } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * // "swallow" gets no reply at all; every other line one.
 * await using server = await serve({ port: 0 }, (line) => line === "swallow" ? undefined : `re ${line}`);
 * await using connection = await connect({ port: (server.addr as Deno.NetAddr).port });
 * const conversation = new Conversation(connection);
 * conversation.enqueue("a", { replies: 1 });
 * await conversation.flush();
 * const first = (await conversation.read())!;
 * assert.equal(first.text, "re a");
 * assert.ok(conversation.credit(first)?.roundTripMs !== undefined);
 * // After a line with an unknown count, the next reply could be its or the next line's: no time.
 * conversation.enqueue("swallow", "unknown");
 * conversation.enqueue("b", { replies: 1 });
 * await conversation.flush();
 * const second = (await conversation.read())!;
 * assert.equal(second.text, "re b");
 * assert.equal(conversation.credit(second), undefined);
 * ```
 *
 * @module
 */
import { countNewlines } from "../framing/_count_newlines.ts";
import {
  type JsonResponse,
  type LineConnection,
  parseJsonResponse,
  type ReadLineOptions,
} from "./client.ts";
import {
  ConnectionLostError,
  LinesockError,
  LineTooLongError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
import { isDisconnect } from "../_disconnect.ts";
import { waitFor } from "./_wait_for.ts";
import { DEFAULT_REPLY_TIMEOUT_MS } from "./_defaults.ts";
import { DEFAULT_MAX_LINE_BYTES, LineFramer } from "../framing/line_framer.ts";
import { type ByteWriter, LineWriter } from "../framing/line_writer.ts";
import { escapeControlBytes, escapeControls } from "./_terminal_escape.ts";

// ---------------------------------------------------------------------------------------------
// The error rule and the JSON parse

const E = 0x45;
const R = 0x52;

/** An ASCII letter, digit or underscore: what `\b` in `/^ERR\b/` looks at. */
function isWordByte(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) || byte === 0x5f;
}

/**
 * Whether a text-mode reply is an error reply: it starts with the word `ERR` (`/^ERR\b/`).
 * @param line The reply, as text or bytes (without its `\n`).
 * @returns `true` for `ERR`, `ERR busy`, `ERR:x`; `false` for `ERRATA`, `ERR_X`, `err x`.
 * @example
 * ```ts
 * import { isErrorReply } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isErrorReply("ERR unknown command: FROB"), true);
 * assert.equal(isErrorReply(new TextEncoder().encode("ERR")), true);
 * assert.equal(isErrorReply("ERRATA"), false);
 * ```
 */
export function isErrorReply(line: string | Uint8Array): boolean {
  if (typeof line === "string") return /^ERR(?![0-9A-Za-z_])/.test(line);
  return line.length >= 3 && line[0] === E && line[1] === R && line[2] === R &&
    (line.length === 3 || !isWordByte(line[3]!));
}

/** What a reply is, by the one rule. */
export interface ReplyClass {
  /** The error it carries: an `ERR` line, a JSON status other than 0, or a line that is not a response. */
  error: RemoteError | undefined;
  /** JSON mode: the parsed response, when the line is one. */
  response: JsonResponse | undefined;
}

/**
 * Classifies a reply: its error (by the one rule) and, in JSON mode, its parsed response.
 * @param text The reply as text, without its line terminator.
 * @param json JSON mode.
 * @returns The error, if any, and the response.
 * @example
 * ```ts
 * import { classifyReply } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(classifyReply("ERR busy", false).error?.message, "ERR busy");
 * assert.equal(classifyReply("ERRATA", false).error, undefined);
 * const failed = classifyReply('{"status":3,"message":"no","extra":null,"id":1}', true);
 * assert.equal(failed.error?.status, 3);
 * assert.equal(failed.response?.id, 1);
 * assert.ok(classifyReply("PONG", true).error); // not a JSON response
 * ```
 */
export function classifyReply(text: string, json: boolean): ReplyClass {
  if (!json) {
    return {
      error: isErrorReply(text) ? new RemoteError(text, 1) : undefined,
      response: undefined,
    };
  }
  let response: JsonResponse;
  try {
    response = parseJsonResponse(text);
  } catch (error) {
    if (error instanceof RemoteError) return { error, response: undefined };
    throw error;
  }
  if (response.status === 0) return { error: undefined, response };
  const message = typeof response.message === "string"
    ? response.message
    : JSON.stringify(response.message);
  return { error: new RemoteError(message, response.status, response.extra), response };
}

// ---------------------------------------------------------------------------------------------
// Which request a reply answers

/**
 * What the client knows about the replies a line gets: exactly so many lines, in order; one JSON
 * response carrying this `id` (and, for counting in order, nothing known); or nothing at all.
 */
export type Expectation =
  | { readonly replies: number }
  | { readonly id: string | number }
  | "unknown";

/** A line recorded in a {@linkcode ReplyLedger}. */
export interface SentLine<T = unknown> {
  /** What was known of its replies. */
  readonly expectation: Expectation;
  /** When it was sent (the ledger's clock, ms). */
  readonly sentAt: number;
  /** The caller's data about it. */
  readonly data: T;
  /** Replies credited to it so far. */
  readonly received: number;
  /** Whether all its replies are in (or it was settled). */
  readonly settled: boolean;
}

/** A reply credited to a request. */
export interface Credit<T = unknown> {
  /** The request it answers. */
  readonly request: SentLine<T>;
  /** For the request's first reply: the time since it was sent (ms); for later ones `undefined`. */
  readonly roundTripMs: number | undefined;
}

class Entry<T> implements SentLine<T> {
  received = 0;
  settled = false;
  constructor(
    readonly expectation: Expectation,
    readonly sentAt: number,
    readonly data: T,
  ) {}
}

/**
 * How many open lines a ledger keeps. Past it (a server that answers nothing it can count, and a
 * `:send` of a big file), it forgets them all and credits nothing until {@linkcode ReplyLedger.clear}.
 */
const MAX_OPEN_LINES = 10_000;

/**
 * The accounting of one connection's conversation: which request each reply answers. No I/O: record
 * each line sent, then credit each reply.
 *
 * A reply is credited
 * - to the request it names, when it carries an `id` that a line waits for (`{ id }`); a reply with
 *   any other `id` answers nothing this ledger knows;
 * - to a line the caller names (`claimedBy`: it knows from the reply's content, e.g. a HELP listing),
 *   which is then complete;
 * - otherwise in order: to the oldest open line when its count is known (`{ replies: N }`, complete
 *   after N); when its count is not known, only while it is the only open line (nothing sent after
 *   it could have been answered yet). Otherwise to nothing.
 *
 * A line with an unknown count stays open until the caller settles it: replies after it go uncredited
 * while anything else is open, which is what keeps every round-trip time right.
 *
 * @example Lockstep counts, a JSON id, and an unknown count
 * ```ts
 * import { ReplyLedger } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * let now = 0;
 * const ledger = new ReplyLedger<string>(() => now);
 * ledger.record({ replies: 2 }, "two lines");
 * ledger.record({ id: 7 }, "request 7");
 * now = 5;
 * assert.equal(ledger.credit({ id: 7 })?.roundTripMs, 5); // by id, whatever the order
 * assert.equal(ledger.credit()?.request.data, "two lines");
 * assert.equal(ledger.credit()?.roundTripMs, undefined); // its second line: no new time
 * assert.equal(ledger.size, 0);
 * const unknown = ledger.record("unknown", "a route");
 * ledger.record({ replies: 1 }, "PING");
 * assert.equal(ledger.credit(), undefined); // the route's reply, or PING's? Unknown.
 * ledger.settle(unknown);
 * assert.equal(ledger.credit()?.request.data, "PING");
 * ```
 */
export class ReplyLedger<T = unknown> {
  readonly #now: () => number;
  #open: Entry<T>[] = [];
  #overflowed = false;

  /** @param now The clock, in ms. @default {performance.now} */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Open lines: sent, and not known to be fully answered. */
  get size(): number {
    return this.#open.length;
  }

  /** The oldest open line, if any. */
  get oldest(): SentLine<T> | undefined {
    return this.#open[0];
  }

  /**
   * Records a line as sent now.
   * @param expectation What is known of its replies.
   * @param data The caller's data about it.
   * @returns The line, to settle or compare later.
   */
  record(expectation: Expectation, data: T): SentLine<T> {
    const entry = new Entry(expectation, this.#now(), data);
    if (typeof expectation === "object" && "replies" in expectation && expectation.replies <= 0) {
      entry.settled = true;
      return entry;
    }
    if (this.#overflowed) return entry;
    if (this.#open.length >= MAX_OPEN_LINES) {
      this.#overflowed = true;
      this.#open = [];
      return entry;
    }
    this.#open.push(entry);
    return entry;
  }

  /**
   * Credits one reply.
   * @param reply The reply's JSON `id` when it has one; `claimedBy` when the caller knows the reply
   * is the last one of that line.
   * @returns The request it answers and, for its first reply, the round trip; `undefined` when that
   * cannot be known.
   */
  credit(
    reply: { id?: string | number | undefined; claimedBy?: SentLine<T> | undefined } = {},
  ): Credit<T> | undefined {
    if (this.#overflowed) return undefined;
    let entry: Entry<T> | undefined;
    let complete = false;
    if (reply.claimedBy !== undefined) {
      entry = this.#open.find((open) => open === reply.claimedBy);
      if (entry === undefined) return undefined;
      complete = true;
    } else if (reply.id !== undefined) {
      entry = this.#open.find((open) =>
        typeof open.expectation === "object" && "id" in open.expectation &&
        open.expectation.id === reply.id
      );
      // An id no open line carries: a reply to nothing this ledger knows.
      if (entry === undefined) return undefined;
      complete = true;
    } else {
      const head = this.#open[0];
      if (head === undefined) return undefined;
      const expected = typeof head.expectation === "object" && "replies" in head.expectation
        ? head.expectation.replies
        : undefined;
      if (expected !== undefined) {
        entry = head;
        complete = head.received + 1 >= expected;
      } else if (this.#open.length === 1) {
        // The only open line: nothing sent after it can be answered before it.
        entry = head;
      } else {
        return undefined;
      }
    }
    entry.received++;
    const roundTripMs = entry.received === 1 ? this.#now() - entry.sentAt : undefined;
    if (complete) this.settle(entry);
    return { request: entry, roundTripMs };
  }

  /**
   * Marks a line as fully answered (the caller knows it from elsewhere).
   * @param line The line.
   */
  settle(line: SentLine<T>): void {
    const index = this.#open.indexOf(line as Entry<T>);
    if (index !== -1) this.#open.splice(index, 1);
    (line as Entry<T>).settled = true;
  }

  /** Forgets every open line (a new connection starts a new conversation). */
  clear(): void {
    for (const entry of this.#open) entry.settled = true;
    this.#open = [];
    this.#overflowed = false;
  }
}

// ---------------------------------------------------------------------------------------------
// A connection with the rule and the ledger

/** A reply read by {@linkcode Conversation.read}. */
export interface Reply {
  /** The bytes as received, without the `\n` (a `\r` before it is kept with `stripCR: false`). */
  readonly bytes: Uint8Array;
  /** The reply as text (invalid UTF-8 replaced), without a final `\r`. */
  readonly text: string;
  /** Whether it ended the stream without a `\n` (only a last line can). */
  readonly unterminated: boolean;
  /** Its error by the one rule; a {@linkcode LineTooLongError} for a line over the limit (then empty). */
  readonly error: RemoteError | LineTooLongError | undefined;
  /** JSON mode: the parsed response, when the line is one. */
  readonly response: JsonResponse | undefined;
  /** JSON mode: the response's `id`, when it is a string or a number. */
  readonly id: string | number | undefined;
}

const lenientDecoder = new TextDecoder();

/**
 * One connection's conversation: lines written with what is known of their replies, replies read,
 * classified by the one rule and credited to their request ({@linkcode ReplyLedger}).
 */
export class Conversation<T = unknown> {
  /** The connection (still the caller's to close). */
  readonly connection: LineConnection;
  /** The accounting of replies. */
  readonly ledger: ReplyLedger<T>;
  /** JSON mode: replies are parsed as JSON responses (may change between lines). */
  json: boolean;

  /**
   * @param connection An open connection.
   * @param options JSON mode, and the clock of the round-trip times.
   */
  constructor(connection: LineConnection, options: { json?: boolean; now?: () => number } = {}) {
    this.connection = connection;
    this.json = options.json ?? false;
    this.ledger = new ReplyLedger<T>(options.now);
  }

  /**
   * Queues a line (its `\n` is added) and records it; {@linkcode flush} sends it.
   * @param line Text or bytes without the terminator.
   * @param expectation What is known of its replies.
   * @param data The caller's data about it.
   * @returns The recorded line.
   */
  enqueue(line: string | Uint8Array, expectation: Expectation, data?: T): SentLine<T> {
    this.connection.enqueue(line);
    return this.ledger.record(expectation, data as T);
  }

  /** Sends what is queued. */
  flush(): Promise<void> {
    return this.connection.flush();
  }

  /**
   * Reads the next reply and classifies it; a line over the limit comes back as a reply whose
   * `error` is the {@linkcode LineTooLongError} (the connection carries on).
   * @param options A time budget in ms, or {@linkcode ReadLineOptions}.
   * @returns The reply, or `null` when the server closed the connection.
   */
  async read(options?: number | ReadLineOptions): Promise<Reply | null> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.connection.readRawLine(options);
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      return {
        bytes: new Uint8Array(),
        text: "",
        unterminated: false,
        error,
        response: undefined,
        id: undefined,
      };
    }
    if (bytes === null) return null;
    const text = lenientDecoder.decode(withoutCR(bytes));
    const { error, response } = classifyReply(text, this.json);
    const id = typeof response?.id === "string" || typeof response?.id === "number"
      ? response.id
      : undefined;
    return {
      bytes,
      text,
      unterminated: this.connection.lastLineUnterminated,
      error,
      response,
      id,
    };
  }

  /**
   * Credits a reply to its request ({@linkcode ReplyLedger.credit}): by `id`, by `claimedBy`, or in
   * order.
   * @param reply The reply.
   * @param claimedBy The line the caller knows the reply completes, if any.
   * @returns The request and the round trip, or `undefined` when that cannot be known.
   */
  credit(reply: Reply, claimedBy?: SentLine<T>): Credit<T> | undefined {
    return this.ledger.credit({ id: reply.id, claimedBy });
  }
}

// ---------------------------------------------------------------------------------------------
// A scripted exchange

/** Why a {@linkcode runExchange} ended. */
export type ExchangeEnding =
  /** The server closed the connection. */
  | "closed"
  /** No reply arrived for `waitMs` after the input ended (stream mode). */
  | "silence"
  /** The last expected reply arrived (lockstep and JSON modes). */
  | "replies"
  /** A reply matched `until`. */
  | "until";

/** Options of {@linkcode runExchange}. */
export interface ExchangeOptions {
  /** Input bytes in chunks of any size; lines end with `\n`. */
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Where the replies are written (standard output). */
  output: ByteWriter;
  /** Lockstep: after each line, wait for exactly this many replies. Without it: stream mode. */
  replies?: number | undefined;
  /**
   * Lines the server sends each new connection before it is sent anything (a greeting, SMTP's
   * `220`): read first, before any input goes out, and printed as they are (in JSON mode too), but
   * not counted as replies, not checked for errors or `until`, and credited to no line. Each is
   * awaited for at most `timeoutMs`. @default {0}
   */
  greetingLines?: number | undefined;
  /** Stop as soon as a reply (without its line terminator) matches. */
  until?: RegExp | undefined;
  /**
   * JSON mode: replies are JSON responses (errors by status); blank input lines are skipped. Each
   * response's `message` is printed, then `extra: …` when its `extra` is not null — unless `raw`.
   */
  json?: boolean | undefined;
  /** JSON mode: lockstep, one response per request. @default {true} */
  jsonLockstep?: boolean | undefined;
  /** JSON mode: print each whole response line instead of its `message`. @default {false} */
  raw?: boolean | undefined;
  /**
   * Print control characters of replies escaped (`ESC` as `\x1b`, bytes that are not UTF-8 as
   * `\xff`), for a terminal: a hostile server's escape sequences cannot drive it. A `\r` right before
   * the `\n` is kept. Off, replies are written byte for byte. @default {false}
   */
  escapeControls?: boolean | undefined;
  /**
   * Print each reply as one JSON object, `{"line": …, "bytes": …, "rttMs": …}` (`rttMs` where the
   * reply is known to answer a line: lockstep mode), instead of the line itself. @default {false}
   */
  jsonOutput?: boolean | undefined;
  /** Text written before each reply (a timestamp). */
  prefix?: (() => string) | undefined;
  /** Turns each input line into the line sent (`undefined`: skip it). Without it: sent as it is. */
  encodeLine?: ((line: Uint8Array) => string | Uint8Array | undefined) | undefined;
  /** Stream mode: half-close after the input. Off for servers that take it as a hang-up. @default {true} */
  halfClose?: boolean | undefined;
  /** Stream mode: after the input, stop after this much silence (ms); 0 waits for the close. @default {2000} */
  waitMs?: number | undefined;
  /**
   * Stream mode: after the input, replies are awaited until the server closes — silence is then
   * bounded by `timeoutMs` (a {@linkcode TimeoutError}) instead of ending the exchange after `waitMs`.
   * @default {false}
   */
  awaitClose?: boolean | undefined;
  /**
   * The longest wait for each awaited reply, counted from the line or from the previous reply, in
   * ms; 0: no limit. Replies are awaited in lockstep and JSON modes, with `until`, and with
   * `awaitClose` after the input. @default {10000}
   */
  timeoutMs?: number | undefined;
  /** The longest input line where input is framed (lockstep, JSON, `encodeLine`). @default {1048576} */
  maxLineBytes?: number | undefined;
  /** Called for each error reply (by the one rule); the exchange carries on. */
  onRemoteError?: ((error: RemoteError) => void) | undefined;
  /** Called for each reply longer than the connection's limit (left out); the exchange carries on. */
  onTooLong?: ((error: LineTooLongError) => void) | undefined;
  /** Called with the bytes sent, as they are handed to the connection (lines, or raw chunks). */
  onSent?: ((bytes: Uint8Array) => void) | undefined;
  /** Called for each reply received, before it is printed. */
  onReply?: ((reply: Reply) => void) | undefined;
  /** Called once the sending side was half-closed. */
  onHalfClose?: (() => void) | undefined;
}

/** What a {@linkcode runExchange} did. */
export interface ExchangeResult {
  /** Why it ended. */
  ending: ExchangeEnding;
  /** Input lines sent. */
  linesSent: number;
  /** Reply lines received. */
  replies: number;
  /** Error replies received (the exchange carries on after them). */
  remoteErrors: number;
  /** The first error reply, if any. */
  firstRemoteError: RemoteError | undefined;
  /** Replies longer than the limit (left out; the exchange carries on). */
  tooLong: number;
  /** Whether all input was sent (false when the server closed or failed first). */
  inputComplete: boolean;
  /** Greeting lines received (`greetingLines`; not among `replies`). */
  greetingLines: number;
}

const LF = 0x0a;
const NEWLINE = new Uint8Array([LF]);
/** What the stream mode's reader sees when the input has ended. */
const INPUT_ENDED: unique symbol = Symbol("input ended");

/**
 * Runs one scripted exchange over an open connection (`linesock send`, and the repl without a
 * terminal). The connection is left open; close it afterwards (a writer still blocked on a server
 * that stopped reading is released by that close).
 *
 * | mode | after the last input line | ends when | waiting too long |
 * |---|---|---|---|
 * | stream (default) | half-close (unless `halfClose: false`) | the server closes, or `waitMs` of silence | normal end (silence) |
 * | stream, `awaitClose` | half-close (unless `halfClose: false`) | the server closes | {@linkcode TimeoutError} after `timeoutMs` |
 * | lockstep (`replies: N`) | nothing | the N-th reply to the last line arrives | {@linkcode TimeoutError} after `timeoutMs` |
 * | `until: /re/` (either mode) | as above | a reply matches | {@linkcode TimeoutError} after `timeoutMs` |
 * | JSON (`json: true`) | nothing | the response to the last request arrives (lockstep, 1 reply) | {@linkcode TimeoutError} |
 *
 * In stream mode input and replies flow at the same time (one task writes, one reads), so neither
 * side can deadlock on full socket buffers, and memory stays bounded by the read and write buffers.
 * Input bytes go out exactly as given (unless `encodeLine`); a final line without `\n` gets one.
 * Replies are written byte for byte (a `\r` is kept; a final reply without `\n` is written without
 * one), or, with `escapeControls` (for a terminal), with their control characters shown escaped.
 *
 * @param connection An open connection; use `stripCR: false` for byte-exact replies.
 * @param options Input, output and the ending rule.
 * @returns What happened.
 * @throws {TimeoutError} When an awaited reply did not come within `timeoutMs`.
 * @throws {ConnectionLostError} When the connection closed or broke before the expected replies.
 *
 * @example Streaming lines to an upper-casing server
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import { runExchange } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * await using connection = await connect({ port: (server.addr as Deno.NetAddr).port, stripCR: false });
 * let printed = "";
 * const output = {
 *   write(bytes: Uint8Array) {
 *     printed += new TextDecoder().decode(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const encoder = new TextEncoder();
 * const result = await runExchange(connection, {
 *   input: [encoder.encode("hello\nwor"), encoder.encode("ld")],
 *   output,
 * });
 * assert.equal(printed, "HELLO\nWORLD\n");
 * assert.equal(result.ending, "closed");
 * assert.equal(result.linesSent, 2);
 * ```
 *
 * @example Lockstep with two replies per line, and an error reply
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import { runExchange } from "./conversation.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => [line, line === "bad" ? "ERR no" : "ERRATA"]);
 * await using connection = await connect({ port: (server.addr as Deno.NetAddr).port });
 * let printed = "";
 * const output = {
 *   write(bytes: Uint8Array) {
 *     printed += new TextDecoder().decode(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const input = [new TextEncoder().encode("good\nbad\n")];
 * const result = await runExchange(connection, { input, output, replies: 2 });
 * assert.equal(printed, "good\nERRATA\nbad\nERR no\n");
 * assert.equal(result.ending, "replies");
 * assert.equal(result.remoteErrors, 1); // ERRATA is not an error reply
 * assert.equal(result.firstRemoteError?.message, "ERR no");
 * ```
 */
export function runExchange(
  connection: LineConnection,
  options: ExchangeOptions,
): Promise<ExchangeResult> {
  return new Exchange(connection, options).run();
}

class Exchange {
  readonly #conversation: Conversation;
  readonly #options: ExchangeOptions;
  readonly #out: LineWriter;
  readonly #result: ExchangeResult = {
    ending: "closed",
    linesSent: 0,
    replies: 0,
    remoteErrors: 0,
    firstRemoteError: undefined,
    tooLong: 0,
    inputComplete: false,
    greetingLines: 0,
  };
  #matched = false;

  constructor(connection: LineConnection, options: ExchangeOptions) {
    this.#conversation = new Conversation(connection, { json: options.json ?? false });
    this.#options = options;
    this.#out = new LineWriter(options.output);
  }

  get #connection(): LineConnection {
    return this.#conversation.connection;
  }

  async run(): Promise<ExchangeResult> {
    const lockstep = (this.#options.json && (this.#options.jsonLockstep ?? true)) ||
      this.#options.replies !== undefined;
    try {
      await this.#greeting();
      this.#result.ending = lockstep ? await this.#lockstep() : await this.#stream();
    } finally {
      await this.#out.flush();
    }
    return this.#result;
  }

  get #timeoutMs(): number | undefined {
    const ms = this.#options.timeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    return ms > 0 ? ms : undefined;
  }

  /** Whether input lines are framed one by one (to encode or skip them) rather than relayed. */
  get #framesInput(): boolean {
    return this.#options.encodeLine !== undefined || (this.#options.json ?? false);
  }

  /** Queues one framed input line; `undefined` when it is skipped. */
  #enqueueLine(line: Uint8Array, expectation: Expectation): SentLine | undefined {
    if (this.#options.json && isBlank(line)) return undefined;
    const encoded = this.#options.encodeLine ? this.#options.encodeLine(line) : line;
    if (encoded === undefined) return undefined;
    this.#result.linesSent++;
    if (this.#options.onSent) {
      const bytes = typeof encoded === "string" ? new TextEncoder().encode(encoded) : encoded;
      this.#options.onSent(concatNewline(bytes));
    }
    return this.#conversation.enqueue(encoded, expectation);
  }

  /** Reads and prints the greeting (`greetingLines`) before anything is sent. */
  async #greeting(): Promise<void> {
    const wanted = this.#options.greetingLines ?? 0;
    while (this.#result.greetingLines < wanted) {
      if (this.#connection.bufferedLines === 0) await this.#out.flush();
      let line: Reply | null;
      try {
        line = await this.#conversation.read({ timeoutMs: this.#timeoutMs });
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        throw new TimeoutError(
          `greeting line ${this.#result.greetingLines + 1} of ${wanted} (--greeting-lines) ` +
            `from ${this.#connection.remote}`,
          error.timeoutMs,
        );
      }
      if (line === null) {
        throw new ConnectionLostError(
          `Connection closed by ${this.#connection.remote} after ${this.#result.greetingLines} ` +
            `of ${wanted} greeting lines (--greeting-lines)`,
        );
      }
      this.#result.greetingLines++;
      this.#options.onReply?.(line);
      if (line.error instanceof LineTooLongError) {
        this.#result.tooLong++;
        this.#options.onTooLong?.(line.error);
        continue;
      }
      this.#printLine(line);
    }
    await this.#out.flush();
  }

  /** Stream mode: one task writes the input while this one reads and prints replies. */
  async #stream(): Promise<ExchangeEnding> {
    const connection = this.#connection;
    // Not an AbortController: a first abort() costs about 0.4 ms (Deno's event dispatch, cold), a
    // tenth of `linesock send PING`'s own work. Nor one long-lived promise raced on every read:
    // each race would add a reaction to it that lives until the input ends (memory grows with
    // the replies).
    let inputDone = false;
    let wakeReader: ((ended: typeof INPUT_ENDED) => void) | undefined;
    const endInput = () => {
      inputDone = true;
      wakeReader?.(INPUT_ENDED);
    };
    let finished = false;
    let inputError: unknown;
    let writeReset: unknown;
    const writing = (async () => {
      try {
        if (this.#framesInput) {
          for await (const line of framedLines(this.#options.input, this.#options.maxLineBytes)) {
            if (finished) return;
            // Stream mode counts no replies: the ledger is not needed.
            if (this.#enqueueLine(line, { replies: 0 })) await connection.flush();
          }
        } else {
          let last = LF;
          for await (const chunk of this.#options.input) {
            if (finished) return;
            if (chunk.length === 0) continue;
            connection.enqueueBytes(chunk);
            this.#options.onSent?.(chunk);
            this.#result.linesSent += countNewlines(chunk);
            last = chunk[chunk.length - 1]!;
            // Awaiting each flush lets a server that reads slowly hold the input back (bounded memory).
            await connection.flush();
          }
          if (last !== LF) {
            connection.enqueueBytes(NEWLINE);
            this.#options.onSent?.(NEWLINE);
            this.#result.linesSent++;
          }
        }
        if (this.#options.halfClose ?? true) {
          await connection.closeWrite();
          this.#options.onHalfClose?.();
        } else {
          await connection.flush();
        }
        this.#result.inputComplete = true;
      } catch (error) {
        // A write that fails because the server went away is not an input error: the replies decide.
        if (!finished && !isConnectionFailure(error)) inputError = error;
        // The kernel reports a reset to one call only: when the write got it, the read sees a
        // plain end of input, which must still end as the reset it was.
        else if (!finished && isReset(error)) writeReset = error;
      } finally {
        endInput();
      }
    })();

    const waitMs = this.#options.waitMs ?? 2000;
    const awaited = this.#options.until !== undefined || (this.#options.awaitClose ?? false);
    // One read at a time: a read still pending when the input ends is the one then awaited.
    let reading: Promise<Reply | null> | undefined;
    try {
      for (;;) {
        if (connection.bufferedLines === 0) await this.#out.flush();
        reading ??= this.#conversation.read();
        let reply: Reply | null;
        if (!inputDone) {
          const pending = reading;
          const first = await new Promise<Reply | null | typeof INPUT_ENDED>((resolve, reject) => {
            wakeReader = resolve;
            pending.then(resolve, reject);
          });
          wakeReader = undefined;
          // The input just ended: from now on, silence counts.
          if (first === INPUT_ENDED) continue;
          reply = first;
        } else {
          const budget = awaited ? this.#timeoutMs : (waitMs > 0 ? waitMs : undefined);
          try {
            reply = await waitFor(
              reading,
              budget,
              undefined,
              `waiting for a reply from ${connection.remote}`,
            );
          } catch (error) {
            if (!(error instanceof TimeoutError)) throw error;
            if (this.#options.until) {
              throw new TimeoutError(
                `no reply from ${connection.remote} matched ${this.#options.until}`,
                error.timeoutMs,
              );
            }
            if (awaited) {
              throw new TimeoutError(
                `waiting for a reply from ${connection.remote} after the input ended`,
                error.timeoutMs,
              );
            }
            if (inputError !== undefined) throw inputError;
            return "silence";
          }
        }
        reading = undefined;
        if (reply === null) {
          if (writeReset !== undefined) throw writeReset;
          if (this.#options.until) throw this.#closedBeforeMatch();
          if (inputError !== undefined) throw inputError;
          return "closed";
        }
        this.#print(reply);
        if (this.#matched) return "until";
      }
    } finally {
      finished = true;
      // A read left pending (an end by silence or a timeout) fails when the connection closes:
      // nobody waits for it any more. (It would take the next line of a connection used on; send
      // and the repl close it.)
      reading?.catch(() => {});
      // The writer is awaited only when it is done anyway; one blocked on input is left behind.
      if (inputDone) await writing;
    }
  }

  /** Lockstep and JSON modes: send a line, wait for its replies, then the next line. */
  async #lockstep(): Promise<ExchangeEnding> {
    const connection = this.#connection;
    const perLine = this.#options.replies ?? 1;
    const timeoutMs = this.#timeoutMs;
    const ledger = this.#conversation.ledger;
    for await (const input of framedLines(this.#options.input, this.#options.maxLineBytes)) {
      const request = this.#enqueueLine(input, { replies: perLine });
      if (request === undefined) continue;
      await connection.flush();
      while (!request.settled) {
        if (connection.bufferedLines === 0) await this.#out.flush();
        const reply = await this.#conversation.read({ timeoutMs });
        if (reply === null) {
          throw new ConnectionLostError(
            `Connection closed by ${connection.remote} after ${request.received} of ${perLine} ${
              perLine === 1 ? "reply" : "replies"
            } to line ${this.#result.linesSent}`,
          );
        }
        // In order: a request's `id` is not relied upon here (requests are sent as they are given).
        this.#print(reply, ledger.credit()?.roundTripMs);
        if (this.#matched) return "until";
      }
      await this.#out.flush();
    }
    this.#result.inputComplete = true;
    if (this.#options.until) {
      for (;;) {
        await this.#out.flush();
        const reply = await this.#conversation.read({ timeoutMs });
        if (reply === null) throw this.#closedBeforeMatch();
        this.#print(reply);
        if (this.#matched) return "until";
      }
    }
    return "replies";
  }

  #closedBeforeMatch(): ConnectionLostError {
    return new ConnectionLostError(
      `Connection closed by ${this.#connection.remote} before a reply matched ${this.#options.until}`,
    );
  }

  /** Writes one reply and counts its error; checks it for `until`. */
  #print(reply: Reply, roundTripMs?: number): void {
    this.#result.replies++;
    this.#options.onReply?.(reply);
    if (reply.error instanceof LineTooLongError) {
      this.#result.tooLong++;
      this.#options.onTooLong?.(reply.error);
      return;
    }
    const until = this.#options.until;
    if (until) {
      until.lastIndex = 0;
      this.#matched = until.test(reply.text);
    }
    if (reply.error) {
      this.#result.remoteErrors++;
      this.#result.firstRemoteError ??= reply.error;
      this.#options.onRemoteError?.(reply.error);
    }
    if (this.#options.jsonOutput) {
      // JSON escapes every control character: safe on a terminal as it is.
      this.#out.enqueue(JSON.stringify({
        line: reply.text,
        bytes: reply.bytes.length,
        ...(roundTripMs !== undefined ? { rttMs: Math.round(roundTripMs * 1000) / 1000 } : {}),
      }));
      return;
    }
    if (this.#options.json && !this.#options.raw) {
      this.#printMessage(reply);
      return;
    }
    this.#printLine(reply);
  }

  /** Writes a line as it came (escaped for a terminal when asked), after the prefix. */
  #printLine(reply: Reply): void {
    if (this.#options.jsonOutput) {
      this.#out.enqueue(JSON.stringify({ line: reply.text, bytes: reply.bytes.length }));
      return;
    }
    const prefix = this.#options.prefix?.();
    if (prefix) this.#out.enqueueBytes(encoder.encode(prefix));
    if (reply.unterminated && !this.#options.json) {
      this.#out.enqueueBytes(this.#shown(reply.bytes, false));
    } else {
      this.#out.enqueue(this.#shown(reply.bytes, true));
    }
  }

  /** JSON mode: a successful response's `message`, then its `extra` when it is not null. */
  #printMessage(reply: Reply): void {
    const response = reply.response;
    if (response === undefined || response.status !== 0) return;
    const shown = "message" in response ? [showJson(response.message)] : [];
    if (response.extra != null) shown.push(`extra: ${showJson(response.extra)}`);
    const prefix = shown.length > 0 ? this.#options.prefix?.() : undefined;
    if (prefix) this.#out.enqueueBytes(encoder.encode(prefix));
    for (const text of shown) {
      this.#out.enqueue(
        this.#options.escapeControls ? text.split("\n").map(escapeControls).join("\n") : text,
      );
    }
  }

  /** A reply as printed: escaped when asked, keeping a `\r` that the added `\n` follows. */
  #shown(line: Uint8Array, terminated: boolean): Uint8Array {
    if (!this.#options.escapeControls) return line;
    const body = terminated ? withoutCR(line) : line;
    const escaped = escapeControlBytes(body);
    if (escaped === body) return line;
    if (body.length === line.length) return escaped;
    const withCR = new Uint8Array(escaped.length + 1);
    withCR.set(escaped);
    withCR[escaped.length] = 0x0d;
    return withCR;
  }
}

const encoder = new TextEncoder();

/** A JSON value as printed: a string as it is, anything else pretty-printed. */
function showJson(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** Input chunks framed into lines (copies; a final line without `\n` included). */
async function* framedLines(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  maxLineBytes = DEFAULT_MAX_LINE_BYTES,
): AsyncGenerator<Uint8Array> {
  const ready: Uint8Array[] = [];
  const framer = new LineFramer({ maxLineBytes, stripCR: false }, {
    onLine: (bytes) => ready.push(bytes.slice()),
    onTooLong: (error) => {
      throw new RangeError(
        `Input line ${error.lineNumber} is longer than ${error.limit} bytes (the line limit)`,
      );
    },
  });
  for await (const chunk of input) {
    framer.push(chunk);
    // Each line goes out as soon as it is complete; the rest of the chunk waits for its replies.
    yield* ready.splice(0);
  }
  framer.end();
  yield* ready.splice(0);
}

function concatNewline(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = LF;
  return out;
}

function withoutCR(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}

function isBlank(line: Uint8Array): boolean {
  return line.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0d);
}

function isReset(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    (error instanceof Error && error.cause instanceof Deno.errors.ConnectionReset);
}

function isConnectionFailure(error: unknown): boolean {
  return error instanceof LinesockError || isDisconnect(error);
}

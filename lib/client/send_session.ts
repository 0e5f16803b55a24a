/**
 * {@linkcode sendSession}: sends input through an open {@linkcode LineConnection}, prints the replies as
 * they arrive, and stops by one explicit rule. It is the engine of `linesock send`.
 *
 * | mode | after the last input line | ends when | waiting too long |
 * |---|---|---|---|
 * | stream (default) | half-close (unless `halfClose: false`) | the server closes, or `waitMs` of silence | normal end (silence) |
 * | lockstep (`replies: N`) | nothing | the N-th reply to the last line arrives | {@linkcode TimeoutError} after `timeoutMs` |
 * | `until: /re/` (either mode) | as above | a reply matches | {@linkcode TimeoutError} after `timeoutMs` |
 * | JSON (`json: true`) | nothing | the response to the last request arrives (lockstep, 1 reply) | {@linkcode TimeoutError} |
 *
 * In stream mode input and replies flow at the same time (one task writes, one reads), so neither side
 * can deadlock on full socket buffers, and memory stays bounded by the read and write buffers. Input
 * bytes go out exactly as given; a final line without `\n` gets one. Replies are written byte for byte
 * (a `\r` is kept; a final reply without `\n` is written without one), or, with `escapeControls` (for
 * a terminal), with their control characters shown escaped.
 *
 * A text reply starting with `ERR`, or a JSON response whose `status` is not 0, counts as a remote
 * error: the session carries on and reports the count.
 *
 * @example Streaming lines to an upper-casing server
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import { sendSession } from "./send_session.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * await using connection = await connect({ port: (server.addr as Deno.NetAddr).port, stripCR: false });
 * const printed: string[] = [];
 * const output = {
 *   write(bytes: Uint8Array) {
 *     printed.push(new TextDecoder().decode(bytes));
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const encoder = new TextEncoder();
 * const result = await sendSession(connection, {
 *   input: [encoder.encode("hello\nwor"), encoder.encode("ld")],
 *   output,
 * });
 * assert.equal(printed.join(""), "HELLO\nWORLD\n");
 * assert.equal(result.ending, "closed");
 * assert.equal(result.linesSent, 2);
 * ```
 *
 * @module
 */
import { type LineConnection, parseJsonResponse } from "./client.ts";
import { ConnectionLostError, LinesockError, RemoteError, TimeoutError } from "../errors.ts";
import { DEFAULT_MAX_LINE_BYTES, LineFramer } from "../framing/line_framer.ts";
import { type ByteWriter, LineWriter } from "../framing/line_writer.ts";
import { escapeControlBytes, escapeControls } from "./_terminal_escape.ts";

/** Why a {@linkcode sendSession} ended. */
export type SendEnding =
  /** The server closed the connection. */
  | "closed"
  /** No reply arrived for `waitMs` after the input ended (stream mode). */
  | "silence"
  /** The last expected reply arrived (lockstep and JSON modes). */
  | "replies"
  /** A reply matched `until`. */
  | "until";

/** Options of {@linkcode sendSession}. */
export interface SendSessionOptions {
  /** Input bytes in chunks of any size; lines end with `\n`. */
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Where the replies are written (standard output). */
  output: ByteWriter;
  /** Lockstep: after each line, wait for exactly this many replies. Without it: stream mode. */
  replies?: number | undefined;
  /** Stop as soon as a reply (without its line terminator) matches. */
  until?: RegExp | undefined;
  /**
   * JSON mode: requests in, responses parsed; prints each `message`, then `extra: …` when the
   * response's `extra` is not null (lockstep, 1 reply).
   */
  json?: boolean | undefined;
  /** JSON mode: print each whole response line instead of its `message`. @default {false} */
  raw?: boolean | undefined;
  /**
   * Print control characters of replies escaped (`ESC` as `\x1b`, bytes that are not UTF-8 as
   * `\xff`), for a terminal: a hostile server's escape sequences cannot drive it. A `\r` right before
   * the `\n` is kept. Off, replies are written byte for byte. @default {false}
   */
  escapeControls?: boolean | undefined;
  /** Stream mode: half-close after the input. Off for servers that take it as a hang-up. @default {true} */
  halfClose?: boolean | undefined;
  /** Stream mode: after the input, stop after this much silence (ms); 0 waits for the close. @default {2000} */
  waitMs?: number | undefined;
  /** The longest wait for an expected reply (lockstep, JSON, `until`), in ms; 0: no limit. @default {10000} */
  timeoutMs?: number | undefined;
  /** The longest input line in lockstep and JSON modes (they frame input lines). @default {1048576} */
  maxLineBytes?: number | undefined;
  /** Called for each remote error (an `ERR` line, a JSON status that is not 0, a response that is not JSON). */
  onRemoteError?: ((error: RemoteError) => void) | undefined;
}

/** What a {@linkcode sendSession} did. */
export interface SendSessionResult {
  /** Why it ended. */
  ending: SendEnding;
  /** Input lines sent. */
  linesSent: number;
  /** Reply lines received. */
  replies: number;
  /** Remote errors received (the session carries on after them). */
  remoteErrors: number;
  /** The first remote error, if any. */
  firstRemoteError: RemoteError | undefined;
  /** Whether all input was sent (false when the server closed or failed first). */
  inputComplete: boolean;
}

const LF = 0x0a;
const NEWLINE = new Uint8Array([LF]);
const ERR = [0x45, 0x52, 0x52];
const lenientDecoder = new TextDecoder();

/**
 * Runs one exchange over an open connection. The connection is left open; close it afterwards (a
 * writer still blocked on a server that stopped reading is released by that close).
 * @param connection An open connection; use `stripCR: false` for byte-exact replies.
 * @param options Input, output and the ending rule.
 * @returns What happened.
 * @throws {TimeoutError} When an expected reply did not come within `timeoutMs`.
 * @throws {ConnectionLostError} When the connection closed or broke before the expected replies.
 *
 * @example Lockstep with two replies per line, and a remote error
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import { sendSession } from "./send_session.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => [line, line === "bad" ? "ERR no" : "ok"]);
 * await using connection = await connect({ port: (server.addr as Deno.NetAddr).port });
 * let printed = "";
 * const output = {
 *   write(bytes: Uint8Array) {
 *     printed += new TextDecoder().decode(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const input = [new TextEncoder().encode("good\nbad\n")];
 * const result = await sendSession(connection, { input, output, replies: 2 });
 * assert.equal(printed, "good\nok\nbad\nERR no\n");
 * assert.equal(result.ending, "replies");
 * assert.equal(result.remoteErrors, 1);
 * assert.equal(result.firstRemoteError?.message, "ERR no");
 * ```
 */
export function sendSession(
  connection: LineConnection,
  options: SendSessionOptions,
): Promise<SendSessionResult> {
  return new Session(connection, options).run();
}

class Session {
  readonly #connection: LineConnection;
  readonly #options: SendSessionOptions;
  readonly #out: LineWriter;
  readonly #result: SendSessionResult = {
    ending: "closed",
    linesSent: 0,
    replies: 0,
    remoteErrors: 0,
    firstRemoteError: undefined,
    inputComplete: false,
  };
  #matched = false;

  constructor(connection: LineConnection, options: SendSessionOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#out = new LineWriter(options.output);
  }

  async run(): Promise<SendSessionResult> {
    const lockstep = this.#options.json || this.#options.replies !== undefined;
    try {
      this.#result.ending = lockstep ? await this.#lockstep() : await this.#stream();
    } finally {
      await this.#out.flush();
    }
    return this.#result;
  }

  get #timeoutMs(): number | undefined {
    const ms = this.#options.timeoutMs ?? 10_000;
    return ms > 0 ? ms : undefined;
  }

  /** Stream mode: one task writes the input while this one reads and prints replies. */
  async #stream(): Promise<SendEnding> {
    const connection = this.#connection;
    const inputEnded = new AbortController();
    let finished = false;
    let inputError: unknown;
    const writing = (async () => {
      try {
        let last = LF;
        for await (const chunk of this.#options.input) {
          if (finished) return;
          if (chunk.length === 0) continue;
          connection.enqueueBytes(chunk);
          this.#result.linesSent += countNewlines(chunk);
          last = chunk[chunk.length - 1]!;
          // Awaiting each flush lets a server that reads slowly hold the input back (bounded memory).
          await connection.flush();
        }
        if (last !== LF) {
          connection.enqueueBytes(NEWLINE);
          this.#result.linesSent++;
        }
        if (this.#options.halfClose ?? true) await connection.closeWrite();
        else await connection.flush();
        this.#result.inputComplete = true;
      } catch (error) {
        // A write that fails because the server went away is not an input error: the replies decide.
        if (!finished && !isConnectionFailure(error)) inputError = error;
      } finally {
        inputEnded.abort();
      }
    })();

    const waitMs = this.#options.waitMs ?? 2000;
    try {
      for (;;) {
        if (connection.bufferedLines === 0) await this.#out.flush();
        const afterInput = inputEnded.signal.aborted;
        const budget = this.#options.until ? this.#timeoutMs : (waitMs > 0 ? waitMs : undefined);
        let line: Uint8Array | null;
        try {
          line = await connection.readRawLine(
            afterInput ? { timeoutMs: budget } : { signal: inputEnded.signal },
          );
        } catch (error) {
          // The input just ended: from now on, silence counts.
          if (!afterInput && inputEnded.signal.aborted && error === inputEnded.signal.reason) {
            continue;
          }
          if (error instanceof TimeoutError && this.#options.until) {
            throw new TimeoutError(
              `no reply from ${connection.remote} matched ${this.#options.until}`,
              error.timeoutMs,
            );
          }
          if (error instanceof TimeoutError) {
            if (inputError !== undefined) throw inputError;
            return "silence";
          }
          throw error;
        }
        if (line === null) {
          if (this.#options.until) throw this.#closedBeforeMatch();
          if (inputError !== undefined) throw inputError;
          return "closed";
        }
        this.#print(line);
        if (this.#matched) return "until";
      }
    } finally {
      finished = true;
      // The writer is awaited only when it is done anyway; one blocked on input is left behind.
      if (inputEnded.signal.aborted) await writing;
    }
  }

  /** Lockstep and JSON modes: send a line, wait for its replies, then the next line. */
  async #lockstep(): Promise<SendEnding> {
    const connection = this.#connection;
    const perLine = this.#options.replies ?? 1;
    const timeoutMs = this.#timeoutMs;
    for await (const line of framedLines(this.#options.input, this.#options.maxLineBytes)) {
      if (this.#options.json && isBlank(line)) continue;
      connection.enqueue(line);
      await connection.flush();
      const lineNumber = ++this.#result.linesSent;
      for (let count = 0; count < perLine; count++) {
        if (connection.bufferedLines === 0) await this.#out.flush();
        const reply = await connection.readRawLine({ timeoutMs });
        if (reply === null) {
          throw new ConnectionLostError(
            `Connection closed by ${connection.remote} after ${count} of ${perLine} ${
              perLine === 1 ? "reply" : "replies"
            } to line ${lineNumber}`,
          );
        }
        this.#print(reply);
        if (this.#matched) return "until";
      }
      await this.#out.flush();
    }
    this.#result.inputComplete = true;
    if (this.#options.until) {
      for (;;) {
        await this.#out.flush();
        const reply = await connection.readRawLine({ timeoutMs });
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

  /** Writes one reply and checks it for a remote error and for `until`. */
  #print(line: Uint8Array): void {
    this.#result.replies++;
    const until = this.#options.until;
    if (until) {
      until.lastIndex = 0;
      this.#matched = until.test(lenientDecoder.decode(withoutCR(line)));
    }
    if (this.#options.json) {
      this.#printResponse(line);
      return;
    }
    if (this.#connection.lastLineUnterminated) this.#out.enqueueBytes(this.#shown(line, false));
    else this.#out.enqueue(this.#shown(line, true));
    if (ERR.every((byte, index) => line[index] === byte)) {
      this.#remoteError(new RemoteError(lenientDecoder.decode(withoutCR(line)), 1));
    }
  }

  #printResponse(line: Uint8Array): void {
    if (this.#options.raw) this.#out.enqueue(this.#shown(line, true));
    let response;
    try {
      response = parseJsonResponse(lenientDecoder.decode(withoutCR(line)));
    } catch (error) {
      if (error instanceof RemoteError) return this.#remoteError(error);
      throw error;
    }
    if (response.status !== 0) {
      const message = typeof response.message === "string"
        ? response.message
        : JSON.stringify(response.message);
      this.#remoteError(new RemoteError(message, response.status, response.extra));
      return;
    }
    if (this.#options.raw) return;
    const shown = "message" in response ? [showJson(response.message)] : [];
    // A command's extra data, when it set any (null means none).
    if (response.extra != null) shown.push(`extra: ${showJson(response.extra)}`);
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

  #remoteError(error: RemoteError): void {
    this.#result.remoteErrors++;
    this.#result.firstRemoteError ??= error;
    this.#options.onRemoteError?.(error);
  }
}

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

function countNewlines(bytes: Uint8Array): number {
  let count = 0;
  for (let at = bytes.indexOf(LF); at !== -1; at = bytes.indexOf(LF, at + 1)) count++;
  return count;
}

function withoutCR(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}

function isBlank(line: Uint8Array): boolean {
  return line.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0d);
}

function isConnectionFailure(error: unknown): boolean {
  return error instanceof LinesockError || error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.NotConnected;
}

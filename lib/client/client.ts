/**
 * {@linkcode connect}: a line client for TCP and Unix sockets. Send lines, read replies as they arrive,
 * make lockstep requests, or speak the JSON command protocol; errors are typed
 * ({@linkcode ConnectError}, {@linkcode TimeoutError}, {@linkcode ConnectionLostError},
 * {@linkcode RemoteError}).
 *
 * Replies are read only when asked for, so a caller that stops reading also stops the socket being
 * read: memory stays bounded by one read buffer plus the lines it held.
 *
 * @example Request and reply
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line === "PING" ? "PONG" : "ERR ?");
 * await using client = await connect({ port: (server.addr as Deno.NetAddr).port });
 * assert.deepEqual(await client.request("PING"), ["PONG"]);
 * ```
 *
 * @example Streaming: send everything, half-close, read until the server closes
 * ```ts
 * import { connect, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * await using client = await connect({ port: (server.addr as Deno.NetAddr).port });
 * for (const line of ["a", "b"]) client.enqueue(line);
 * await client.flush();
 * await client.closeWrite();
 * assert.deepEqual(await Array.fromAsync(client), ["A", "B"]);
 * ```
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT, formatAddress } from "../address.ts";
import { ConnectionReader } from "../framing/connection_reader.ts";
import {
  ConnectError,
  ConnectionLostError,
  LinesockError,
  LineTooLongError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
import { decodeLine } from "../framing/line_decoder.ts";
import { DEFAULT_MAX_LINE_BYTES, LineFramer } from "../framing/line_framer.ts";
import { LineWriter } from "../framing/line_writer.ts";
import { type ClientTlsOptions, openTransport, type Transport } from "./transport.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./_defaults.ts";
import { describeDisconnect, isDisconnect } from "../_disconnect.ts";
import { waitFor } from "./_wait_for.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** Server host. @default {"127.0.0.1"} */
  hostname?: string;
  /** Server port. @default {1991} */
  port?: number;
  /** Connect to this Unix socket instead of TCP. */
  path?: string;
  /** Use TLS (TCP only): `true` for the defaults, or which CAs to trust and which name to verify. */
  tls?: ClientTlsOptions | boolean;
  /** Give up connecting after this long, in ms; 0: no limit. @default {10000} */
  connectTimeoutMs?: number;
  /** Connection attempts after the first failure (a server that is still starting). @default {0} */
  retries?: number;
  /** The first retry's delay in ms; it doubles up to 2 s. @default {100} */
  retryDelayMs?: number;
  /** Called before each retry (for progress messages). */
  onRetry?: (attempt: number, error: ConnectError, delayMs: number) => void;
  /** The longest reply line accepted, in bytes. @default {1048576} */
  maxLineBytes?: number;
  /** Strip one `\r` before each reply's `\n`. @default {true} */
  stripCR?: boolean;
}

/** Options of {@linkcode LineConnection.readRawLine} and {@linkcode LineConnection.readLine}. */
export interface ReadLineOptions {
  /** Give up after this long, in ms (the connection stays usable). Without it: no limit. */
  timeoutMs?: number | undefined;
  /** Stop waiting when this aborts (the connection stays usable; no reply is lost). */
  signal?: AbortSignal | undefined;
}

/** A JSON-protocol response. */
export interface JsonResponse {
  /** 0 for success. */
  status: number;
  /** The result or error message. */
  message: unknown;
  /**
   * Data the command adds (a route's `"extra"`; for the server's own errors `{"error": kind}`), or
   * `null` when there is none. {@linkcode parseJsonResponse} gives `null` when a server left it out.
   */
  extra: unknown;
  /** The request id echoed back, if any. */
  id?: unknown;
}

/**
 * Connects to a line server.
 * @param options Where, how long to try, and reply limits.
 * @returns An open connection.
 * @throws {ConnectError} When the server cannot be reached (after the retries).
 * @throws {TimeoutError} When connecting takes longer than `connectTimeoutMs`.
 */
export async function connect(options: ConnectOptions = {}): Promise<LineConnection> {
  const target = options.path !== undefined ? `unix://${options.path}` : formatAddress({
    transport: "tcp",
    hostname: options.hostname ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
  });
  const retries = options.retries ?? 0;
  let delay = options.retryDelayMs ?? 100;
  for (let attempt = 0;; attempt++) {
    try {
      const transport = await openTransport({
        hostname: options.hostname,
        port: options.port,
        path: options.path,
        tls: options.tls,
        connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      });
      return new LineConnection(transport, target, options);
    } catch (error) {
      if (!(error instanceof ConnectError) || !isTransient(error) || attempt >= retries) {
        throw error;
      }
      options.onRetry?.(attempt + 1, error, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/** Failures that a server which is still starting causes; a bad certificate or host name is not one. */
function isTransient(error: ConnectError): boolean {
  const cause = error.cause;
  return cause instanceof Deno.errors.ConnectionRefused || cause instanceof Deno.errors.NotFound ||
    cause instanceof Deno.errors.ConnectionReset || cause instanceof Deno.errors.TimedOut;
}

/** How long disposing a TLS connection waits for its close_notify to be sent. */
const TLS_GOODBYE_MS = 200;

/** An open line connection. Iterate it for reply lines. */
export class LineConnection implements AsyncDisposable, AsyncIterable<string> {
  /** Where it is connected, as `tcp://host:port` or `unix://path`. */
  readonly remote: string;
  readonly #transport: Transport;
  readonly #reader: ConnectionReader;
  readonly #writer: LineWriter;
  readonly #framer: LineFramer;
  /** Reply lines in order; an over-long line stands where it was, as its error. */
  readonly #lines: (Uint8Array | LineTooLongError)[] = [];
  #head = 0;
  #pendingRead: Promise<Uint8Array | null> | undefined;
  #ended = false;
  #unterminated = false;
  #chunkCopy: Uint8Array | undefined;
  #lastUnterminated = false;
  #closed = false;
  #writeClosed = false;
  readonly #tls: boolean;
  #nextId = 1;

  /**
   * Wraps an open transport (use {@linkcode connect} instead).
   * @param transport The socket.
   * @param remote Its address, for messages.
   * @param options Reply limits.
   */
  constructor(transport: Transport, remote: string, options: ConnectOptions = {}) {
    this.#transport = transport;
    this.remote = remote;
    this.#tls = Boolean(options.tls);
    this.#reader = new ConnectionReader(transport);
    this.#writer = new LineWriter(transport);
    this.#framer = new LineFramer({
      maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      stripCR: options.stripCR ?? true,
    }, {
      // A line inside the chunk copy is kept as a view of it: one allocation per chunk, not per line.
      onLine: (bytes) =>
        this.#lines.push(bytes.buffer === this.#chunkCopy?.buffer ? bytes : bytes.slice()),
      onTooLong: (error) => this.#lines.push(error),
    });
  }

  /** Bytes sent so far. */
  get bytesWritten(): number {
    return this.#writer.bytesWritten;
  }

  /** Bytes received so far. */
  get bytesRead(): number {
    return this.#reader.bytesRead;
  }

  /**
   * Queues a line (its `\n` is added) without waiting; {@linkcode flush} sends what is queued.
   * @param line Text or bytes without the terminator.
   */
  enqueue(line: string | Uint8Array): void {
    this.#writer.enqueue(line);
  }

  /**
   * Queues bytes as they are, with no terminator added (a relay of input that is already framed).
   * @param bytes The bytes (copied).
   */
  enqueueBytes(bytes: Uint8Array): void {
    this.#writer.enqueueBytes(bytes);
  }

  /** Bytes queued and not yet sent. */
  get pendingBytes(): number {
    return this.#writer.pendingBytes;
  }

  /**
   * Sends what is queued.
   * @returns A promise that settles when the socket took it all.
   */
  async flush(): Promise<void> {
    try {
      await this.#writer.flush();
    } catch (error) {
      throw this.#lost(error);
    }
  }

  /**
   * Sends one line and waits until the socket took it.
   * @param line Text or bytes without the terminator.
   */
  async send(line: string | Uint8Array): Promise<void> {
    this.enqueue(line);
    await this.flush();
  }

  /**
   * Reads the next reply line as bytes (without its terminator; with `stripCR: false`, a `\r` before
   * the `\n` is kept).
   * @param options A time budget in ms, or {@linkcode ReadLineOptions} (a budget and an abort signal).
   * Without a budget, waits as long as it takes.
   * @returns The line (a copy the caller owns), or `null` when the server closed the connection.
   * @throws {TimeoutError} When no line arrived in time (the connection stays usable).
   * @throws {LineTooLongError} When a reply exceeded `maxLineBytes`.
   * @throws {ConnectionLostError} When the connection was reset.
   * @throws The signal's reason when `signal` aborts; no reply is lost, the next read gets it.
   *
   * @example Waiting with a budget, then reading the raw bytes
   * ```ts
   * import { connect, serve, TimeoutError } from "@linesock/linesock";
   * import assert from "node:assert/strict";
   *
   * await using server = await serve({ port: 0 }, (line) => line === "late" ? undefined : "ok\r");
   * await using client = await connect({ port: (server.addr as Deno.NetAddr).port, stripCR: false });
   * await client.send("late");
   * await assert.rejects(client.readRawLine(50), TimeoutError);
   * await client.send("now");
   * assert.deepEqual(await client.readRawLine({ timeoutMs: 5000 }), new TextEncoder().encode("ok\r"));
   * assert.equal(client.lastLineUnterminated, false);
   * ```
   */
  async readRawLine(options?: number | ReadLineOptions): Promise<Uint8Array | null> {
    const { timeoutMs, signal } = typeof options === "number"
      ? { timeoutMs: options }
      : options ?? {};
    while (this.#head === this.#lines.length) {
      if (this.#ended) return null;
      this.#lines.length = this.#head = 0;
      signal?.throwIfAborted();
      this.#pendingRead ??= this.#reader.read();
      let chunk: Uint8Array | null;
      try {
        chunk = await waitFor(
          this.#pendingRead,
          timeoutMs,
          signal,
          `waiting for a reply from ${this.remote}`,
        );
      } catch (error) {
        // A timeout or an abort leaves the read pending for the next call; a failed read does not.
        if (!(error instanceof TimeoutError) && !signal?.aborted) this.#pendingRead = undefined;
        throw this.#lost(error);
      }
      this.#pendingRead = undefined;
      if (chunk === null) {
        this.#ended = true;
        this.#unterminated = this.#framer.bufferedBytes > 0;
        this.#framer.end();
      } else {
        this.#chunkCopy = chunk.slice();
        this.#framer.push(this.#chunkCopy);
        this.#chunkCopy = undefined;
      }
    }
    const line = this.#lines[this.#head++]!;
    if (line instanceof LineTooLongError) throw line;
    this.#lastUnterminated = this.#unterminated && this.#ended && this.#head === this.#lines.length;
    return line;
  }

  /**
   * Whether the line returned last ended the stream without a `\n` (only a final line can).
   * A byte-exact printer writes it without adding a terminator.
   */
  get lastLineUnterminated(): boolean {
    return this.#lastUnterminated;
  }

  /** Reply lines already received and not yet read: reading them will not wait. */
  get bufferedLines(): number {
    return this.#lines.length - this.#head;
  }

  /**
   * Reads the next reply line as text (strict UTF-8).
   * @param options A time budget in ms, or {@linkcode ReadLineOptions}.
   * @returns The line, or `null` when the server closed the connection.
   * @throws {InvalidEncodingError} When the line is not valid UTF-8.
   */
  async readLine(options?: number | ReadLineOptions): Promise<string | null> {
    const bytes = await this.readRawLine(options);
    return bytes === null ? null : decodeLine(bytes);
  }

  /**
   * Sends a line and reads exactly `replies` lines back (lockstep).
   * @param line The request.
   * @param options How many reply lines to expect, and the time budget for each.
   * @returns The reply lines.
   * @throws {ConnectionLostError} When the server closed before all replies arrived.
   */
  async request(
    line: string | Uint8Array,
    options: { replies?: number; timeoutMs?: number } = {},
  ): Promise<string[]> {
    await this.send(line);
    const replies: string[] = [];
    for (let i = 0; i < (options.replies ?? 1); i++) {
      const reply = await this.readLine(options.timeoutMs);
      if (reply === null) {
        throw new ConnectionLostError(
          `Connection closed by ${this.remote} after ${replies.length} of ${
            options.replies ?? 1
          } replies`,
        );
      }
      replies.push(reply);
    }
    return replies;
  }

  /**
   * Sends a JSON-protocol command and returns its response.
   * @param command The command name.
   * @param args The arguments object.
   * @param options The time budget.
   * @returns The response (status 0).
   * @throws {RemoteError} When the response's status is not 0 (with the server's message).
   */
  async command(
    command: string,
    args: Record<string, unknown> = {},
    options: { timeoutMs?: number } = {},
  ): Promise<JsonResponse> {
    const id = this.#nextId++;
    await this.send(JSON.stringify({ command, args, id }));
    for (;;) {
      const line = await this.readLine(options.timeoutMs);
      if (line === null) {
        throw new ConnectionLostError(`Connection closed by ${this.remote} before the response`);
      }
      const response = parseJsonResponse(line);
      // Lines for other requests (or none at all) are skipped: they are not this response.
      if (response.id !== undefined && response.id !== id) continue;
      if (response.status !== 0) {
        throw new RemoteError(
          typeof response.message === "string"
            ? response.message
            : JSON.stringify(response.message),
          response.status,
          response.extra,
        );
      }
      return response;
    }
  }

  /**
   * Joins a room of a chat server (`serve --protocol chat`): sends `/nick NAME` when a name is
   * given, then `/join ROOM`, and reads up to the server's confirmation. Lines before it (the
   * welcome, the old room's talk) are skipped; iterating the connection then yields what is said
   * in the room, as `<name> text` lines and `* …` notices.
   * @param room The room.
   * @param options The name to take, and the time budget of each line read.
   * @throws {RemoteError} When the server refuses the name or the room.
   * @throws {ConnectionLostError} When the server closed before confirming.
   *
   * @example Two clients in a room
   * ```ts
   * import { chatProtocol, connect, serve } from "@linesock/linesock";
   * import assert from "node:assert/strict";
   *
   * await using chat = chatProtocol();
   * await using server = await serve({ port: 0 }, chat);
   * const port = (server.addr as Deno.NetAddr).port;
   * await using ann = await connect({ port });
   * await using ben = await connect({ port });
   * await ann.join("ops", { name: "ann" });
   * await ben.join("ops", { name: "ben" });
   * await ben.send("deploying");
   * // Ann heard Ben arrive, then what he said.
   * assert.deepEqual(await ann.readLine(5000), "* ben joined ops");
   * assert.deepEqual(await ann.readLine(5000), "<ben> deploying");
   * ```
   */
  async join(room: string, options: { name?: string; timeoutMs?: number } = {}): Promise<void> {
    const confirmations: string[] = [`* you joined ${room}`, `* you are already in ${room}`];
    if (options.name !== undefined) {
      this.enqueue(`/nick ${options.name}`);
      confirmations.unshift(`* you are now ${options.name}`, `* you are ${options.name}`);
    }
    await this.send(`/join ${room}`);
    let awaited = options.name === undefined ? 1 : 2;
    while (awaited > 0) {
      const line = await this.readLine(options.timeoutMs);
      if (line === null) {
        throw new ConnectionLostError(`Connection closed by ${this.remote} before joining ${room}`);
      }
      if (line.startsWith("ERR ")) throw new RemoteError(line.slice(4));
      if (confirmations.includes(line)) awaited--;
    }
  }

  /** Half-closes: tells the server no more lines come; replies can still be read. */
  async closeWrite(): Promise<void> {
    await this.flush();
    try {
      await this.#transport.closeWrite();
    } catch (error) {
      throw this.#lost(error);
    }
    this.#writeClosed = true;
  }

  /** Reply lines as text until the server closes the connection. */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (let line; (line = await this.readLine()) !== null;) yield line;
  }

  /** Closes the connection at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#transport.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Closes the connection, and waits for a pending read to settle. A TLS connection first says
   * goodbye (close_notify), waiting for that at most 200 ms: without it the server sees a truncated
   * stream ("peer closed connection without sending TLS close_notify") instead of an end.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#tls && !this.#closed && !this.#writeClosed) {
      this.#writeClosed = true;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#transport.closeWrite().catch(() => {}),
        new Promise((resolve) => timer = setTimeout(resolve, TLS_GOODBYE_MS)),
      ]);
      clearTimeout(timer);
    }
    this.close();
    await this.#pendingRead?.catch(() => {});
  }

  /** A failed read or write as the error callers get: a disconnect is a {@linkcode ConnectionLostError}. */
  #lost(error: unknown): unknown {
    if (error instanceof LinesockError || !isDisconnect(error)) return error;
    const lost = new ConnectionLostError(
      `Connection to ${this.remote} lost: ${describeDisconnect(error)}`,
    );
    lost.cause = error;
    return lost;
  }
}

/**
 * Parses one JSON-protocol response line.
 * @param line The line.
 * @returns The response; `extra` is `null` when the line has none.
 * @throws {RemoteError} When the line is not a JSON response object.
 * @example A response, and a line that is not one
 * ```ts
 * import { parseJsonResponse, RemoteError } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseJsonResponse('{"status":0,"message":"pong","extra":null,"id":7}'), {
 *   status: 0,
 *   message: "pong",
 *   extra: null,
 *   id: 7,
 * });
 * assert.deepEqual(parseJsonResponse('{"status":0,"message":"v","extra":{"build":42}}').extra, {
 *   build: 42,
 * });
 * assert.throws(() => parseJsonResponse("PONG"), RemoteError);
 * ```
 */
export function parseJsonResponse(line: string): JsonResponse {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RemoteError(`Not a JSON response: ${line.slice(0, 200)}`, 1);
  }
  if (
    typeof value !== "object" || value === null ||
    typeof (value as JsonResponse).status !== "number"
  ) {
    throw new RemoteError(`Not a JSON response (no numeric status): ${line.slice(0, 200)}`, 1);
  }
  const response = value as JsonResponse;
  if (!Object.hasOwn(response, "extra")) response.extra = null;
  return response;
}

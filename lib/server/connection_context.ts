/**
 * {@linkcode ConnectionContext}: what a handler or protocol knows about its connection and can do
 * with it: who the peer is, which line it handles, replying outside the normal flow, error replies,
 * closing the connection and asking for the server's shutdown. Nothing more: the server's engine
 * (its sessions, its other connections) is out of a protocol's reach.
 *
 * @example A protocol that uses its context
 * ```ts
 * import { type ConnectionContext, runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const result = await runLines((line: string, context: ConnectionContext) => {
 *   if (line === "stop") {
 *     context.requestShutdown();
 *     context.close("stop requested");
 *     return "stopping";
 *   }
 *   if (line === "oops") return void context.sendError("internal", "no such thing");
 *   return `${context.id} ${context.peer} line ${context.lineNumber}: ${line}`;
 * }, "hello\noops\nstop\nignored\n");
 * assert.deepEqual(result.lines, [
 *   "1 127.0.0.1:50000 line 1: hello",
 *   "ERR no such thing",
 *   "stopping",
 * ]);
 * assert.equal(result.closed, true);
 * assert.equal(result.shutdownRequested, true);
 * ```
 *
 * @module
 */
import type { ReplyLine, ServerErrorKind } from "./protocol.ts";

/** What a handler knows about its connection and can do with it. */
export interface ConnectionContext {
  /** A number unique within this server. */
  readonly id: number;
  /**
   * The peer, for logs: `127.0.0.1:50432`, `[::1]:50432` or `unix`. With the PROXY protocol, the
   * client the balancer relays.
   */
  readonly peer: string;
  /** The peer's address (with the PROXY protocol, the source address its header names). */
  readonly remoteAddr: Deno.Addr;
  /** The number of the line being handled (1-based). */
  readonly lineNumber: number;
  /** Connections open on the server now, this one included. */
  readonly connections: number;
  /** Aborted when this connection closes (to stop work started for it, such as a program). */
  readonly signal: AbortSignal;
  /**
   * Bytes of replies queued and not yet taken by the socket. The server stops reading a client
   * while this exceeds `writeBufferBytes`; a handler that sends on its own may check it too.
   */
  readonly queuedBytes: number;
  /**
   * Sends a line outside the normal reply flow (for example from a timer).
   * @returns A promise that settles once the line was handed to the socket.
   */
  send(line: ReplyLine): Promise<void>;
  /** Queues bytes as they are, with no terminator (byte relays). */
  sendRaw(bytes: Uint8Array): void;
  /** Sends a line made by the protocol's error phrasing for `kind` (and counts the error). */
  sendError(kind: ServerErrorKind, message: string): void;
  /** Counts an error reply that the handler phrases and sends itself, for the server's stats. */
  countError(): void;
  /** Closes this connection once the replies so far are sent; later lines are ignored. */
  close(reason?: string): void;
  /**
   * Closes this connection now, dropping the replies not yet sent: for a client that does not read
   * them (too slow for a broadcast), where `close` would wait until the write timeout.
   */
  abort(reason?: string): void;
  /**
   * Asks the server to shut down gracefully, once the current reply is queued: it stops accepting,
   * answers the lines it has received, and closes every connection (this one too).
   */
  requestShutdown(): void;
}

/**
 * Internal: the context a session hands to its protocol. A small object that forwards to the
 * session, so that a protocol reaches what the interface offers and nothing else of the engine.
 */
export class SessionContext implements ConnectionContext {
  readonly #session: ConnectionContext;

  constructor(session: ConnectionContext) {
    this.#session = session;
  }

  get id(): number {
    return this.#session.id;
  }

  get peer(): string {
    return this.#session.peer;
  }

  get remoteAddr(): Deno.Addr {
    return this.#session.remoteAddr;
  }

  get lineNumber(): number {
    return this.#session.lineNumber;
  }

  get connections(): number {
    return this.#session.connections;
  }

  get signal(): AbortSignal {
    return this.#session.signal;
  }

  get queuedBytes(): number {
    return this.#session.queuedBytes;
  }

  send(line: ReplyLine): Promise<void> {
    return this.#session.send(line);
  }

  sendRaw(bytes: Uint8Array): void {
    this.#session.sendRaw(bytes);
  }

  sendError(kind: ServerErrorKind, message: string): void {
    this.#session.sendError(kind, message);
  }

  countError(): void {
    this.#session.countError();
  }

  close(reason?: string): void {
    this.#session.close(reason);
  }

  abort(reason?: string): void {
    this.#session.abort(reason);
  }

  requestShutdown(): void {
    this.#session.requestShutdown();
  }
}

/**
 * What the server runs for each connection: a {@linkcode LineHandler} (a function of decoded text
 * lines) or a byte-level {@linkcode LineProtocol}, and what either may answer ({@linkcode Reply}).
 *
 * A handler gets each line and a {@linkcode ConnectionContext}, and may return nothing, a line,
 * several lines, a promise of those, or an async iterable of lines. Replies always leave in the order
 * of the lines that caused them.
 *
 * @example A byte-level protocol, tried without a socket
 * ```ts
 * import { type LineProtocol, runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const shout: LineProtocol = {
 *   onConnect: () => "ready",
 *   onLine: (line) => new TextDecoder().decode(line).toUpperCase(),
 *   onEnd: () => ["that was all", "bye"],
 *   formatError: (kind, message) => `! ${kind}: ${message}`,
 * };
 * const result = await runLines(shout, "hi\nthere\n");
 * assert.deepEqual(result.lines, ["ready", "HI", "THERE", "that was all", "bye"]);
 * ```
 *
 * @module
 */
import { InvalidEncodingError } from "../errors.ts";
import { decodeLine } from "../framing/line_decoder.ts";
import type { ConnectionContext } from "./connection_context.ts";
import { SERVE_DEFAULTS } from "./defaults.ts";
import type { ProtocolMetrics } from "./metrics.ts";

/** One reply line: text (sent as UTF-8) or bytes; the `\n` is added. */
export type ReplyLine = string | Uint8Array;

/** What a handler may return. */
export type Reply =
  | ReplyLine
  | Iterable<ReplyLine>
  | AsyncIterable<ReplyLine>
  | null
  | undefined
  | void;

/** A handler of decoded text lines. */
export type LineHandler = (
  line: string,
  context: ConnectionContext,
) => Reply | Promise<Reply>;

/** Why the server reports an error to a client; protocols may phrase each their own way. */
export type ServerErrorKind =
  | "line_too_long"
  | "invalid_encoding"
  | "idle_timeout"
  | "line_timeout"
  | "busy"
  | "too_many_connections"
  | "internal"
  | "shutting_down"
  | "invalid_proxy_header";

/**
 * A protocol at the byte level: the lower-level form of a handler, used by linesock's own protocols.
 * It sees each line as bytes (views valid only during the call) and may answer synchronously for speed.
 */
export interface LineProtocol {
  /** Strip one `\r` before each `\n`. @default {true} */
  readonly stripCR?: boolean;
  /** Called when a connection opens; its reply is sent first. */
  onConnect?(context: ConnectionContext): Reply | Promise<Reply>;
  /** Called for each line. The bytes are only valid during the call. */
  onLine(line: Uint8Array, context: ConnectionContext): Reply | Promise<Reply>;
  /**
   * Replaces line framing: called with each raw chunk instead (a byte relay such as echo). The bytes
   * are only valid during the call.
   */
  onData?(chunk: Uint8Array, context: ConnectionContext): void;
  /** Called when the peer half-closes (after its last line). */
  onEnd?(context: ConnectionContext): Reply | Promise<Reply>;
  /**
   * Phrases an error reply. Without it: `ERR <message>`. `context` is the connection's, when the
   * error concerns a connection (a protocol may then also close it, as for a line too long).
   * @returns The line (or lines) to send, or `undefined` to send nothing.
   */
  formatError?(
    kind: ServerErrorKind,
    message: string,
    context?: ConnectionContext,
  ): string | readonly string[] | undefined;
  /**
   * Lines to send a connection when the server shuts down (a farewell), after the replies to what
   * it had received and before the server closes it. Without it: nothing is said.
   */
  onShutdown?(context: ConnectionContext): ReplyLine | readonly ReplyLine[] | undefined;
  /**
   * What the protocol reports for the server's metrics (route hits, programs running), read when
   * the server's `metrics()` is asked for. Without it: none of those.
   */
  metrics?(): ProtocolMetrics;
}

/**
 * Internal: the protocol that runs a handler, or the protocol itself. A text handler is wrapped with
 * strict decoding: a line that is not UTF-8 is answered with `invalidReply`, not handed over.
 */
export function protocolOf(
  handler: LineHandler | LineProtocol,
  invalidReply: string = SERVE_DEFAULTS.invalidReply,
): LineProtocol {
  if (typeof handler !== "function") return handler;
  return {
    onLine(bytes, context) {
      let line: string;
      try {
        line = decodeLine(bytes, context.lineNumber);
      } catch (error) {
        if (error instanceof InvalidEncodingError) return invalidReply;
        throw error;
      }
      return handler(line, context);
    },
  };
}

/** Internal: whether a reply is a promise (or another thenable). */
export function isPromiseLike(value: unknown): value is PromiseLike<Reply> {
  return typeof (value as PromiseLike<unknown>)?.then === "function";
}

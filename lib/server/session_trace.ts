/**
 * Internal: trace-level logs of a session (`serve -vv`, `--log-level trace`): each line received
 * and each reply queued, or in relay mode (echo) each chunk each way. Whether to trace is decided
 * once, when the session is made ({@linkcode traceEnabled}); a session that does not trace never
 * calls these functions, so tracing costs nothing when it is off (one boolean per line).
 *
 * What the client sent is shown as a JSON string cut to {@linkcode TRACE_PREVIEW_CHARACTERS}
 * characters, with C1 controls and DEL escaped too: a client's bytes cannot drive the terminal that
 * shows the log.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { ReplyLine } from "./protocol.ts";

const logger = getLogger(["linesock", "server"]);

/** The most of a line a trace shows. */
export const TRACE_PREVIEW_CHARACTERS = 200;

const lenient = new TextDecoder();

/** Who the trace is about. */
interface Traced {
  readonly id: number;
  readonly peer: string;
}

/**
 * Whether sessions made now trace (the logger's level is `trace`).
 * @returns `true` under `--log-level trace` (`serve -vv`).
 */
export function traceEnabled(): boolean {
  return logger.isEnabledFor("trace");
}

/**
 * A line or chunk as the trace shows it: a JSON string (control characters escaped), cut.
 * @param line Text or bytes (without the `\n`).
 * @returns The quoted, escaped preview.
 * @example
 * ```ts
 * import { tracePreview } from "./session_trace.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(tracePreview("PING"), '"PING"');
 * assert.equal(tracePreview(new TextEncoder().encode("\x1b[2J\u009b")), '"\\u001b[2J\\u009b"');
 * assert.match(tracePreview("x".repeat(500)), /^"x{200}"… \(500 characters\)$/);
 * ```
 */
export function tracePreview(line: string | Uint8Array): string {
  const head = typeof line === "string"
    ? line.slice(0, TRACE_PREVIEW_CHARACTERS + 1)
    : lenient.decode(line.subarray(0, TRACE_PREVIEW_CHARACTERS * 4));
  const cut = head.length > TRACE_PREVIEW_CHARACTERS ||
    (typeof line !== "string" && line.length > TRACE_PREVIEW_CHARACTERS * 4);
  // JSON escapes the C0 controls; the C1 controls and DEL, which it leaves, are escaped too.
  const quoted = JSON.stringify(head.slice(0, TRACE_PREVIEW_CHARACTERS)).replace(
    /[\u007f-\u009f]/g,
    (character) => `\\u00${character.charCodeAt(0).toString(16)}`,
  );
  if (!cut) return quoted;
  return `${quoted}… (${line.length} ${typeof line === "string" ? "characters" : "bytes"})`;
}

/**
 * Logs a line received (trace level).
 * @param session The connection.
 * @param lineNumber The line's number on it.
 * @param bytes The line without its `\n`.
 */
export function traceReceived(session: Traced, lineNumber: number, bytes: Uint8Array): void {
  logger.trace("Connection {id} from {peer}: line {lineNumber} in ({bytes} bytes): {line}", {
    id: session.id,
    peer: session.peer,
    lineNumber,
    bytes: bytes.length,
    line: tracePreview(bytes),
  });
}

/**
 * Logs a reply queued for the client (trace level).
 * @param session The connection.
 * @param line The reply line (without its `\n`).
 */
export function traceReply(session: Traced, line: ReplyLine): void {
  logger.trace("Connection {id} from {peer}: reply out: {line}", {
    id: session.id,
    peer: session.peer,
    line: tracePreview(line),
  });
}

/**
 * Relay mode (echo): logs a chunk each way (trace level).
 * @param session The connection.
 * @param direction `in` from the client, `out` to it.
 * @param bytes The chunk.
 */
export function traceChunk(session: Traced, direction: "in" | "out", bytes: Uint8Array): void {
  logger.trace("Connection {id} from {peer}: {bytes} bytes {direction}: {data}", {
    id: session.id,
    peer: session.peer,
    bytes: bytes.length,
    direction,
    data: tracePreview(bytes),
  });
}

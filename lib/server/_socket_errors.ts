/**
 * Internal: how the server tells socket errors apart and words them. Whether an error is the peer
 * going away is the one classification of `lib/_disconnect.ts`; the server words three of them from
 * its side (who ended the connection), as its logs always have.
 *
 * @module
 */
import { describeDisconnect } from "../_disconnect.ts";

/**
 * Why a connection ended, for the closing log line.
 * @param error What a read or write threw.
 * @returns For example "connection reset by client", or the error's message.
 */
export function describeEnd(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset by client";
  if (error instanceof Deno.errors.BrokenPipe) return "client stopped reading";
  if (error instanceof Deno.errors.UnexpectedEof) {
    return "closed by client (without TLS close_notify)";
  }
  return describeDisconnect(error);
}

/** Failed accepts that pausing can help with: the process or the system is out of something. */
export function isResourceExhaustion(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" || code === "ENOMEM";
}

/** The listener was closed (by us, or under us): accepting is over. */
export function isListenerClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/**
 * Internal: the one answer to "is this error the peer going away?", for the server and the
 * clients alike, and a few words for each such error.
 *
 * A disconnect is not a failure of ours: it ends a connection quietly (no warning, no stack).
 *
 * @module
 */

/** The error classes that mean the connection is gone, with the words for each. */
const DISCONNECTS: ReadonlyArray<readonly [new (...args: never[]) => Error, string]> = [
  [Deno.errors.ConnectionReset, "connection reset"],
  [Deno.errors.ConnectionAborted, "connection aborted"],
  [Deno.errors.BrokenPipe, "broken pipe"],
  [Deno.errors.NotConnected, "not connected"],
  // A TLS peer that closed without close_notify: common, and harmless for a line protocol.
  [Deno.errors.UnexpectedEof, "closed without TLS close_notify"],
  // Our own side closed the connection while a read or write was under way.
  [Deno.errors.BadResource, "connection closed"],
  [Deno.errors.Interrupted, "connection closed"],
];

/**
 * Whether `error` means the connection is gone (reset, aborted, broken pipe, not connected, a TLS
 * peer gone without close_notify, or closed under a pending read or write).
 * @param error What a read, write or accept threw.
 * @returns `true` for a disconnect.
 */
export function isDisconnect(error: unknown): boolean {
  return DISCONNECTS.some(([kind]) => error instanceof kind);
}

/**
 * A few words for a failed read or write: the disconnect's name, or the error's message.
 * @param error What the read or write threw.
 * @returns For example "connection reset" or "broken pipe".
 */
export function describeDisconnect(error: unknown): string {
  const found = DISCONNECTS.find(([kind]) => error instanceof kind);
  if (found) return found[1];
  return error instanceof Error ? error.message : String(error);
}

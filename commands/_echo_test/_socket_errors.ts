/**
 * Socket failures in a few words, for the client side's reports (echo-test cases, load runs).
 *
 * @module
 */

/**
 * Describes why a read or write on a connection failed.
 * @param error What the read or write threw.
 * @returns "connection reset", "broken pipe", "connection closed", or the error's message.
 */
export function describeSocketError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.BrokenPipe) return "broken pipe";
  if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
    return "connection closed";
  }
  return error instanceof Error ? error.message : String(error);
}

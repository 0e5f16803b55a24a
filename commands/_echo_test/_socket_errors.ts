/**
 * Socket failures in a few words, for the client side's reports (echo-test cases, load runs): the
 * one classification of lib/_disconnect.ts, which the server, `send` and the repl use too.
 *
 * @module
 */
import { describeDisconnect } from "../../lib/_disconnect.ts";

/**
 * Describes why a read or write on a connection failed.
 * @param error What the read or write threw.
 * @returns "connection reset", "broken pipe", "connection closed" (and the other disconnects of
 * lib/_disconnect.ts), or the error's message.
 */
export function describeSocketError(error: unknown): string {
  return describeDisconnect(error);
}

/**
 * What the interactive repl knows of the replies a line gets, without knowing the server: the one
 * thing that decides whether a reply can show a round-trip time (see the conversation engine,
 * lib/client/conversation.ts).
 *
 * - A text line that is one of the text protocol's built-in commands (`PING`, `HELLO`, `TIME`,
 *   `ECHO …`, `HELP`, `QUIT`, `CLOSE`, `DISCONNECT`, `SHUTDOWN`, `[t]…`, `[d]`, a blank line; the
 *   command word case-insensitive, blanks before it skipped, as that protocol reads it) gets exactly
 *   one reply line.
 * - Any other text line (a route, a command of another server) gets an unknown number of lines —
 *   until the server answers it with `ERR unknown command: <its word>`, the text protocol's one-line
 *   answer to a command it does not know ({@linkcode isUnknownCommandAnswer}).
 * - A JSON request with an `id` gets the response carrying that `id`.
 *
 * @module
 */
import type { Expectation } from "../../lib/client/conversation.ts";

/**
 * The built-in command words of the text protocol (lib/protocols/text.ts: its `TEXT_COMMANDS` and
 * `SHUTDOWN`), each answered with one line. A route of the same name could answer otherwise; that
 * is the one thing assumed.
 */
export const ONE_REPLY_COMMANDS: ReadonlySet<string> = new Set([
  "PING",
  "HELLO",
  "TIME",
  "ECHO",
  "HELP",
  "QUIT",
  "CLOSE",
  "DISCONNECT",
  "SHUTDOWN",
]);

/** The command word of a text line: blanks before it skipped, up to the next space or tab. */
function commandWord(line: string): string {
  return /^[ \t]*([^ \t]*)/.exec(line)![1]!;
}

/**
 * What is known of the replies to a text line.
 * @param line The line as sent.
 * @returns `{ replies: 1 }` for a built-in command of the text protocol, otherwise `"unknown"`.
 * @example
 * ```ts
 * import { textExpectation } from "./reply_count.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(textExpectation("  ping"), { replies: 1 });
 * assert.deepEqual(textExpectation("[t]hello"), { replies: 1 });
 * assert.equal(textExpectation("swallow"), "unknown");
 * ```
 */
export function textExpectation(line: string): Expectation {
  const word = commandWord(line);
  if (word === "") return { replies: 1 };
  if (/^\[[tTdD]\]/.test(word)) return { replies: 1 };
  // ASCII letters only, as the protocol matches them.
  if (/^[A-Za-z]+$/.test(word) && ONE_REPLY_COMMANDS.has(word.toUpperCase())) {
    return { replies: 1 };
  }
  return "unknown";
}

/**
 * What is known of the replies to a JSON request line.
 * @param id The `id` it carries (`undefined` for a raw request without one).
 * @returns The response with that `id`; without a usable `id`, nothing.
 */
export function jsonExpectation(id: unknown): Expectation {
  return typeof id === "string" || typeof id === "number" ? { id } : "unknown";
}

/**
 * Whether `reply` is the text protocol's answer to `line` as a command it does not know
 * (`ERR unknown command: WORD`, the word clipped to 64 characters): then it is that line's only reply.
 * @param line The line as sent.
 * @param reply A reply, without its line terminator.
 * @returns `true` when the reply answers that line so.
 * @example
 * ```ts
 * import { isUnknownCommandAnswer } from "./reply_count.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isUnknownCommandAnswer("FROB x", "ERR unknown command: FROB"), true);
 * assert.equal(isUnknownCommandAnswer("FROB", "ERR unknown command: OTHER"), false);
 * ```
 */
export function isUnknownCommandAnswer(line: string, reply: string): boolean {
  const prefix = "ERR unknown command: ";
  if (!reply.startsWith(prefix)) return false;
  const word = commandWord(line);
  const named = reply.slice(prefix.length);
  return named === word || (word.length > 64 && named === `${word.slice(0, 64)}...`);
}

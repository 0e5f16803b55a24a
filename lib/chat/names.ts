/**
 * What a chat name and a room name may be. A room name is also one token of the bus subject the
 * room travels on (`PREFIX.room.NAME`), so it keeps to ASCII letters, digits, `-` and `_`; a
 * member's name may use any letters and digits.
 *
 * @example Checking names
 * ```ts
 * import { checkName, checkRoom, DEFAULT_ROOM } from "@linesock/linesock/protocols";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_ROOM, "lobby");
 * assert.equal(checkRoom("ops-2"), undefined);
 * assert.equal(checkRoom("a.b"), "invalid room: a.b (1 to 64 of A-Z a-z 0-9 - _)");
 * assert.equal(checkName("Zoë"), undefined);
 * assert.match(checkName("two words")!, /^invalid name/);
 * ```
 *
 * @module
 */

/** The room every chat client is in when it connects. */
export const DEFAULT_ROOM = "lobby";

const ROOM = /^[A-Za-z0-9_-]{1,64}$/;
const NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;

/**
 * Checks a room name.
 * @param room The name.
 * @returns Why it is not valid, or `undefined` when it is.
 */
export function checkRoom(room: string): string | undefined {
  return ROOM.test(room)
    ? undefined
    : `invalid room: ${clipped(room)} (1 to 64 of A-Z a-z 0-9 - _)`;
}

/**
 * Checks a member's name.
 * @param name The name.
 * @returns Why it is not valid, or `undefined` when it is.
 */
export function checkName(name: string): string | undefined {
  return NAME.test(name)
    ? undefined
    : `invalid name: ${clipped(name)} (1 to 32 letters, digits, - _ or .)`;
}

/** A bad name as an error message quotes it: short, and with no control characters. */
function clipped(text: string): string {
  // deno-lint-ignore no-control-regex
  const visible = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return visible.length <= 64 ? visible : `${visible.slice(0, 64)}...`;
}

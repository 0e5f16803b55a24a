/**
 * Internal: answers the JSON protocol's plain `ping` straight from the request's bytes, with no
 * decoding, parsing or stringifying: `{"command":"ping"}` and `{"command":"ping","id":ID}` (members in
 * either order, any JSON whitespace between tokens).
 *
 * It only takes requests whose answer it can give byte for byte as the general path would
 * (`JSON.stringify` of the parsed request's id): the id must be an integer of at most 15 digits
 * (exact in a double; not `-0`), a string of printable ASCII without `"` or `\`, `true`, `false` or
 * `null`. Such an id's text is its own canonical form, so its raw bytes are spliced into a precomputed
 * reply. Anything else (other members, escapes, fractions, duplicate members) takes the general path.
 *
 * @module
 */

const encoder = new TextEncoder();
const PONG = encoder.encode('{"status":0,"message":"pong","extra":null}');
const PONG_WITH_ID = encoder.encode('{"status":0,"message":"pong","extra":null,"id":');
const COMMAND_KEY = encoder.encode('"command"');
const ID_KEY = encoder.encode('"id"');
const PING_VALUE = encoder.encode('"ping"');
const LITERALS = ["true", "false", "null"].map((word) => encoder.encode(word));
const MAX_ID_DIGITS = 15;
const MAX_ID_STRING_BYTES = 128;
/**
 * Replies with an id are built here: a new array per reply costs more than the rest of the answer.
 * The server copies a synchronous reply into its write buffer at once (as it must for replies that
 * are views of the request line), so one buffer serves every reply.
 */
const scratch = new Uint8Array(PONG_WITH_ID.length + MAX_ID_STRING_BYTES + 2 + 1);
scratch.set(PONG_WITH_ID);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * The reply to a plain ping request, or `undefined` when the request needs the general path.
 * @param line The request line, without its terminator.
 * @returns The reply line's bytes: shared memory, valid until the next call; copy them to keep them.
 */
export function fastPingReply(line: Uint8Array): Uint8Array | undefined {
  let at = skipSpace(line, 0);
  if (line[at] !== 0x7b) return undefined; // {
  let sawPing = false;
  let idStart = -1;
  let idEnd = -1;
  for (let member = 0; member < 2; member++) {
    at = skipSpace(line, at + 1);
    if (matches(line, at, COMMAND_KEY)) {
      if (sawPing) return undefined;
      at = afterColon(line, at + COMMAND_KEY.length);
      if (at === -1 || !matches(line, at, PING_VALUE)) return undefined;
      sawPing = true;
      at += PING_VALUE.length;
    } else if (matches(line, at, ID_KEY)) {
      if (idStart !== -1) return undefined;
      at = afterColon(line, at + ID_KEY.length);
      if (at === -1) return undefined;
      idStart = at;
      idEnd = at = endOfSimpleValue(line, at);
      if (at === -1) return undefined;
    } else {
      return undefined;
    }
    at = skipSpace(line, at);
    if (line[at] === 0x7d) break; // }
    if (line[at] !== COMMA || member === 1) return undefined;
  }
  if (!sawPing || line[at] !== 0x7d) return undefined;
  if (skipSpace(line, at + 1) !== line.length) return undefined;
  if (idStart === -1) return PONG;
  // The id goes after the reply's fixed start, already in place in the scratch buffer.
  const end = PONG_WITH_ID.length + (idEnd - idStart);
  scratch.set(line.subarray(idStart, idEnd), PONG_WITH_ID.length);
  scratch[end] = 0x7d;
  return scratch.subarray(0, end + 1);
}

/** JSON whitespace: space, tab, CR (a line holds no LF). */
function skipSpace(line: Uint8Array, at: number): number {
  while (at < line.length) {
    const byte = line[at]!;
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) break;
    at++;
  }
  return at;
}

function matches(line: Uint8Array, at: number, word: Uint8Array): boolean {
  if (at + word.length > line.length) return false;
  for (let index = 0; index < word.length; index++) {
    if (line[at + index] !== word[index]) return false;
  }
  return true;
}

/** The position after `ws : ws` that follows a key, or -1. */
function afterColon(line: Uint8Array, at: number): number {
  at = skipSpace(line, at);
  if (line[at] !== COLON) return -1;
  return skipSpace(line, at + 1);
}

/** The end of an id value whose text is already canonical JSON, or -1 for any other value. */
function endOfSimpleValue(line: Uint8Array, at: number): number {
  const first = line[at];
  if (first === undefined) return -1;
  if (first === QUOTE) {
    const limit = Math.min(line.length, at + 1 + MAX_ID_STRING_BYTES + 1);
    for (let index = at + 1; index < limit; index++) {
      const byte = line[index]!;
      if (byte === QUOTE) return index + 1;
      if (byte < 0x20 || byte > 0x7e || byte === BACKSLASH) return -1;
    }
    return -1;
  }
  if (first === MINUS || (first >= ZERO && first <= NINE)) {
    let index = first === MINUS ? at + 1 : at;
    const digitsStart = index;
    while (index < line.length && line[index]! >= ZERO && line[index]! <= NINE) index++;
    const digits = index - digitsStart;
    if (digits === 0 || digits > MAX_ID_DIGITS) return -1;
    // A leading zero is only valid alone, and -0 would come back as 0.
    if (line[digitsStart] === ZERO && (digits > 1 || first === MINUS)) return -1;
    const next = line[index];
    // A fraction or an exponent would not come back as written.
    if (next === 0x2e || next === 0x65 || next === 0x45) return -1;
    return index;
  }
  for (const literal of LITERALS) {
    if (matches(line, at, literal)) return at + literal.length;
  }
  return -1;
}

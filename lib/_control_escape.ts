/**
 * Showing text from an untrusted peer on a terminal without letting it drive the terminal, the one
 * escaper of linesock: the clients use it on what a server sends (`send`, `repl`, `test`, `bench`),
 * the chat on what a member says before the others get it, and `--exec` on a program's stderr
 * before it reaches the log. A line such as `ESC ] 0 ; title BEL`, `ESC [2J` or an OSC 52 clipboard
 * write would otherwise set the window title, clear the screen or fill the clipboard. Everything a terminal acts on instead of
 * showing is turned into visible text:
 *
 * | what | shown as |
 * |---|---|
 * | C0 controls (U+0000–U+001F) except TAB, so also ESC, BEL, CR and LF | `\x1b`, `\x07`, `\x0d`, `\x0a` |
 * | DEL (U+007F) | `\x7f` |
 * | C1 controls (U+0080–U+009F; U+009B is an 8-bit CSI) | `\u009b` |
 * | bytes that are not UTF-8 (only {@linkcode escapeControlBytes}) | `\xff` |
 *
 * An escape sequence loses its ESC, so the rest of it (`[2J`) shows as the plain text it is. TAB is
 * kept. A backslash is **not** escaped: the result is for people to read safely, not an encoding
 * to decode, so `\x1b` on screen is either an escaped ESC or those four characters as sent. Where
 * that matters, look at the bytes themselves (`--raw`, or a pipe into `od -c`).
 *
 * Both functions first scan for something to escape and return their argument itself when there is
 * nothing, so printing ordinary text costs one scan and no allocation.
 *
 * @example
 * ```ts
 * import { escapeControlBytes, escapeControls } from "./_control_escape.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeControls("\x1b]0;pwned\x07 \x1b[2J"), "\\x1b]0;pwned\\x07 \\x1b[2J");
 * assert.equal(escapeControls("\u009b31m"), "\\u009b31m");
 * assert.equal(escapeControls("plain\ttext é ✓"), "plain\ttext é ✓");
 * const bytes = new Uint8Array([0x61, 0x1b, 0xff, 0x62]);
 * assert.equal(new TextDecoder().decode(escapeControlBytes(bytes)), "a\\x1b\\xffb");
 * ```
 *
 * @module
 */

/** Characters a terminal acts on: C0 except TAB, DEL, C1 (matching them is the point). */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
const TAB = 0x09;
const DEL = 0x7f;
const encoder = new TextEncoder();

/**
 * Whether `text` holds a character that {@linkcode escapeControls} would escape.
 * @param text Any text.
 * @returns `true` when it holds a C0 control other than TAB, DEL or a C1 control.
 */
export function hasControls(text: string): boolean {
  return CONTROL.test(text);
}

/**
 * Makes text safe to print on a terminal: C0 controls other than TAB, DEL and C1 controls become
 * visible escapes (`\x1b`, `\x7f`, `\u009b`); everything else is kept.
 * @param text Text from a peer (a decoded reply, a JSON string).
 * @returns The text, escaped; `text` itself when there was nothing to escape.
 */
export function escapeControls(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROLS, escapeCharacter) : text;
}

function escapeCharacter(character: string): string {
  return escapeCode(character.charCodeAt(0));
}

/** `\xNN` for an ASCII control or a stray byte, `\u00NN` for a C1 code point. */
function escapeCode(code: number, prefix = code < 0x80 ? "\\x" : "\\u00"): string {
  return prefix + code.toString(16).padStart(2, "0");
}

/**
 * The byte form of {@linkcode escapeControls}, for output that has not been decoded: the same
 * escapes, and each byte that is not part of valid UTF-8 becomes `\xNN` (so a lone `0x9b`, which a
 * terminal in a legacy 8-bit mode would take for CSI, is shown too). The result is valid UTF-8.
 * @param bytes A line from a peer (without its line terminator).
 * @returns The escaped bytes; `bytes` itself when there was nothing to escape.
 */
export function escapeControlBytes(bytes: Uint8Array): Uint8Array {
  // The common case, printable ASCII, in one tight loop.
  let at = 0;
  for (; at < bytes.length; at++) {
    const byte = bytes[at]!;
    if (byte < 0x20 ? byte !== TAB : byte >= DEL) break;
  }
  if (at === bytes.length) return bytes;

  const pieces: Uint8Array[] = [];
  let clean = 0; // the start of the bytes not yet copied to `pieces`
  const escape = (from: number, length: number, text: string) => {
    if (from > clean) pieces.push(bytes.subarray(clean, from));
    pieces.push(encoder.encode(text));
    clean = from + length;
  };
  while (at < bytes.length) {
    const byte = bytes[at]!;
    if (byte < 0x80) {
      if (byte < 0x20 ? byte !== TAB : byte === DEL) escape(at, 1, escapeCode(byte));
      at++;
      continue;
    }
    const length = utf8SequenceLength(bytes, at);
    if (length === 0) {
      escape(at, 1, escapeCode(byte, "\\x"));
      at++;
    } else {
      // U+0080–U+009F are the two-byte sequences C2 80 to C2 9F.
      if (byte === 0xc2 && bytes[at + 1]! < 0xa0) escape(at, 2, escapeCode(bytes[at + 1]!));
      at += length;
    }
  }
  if (pieces.length === 0) return bytes;
  if (clean < bytes.length) pieces.push(bytes.subarray(clean));
  const out = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/**
 * The length of the well-formed UTF-8 sequence starting at `at` (2 to 4), or 0 when there is none
 * (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short).
 */
function utf8SequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at]!;
  let length: number;
  let low = 0x80; // the allowed range of the second byte
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    else if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    else if (lead === 0xf4) high = 0x8f;
  } else return 0;
  if (at + length > bytes.length) return 0;
  const second = bytes[at + 1]!;
  if (second < low || second > high) return 0;
  for (let i = 2; i < length; i++) {
    const next = bytes[at + i]!;
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}

/**
 * Strict per-line UTF-8 decoding. An invalid line is reported as an {@linkcode InvalidEncodingError}
 * for that line; it is never silently turned into U+FFFD. The stream form is in
 * `line_decoder_stream.ts` (a separate module: defining a `TransformStream` subclass loads Deno's
 * streams, which the clients' start-up does without).
 *
 * @example Decoding lines one at a time
 * ```ts
 * import { decodeLine, InvalidEncodingError } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeLine(new Uint8Array([0x68, 0xc3, 0xa9])), "hé");
 * assert.throws(() => decodeLine(new Uint8Array([0xff]), 3), InvalidEncodingError);
 * ```
 *
 * @module
 */
import { InvalidEncodingError } from "../errors.ts";

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decodes one line as strict UTF-8.
 * @param bytes The line without its terminator.
 * @param lineNumber The line's number, for the error (0 when unknown).
 * @returns The decoded text.
 * @throws {InvalidEncodingError} When the bytes are not valid UTF-8.
 */
export function decodeLine(bytes: Uint8Array, lineNumber = 0): string {
  // The fatal decoder is about three times slower per call; only a U+FFFD in the lenient result can
  // mean invalid input (or a genuine U+FFFD), so only then does the strict decoder decide.
  const text = lenientDecoder.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new InvalidEncodingError(bytes.slice(), lineNumber);
  }
}

/**
 * Strict per-line UTF-8 decoding. An invalid line is reported as an {@linkcode InvalidEncodingError}
 * for that line; it is never silently turned into U+FFFD.
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
 * @example A stream that skips invalid lines and reports them
 * ```ts
 * import { LineDecoderStream, LineSplitter } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const bad: number[] = [];
 * const lines = ReadableStream.from([new Uint8Array([0x61, 0x0a, 0xff, 0x0a, 0x62, 0x0a])])
 *   .pipeThrough(new LineSplitter())
 *   .pipeThrough(new LineDecoderStream({ onInvalidLine: (e) => bad.push(e.lineNumber) }));
 * assert.deepEqual(await Array.fromAsync(lines), ["a", "b"]);
 * assert.deepEqual(bad, [2]);
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

/** Options of {@linkcode LineDecoderStream}. */
export interface LineDecoderStreamOptions {
  /**
   * Receives each invalid line's error; the stream goes on. Without it, an invalid line errors the
   * stream.
   */
  onInvalidLine?: (error: InvalidEncodingError) => void;
}

/** Decodes a stream of byte lines (from {@linkcode LineSplitter}) into strings, strictly. */
export class LineDecoderStream extends TransformStream<Uint8Array, string> {
  /**
   * Creates the instance.
   * @param options What to do with invalid lines.
   */
  constructor(options: LineDecoderStreamOptions = {}) {
    let lineNumber = 0;
    super({
      transform(bytes, controller) {
        lineNumber++;
        try {
          controller.enqueue(decodeLine(bytes, lineNumber));
        } catch (error) {
          if (!(error instanceof InvalidEncodingError) || !options.onInvalidLine) throw error;
          options.onInvalidLine(error);
        }
      },
    });
  }
}

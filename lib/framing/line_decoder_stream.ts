/**
 * {@linkcode LineDecoderStream}: strict UTF-8 decoding of a stream of byte lines, with
 * {@linkcode decodeLine} per line.
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
import { decodeLine } from "./line_decoder.ts";

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

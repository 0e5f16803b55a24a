/**
 * {@linkcode LineSplitter}: a `TransformStream` from byte chunks to lines (still bytes), built on
 * {@linkcode LineFramer}: byte-level `\n` splitting, bounded memory, zero-copy views where possible.
 *
 * @example Splitting a byte stream into lines
 * ```ts
 * import { LineSplitter } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const encoder = new TextEncoder();
 * const lines = ReadableStream.from([encoder.encode("a\r\nb"), encoder.encode("c\n")])
 *   .pipeThrough(new LineSplitter());
 * const decoded: string[] = [];
 * for await (const line of lines) decoded.push(new TextDecoder().decode(line));
 * assert.deepEqual(decoded, ["a", "bc"]);
 * ```
 *
 * @example Going on after an over-long line
 * ```ts
 * import { LineSplitter, type LineTooLongError } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const errors: LineTooLongError[] = [];
 * const splitter = new LineSplitter({ maxLineBytes: 3, onLineTooLong: (e) => errors.push(e) });
 * const lines = ReadableStream.from([new TextEncoder().encode("ok\ntoo long\nfine\n")])
 *   .pipeThrough(splitter);
 * const decoded: string[] = [];
 * for await (const line of lines) decoded.push(new TextDecoder().decode(line));
 * assert.deepEqual(decoded, ["ok"]);
 * assert.equal(errors[0]?.lineNumber, 2);
 * ```
 *
 * @module
 */
import type { LineTooLongError } from "./errors.ts";
import { LineFramer, type LineFramerOptions } from "./line_framer.ts";

/** Options of {@linkcode LineSplitter}. */
export interface LineSplitterOptions extends LineFramerOptions {
  /**
   * Receives each over-long line's error; the stream then goes on with the next line. Without it, an
   * over-long line errors the stream (nothing is dropped silently).
   */
  onLineTooLong?: (error: LineTooLongError) => void;
}

/**
 * Splits a byte stream on `\n` into lines without their terminator. Lines that lie inside one input
 * chunk are views of it; lines that span chunks are fresh copies.
 */
export class LineSplitter extends TransformStream<Uint8Array, Uint8Array> {
  #framer: LineFramer;

  /**
   * Creates the instance.
   * @param options Limits, line-ending rules and the over-long line callback.
   */
  constructor(options: LineSplitterOptions = {}) {
    let controller: TransformStreamDefaultController<Uint8Array> | undefined;
    let chunkBuffer: ArrayBufferLike | undefined;
    const framer = new LineFramer(options, {
      // A view into the current input chunk can be handed out; the framer's carry buffer is reused.
      onLine: (bytes) => controller?.enqueue(bytes.buffer === chunkBuffer ? bytes : bytes.slice()),
      ...(options.onLineTooLong ? { onTooLong: options.onLineTooLong } : {}),
    });
    super({
      start(c) {
        controller = c;
      },
      transform(chunk) {
        chunkBuffer = chunk.buffer;
        framer.push(chunk);
        chunkBuffer = undefined;
      },
      flush() {
        framer.end();
      },
    });
    this.#framer = framer;
  }

  /** Bytes of an incomplete line held right now; never more than `maxLineBytes` + 1. */
  get bufferedBytes(): number {
    return this.#framer.bufferedBytes;
  }
}

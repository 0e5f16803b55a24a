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
import type { LineTooLongError } from "../errors.ts";
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
    // Whether the next line may lie in the framer's reused carry buffer, so it must be copied. Only
    // the first line completed by a push (or by end) can: it is the one that began in earlier chunks.
    // Tracking this is much cheaper than reading `bytes.buffer` for every line.
    let mayBeCarried = false;
    const framer = new LineFramer(options, {
      onLine: (bytes) => {
        if (mayBeCarried) {
          mayBeCarried = false;
          controller?.enqueue(bytes.slice());
        } else {
          controller?.enqueue(bytes);
        }
      },
      ...(options.onLineTooLong ? { onTooLong: options.onLineTooLong } : {}),
    });
    super({
      start(c) {
        controller = c;
      },
      transform(chunk) {
        mayBeCarried = framer.bufferedBytes > 0;
        framer.push(chunk);
      },
      flush() {
        mayBeCarried = true;
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

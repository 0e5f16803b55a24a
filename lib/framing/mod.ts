/**
 * Framing: turning bytes into lines and lines into bytes, with bounded memory.
 *
 * Owns {@linkcode LineFramer} (the synchronous engine every reader uses), {@linkcode LineSplitter}
 * (a `TransformStream`), {@linkcode decodeLine} / {@linkcode LineDecoderStream} (strict UTF-8 per
 * line), {@linkcode LineWriter} (batched writes with backpressure) and {@linkcode ConnectionReader}.
 *
 * May import: `lib/errors.ts` only (no other folder of lib/).
 *
 * @example
 * ```ts
 * import { LineFramer } from "@linesock/linesock/framing";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const framer = new LineFramer({}, {
 *   onLine: (bytes) => void lines.push(new TextDecoder().decode(bytes)),
 *   onTooLong: () => {},
 * });
 * framer.push(new TextEncoder().encode("a\nb"));
 * framer.push(new TextEncoder().encode("c\n"));
 * assert.deepEqual(lines, ["a", "bc"]);
 * ```
 *
 * @module
 */
export * from "./line_framer.ts";
export * from "./line_splitter.ts";
export * from "./line_decoder.ts";
export * from "./line_decoder_stream.ts";
export * from "./line_writer.ts";
export * from "./connection_reader.ts";

/**
 * Test helper for byte-stream transforms: run a transform over the same input cut into chunks in every
 * interesting place, and check that the output never depends on where the chunk boundaries fall.
 *
 * The chunkings are: the chunks as given, the same chunks with empty chunks between them, all input in
 * one chunk, one byte per chunk, and every cut of the concatenated input into two chunks (at most
 * `maxSplitPoints` offsets, spread evenly, for long inputs). Every chunk is a fresh copy with its own
 * buffer, as a real producer delivers it, so zero-copy views cannot alias another chunk by accident.
 *
 * @module
 */
import assert from "node:assert/strict";

/** One way to cut an input into chunks, with a name for failure messages. */
export interface Chunking {
  /** Describes the cut, e.g. `split at 3` or `one byte at a time`. */
  name: string;
  /** The chunks, each with its own `ArrayBuffer`. */
  chunks: Uint8Array[];
}

/** A transform, or any readable/writable pair such as a splitter piped into a decoder. */
export interface ByteTransform<O> {
  /** Where input chunks go. */
  writable: WritableStream<Uint8Array>;
  /** Where outputs come from. */
  readable: ReadableStream<O>;
}

/** Options of {@linkcode testTransformStream} and {@linkcode chunkings}. */
export interface ChunkingOptions {
  /** At most this many two-chunk cuts are tried (spread evenly over the input). Default 512. */
  maxSplitPoints?: number;
}

/** What {@linkcode testTransformStream} expects from every chunking. */
export interface TransformExpectation<O, R> {
  /** The outputs read from the transform, in order. */
  outputs: readonly O[];
  /** The side reports (errors passed to callbacks and the like), in order. Default: none. */
  reports?: readonly R[];
}

/** The input as chunks: a string is UTF-8 encoded into one chunk. */
export type TransformInput = string | Uint8Array | readonly (string | Uint8Array)[];

const encoder = new TextEncoder();

function toChunks(input: TransformInput): Uint8Array[] {
  const parts = typeof input === "string" || input instanceof Uint8Array ? [input] : input;
  return parts.map((part) => typeof part === "string" ? encoder.encode(part) : part.slice());
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** The offsets `1..length-1`, or at most `max` of them spread evenly (always with both ends). */
function splitOffsets(length: number, max: number): number[] {
  const inner = length - 1;
  if (inner <= 0) return [];
  if (inner <= max) return Array.from({ length: inner }, (_, i) => i + 1);
  const offsets = new Set<number>();
  for (let i = 0; i < max; i++) offsets.add(1 + Math.round((i * (inner - 1)) / (max - 1)));
  return [...offsets];
}

/**
 * Every interesting way to cut `input` into chunks (see the module documentation).
 * @param input The input chunks (strings are UTF-8 encoded).
 * @param options Bounds for long inputs.
 * @returns The chunkings; each chunk is a fresh copy.
 */
export function chunkings(input: TransformInput, options: ChunkingOptions = {}): Chunking[] {
  const given = toChunks(input);
  const all = concat(given);
  const copy = (chunks: readonly Uint8Array[]) => chunks.map((chunk) => chunk.slice());
  const result: Chunking[] = [
    { name: "as given", chunks: copy(given) },
    {
      name: "as given, with empty chunks between",
      chunks: [new Uint8Array(0), ...copy(given).flatMap((chunk) => [chunk, new Uint8Array(0)])],
    },
    { name: "all in one chunk", chunks: [all.slice()] },
    { name: "one byte at a time", chunks: Array.from(all, (byte) => Uint8Array.of(byte)) },
  ];
  for (const offset of splitOffsets(all.length, options.maxSplitPoints ?? 512)) {
    result.push({
      name: `split at ${offset}`,
      chunks: [all.slice(0, offset), all.slice(offset)],
    });
  }
  return result;
}

/**
 * Feeds `chunks` through `transform` and reads all its outputs.
 * @param transform The transform (used once).
 * @param chunks The input chunks.
 * @returns The outputs in order; rejects with the stream's error.
 */
export function collect<O>(
  transform: ByteTransform<O>,
  chunks: readonly Uint8Array[],
): Promise<O[]> {
  return Array.fromAsync(ReadableStream.from(chunks).pipeThrough(transform));
}

/**
 * Runs a fresh transform for every chunking of `input` and asserts that each run produces exactly
 * `expected`.
 *
 * @param makeTransform Builds a fresh transform; `report` records side events (for example the
 * errors given to an `onLineTooLong` callback) that are compared with `expected.reports`.
 * @param input The input.
 * @param expected The outputs (and reports) every chunking must produce.
 * @param options `normalize` maps each output before comparing (e.g. bytes to text, for readable
 * failure messages); `maxSplitPoints` bounds the two-chunk cuts.
 * @returns How many chunkings were run.
 */
export async function testTransformStream<O, R = never, N = O>(
  makeTransform: (report: (event: R) => void) => ByteTransform<O>,
  input: TransformInput,
  expected: readonly N[] | TransformExpectation<N, R>,
  options: ChunkingOptions & { normalize?: (output: O) => N } = {},
): Promise<number> {
  const expectation: TransformExpectation<N, R> = Array.isArray(expected)
    ? { outputs: expected as readonly N[] }
    : expected as TransformExpectation<N, R>;
  const normalize = options.normalize ?? ((output: O) => output as unknown as N);
  const cases = chunkings(input, options);
  for (const { name, chunks } of cases) {
    const reports: R[] = [];
    const outputs = await collect(makeTransform((event) => reports.push(event)), chunks);
    const message = `chunking "${name}" (${chunks.length} chunks)`;
    assert.deepStrictEqual(outputs.map(normalize), expectation.outputs, message);
    assert.deepStrictEqual(reports, expectation.reports ?? [], `${message}: reports`);
  }
  return cases.length;
}

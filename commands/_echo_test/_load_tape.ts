/**
 * The payload of the echo load generator: one deterministic "tape" of lines, generated once, that
 * every connection reads cyclically from its own starting line. Line `s` of connection `c` is tape line
 * `(phase(c) + s) mod M`, so the sender writes slices of the tape as they are (no per-line copying) and
 * the verifier recomputes what must come back from nothing but the connection and the stream offset,
 * comparing whole received chunks against tape slices with one native compare.
 *
 * The tape is followed by an overhang that repeats its beginning, so a slice of up to
 * `overhangBytes` starting anywhere in the tape is contiguous.
 *
 * @module
 */

/** Line sizes in bytes, the `\n` included. */
export interface LineSizeRange {
  /** The smallest line. */
  min: number;
  /** The largest line. */
  max: number;
}

/** A deterministic tape of lines. */
export interface LoadTape {
  /** The tape and its overhang. */
  readonly bytes: Uint8Array;
  /** The tape's length without the overhang (its period). */
  readonly period: number;
  /** Byte offset of each tape line. */
  readonly lineOffsets: Float64Array;
  /** Length of each tape line, its `\n` included. */
  readonly lineLengths: Uint32Array;
  /** How many bytes past any tape offset are contiguous. */
  readonly overhangBytes: number;
  /** The starting tape line of a connection. */
  phase(connection: number): number;
}

const TARGET_TAPE_BYTES = 4 * 1024 * 1024;
const MAX_TAPE_BYTES = 64 * 1024 * 1024;
const MIN_LINES = 16;
const MAX_LINES = 65536;

/**
 * Builds the tape.
 * @param sizes Line sizes.
 * @param connections How many connections will read it (each should start on its own line).
 * @param overhangBytes How many bytes past any tape offset must be contiguous.
 * @param seed Changes every byte and length.
 * @returns The tape.
 */
export function buildLoadTape(
  sizes: LineSizeRange,
  connections: number,
  overhangBytes: number,
  seed = 1,
): LoadTape {
  const average = (sizes.min + sizes.max) / 2;
  const byBytes = Math.max(Math.ceil(TARGET_TAPE_BYTES / average), connections * 4);
  const lines = Math.max(
    MIN_LINES,
    Math.min(MAX_LINES, byBytes, Math.floor(MAX_TAPE_BYTES / Math.max(1, average))),
  );
  let state = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const lineLengths = new Uint32Array(lines);
  const lineOffsets = new Float64Array(lines);
  let period = 0;
  for (let i = 0; i < lines; i++) {
    const length = sizes.min + (sizes.max > sizes.min ? next() % (sizes.max - sizes.min + 1) : 0);
    lineLengths[i] = length;
    lineOffsets[i] = period;
    period += length;
  }
  const tape = new Uint8Array(period);
  // Printable ASCII, 94 symbols: a lost, repeated or foreign line shows up as a difference.
  for (let i = 0; i < period; i++) tape[i] = 0x21 + (next() % 94);
  for (let i = 0; i < lines; i++) tape[lineOffsets[i]! + lineLengths[i]! - 1] = 0x0a;
  const bytes = new Uint8Array(period + overhangBytes);
  for (let at = 0; at < bytes.length; at += period) {
    bytes.set(tape.subarray(0, Math.min(period, bytes.length - at)), at);
  }
  return {
    bytes,
    period,
    lineOffsets,
    lineLengths,
    overhangBytes,
    // Spread the connections over the tape, so that no two (of up to `lines`) share a stream.
    phase: (connection) => Math.floor((connection * lines) / Math.max(1, connections)) % lines,
  };
}

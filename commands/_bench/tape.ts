/**
 * A {@linkcode Tape}: lines laid end to end, repeated forever, stored as one period followed by an
 * overhang that repeats its beginning, so that a slice of up to the overhang's length starting
 * anywhere in the period is contiguous. The load engine sends requests as slices of a tape (no
 * copying per line) and verifies replies by comparing whole received chunks with slices of another
 * (one native compare per chunk).
 *
 * @example A tape of two requests
 * ```ts
 * import { buildTape, tapeSlice } from "./tape.ts";
 * import assert from "node:assert/strict";
 *
 * const encode = (text: string) => new TextEncoder().encode(text);
 * const tape = buildTape([encode("PING\n"), encode("TIME\n")], 16);
 * assert.equal(tape.lines.period, 10);
 * // Requests 1 to 3 (TIME, PING, TIME): contiguous although they cross the period's end.
 * assert.equal(new TextDecoder().decode(tapeSlice(tape, 1, 4)), "TIME\nPING\nTIME\n");
 * ```
 *
 * @module
 */
import { PeriodicIndex } from "./periodic_index.ts";
import type { LoadTape } from "../_echo_test/_load_tape.ts";

/** Lines repeated forever: one period and an overhang. */
export interface Tape {
  /** The period's bytes and the overhang. */
  readonly bytes: Uint8Array;
  /** The lines (each with its line ending) of one period. */
  readonly lines: PeriodicIndex;
  /** How many bytes past any position in the period are contiguous. */
  readonly overhang: number;
}

/**
 * Builds a tape from one period's lines.
 * @param lines The lines, each with its line ending (at least one, each at least one byte).
 * @param overhang How many bytes past any position must be contiguous.
 * @returns The tape.
 */
export function buildTape(lines: readonly Uint8Array[], overhang: number): Tape {
  const index = new PeriodicIndex(lines.map((line) => line.length));
  const bytes = new Uint8Array(index.period + overhang);
  let at = 0;
  for (const line of lines) {
    bytes.set(line, at);
    at += line.length;
  }
  for (let from = index.period; from < bytes.length; from += index.period) {
    bytes.set(bytes.subarray(0, Math.min(index.period, bytes.length - from)), from);
  }
  return { bytes, lines: index, overhang };
}

/**
 * The tape of echo-test's generated lines.
 * @param tape The generated lines.
 * @returns The same bytes as a {@linkcode Tape}.
 */
export function tapeOfLoadTape(tape: LoadTape): Tape {
  return {
    bytes: tape.bytes,
    lines: new PeriodicIndex(tape.lineLengths),
    overhang: tape.overhangBytes,
  };
}

/**
 * The bytes of lines `from` (inclusive) to `to` (exclusive), any period, without copying.
 * @param tape The tape.
 * @param from The first line's number.
 * @param to The line after the last.
 * @returns A view of the tape.
 * @throws {RangeError} When the lines are longer than the overhang.
 */
export function tapeSlice(tape: Tape, from: number, to: number): Uint8Array {
  const start = tape.lines.start(from);
  const length = tape.lines.start(to) - start;
  if (length > tape.overhang) {
    throw new RangeError(`${length} bytes do not fit the tape's overhang of ${tape.overhang}`);
  }
  const offset = start % tape.lines.period;
  return tape.bytes.subarray(offset, offset + length);
}

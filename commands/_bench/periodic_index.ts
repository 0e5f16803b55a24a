/**
 * {@linkcode PeriodicIndex}: items of known sizes laid end to end and repeated forever (the lines of
 * a tape, the reply lines of a cycle of requests), and the two questions the load engine asks of
 * them for a whole received chunk at once instead of line by line: where item `i` starts, and how
 * many items have ended by position `x`. With one size for every item, both are a division.
 *
 * @example Lines of 3, 5 and 2 bytes, repeated
 * ```ts
 * import { PeriodicIndex } from "./periodic_index.ts";
 * import assert from "node:assert/strict";
 *
 * const index = new PeriodicIndex([3, 5, 2]);
 * assert.equal(index.period, 10);
 * assert.equal(index.start(1), 3);
 * assert.equal(index.start(4), 13); // the second period's second item
 * assert.equal(index.endedBy(7), 1);
 * assert.equal(index.endedBy(8), 2);
 * assert.equal(index.endedBy(22), 6);
 * assert.equal(index.endedBy(23), 7);
 * ```
 *
 * @module
 */

/** Items of known sizes, end to end, repeating with a period. */
export class PeriodicIndex {
  /** The summed size of one period's items. */
  readonly period: number;
  /** Items per period. */
  readonly items: number;
  /** Where each item of the first period starts; one more entry: the period. */
  readonly starts: Float64Array;
  /** The size of every item when they are all the same, else 0. */
  readonly #uniform: number;

  /**
   * @param sizes The size of each item of one period (each at least 1).
   */
  constructor(sizes: ArrayLike<number>) {
    if (sizes.length === 0) throw new RangeError("A periodic index needs at least one item");
    this.items = sizes.length;
    this.starts = new Float64Array(sizes.length + 1);
    let at = 0;
    let uniform = sizes[0]!;
    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i]!;
      if (!(size >= 1)) throw new RangeError(`Item sizes must be at least 1, not ${size}`);
      if (size !== uniform) uniform = 0;
      this.starts[i] = at;
      at += size;
    }
    this.starts[sizes.length] = at;
    this.period = at;
    this.#uniform = uniform;
  }

  /**
   * The size of item `i`.
   * @param i Any item number (0-based, any period).
   * @returns Its size.
   */
  size(i: number): number {
    if (this.#uniform) return this.#uniform;
    const k = i % this.items;
    return this.starts[k + 1]! - this.starts[k]!;
  }

  /**
   * Where item `i` starts.
   * @param i Any item number (0-based, any period).
   * @returns Its start position.
   */
  start(i: number): number {
    if (this.#uniform) return i * this.#uniform;
    const cycles = Math.floor(i / this.items);
    return cycles * this.period + this.starts[i - cycles * this.items]!;
  }

  /**
   * How many items end at or before a position: the number of the item that `x` falls in.
   * @param x A position (0 or more).
   * @returns The count of items `i` with `start(i + 1) <= x`.
   */
  endedBy(x: number): number {
    if (this.#uniform) return Math.floor(x / this.#uniform);
    const cycles = Math.floor(x / this.period);
    const within = x - cycles * this.period;
    // The last item whose end (the next start) is <= within.
    let low = 0;
    let high = this.items;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.starts[middle + 1]! <= within) low = middle + 1;
      else high = middle;
    }
    return cycles * this.items + low;
  }
}

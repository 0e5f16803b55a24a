/**
 * Fast byte comparison for echo verification: equality is checked with the runtime's native compare
 * (memcmp speed, tens of GB/s), and the first differing offset is searched only once a difference is
 * known to exist.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * Whether two byte ranges are equal.
 * @param a The first range.
 * @param b The second range.
 * @returns `true` when both have the same length and bytes.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * The first offset where two ranges differ, or -1 when they are equal over the shorter length.
 * @param a The first range.
 * @param b The second range.
 * @returns The offset, or -1.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  if (Buffer.compare(a.subarray(0, length), b.subarray(0, length)) === 0) return -1;
  // Narrow down in halves with native compares, then finish with a short loop.
  let low = 0;
  let high = length;
  while (high - low > 64) {
    const middle = (low + high) >>> 1;
    if (Buffer.compare(a.subarray(low, middle), b.subarray(low, middle)) === 0) low = middle;
    else high = middle;
  }
  for (let i = low; i < high; i++) if (a[i] !== b[i]) return i;
  return -1;
}

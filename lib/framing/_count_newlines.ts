/**
 * Internal: counts the `\n` bytes in a chunk (a byte relay counts lines for its statistics and line
 * budget without framing them; `indexOf` per line costs about 29 ns a line) with WebAssembly SIMD
 * where it is available (`_newline_counter_simd.ts`), else four bytes at a time in JavaScript, and
 * finds where the chunk's Nth line ends (where a line budget runs out).
 *
 * @module
 */
import { simdNewlineCounter } from "./_newline_counter_simd.ts";

const LF = 0x0a;

/** Below this many bytes, JavaScript counts (no copy, no call into WebAssembly). */
const SIMD_MIN_BYTES = 64;

/**
 * Counts `\n` bytes.
 * @param bytes The chunk.
 * @returns How many bytes are `\n`.
 */
export function countNewlines(bytes: Uint8Array): number {
  if (bytes.length >= SIMD_MIN_BYTES) {
    const simd = simdNewlineCounter();
    if (simd !== undefined) return simd(bytes);
  }
  return countNewlinesScalar(bytes);
}

/**
 * Counts `\n` bytes in JavaScript, four bytes at a time.
 * @param bytes The chunk.
 * @returns How many bytes are `\n`.
 */
export function countNewlinesScalar(bytes: Uint8Array): number {
  let count = 0;
  let index = 0;
  const length = bytes.length;
  // Head bytes up to a 4-byte boundary of the underlying buffer.
  while (index < length && (bytes.byteOffset + index) % 4 !== 0) {
    if (bytes[index++] === LF) count++;
  }
  const words = (length - index) >>> 2;
  if (words > 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + index, words);
    for (let word = 0; word < words;) {
      // Per-byte counts add up in the four lanes of one int32 (at most 255 words: no lane
      // overflows), summed once per block instead of once per word: ~25% faster.
      const end = Math.min(words, word + 255);
      let lanes = 0;
      for (; word < end; word++) {
        const x = view[word]! ^ 0x0a0a0a0a;
        // 0x01 in each byte of x that is zero (exact: no borrow between bytes).
        lanes = (lanes + (~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x | 0x7f7f7f7f) >>> 7)) | 0;
      }
      lanes = (lanes & 0x00ff00ff) + ((lanes >>> 8) & 0x00ff00ff);
      count += (lanes & 0xffff) + (lanes >>> 16);
    }
    index += words * 4;
  }
  while (index < length) {
    if (bytes[index++] === LF) count++;
  }
  return count;
}

/**
 * Where the `n`th line of a chunk ends.
 * @param bytes The chunk.
 * @param n Which `\n` (1 for the first).
 * @returns The index just past the `n`th `\n`, or -1 when the chunk has fewer.
 */
export function endOfLine(bytes: Uint8Array, n: number): number {
  let seen = 0;
  for (let at = bytes.indexOf(LF); at !== -1; at = bytes.indexOf(LF, at + 1)) {
    if (++seen >= n) return at + 1;
  }
  return -1;
}

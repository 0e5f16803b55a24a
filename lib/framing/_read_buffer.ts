/**
 * Internal: how a connection's read buffer is sized, for {@linkcode ConnectionReader} and the echo
 * relay's reader alike. A buffer starts small (an idle connection costs little), doubles while reads
 * fill it, up to a maximum, and halves again after a run of small reads.
 *
 * @module
 */

/** The largest read buffer, unless a reader is given another maximum. */
export const MAX_READ_BUFFER_BYTES = 256 * 1024;
/** Reads this many in a row that fill less than a quarter of the buffer halve it. */
const SHRINK_AFTER_SMALL_READS = 16;

/** The sizing policy of one reader's buffers: its bounds, and the run of small reads so far. */
export class ReadBufferSizing {
  /** The starting (and smallest) size. */
  readonly min: number;
  /** The largest size. */
  readonly max: number;
  #smallReads = 0;

  /**
   * Creates the policy.
   * @param min The starting (and smallest) size.
   * @param max The largest size (at least `min`).
   */
  constructor(min: number, max: number) {
    this.min = min;
    this.max = Math.max(max, min);
  }

  /**
   * The size the buffer should have after a read.
   * @param size The buffer's size.
   * @param count How many bytes the read brought.
   * @returns `size` to keep the buffer, or the size of its replacement.
   */
  next(size: number, count: number): number {
    if (count === size && size < this.max) {
      this.#smallReads = 0;
      return Math.min(size * 2, this.max);
    }
    if (count < size / 4 && size > this.min) {
      if (++this.#smallReads >= SHRINK_AFTER_SMALL_READS) {
        this.#smallReads = 0;
        return Math.max(size / 2, this.min);
      }
      return size;
    }
    this.#smallReads = 0;
    return size;
  }
}

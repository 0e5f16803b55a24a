/**
 * Internal: {@linkcode TokenBucket}, the throttle of one chat client: `rate` lines a second on
 * average, `burst` at once. A line taken beyond the bucket is not refused; the caller waits the
 * time the bucket needs to pay it back (the client's input is then read more slowly).
 *
 * @module
 */

/** A line-rate throttle. */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  /**
   * @param rate Lines a second on average.
   * @param burst Lines at once (at least 1).
   */
  constructor(rate: number, burst: number = rate) {
    this.#perMs = rate / 1000;
    this.#burst = Math.max(1, burst);
    this.#tokens = this.#burst;
    this.#last = performance.now();
  }

  /**
   * Takes one line's token.
   * @returns How long to wait before the next line, in ms (0: none).
   */
  take(now: number = performance.now()): number {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#perMs;
  }
}

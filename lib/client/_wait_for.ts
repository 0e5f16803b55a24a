/**
 * Internal: waiting for a promise with a deadline and an abort signal, without cancelling what it
 * waits for (a pending socket read stays pending for the next wait).
 *
 * @example
 * ```ts
 * import { waitFor } from "./_wait_for.ts";
 * import { TimeoutError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await waitFor(Promise.resolve(1), 1000, undefined, "one"), 1);
 * const never = new Promise<number>(() => {});
 * const keepAlive = setTimeout(() => {}, 1000); // these timers do not keep the process alive
 * await assert.rejects(waitFor(never, 10, undefined, "a reply"), TimeoutError);
 * clearTimeout(keepAlive);
 * ```
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";
import { startTimer, type Timer } from "../_timer.ts";

/**
 * Races `promise` against an optional timer and an optional abort signal, without cancelling it.
 * `onLate` disposes a result that arrives after a timeout.
 */
export async function waitFor<T>(
  promise: Promise<T>,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  if (timeoutMs === undefined && signal === undefined) return await promise;
  let timer: Timer | undefined;
  let onAbort: (() => void) | undefined;
  let timedOut = false;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        if (timeoutMs !== undefined) {
          timer = startTimer(timeoutMs, () => {
            timedOut = true;
            reject(new TimeoutError(what, timeoutMs));
          });
        }
        if (signal !== undefined) {
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }
      }),
    ]);
  } finally {
    timer?.cancel();
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    if (timedOut && onLate) promise.then(onLate, () => {});
  }
}

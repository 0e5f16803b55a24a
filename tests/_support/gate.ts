/**
 * A gate: a promise the test opens, to hold a handler (or a peer) until the test lets it go.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { gate } from "./gate.ts";
 *
 * const held = gate();
 * let passed = false;
 * const waiting = held.promise.then(() => passed = true);
 * assert.equal(passed, false);
 * held.open();
 * await waiting;
 * assert.equal(passed, true);
 * ```
 *
 * @module
 */

/** A promise and the function that resolves it. */
export interface Gate {
  /** Resolves once {@linkcode Gate.open} was called. */
  readonly promise: Promise<void>;
  /** Lets the waiters through; later calls do nothing. */
  readonly open: () => void;
}

/** A closed gate. */
export function gate(): Gate {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, open: () => resolve() };
}

/**
 * Internal: timers for deadlines (connect, reply and run timeouts) that do not load Deno's
 * Node-compatible `setTimeout`. Since Deno 2.9 the global `setTimeout` is Node's (it returns a
 * `Timeout` object), and its first call loads `node:timers` and `async_hooks`: 3–5 ms measured on
 * the 2-core machine, a fifth of `linesock send PING`'s whole start-up. `AbortSignal.timeout` runs
 * on the runtime's own timers and costs nothing to load.
 *
 * One `AbortSignal.timeout` is armed at a time, for the earliest deadline; the deadlines wait in a
 * binary heap. A cancelled deadline stays in the heap until it is popped or until cancelled ones
 * make up half of it (then the heap is rebuilt), so a per-reply timeout that is set and cancelled
 * millions of times keeps memory bounded by the deadlines actually pending.
 *
 * Like every `AbortSignal.timeout`, these timers do not keep the process alive: use them for
 * deadlines on something else that does (a connect, a read). A plain sleep needs `setTimeout`.
 *
 * @example
 * ```ts
 * import { startTimer } from "./_timer.ts";
 * import assert from "node:assert/strict";
 *
 * const fired: string[] = [];
 * const cancelled = startTimer(5, () => fired.push("cancelled"));
 * cancelled.cancel();
 * // These timers do not keep the process alive; here a plain timer does, while the example waits.
 * const keepAlive = setTimeout(() => {}, 1000);
 * await new Promise<void>((resolve) => startTimer(20, () => (fired.push("fired"), resolve())));
 * clearTimeout(keepAlive);
 * assert.deepEqual(fired, ["fired"]);
 * ```
 *
 * @module
 */

/** A pending deadline. */
export interface Timer {
  /** Stops it; its callback will not run. Harmless after it ran. */
  cancel(): void;
}

interface Entry extends Timer {
  readonly at: number;
  readonly seq: number;
  readonly fire: () => void;
  done: boolean;
}

const heap: Entry[] = [];
let cancelledInHeap = 0;
let sequence = 0;
/** The deadline the armed signal is for (Infinity when none is armed). */
let armedAt = Infinity;
let armed: { signal: AbortSignal; listener: () => void } | undefined;

/**
 * Runs `fire` once after `ms` milliseconds, unless cancelled.
 * @param ms The delay (0 or less: as soon as possible, never synchronously).
 * @param fire What to run.
 * @returns The timer, to cancel it.
 */
export function startTimer(ms: number, fire: () => void): Timer {
  const entry: Entry = {
    at: performance.now() + Math.max(0, ms),
    seq: sequence++,
    fire,
    done: false,
    cancel() {
      if (entry.done) return;
      entry.done = true;
      cancelledInHeap++;
      if (cancelledInHeap > 32 && cancelledInHeap * 2 > heap.length) compact();
    },
  };
  push(entry);
  if (entry.at < armedAt) arm(entry.at);
  return entry;
}

function arm(at: number): void {
  if (armed) armed.signal.removeEventListener("abort", armed.listener);
  armedAt = at;
  const signal = AbortSignal.timeout(Math.max(0, Math.ceil(at - performance.now())));
  const listener = () => {
    if (armed?.signal !== signal) return;
    armed = undefined;
    armedAt = Infinity;
    runDue();
  };
  signal.addEventListener("abort", listener, { once: true });
  armed = { signal, listener };
}

function runDue(): void {
  const now = performance.now();
  // A timer that fires a little early (rounding) runs now rather than re-arming for < 1 ms.
  while (heap.length > 0 && heap[0]!.at <= now + 1) {
    const entry = pop()!;
    if (entry.done) {
      cancelledInHeap--;
      continue;
    }
    entry.done = true;
    try {
      entry.fire();
    } catch (error) {
      // As a throwing setTimeout callback would: reported, and the other timers still run.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  dropCancelledTop();
  if (heap.length > 0) arm(heap[0]!.at);
}

function dropCancelledTop(): void {
  while (heap.length > 0 && heap[0]!.done) {
    pop();
    cancelledInHeap--;
  }
}

function compact(): void {
  const live = heap.filter((entry) => !entry.done);
  heap.length = 0;
  cancelledInHeap = 0;
  for (const entry of live) push(entry);
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function push(entry: Entry): void {
  heap.push(entry);
  let index = heap.length - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (!before(heap[index]!, heap[parent]!)) break;
    [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
    index = parent;
  }
}

function pop(): Entry | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length > 0 && last !== undefined) {
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === index) break;
      [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
      index = smallest;
    }
  }
  return top;
}

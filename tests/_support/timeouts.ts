/**
 * Time in tests: every wait is bounded ({@linkcode within}), and a time-limited behaviour is checked
 * against its configured value with a margin on both sides ({@linkcode assertTookAbout}), never
 * against a generous ceiling only.
 *
 * @module
 */
import assert from "node:assert/strict";

/** How long a test waits for something that normally takes milliseconds (a reply, a start-up). */
export const WAIT_MS = 10_000;

/**
 * How much later than its configured value a timed behaviour may happen: the timers and sweeps of the
 * code under test, process start-up and a shared 2-core machine under `--parallel`. A bug that
 * ignores the configured value (a default of seconds, or no limit) lands well outside it.
 */
export const LATE_MARGIN_MS = 1500;

/**
 * How much earlier than configured a timed behaviour may be seen. Timers never fire early, but the
 * test measures from its own events (a write returned, a line sent), which the code under test
 * may have registered a little before the test's clock read.
 */
export const EARLY_MARGIN_MS = 50;

/**
 * Waits for `promise` at most `ms`, rejecting with a message naming `what`.
 * @param promise What to wait for.
 * @param ms The bound.
 * @param what Named in the error.
 * @returns What the promise resolves to.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}

/**
 * Asserts that a measured duration is the configured one, within the margins:
 * `configured - early <= elapsed <= configured + late`.
 * @param elapsed What the test measured, in ms, from its own events.
 * @param configured The configured limit in ms.
 * @param what Named in the failure message.
 * @param margins The margins (default {@linkcode EARLY_MARGIN_MS}, {@linkcode LATE_MARGIN_MS}).
 */
export function assertTookAbout(
  elapsed: number,
  configured: number,
  what: string,
  margins: { early?: number; late?: number } = {},
): void {
  const early = margins.early ?? EARLY_MARGIN_MS;
  const late = margins.late ?? LATE_MARGIN_MS;
  assert.ok(
    elapsed >= configured - early && elapsed <= configured + late,
    `${what}: took ${Math.round(elapsed)} ms; configured ${configured} ms, so expected ` +
      `${configured - early}..${configured + late} ms`,
  );
}

/**
 * Polls `condition` until it holds, at most `ms`: for state that has no event to wait on (a counter
 * of a server, a file). The pause between two polls is not a synchronisation; the check is.
 * @param condition What must become true.
 * @param ms The bound.
 * @param what Named in the error.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

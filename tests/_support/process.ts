/**
 * Processes and the environment in tests: whether a process is alive, waiting until some are gone,
 * and setting an environment variable for the length of a test body.
 *
 * @module
 */
import assert from "node:assert/strict";

/**
 * Whether a process is alive: it exists and is not a zombie. (A program's background child is
 * reparented when the program exits; its new parent, not us, reaps it.)
 */
export function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  // The command name may hold spaces and parentheses: the state follows the last ")".
  const state = stat.charAt(stat.lastIndexOf(")") + 2);
  return state !== "Z" && state !== "X";
}

/** Polls until none of `pids` is alive; fails when some still is at `deadline` (performance.now). */
export async function allGone(pids: number[], deadline: number): Promise<void> {
  for (;;) {
    const living = pids.filter(alive);
    if (living.length === 0) return;
    if (performance.now() > deadline) {
      // Leave nothing behind even when the test fails.
      for (const pid of living) Deno.kill(pid, "SIGKILL");
      assert.fail(`still alive: ${living.join(", ")}`);
    }
    // The pause between two polls, not a synchronisation: the loop checks the processes.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sets an environment variable of this process for the duration of `body`. */
export async function withEnv(
  name: string,
  value: string,
  body: () => Promise<void>,
): Promise<void> {
  const before = Deno.env.get(name);
  Deno.env.set(name, value);
  try {
    await body();
  } finally {
    if (before === undefined) Deno.env.delete(name);
    else Deno.env.set(name, before);
  }
}

/**
 * Processes and the environment in tests: whether a process is alive, waiting until some are gone,
 * and setting an environment variable for the length of a test body.
 *
 * @module
 */
import assert from "node:assert/strict";
import { within } from "./timeouts.ts";

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

/** A background program a test started (nats-server, HAProxy); `await using` stops it. */
export interface Daemon extends AsyncDisposable {
  /** What it wrote to stderr so far. */
  log(): string;
  /** Sends `signal` (default: the one it was started with) and waits until it exited. */
  stop(signal?: Deno.Signal): Promise<void>;
}

/** How {@linkcode startDaemon} starts a program. */
export interface DaemonOptions {
  /** Its arguments. */
  args: string[];
  /** The stderr text that says it is ready (its ports bound). */
  ready: string;
  /** How `stop()` and disposal end it. @default {"SIGTERM"} */
  stopSignal?: Deno.Signal;
  /** How long it may take to print `ready`. @default {10000} */
  timeoutMs?: number;
}

/**
 * Starts `program` and waits (bounded) until its stderr contains `ready`; one reader drains its
 * stderr for its whole life, so that it never blocks on a full pipe. It exiting first, or the
 * timeout, is a failed start (its log in the error) and leaves nothing running.
 * @param program The program, found on PATH.
 * @param options Arguments, the ready text, the stop signal.
 * @returns The running program.
 */
export async function startDaemon(program: string, options: DaemonOptions): Promise<Daemon> {
  const child = new Deno.Command(program, {
    args: options.args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  let reportReady: (ready: boolean) => void = () => {};
  const ready = new Promise<boolean>((resolve) => reportReady = resolve);
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.includes(options.ready)) reportReady(true);
    }
    reportReady(false);
  })();
  let stopping: Promise<void> | undefined;
  const stop = (signal = options.stopSignal ?? "SIGTERM") =>
    stopping ??= (async () => {
      try {
        child.kill(signal);
      } catch {
        // It exited already.
      }
      await child.status;
      await drained;
    })();
  try {
    if (
      !await within(ready, options.timeoutMs ?? 10_000, `${program} to print "${options.ready}"`)
    ) {
      throw new Error("it exited");
    }
  } catch (error) {
    await stop("SIGKILL");
    throw new Error(`${program} did not start (${(error as Error).message}):\n${text}`);
  }
  return { log: () => text, stop, [Symbol.asyncDispose]: () => stop() };
}

/**
 * The variable StrykerJS sets to the mutant under test (`deno task mutation`, docs/mutation.md).
 * Its instrumented code reads it, so a test that starts lib code in a process with a narrow
 * `--allow-env` list adds this name to the list (it changes nothing outside mutation runs).
 */
export const STRYKER_MUTANT_ENV = "__STRYKER_ACTIVE_MUTANT__";

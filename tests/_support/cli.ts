/**
 * Runs the real `linesock` CLI as a process, with exactly the permission flags of its `deno task`
 * (so the tests also prove that the tasks' permissions suffice).
 *
 * - {@linkcode startServer} spawns `serve` (or any long-running subcommand), waits for its first
 *   stdout line `listening on …`, and returns its address; `await using` stops it.
 * - {@linkcode runCli} runs a subcommand to completion with optional stdin and returns its output.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { fileURLToPath } from "node:url";
import { within } from "./timeouts.ts";

export { within };

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const decoder = new TextDecoder();

/** The subcommand tasks of deno.json. */
export type CliTask = "serve" | "send" | "repl" | "echo-test" | "linesock";

/**
 * The `deno` arguments of a task: its permission flags, `main.ts` and the subcommand.
 * @param task A task name from deno.json.
 * @returns Arguments for `Deno.execPath()`.
 */
export function taskArgs(task: CliTask): string[] {
  const entry = (denoJson.tasks as Record<string, string | { command: string }>)[task];
  if (entry === undefined) throw new Error(`deno.json has no task ${task}`);
  const command = typeof entry === "string" ? entry : entry.command;
  const words = command.trim().split(/\s+/);
  if (words[0] !== "deno") throw new Error(`task ${task} does not start with deno: ${command}`);
  return words.slice(1).map((word) => word === "main.ts" ? `${ROOT}main.ts` : word);
}

/**
 * The `deno` arguments of a task with `main.ts` replaced by tests/_support/internal_failure_main.ts,
 * whose subcommands all fail with an unexpected error (for exit status 70).
 * @param task A task name from deno.json.
 * @returns Arguments for `Deno.execPath()`.
 */
export function internalFailureArgs(task: CliTask): string[] {
  const injected = fileURLToPath(new URL("./internal_failure_main.ts", import.meta.url));
  return taskArgs(task).map((word) => word === `${ROOT}main.ts` ? injected : word);
}

/** The result of a finished CLI run. */
export interface CliResult {
  /** Exit status. */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Standard output as bytes. */
  stdoutBytes: Uint8Array;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
}

/** Options of {@linkcode runCli}. */
export interface RunOptions {
  /** Bytes or text for stdin; stdin is closed after it. Without it, stdin is empty (null). */
  stdin?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Kill the process after this long. @default {20000} */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/**
 * Runs a subcommand to completion.
 * @param task Which task's permissions and subcommand.
 * @param args Subcommand arguments.
 * @param options Stdin, timeout, environment.
 * @returns Exit status and output.
 */
export async function runCli(
  task: CliTask,
  args: string[],
  options: RunOptions = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(task), ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd ?? ROOT,
  }).spawn();
  const timeoutMs = options.timeoutMs ?? 20_000;
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, timeoutMs);
  try {
    const feeding = options.stdin === undefined
      ? Promise.resolve()
      : feed(child.stdin, options.stdin);
    const [output] = await Promise.all([child.output(), feeding.catch(() => {})]);
    return {
      code: output.code,
      signal: output.signal,
      stdoutBytes: output.stdout,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

async function feed(
  stdin: WritableStream<Uint8Array>,
  input: string | Uint8Array | ReadableStream<Uint8Array>,
): Promise<void> {
  if (input instanceof ReadableStream) return await input.pipeTo(stdin);
  const writer = stdin.getWriter();
  await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
  await writer.close();
}

/** A running CLI process that printed `listening on …` first. */
export interface RunningServer extends AsyncDisposable {
  /** The process. */
  readonly process: Deno.ChildProcess;
  /** The URL from the first line (`tcp://127.0.0.1:40117`, `tls://…` or `unix:///path`). */
  readonly url: string;
  /** The TCP port (0 for Unix sockets). */
  readonly port: number;
  /** The TCP host (empty for Unix sockets). */
  readonly hostname: string;
  /** The Unix socket path (empty for TCP). */
  readonly path: string;
  /** Stdout lines after the first, as read so far. */
  readonly stdoutLines: string[];
  /** Stderr text read so far. */
  stderr(): string;
  /** Resolves when stderr contains `text` (bounded by `ms`). */
  /**
   * Resolves when stderr contains `text`, matches it, or satisfies it (bounded by `ms`). To wait for
   * N occurrences, pass a predicate that counts: a regex such as `(x[\s\S]*){30}` backtracks
   * exponentially and blocks the event loop.
   */
  waitForStderr(text: string | RegExp | ((stderr: string) => boolean), ms?: number): Promise<void>;
  /** Sends a signal (default SIGTERM) and waits for the exit; kills after `ms`. */
  stop(signal?: Deno.Signal, ms?: number): Promise<CliResult>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions extends Omit<RunOptions, "stdin"> {
  /** Give the process a piped stdin that stays open (otherwise stdin is null). */
  pipedStdin?: boolean;
  /** How long to wait for the first line. @default {15000} */
  startTimeoutMs?: number;
  /** A command that runs the CLI, such as `["prlimit", "--nofile=300:300"]`. */
  wrapper?: string[];
  /** Environment variables the process may read besides the task's (`--allow-env`). */
  allowEnv?: string[];
}

/**
 * Starts a long-running subcommand and waits for its `listening on …` line.
 * @param args Subcommand arguments (add `--port 0` yourself for TCP).
 * @param options Environment and timeouts.
 * @param task Which task (default `serve`).
 * @returns The running process and its address.
 */
export async function startServer(
  args: string[],
  options: StartOptions = {},
  task: CliTask = "serve",
): Promise<RunningServer> {
  const [command, ...commandArgs] = [
    ...options.wrapper ?? [],
    Deno.execPath(),
    ...taskArgs(task).map((word) =>
      options.allowEnv && word.startsWith("--allow-env=")
        ? [word, ...options.allowEnv].join(",")
        : word
    ),
    ...args,
  ];
  const child = new Deno.Command(command!, {
    args: commandArgs,
    stdin: options.pipedStdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd ?? ROOT,
  }).spawn();
  let stderrText = "";
  const stderrWaiters = new Set<() => void>();
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderrText += chunk;
      for (const wake of stderrWaiters) wake();
    }
  })();
  const stdoutLines: string[] = [];
  let firstLine: (line: string) => void = () => {};
  const first = new Promise<string>((resolve) => firstLine = resolve);
  const stdoutDone = (async () => {
    let pending = "";
    let seenFirst = false;
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (!seenFirst) {
          seenFirst = true;
          firstLine(line);
        } else {
          stdoutLines.push(line);
        }
      }
    }
    if (!seenFirst) firstLine("");
    if (pending) stdoutLines.push(pending);
  })();
  let exited: CliResult | undefined;
  const stop = async (signal: Deno.Signal = "SIGTERM", ms = 10_000): Promise<CliResult> => {
    if (exited) return exited;
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }, ms);
    try {
      const status = await child.status;
      await Promise.all([stdoutDone, stderrDone]);
      if (options.pipedStdin) await child.stdin.close().catch(() => {});
      exited = {
        code: status.code,
        signal: status.signal,
        stdoutBytes: new TextEncoder().encode(stdoutLines.join("\n")),
        stdout: stdoutLines.join("\n"),
        stderr: stderrText,
      };
      return exited;
    } finally {
      clearTimeout(timer);
    }
  };
  let line: string;
  try {
    line = await within(first, options.startTimeoutMs ?? 15_000, "server start");
  } catch (error) {
    await stop("SIGKILL");
    throw new Error(`${(error as Error).message}\nstderr:\n${stderrText}`);
  }
  const match = /^listening on ((?:tcp|tls):\/\/(.+):(\d+)|unix:\/\/(.+))$/.exec(line);
  if (!match) {
    const result = await stop("SIGKILL");
    throw new Error(`Unexpected first line ${JSON.stringify(line)}\nstderr:\n${result.stderr}`);
  }
  const hostname = (match[2] ?? "").replace(/^\[|\]$/g, "");
  return {
    process: child,
    url: match[1]!,
    port: match[3] ? Number(match[3]) : 0,
    hostname,
    path: match[4] ?? "",
    stdoutLines,
    stderr: () => stderrText,
    waitForStderr(text, ms = 10_000) {
      const seen = () =>
        typeof text === "string"
          ? stderrText.includes(text)
          : typeof text === "function"
          ? text(stderrText)
          : text.test(stderrText);
      if (seen()) return Promise.resolve();
      let wake!: () => void;
      const found = new Promise<void>((resolve) => {
        wake = () => {
          if (seen()) resolve();
        };
        stderrWaiters.add(wake);
      });
      return within(found, ms, `stderr to contain ${text}`).finally(() =>
        stderrWaiters.delete(wake)
      );
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}

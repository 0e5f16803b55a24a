/**
 * Running a user's program safely on behalf of a client: {@linkcode runProgram} and
 * {@linkcode ExecLimiter}.
 *
 * - **No shell, ever.** The program is started from an argv array; what the client sent is only
 *   ever written to the program's stdin, so `;`, `$(…)`, backticks, quotes and newlines are plain
 *   bytes to it.
 * - **Bounded time.** A program still running at its timeout is killed with SIGKILL — together
 *   with anything it started, since each program runs in its own process group.
 * - **Nothing outlives it.** When the program ends, however it ends, its process group is killed:
 *   a background process it left behind does not survive it.
 * - **Tied to its caller.** Aborting the `signal` kills a running program's group at once, and a
 *   caller still waiting for an {@linkcode ExecLimiter} slot leaves the line without starting it.
 * - **A minimal environment.** A program gets only the server's variables named in
 *   {@linkcode DEFAULT_PROGRAM_ENV} (or `inheritEnv`), plus the `env` given; never the rest of the
 *   server's environment (tokens, keys).
 * - **Bounded output.** Output beyond a byte limit (1 MiB unless set) kills the program.
 * - **Bounded concurrency.** An {@linkcode ExecLimiter} shared by all connections lets at most N
 *   programs run at once; a bounded number of callers wait for a slot, later ones are refused.
 * - **Nothing leaks.** The child is always reaped and its pipes closed, however the caller stops
 *   reading (error, timeout, `break`).
 *
 * Failures are typed ({@linkcode ProgramError} subclasses, each with a stable `code`) and their
 * messages are written to be sent to a client after `ERR `, e.g. `program timed out after 2000 ms`.
 *
 * @example Upper-casing a line with `tr`
 * ```ts
 * import { runProgram } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const lines = await Array.fromAsync(
 *   runProgram({ argv: ["tr", "a-z", "A-Z"], stdin: "hello; $(rm -rf /)" }),
 * );
 * assert.deepEqual(lines, ["HELLO; $(RM -RF /)"]);
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { LinesockError, type LinesockErrorCode } from "../errors.ts";
import { escapeControls } from "../_control_escape.ts";
import { decodeLine } from "../framing/line_decoder.ts";
import { LineFramer } from "../framing/line_framer.ts";
import {
  describeStartError,
  killGroup,
  killProcessGroup,
  mayReadEnv,
  spawnProgram,
} from "./_program_process.ts";

/** 1 MiB: the default limit of a program's stdout. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** 5 s: the default time a program may run. */
export const DEFAULT_PROGRAM_TIMEOUT_MS = 5000;
/** The default number of programs that may run at once (`--max-exec`). */
export const DEFAULT_MAX_EXEC = 16;
/** The default number of callers that may wait for a program slot before being refused. */
export const DEFAULT_MAX_EXEC_WAITING = 256;
/**
 * The server's environment variables a program gets by default (when they are set and the server
 * may read them): what programs need to find other programs, files and the locale. Nothing else of
 * the server's environment reaches a program unless it is named (`inheritEnv`) or set (`env`).
 */
export const DEFAULT_PROGRAM_ENV: readonly string[] = Object.freeze([
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
]);

/** How much of a program's stderr is kept for the error message; the rest is read and dropped. */
const logger = getLogger(["linesock", "routes"]);

const KEPT_STDERR_BYTES = 4096;
const MAX_STDERR_IN_MESSAGE = 200;

/** The stable codes of {@linkcode ProgramError}. */
export type ProgramErrorCode = Extract<
  LinesockErrorCode,
  `PROGRAM_${string}` | "EXEC_QUEUE_FULL"
>;

/** Base class of the failures of {@linkcode runProgram}. The message suits an `ERR` reply. */
export class ProgramError extends LinesockError {
  /** A stable, machine-readable code. */
  declare readonly code: ProgramErrorCode;
  /** The program's argv (for logs; not part of the message, which may go to a client). */
  readonly argv: readonly string[];

  /**
   * Creates the instance.
   * @param code The stable code.
   * @param argv The program's argv.
   * @param message A sentence for people.
   * @param options Standard error options (`cause`).
   */
  constructor(
    code: ProgramErrorCode,
    argv: readonly string[],
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.argv = argv;
  }
}

/** The program could not be started (not found, not executable, not permitted). */
export class ProgramStartError extends ProgramError {
  /**
   * Creates the instance.
   * @param argv The program's argv.
   * @param reason Why, in a few words ("not found").
   * @param options Standard error options (`cause`).
   */
  constructor(argv: readonly string[], reason: string, options?: ErrorOptions) {
    super(
      "PROGRAM_START_FAILED",
      argv,
      `cannot start program ${JSON.stringify(argv[0] ?? "")}: ${reason}`,
      options,
    );
  }
}

/** The program ran past its timeout and was killed. */
export class ProgramTimeoutError extends ProgramError {
  /** The timeout in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the instance.
   * @param argv The program's argv.
   * @param timeoutMs The timeout in milliseconds.
   */
  constructor(argv: readonly string[], timeoutMs: number) {
    super("PROGRAM_TIMEOUT", argv, `program timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The program ended unsuccessfully (non-zero status or killed by a signal). The message, which goes
 * to the client, names only how it ended: its stderr (a traceback, paths) is for the server's log.
 */
export class ProgramFailedError extends ProgramError {
  /** The exit status (128 + signal number when killed by a signal). */
  readonly exitCode: number;
  /** The signal that killed it, if any. */
  readonly signal: Deno.Signal | null;
  /** The first line of its stderr (cut at 200 characters), or `""`: for logs, not for clients. */
  readonly stderr: string;

  /**
   * Creates the instance.
   * @param argv The program's argv.
   * @param exitCode The exit status.
   * @param signal The signal that killed it, or `null`.
   * @param stderr The first line of its stderr.
   */
  constructor(
    argv: readonly string[],
    exitCode: number,
    signal: Deno.Signal | null,
    stderr: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with status ${exitCode}`;
    super("PROGRAM_FAILED", argv, `program ${how}`);
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

/** The program wrote more than allowed (in total, or in one line) and was killed. */
export class ProgramOutputLimitError extends ProgramError {
  /** The limit in bytes. */
  readonly limit: number;
  /** Whether the total output or a single line was too long. */
  readonly scope: "output" | "line";

  /**
   * Creates the instance.
   * @param argv The program's argv.
   * @param limit The limit in bytes.
   * @param scope Whether the total output or a single line was too long.
   */
  constructor(argv: readonly string[], limit: number, scope: "output" | "line" = "output") {
    super(
      "PROGRAM_OUTPUT_LIMIT",
      argv,
      scope === "output"
        ? `program output exceeded the limit of ${limit} bytes`
        : `program output line longer than the limit of ${limit} bytes`,
    );
    this.limit = limit;
    this.scope = scope;
  }
}

/** The program wrote a line that is not valid UTF-8; it was killed. */
export class ProgramOutputEncodingError extends ProgramError {
  /** The 1-based number of the offending output line. */
  readonly lineNumber: number;

  /**
   * Creates the instance.
   * @param argv The program's argv.
   * @param lineNumber The 1-based output line number.
   */
  constructor(argv: readonly string[], lineNumber: number) {
    super("PROGRAM_INVALID_OUTPUT", argv, `program output line ${lineNumber} is not valid UTF-8`);
    this.lineNumber = lineNumber;
  }
}

/** Every program slot is taken and the waiting line is full. */
export class ExecQueueFullError extends ProgramError {
  /**
   * Creates the instance.
   * @param argv The program's argv (empty when not known).
   * @param running Programs running.
   * @param waiting Callers waiting.
   */
  constructor(argv: readonly string[], running: number, waiting: number) {
    super(
      "EXEC_QUEUE_FULL",
      argv,
      `too many programs running (${running} running, ${waiting} waiting), try again later`,
    );
  }
}

/** Options of {@linkcode ExecLimiter}. */
export interface ExecLimiterOptions {
  /**
   * Programs that may run at once.
   * @default {16}
   */
  maxRunning?: number;
  /**
   * Callers that may wait for a slot; beyond it {@linkcode ExecLimiter.acquire} fails at once.
   * @default {256}
   */
  maxWaiting?: number;
}

/** A slot held while one program runs; release it exactly once (`using` does). */
export interface ExecSlot extends Disposable {
  /** Gives the slot back (idempotent). */
  release(): void;
}

/**
 * Limits how many programs run at once. Callers beyond the limit wait in order, up to a bound.
 *
 * @example Two slots, a third caller waits
 * ```ts
 * import { ExecLimiter } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const limiter = new ExecLimiter({ maxRunning: 2 });
 * const first = await limiter.acquire();
 * using _second = await limiter.acquire();
 * const third = limiter.acquire();
 * assert.equal(limiter.waiting, 1);
 * first.release();
 * using _slot = await third;
 * assert.equal(limiter.running, 2);
 * ```
 */
export class ExecLimiter {
  /** Programs that may run at once. */
  readonly maxRunning: number;
  /** Callers that may wait for a slot. */
  readonly maxWaiting: number;
  #running = 0;
  readonly #waiters: (() => void)[] = [];

  /**
   * Creates the instance.
   * @param options The limits.
   */
  constructor(options: ExecLimiterOptions = {}) {
    const maxRunning = options.maxRunning ?? DEFAULT_MAX_EXEC;
    const maxWaiting = options.maxWaiting ?? DEFAULT_MAX_EXEC_WAITING;
    if (!Number.isInteger(maxRunning) || maxRunning < 1) {
      throw new RangeError(`maxRunning must be a whole number >= 1, got ${maxRunning}`);
    }
    if (!(maxWaiting >= 0)) throw new RangeError(`maxWaiting must be >= 0, got ${maxWaiting}`);
    this.maxRunning = maxRunning;
    this.maxWaiting = maxWaiting;
  }

  /** Slots held now. */
  get running(): number {
    return this.#running;
  }

  /** Callers waiting now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Takes a slot, waiting in line when all are held.
   * @param signal Stops waiting (the promise rejects with the signal's reason).
   * @param argv For the error message only.
   * @returns The slot; release it when the program has ended.
   * @throws {ExecQueueFullError} When the waiting line is full.
   */
  acquire(signal?: AbortSignal, argv: readonly string[] = []): Promise<ExecSlot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#running < this.maxRunning && this.#waiters.length === 0) {
      this.#running++;
      return Promise.resolve(this.#slot());
    }
    if (this.#waiters.length >= this.maxWaiting) {
      return Promise.reject(new ExecQueueFullError(argv, this.#running, this.#waiters.length));
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiters.indexOf(grant);
        if (index !== -1) this.#waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#running++;
        resolve(this.#slot());
      };
      this.#waiters.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Takes a slot when one is free and nobody waits for one; never waits.
   * @returns The slot, or `undefined` when all are held (or callers wait).
   *
   * @example Refusing instead of waiting
   * ```ts
   * import { ExecLimiter } from "@linesock/linesock";
   * import assert from "node:assert/strict";
   *
   * const limiter = new ExecLimiter({ maxRunning: 1 });
   * const slot = limiter.tryAcquire();
   * assert.ok(slot);
   * assert.equal(limiter.tryAcquire(), undefined);
   * slot.release();
   * assert.ok(limiter.tryAcquire());
   * ```
   */
  tryAcquire(): ExecSlot | undefined {
    if (this.#running >= this.maxRunning || this.#waiters.length > 0) return undefined;
    this.#running++;
    return this.#slot();
  }

  #slot(): ExecSlot {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#running--;
      while (this.#running < this.maxRunning && this.#waiters.length > 0) this.#waiters.shift()!();
    };
    return { release, [Symbol.dispose]: release };
  }
}

/** Options of {@linkcode runProgram}. */
export interface RunProgramOptions {
  /** The program and its arguments, passed as they are (no shell, no expansion). */
  argv: readonly string[];
  /** Text written to the program's stdin, followed by `"\n"`; then stdin is closed. */
  stdin?: string;
  /**
   * Kill the program after this many milliseconds (`Infinity`: never).
   * @default {5000}
   */
  timeoutMs?: number;
  /**
   * Kill the program once its stdout exceeds this many bytes.
   * @default {1048576}
   */
  maxOutputBytes?: number;
  /**
   * Kill the program when one stdout line exceeds this many bytes.
   * @default {maxOutputBytes}
   */
  maxLineBytes?: number;
  /**
   * The names of the server's environment variables the program inherits, when they are set and
   * the server may read them (`--allow-env`); no other variable of the server reaches it. To add
   * to the default, pass `[...DEFAULT_PROGRAM_ENV, "NAME"]`; `[]` inherits nothing.
   * @default {DEFAULT_PROGRAM_ENV}
   */
  inheritEnv?: readonly string[];
  /** Environment variables set for the program (they win over inherited ones). */
  env?: Record<string, string>;
  /** The working directory. @default {the current one} */
  cwd?: string;
  /** Waits for a slot of this limiter before starting, and holds it until the program ended. */
  limiter?: ExecLimiter;
  /**
   * Aborting kills the program and its process group at once (or takes the caller out of the
   * limiter's waiting line, starting nothing); the iteration then throws the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * Runs a program and streams its stdout lines (without `\n`; a `\r` before it is dropped too).
 *
 * Nothing happens until the iteration starts. Every complete line written before a failure is
 * delivered, then the failure is thrown. Stopping the iteration early kills the program. When the
 * program has ended, normally or not, its process group is killed, so nothing it started in the
 * background outlives it (this needs `--allow-run` without a list, or a list that names `kill`;
 * otherwise only the program itself can be killed).
 *
 * @param options What to run and its limits.
 * @returns The program's stdout lines, as they arrive.
 * @throws {ProgramStartError} (on iteration) The program cannot be started.
 * @throws {ProgramTimeoutError} (on iteration) It ran past `timeoutMs`.
 * @throws {ProgramOutputLimitError} (on iteration) It wrote too much.
 * @throws {ProgramOutputEncodingError} (on iteration) It wrote a line that is not UTF-8.
 * @throws {ProgramFailedError} (on iteration) It exited unsuccessfully.
 * @throws {ExecQueueFullError} (on iteration) The limiter's waiting line is full.
 *
 * @example A program that hangs is killed at its timeout
 * ```ts
 * import { ProgramTimeoutError, runProgram } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   Array.fromAsync(runProgram({ argv: ["sleep", "30"], timeoutMs: 100 })),
 *   ProgramTimeoutError,
 * );
 * ```
 *
 * @example The server's environment stays with the server
 * ```ts
 * import { runProgram } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * Deno.env.set("LINESOCK_DOC_SECRET", "s3cret");
 * const seen = await Array.fromAsync(runProgram({ argv: ["env"], env: { GREETING: "hi" } }));
 * assert.ok(seen.includes("GREETING=hi"));
 * assert.ok(!seen.some((line) => line.startsWith("LINESOCK_DOC_SECRET=")));
 * const allowed = await Array.fromAsync(
 *   runProgram({ argv: ["printenv", "LINESOCK_DOC_SECRET"], inheritEnv: ["LINESOCK_DOC_SECRET"] }),
 * );
 * assert.deepEqual(allowed, ["s3cret"]);
 * Deno.env.delete("LINESOCK_DOC_SECRET");
 * ```
 */
export function runProgram(options: RunProgramOptions): AsyncIterable<string> {
  const argv = [...options.argv];
  if (argv.length === 0 || !argv[0]) throw new TypeError("argv must name a program");
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!(maxOutputBytes >= 1)) {
    throw new RangeError(`maxOutputBytes must be >= 1, got ${maxOutputBytes}`);
  }
  const maxLineBytes = options.maxLineBytes ?? maxOutputBytes;
  if (!(maxLineBytes >= 0)) throw new RangeError(`maxLineBytes must be >= 0, got ${maxLineBytes}`);
  return withSlot(argv, options, { timeoutMs, maxOutputBytes, maxLineBytes });
}

interface Limits {
  timeoutMs: number;
  maxOutputBytes: number;
  maxLineBytes: number;
}

async function* withSlot(
  argv: string[],
  options: RunProgramOptions,
  limits: Limits,
): AsyncGenerator<string, void, undefined> {
  using _slot = options.limiter ? await options.limiter.acquire(options.signal, argv) : undefined;
  options.signal?.throwIfAborted();
  yield* runChild(argv, options, limits);
}

async function* runChild(
  argv: string[],
  options: RunProgramOptions,
  limits: Limits,
): AsyncGenerator<string, void, undefined> {
  let child: Deno.ChildProcess;
  try {
    child = spawnProgram(argv, {
      inheritEnv: options.inheritEnv ?? DEFAULT_PROGRAM_ENV,
      env: options.env,
      cwd: options.cwd,
    });
  } catch (error) {
    throw new ProgramStartError(argv, describeStartError(error), { cause: error });
  }

  let failure: unknown;
  let exited = false;
  let groupKilled: Promise<void> | undefined;
  const status = child.status.then((result) => {
    exited = true;
    // However it ended, nothing it started may outlive it: a background process it left in its
    // group is killed now (which also ends one that kept our stdout open). The group id cannot be
    // reused while such a process lives; when none is left, the kill finds no group.
    groupKilled = killProcessGroup(child.pid);
    return result;
  });
  const stdout = child.stdout.getReader();
  const stderr = child.stderr.getReader();
  const stderrText = keepStart(stderr, KEPT_STDERR_BYTES);
  const stdinDone = writeStdin(
    child.stdin,
    options.stdin === undefined ? undefined : options.stdin + "\n",
  );

  // The first failure wins. Killing the whole group and cancelling our ends of the pipes means a
  // descendant that inherited stdout cannot keep us waiting either.
  const stop = (reason: unknown) => {
    if (failure !== undefined) return;
    failure = reason;
    killGroup(child, exited);
    stdout.cancel().catch(() => {});
    stderr.cancel().catch(() => {});
  };
  const timer = Number.isFinite(limits.timeoutMs)
    ? setTimeout(() => stop(new ProgramTimeoutError(argv, limits.timeoutMs)), limits.timeoutMs)
    : undefined;
  const onAbort = () => stop(options.signal!.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  // An abort between taking the slot and now has fired its listeners already.
  if (options.signal?.aborted) onAbort();

  let lines: string[] = [];
  const framer = new LineFramer({ maxLineBytes: limits.maxLineBytes }, {
    onLine(bytes, lineNumber) {
      if (failure !== undefined) return;
      try {
        lines.push(decodeLine(bytes, lineNumber));
      } catch {
        stop(new ProgramOutputEncodingError(argv, lineNumber));
      }
    },
    onTooLong() {
      stop(new ProgramOutputLimitError(argv, limits.maxLineBytes, "line"));
    },
  });
  /** Takes the lines framed so far. */
  const take = () => {
    const taken = lines;
    lines = [];
    return taken;
  };

  try {
    let outputBytes = 0;
    for (;;) {
      yield* take();
      if (failure !== undefined) throw failure;
      const { value, done } = await stdout.read();
      if (failure !== undefined) continue;
      if (done) break;
      const room = limits.maxOutputBytes - outputBytes;
      if (value.length > room) {
        framer.push(value.subarray(0, room));
        outputBytes = limits.maxOutputBytes;
        stop(new ProgramOutputLimitError(argv, limits.maxOutputBytes));
        continue;
      }
      outputBytes += value.length;
      framer.push(value);
    }
    framer.end();
    yield* take();
    if (failure !== undefined) throw failure;
    // A program may close stdout and keep running: the timer still guards this wait.
    const result = await status;
    if (failure !== undefined) throw failure;
    if (!result.success) {
      const failed = new ProgramFailedError(
        argv,
        result.code,
        result.signal,
        firstLine(await stderrText),
      );
      logger.warn("Route program {program} (pid {pid}) {how}{stderr}", {
        program: argv[0],
        pid: child.pid,
        how: failed.message.slice("program ".length),
        stderr: failed.stderr === "" ? "" : `: ${escapeControls(failed.stderr)}`,
      });
      throw failed;
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    // Reached early when the caller stopped iterating or something failed: end the program.
    if (!exited) killGroup(child, false);
    await stdout.cancel().catch(() => {});
    await status;
    await groupKilled;
    await stderr.cancel().catch(() => {});
    await stderrText;
    await stdinDone;
  }
}

/**
 * The names among `names` whose values this process may not read (`--allow-env` does not cover
 * them, or they are not valid names), so they could not be passed on to programs. Asking never
 * prompts.
 * @param names Environment variable names.
 * @returns Those not readable, in the order given.
 */
export function unreadableEnv(names: readonly string[]): string[] {
  return names.filter((name) => !mayReadEnv(name));
}

/** Writes the input and closes stdin; a program that exits without reading it is not an error. */
async function writeStdin(
  stream: WritableStream<Uint8Array>,
  text: string | undefined,
): Promise<void> {
  const writer = stream.getWriter();
  try {
    if (text !== undefined) await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // BrokenPipe: the program has exited (or was killed) without reading all of its input.
    await writer.abort().catch(() => {});
  }
}

/** Reads a stream to its end, keeping only its first `limit` bytes. */
async function keepStart(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
): Promise<string> {
  const kept = new Uint8Array(limit);
  let length = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, limit - length);
      kept.set(value.subarray(0, take), length);
      length += take;
    }
  } catch {
    // Cancelled or broken: what was kept is enough for a message.
  }
  return new TextDecoder().decode(kept.subarray(0, length));
}

function firstLine(text: string): string {
  const line = text.trimStart().split("\n", 1)[0]!.trimEnd();
  return line.length > MAX_STDERR_IN_MESSAGE ? line.slice(0, MAX_STDERR_IN_MESSAGE) + "…" : line;
}

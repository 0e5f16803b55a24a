/**
 * {@linkcode execProtocol}: a program per connection (`linesock serve --exec -- PROGRAM ARGS…`),
 * what `ncat -e` and socat's `EXEC:` do, with linesock's bounds:
 *
 * - **No shell.** The program starts from an argv array; what the client sends only ever reaches
 *   its stdin.
 * - **Lines both ways.** Each line the client sends reaches the program's stdin with a `\n` (a
 *   `\r` before it is dropped; an over-long line gets `ERR line too long` and is not passed on);
 *   each stdout line goes to the client byte for byte, and a last line without `\n` gets one.
 * - **Bounded.** At most `maxExec` programs run at once (a connection beyond it gets
 *   `ERR too many programs running (limit N), try again later` and is closed); a program is killed
 *   at its timeout (`ERR program timed out after N ms`, then the close) and when it writes a line
 *   longer than `maxLineBytes` (`ERR program output line too long (limit N bytes)`); its stderr
 *   goes to the server's log, at most 64 KiB per connection, in lines of at most 4 KiB.
 * - **Backpressure both ways.** A client slower than its program stops the reading of the
 *   program's stdout (the pipe fills and the program blocks); a program slower than its client stops
 *   the reading of the connection. Neither is buffered beyond 64 KiB and one line.
 * - **Half-closes passed on.** The client's end of input closes the program's stdin, and its
 *   output is still sent until it ends; when the program ends its output (it exits), what it wrote
 *   is sent, then the connection is closed. A connection that waits on its program with no bytes
 *   either way for `idleTimeoutMs` is closed and the program killed (`ERR idle timeout …`).
 * - **Nothing outlives the connection.** When the client goes, its program's process group is
 *   killed and the program reaped; however the program ends, its group is killed (nothing it
 *   started in the background survives) and its exit status is logged.
 * - **A minimal environment**: only the server's variables named in `DEFAULT_PROGRAM_ENV` and
 *   `inheritEnv`, plus `env`.
 *
 * @example Upper-casing with `tr`, tried without a socket
 * ```ts
 * import { execProtocol } from "@linesock/linesock/protocols";
 * import { runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const upper = execProtocol({ argv: ["tr", "a-z", "A-Z"] });
 * const result = await runLines(upper, "hello\n$(rm -rf /); `id`\n");
 * assert.deepEqual(result.lines, ["HELLO", "$(RM -RF /); `ID`"]);
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { DEFAULT_MAX_LINE_BYTES } from "../framing/line_framer.ts";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol } from "../server/protocol.ts";
import {
  DEFAULT_MAX_EXEC,
  DEFAULT_PROGRAM_ENV,
  ExecLimiter,
  ProgramStartError,
} from "../routes/program_runner.ts";
import {
  describeStartError,
  programMissing,
  type ProgramSpawnOptions,
  spawnProgram,
} from "../routes/_program_process.ts";
import { ExecSession } from "./_exec_session.ts";

const logger = getLogger(["linesock", "exec"]);

/** 1 hour: how long a connection's program may run by default. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60 * 60_000;

/** Options of {@linkcode execProtocol}. */
export interface ExecOptions {
  /** The program and its arguments, started as they are (no shell, no expansion). */
  readonly argv: readonly string[];
  /** Programs running at once, over all connections of this protocol. @default {16} */
  readonly maxExec?: number;
  /**
   * Kill a connection's program after this many milliseconds (`Infinity`: never).
   * @default {3600000}
   */
  readonly timeoutMs?: number;
  /**
   * While the connection waits on its program (after the client's half-close, or while the program
   * does not take its input), end it and kill the program after this many milliseconds with no
   * bytes either way (`ERR idle timeout …`, then the close); 0: never. Give it the server's
   * `idleTimeoutMs` (`protocolFromConfig` and `linesock serve --exec` do): the server's own idle
   * timeout does not see a connection that waits on its handler. @default {0}
   */
  readonly idleTimeoutMs?: number;
  /**
   * The longest line of the program's output, in bytes; a longer one kills it (`--max-line`, the
   * routes file's `exec.maxLine`). @default {1048576}
   */
  readonly maxLineBytes?: number;
  /** Environment variables set for the program (they win over inherited ones). */
  readonly env?: Readonly<Record<string, string>>;
  /** The program's working directory. @default {the server's} */
  readonly cwd?: string;
  /**
   * The names of the server's environment variables the program inherits (when set and readable)
   * **besides** `DEFAULT_PROGRAM_ENV` (`PATH`, `HOME`, …), which it always inherits: added to that
   * allow-list, as a routes file's `"inheritEnv"` and `linesock serve --exec-env` are.
   * @default {[]}
   */
  readonly inheritEnv?: readonly string[];
}

/**
 * Creates the protocol that runs a program for each connection (see the module documentation).
 * The program is looked up at once (in the `PATH` it will get), so that a missing one fails here,
 * before any client comes.
 * @param options The program and its limits.
 * @returns A protocol for `serve`.
 * @throws {ProgramStartError} The program (or the working directory) does not exist, or is not
 * executable.
 * @throws {TypeError} `argv` is empty.
 * @throws {RangeError} A limit is out of range.
 *
 * @example A missing program is named before the server starts
 * ```ts
 * import { execProtocol } from "@linesock/linesock/protocols";
 * import { ProgramStartError } from "@linesock/linesock/routes";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => execProtocol({ argv: ["no-such-program-here"] }),
 *   (error) => error instanceof ProgramStartError && /not found in PATH/.test(error.message),
 * );
 * ```
 */
export function execProtocol(options: ExecOptions): LineProtocol {
  const argv = Object.freeze([...options.argv]);
  if (argv.length === 0 || !argv[0]) throw new TypeError("argv must name a program");
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!(maxLineBytes >= 1)) {
    throw new RangeError(`maxLineBytes must be >= 1, got ${maxLineBytes}`);
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? 0;
  if (!(idleTimeoutMs >= 0)) {
    throw new RangeError(`idleTimeoutMs must be >= 0, got ${idleTimeoutMs}`);
  }
  const limiter = new ExecLimiter({ maxRunning: options.maxExec ?? DEFAULT_MAX_EXEC });
  const spawnOptions: ProgramSpawnOptions = {
    inheritEnv: [...new Set([...DEFAULT_PROGRAM_ENV, ...options.inheritEnv ?? []])],
    env: options.env,
    cwd: options.cwd,
  };
  const missing = options.cwd !== undefined && !isDirectory(options.cwd)
    ? `working directory ${options.cwd} not found`
    : programMissing(argv[0], spawnOptions);
  if (missing !== undefined) throw new ProgramStartError(argv, missing);
  const limits = { timeoutMs, maxLineBytes, idleTimeoutMs };
  const sessions = new WeakMap<ConnectionContext, ExecSession>();

  return {
    onConnect(context) {
      const slot = limiter.tryAcquire();
      if (slot === undefined) {
        const message = `too many programs running (limit ${limiter.maxRunning}), try again later`;
        logger.info("Refused connection {id} from {peer}: {reason}", {
          id: context.id,
          peer: context.peer,
          reason: message,
        });
        context.countError();
        context.close("too many programs running");
        return `ERR ${message}`;
      }
      let child: Deno.ChildProcess;
      try {
        child = spawnProgram(argv, spawnOptions);
      } catch (error) {
        slot.release();
        const message = new ProgramStartError(argv, describeStartError(error)).message;
        logger.error("Connection {id} from {peer}: {reason}", {
          id: context.id,
          peer: context.peer,
          reason: message,
        });
        context.countError();
        context.close(message);
        return `ERR ${message}`;
      }
      sessions.set(context, new ExecSession(argv, child, context, slot, limits));
    },
    onLine(line, context) {
      return sessions.get(context)?.write(line);
    },
    onEnd(context) {
      return sessions.get(context)?.endInput();
    },
    // A connection beyond maxExec is refused, not kept waiting: programsWaiting stays 0.
    metrics: () => ({ programsRunning: limiter.running, programsWaiting: limiter.waiting }),
  };
}

/** Whether `path` is a directory (`true` too when this process may not look). */
function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch (error) {
    return error instanceof Deno.errors.NotCapable;
  }
}

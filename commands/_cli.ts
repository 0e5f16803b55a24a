/**
 * Shared command-line plumbing: exit statuses, option parsers (durations, sizes, integers), the usage
 * error type, logging set-up, and turning errors into one clear line on stderr.
 *
 * @module
 */
import type { OptionSpec } from "./_cli/spec.ts";
import { LinesockError, type LinesockErrorCode } from "../lib/errors.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../lib/client/_defaults.ts";

/** Documented exit statuses of every subcommand. */
export const ExitCode = {
  /** Success. */
  ok: 0,
  /** The server answered with an error (`ERR …`, or a JSON status that is not 0). */
  remoteError: 1,
  /** Usage error: bad options or arguments. */
  usage: 2,
  /** Cannot connect (refused, no such host or socket, TLS certificate rejected). */
  cannotConnect: 3,
  /** Timed out. */
  timeout: 4,
  /** Connection lost before the expected replies. */
  connectionLost: 5,
  /** A bug in linesock (an unexpected exception). */
  internal: 70,
} as const;

/** A usage error (exit status 2): the parser's, also thrown after parsing. */
export { UsageError } from "./_cli/spec.ts";
import { UsageError } from "./_cli/spec.ts";

/** A value an option cannot take; the parser reports it as a usage error naming the option. */
export class InvalidArgumentError extends Error {}

/** An error that ends the process with a given status and message. */
export class ExitError extends Error {
  /** The exit status. */
  readonly exitCode: number;
  /**
   * @param exitCode The exit status.
   * @param message The one-line message for stderr (empty for none).
   */
  constructor(exitCode: number, message = "") {
    super(message);
    this.exitCode = exitCode;
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `500ms`, `2s`, `1.5m`, `1h`, or a plain number of seconds.
 * @returns Milliseconds.
 */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new InvalidArgumentError(`expected a duration such as 500ms, 2s, 1m or 0 for off`);
  }
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? "s"]!);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i;
const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses a byte size such as `4096`, `64k`, `64KiB`, `1MiB`, `1g` (units are powers of 1024).
 * @returns Bytes.
 */
export function parseByteSize(text: string): number {
  const match = SIZE.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`expected a size such as 4096, 64KiB or 1MiB`);
  const unit = (match[2] ?? "").toLowerCase().charAt(0);
  return Math.round(Number(match[1]) * SIZE_UNITS[unit === "b" ? "b" : unit]!);
}

/** Parses a whole number >= 0. */
export function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError("expected a whole number >= 0");
  return Number(text);
}

/** Parses a whole number >= 1. */
export function parsePositive(text: string): number {
  const value = parseCount(text);
  if (value < 1) throw new InvalidArgumentError("expected a whole number >= 1");
  return value;
}

/** A default duration as `--help` shows it: `10s`, `500ms`, or `none` for 0 (no limit). */
function showDuration(ms: number): string {
  if (ms === 0) return "none";
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * `--connect-timeout DURATION`, the same in every client subcommand: give up connecting after this
 * long (exit status 4); `0` means no limit. Default 10 s.
 * @returns The option's definition.
 */
export function connectTimeoutOption(): OptionSpec {
  return {
    long: "connect-timeout",
    value: "DURATION",
    help: "give up connecting after this long (0: no limit)",
    parse: parseDuration,
    default: DEFAULT_CONNECT_TIMEOUT_MS,
    defaultText: showDuration(DEFAULT_CONNECT_TIMEOUT_MS),
  };
}

/**
 * `--timeout DURATION`, one meaning in every client subcommand: the longest wait for a reply that is
 * awaited, counted from the line sent or from the previous reply; when it passes, exit status 4.
 * `0` means no limit.
 * @param awaited When the subcommand awaits replies, for the help text.
 * @param defaultMs The default.
 * @returns The option's definition.
 */
export function replyTimeoutOption(awaited: string, defaultMs: number): OptionSpec {
  return {
    long: "timeout",
    value: "DURATION",
    help: `longest wait for each awaited reply, counted from the line or the previous reply ` +
      `(${awaited}); exit 4 after it (0: no limit)`,
    parse: parseDuration,
    default: defaultMs,
    defaultText: showDuration(defaultMs),
  };
}

/**
 * Maps an error to its exit status and writes one line about it to stderr.
 * @returns The exit status.
 */
export function reportFailure(error: unknown): number {
  const { code, message } = classifyFailure(error);
  if (message) console.error(`linesock: ${message}`);
  return code;
}

/** The exit status of each error code; the compiler insists that every code has one. */
const EXIT_CODE_OF: Record<LinesockErrorCode, number> = {
  // A reply the client cannot accept is the server's fault, like an error reply.
  LINE_TOO_LONG: ExitCode.remoteError,
  INVALID_ENCODING: ExitCode.remoteError,
  CANNOT_CONNECT: ExitCode.cannotConnect,
  TIMEOUT: ExitCode.timeout,
  REMOTE_ERROR: ExitCode.remoteError,
  CONNECTION_LOST: ExitCode.connectionLost,
  PROGRAM_START_FAILED: ExitCode.remoteError,
  PROGRAM_TIMEOUT: ExitCode.remoteError,
  PROGRAM_FAILED: ExitCode.remoteError,
  PROGRAM_OUTPUT_LIMIT: ExitCode.remoteError,
  PROGRAM_INVALID_OUTPUT: ExitCode.remoteError,
  EXEC_QUEUE_FULL: ExitCode.remoteError,
  INVALID_ROUTES: ExitCode.usage,
  INVALID_PROXY_HEADER: ExitCode.remoteError,
  // serve: cannot listen.
  ADDRESS_IN_USE: ExitCode.remoteError,
  CANNOT_LISTEN: ExitCode.remoteError,
};

/** The exit status and the one-line message of a failure. */
function classifyFailure(error: unknown): { code: number; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ExitError) return { code: error.exitCode, message };
  if (error instanceof UsageError) return { code: ExitCode.usage, message };
  if (error instanceof LinesockError) {
    return { code: EXIT_CODE_OF[error.code], message };
  }
  if (error instanceof Deno.errors.AddrInUse) {
    return { code: ExitCode.remoteError, message: `Cannot listen: ${message}` };
  }
  // An operating-system refusal (a file, a permission) is the environment's, said as it is.
  if (Object.values(Deno.errors).some((kind) => error instanceof kind)) {
    return { code: ExitCode.remoteError, message };
  }
  // Anything else is a bug in linesock: say so, with what it was.
  const name = error instanceof Error ? error.name : typeof error;
  return { code: ExitCode.internal, message: `internal error (${name}): ${message}` };
}

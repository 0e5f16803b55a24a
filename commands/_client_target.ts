/**
 * The server-target options shared by the client subcommands (`send`, `repl`, `test`, `echo-test`,
 * `bench`): `--host`, `-p/--port`, `-U/--unix`, or a URL as the first argument, and turning them
 * into where to connect ({@linkcode takeTarget}, then {@linkcode targetFromFlags}). The words and
 * URLs themselves are read by `commands/_cli/address_args.ts`. The options have no parser defaults,
 * so that `--unix` given together with `--host` or `--port` is caught as a usage error.
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT } from "../lib/address.ts";
import { UsageError } from "./_cli.ts";
import type { AliasSpec, ArgumentSpec, OptionSpec } from "./_cli/spec.ts";
import { parsePortNumber, readTargetArgs } from "./_cli/address_args.ts";

/** The parsed target flags of a client subcommand. */
export interface TargetFlags {
  host?: string;
  port?: number;
  unix?: string;
}

/** Where to connect: a TCP host and port, or a Unix socket path. */
export type ConnectTarget = { hostname: string; port: number } | { path: string };

/** `--host`, `-p/--port` and `-U/--unix`, for a client subcommand. */
export function targetOptions(unixHelp = "connect to a Unix socket instead of TCP"): OptionSpec[] {
  return [
    {
      long: "host",
      value: "HOST[:PORT]",
      help: `server host, HOST:PORT, [IPv6]:PORT or a URL (default: ${DEFAULT_HOST})`,
    },
    {
      long: "port",
      short: "p",
      value: "PORT",
      help: `server port (default: ${DEFAULT_PORT})`,
      parse: (text) => parsePortNumber(text),
    },
    { long: "unix", short: "U", value: "PATH", help: unixHelp, complete: "file" },
  ];
}

/** Old spellings of the target options. */
export const TARGET_ALIASES: readonly AliasSpec[] = [{ name: "-u", of: "unix" }];

/** The target arguments every client subcommand takes first. */
export const TARGET_ARGUMENT: ArgumentSpec = {
  name: "TARGET",
  help: "tcp://HOST:PORT, tls://HOST:PORT or unix:///PATH (or HOST PORT); optional",
};

/**
 * The second argument of a client subcommand that takes no lines (`repl`, `echo-test`): the port of
 * `HOST PORT`.
 */
export const TARGET_PORT_ARGUMENT: ArgumentSpec = {
  name: "PORT",
  help: "with TARGET a bare HOST: its port (HOST PORT, as nc takes them)",
};

/**
 * Reads the target from the first positional argument (`tcp://…`, `tls://…`, `unix:///…`, or
 * `HOST PORT`) or the options, and writes it back into the flags as `host`/`port`/`unix` (and
 * `tls` for `tls://`), so that {@linkcode targetFromFlags} and {@linkcode hasTarget} see one form.
 * @param flags The parsed flags (changed in place).
 * @param args The positional arguments.
 * @returns The positional arguments after the target.
 * @throws {UsageError} On two targets, a bad address, or `HOST PORT` that cannot be one.
 */
export function takeTarget(
  flags: TargetFlags & { tls?: boolean },
  args: readonly string[],
): string[] {
  const resolved = readTargetArgs(flags, args, { hostname: DEFAULT_HOST, port: DEFAULT_PORT });
  if (!resolved.explicit) return [...resolved.rest];
  const target = resolved.target;
  delete flags.host;
  delete flags.port;
  delete flags.unix;
  if (target.kind === "unix") {
    flags.unix = target.path;
  } else {
    flags.host = target.hostname;
    flags.port = target.port;
    if (target.tls) flags.tls = true;
  }
  return [...resolved.rest];
}

/**
 * Resolves the target flags.
 * @param flags The parsed flags.
 * @returns The target, with the defaults filled in.
 * @throws {UsageError} When `--unix` is combined with `--host` or `--port`.
 */
export function targetFromFlags(flags: TargetFlags): ConnectTarget {
  if (flags.unix !== undefined) {
    if (flags.host !== undefined || flags.port !== undefined) {
      throw new UsageError("use either --unix or --host/--port, not both");
    }
    return { path: flags.unix };
  }
  return {
    hostname: (flags.host ?? DEFAULT_HOST).replace(/^\[(.*)\]$/, "$1"),
    port: flags.port ?? DEFAULT_PORT,
  };
}

/**
 * Whether any target flag was given.
 * @param flags The parsed flags.
 * @returns `true` when `--host`, `--port` or `--unix` was given.
 */
export function hasTarget(flags: TargetFlags): boolean {
  return flags.host !== undefined || flags.port !== undefined || flags.unix !== undefined;
}

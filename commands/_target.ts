/**
 * The server-target options shared by `send`, `repl` and `echo-test` (`--host`, `-p/--port`,
 * `-u/--unix`), and turning them into an address. The options have no parser defaults, so that
 * `--unix` given together with `--host` or `--port` is caught as a usage error.
 *
 * @module
 */
import type { Command } from "commander";
import { DEFAULT_HOST, DEFAULT_PORT } from "../lib/address.ts";
import { parsePort, UsageError } from "./_cli.ts";

/** The parsed target flags of a client subcommand. */
export interface TargetFlags {
  host?: string;
  port?: number;
  unix?: string;
}

/** Where to connect: a TCP host and port, or a Unix socket path. */
export type Target = { hostname: string; port: number } | { path: string };

/**
 * Adds `--host`, `-p/--port` and `-u/--unix` to a client subcommand.
 * @param command The subcommand.
 * @param unixHelp The help text of `--unix`.
 * @returns The same command.
 */
export function addTargetOptions(
  command: Command,
  unixHelp = "connect to a Unix socket instead of TCP",
): Command {
  return command
    .option("--host <host>", `server host (default: ${DEFAULT_HOST}; IPv6 literals work)`)
    .option("-p, --port <port>", `server port (default: ${DEFAULT_PORT})`, parsePort)
    .option("-u, --unix <path>", unixHelp);
}

/**
 * Resolves the target flags.
 * @param flags The parsed flags.
 * @returns The target, with the defaults filled in.
 * @throws {UsageError} When `--unix` is combined with `--host` or `--port`.
 */
export function resolveTarget(flags: TargetFlags): Target {
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

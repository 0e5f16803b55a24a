/**
 * One subcommand from its arguments to its exit status: parse them from its definition, print
 * `--help`, warn about old spellings, run it, and map a failure to the documented exit status
 * (usage errors: exit 2 with one `linesock:` line).
 *
 * Every subcommand module re-exports this, and main.ts calls the one of the module it loaded: in
 * the bundled build (`deno task build`) each subcommand is its own bundle with its own copy of the
 * error classes, so the `instanceof` checks here must run in the subcommand's bundle, not main's.
 *
 * @example
 * ```ts
 * import { runSubcommand } from "./run_subcommand.ts";
 * import { UsageError } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { name: "hello", summary: "says hello", args: [], options: [], examples: [] };
 * assert.equal(await runSubcommand({ spec, run: () => Promise.resolve(0) }, []), 0);
 * const refusing = { spec, run: () => Promise.reject(new UsageError("no")) };
 * assert.equal(await runSubcommand(refusing, []), 2); // and prints "linesock: no"
 * ```
 *
 * @module
 */
import { ExitError, reportFailure } from "../_cli.ts";
import { usage } from "./usage.ts";
import {
  type CommandSpec,
  formatHelp,
  parse,
  type Parsed,
  UnknownOptionError,
  UsageError,
} from "./spec.ts";

/** What runs a subcommand: its definition and its body. */
export interface Subcommand {
  /** The definition (options, arguments, help). */
  readonly spec: CommandSpec;
  /** Runs it; returns the exit status. */
  run(parsed: Parsed): Promise<number | void>;
}

/**
 * Runs `subcommand` with its arguments.
 * @param subcommand The definition and body.
 * @param args The arguments after the subcommand's name.
 * @returns The exit status.
 */
export async function runSubcommand(
  subcommand: Subcommand,
  args: readonly string[],
): Promise<number> {
  try {
    const parsed = parse(subcommand.spec, args);
    if (parsed.help) {
      console.log(formatHelp(subcommand.spec));
      return 0;
    }
    for (const warning of parsed.warnings) console.error(`linesock: warning: ${warning}`);
    return (await subcommand.run(parsed)) ?? 0;
  } catch (error) {
    if (error instanceof UnknownOptionError) return usage(await error.withHint());
    if (error instanceof UsageError) return usage(error.message);
    if (error instanceof ExitError && error.message === "") return error.exitCode;
    return reportFailure(error);
  }
}

/**
 * `linesock repl` (not available yet).
 *
 * @module
 */
import { Command } from "commander";
import { ExitError } from "./_cli.ts";

/** Builds the `repl` subcommand. */
export function replCommand(): Command {
  return new Command("repl")
    .description("repl (not available yet)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      console.error("linesock: 'repl' is not available yet");
      throw new ExitError(1);
    });
}

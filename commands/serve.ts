/**
 * `linesock serve` (not available yet).
 *
 * @module
 */
import { Command } from "commander";
import { ExitError } from "./_cli.ts";

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("serve (not available yet)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      console.error("linesock: 'serve' is not available yet");
      throw new ExitError(1);
    });
}

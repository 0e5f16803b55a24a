/**
 * `linesock echo-test` (not available yet).
 *
 * @module
 */
import { Command } from "commander";
import { ExitError } from "./_cli.ts";

/** Builds the `echo-test` subcommand. */
export function echoTestCommand(): Command {
  return new Command("echo-test")
    .description("echo-test (not available yet)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      console.error("linesock: 'echo-test' is not available yet");
      throw new ExitError(1);
    });
}

/**
 * `linesock send` (not available yet).
 *
 * @module
 */
import { Command } from "commander";
import { ExitError } from "./_cli.ts";

/** Builds the `send` subcommand. */
export function sendCommand(): Command {
  return new Command("send")
    .description("send (not available yet)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      console.error("linesock: 'send' is not available yet");
      throw new ExitError(1);
    });
}

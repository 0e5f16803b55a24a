/**
 * The `linesock` command line: wires the subcommands, maps usage errors to exit status 2 and other
 * failures to their documented statuses.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import denoJson from "./deno.json" with { type: "json" };
import { ExitError, reportFailure } from "./commands/_cli.ts";
import { echoTestCommand } from "./commands/echo_test.ts";
import { replCommand } from "./commands/repl.ts";
import { sendCommand } from "./commands/send.ts";
import { serveCommand } from "./commands/serve.ts";

/** Builds the `linesock` program. */
export function buildProgram(): Command {
  const program = new Command("linesock")
    .description(
      "Newline-delimited messaging over TCP and Unix sockets: a line server, a client, an " +
        "interactive client and an echo-server tester.",
    )
    .version(denoJson.version, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .addHelpText(
      "after",
      `
Examples:
  linesock serve                      line server on tcp://127.0.0.1:1991 (text protocol)
  linesock send PING                  send one line, print the reply
  linesock repl                       interactive client
  linesock echo-test                  test an echo server (an embedded one by default)

Exit statuses: 0 ok, 1 the server answered with an error, 2 usage, 3 cannot connect,
4 timed out, 5 connection lost before the expected replies.`,
    );
  for (const command of [serveCommand(), sendCommand(), replCommand(), echoTestCommand()]) {
    command.exitOverride().showHelpAfterError("(run with --help for usage)");
    program.addCommand(command);
  }
  return program;
}

/**
 * Runs the CLI.
 * @param args The arguments after the program name.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with code 0; every other parse failure is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof ExitError && error.message === "") return error.exitCode;
    return reportFailure(error);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

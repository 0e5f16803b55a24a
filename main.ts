/**
 * The `linesock` command line: wires the subcommands, maps usage errors to exit status 2 and other
 * failures to their documented statuses.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import denoJson from "./deno.json" with { type: "json" };
import { ExitError, reportFailure } from "./commands/_cli.ts";

/**
 * The subcommands, each loaded only when needed: a run of one subcommand does not load the others'
 * modules (start-up time of `linesock send` matters in scripts).
 */
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  serve: () => import("./commands/serve.ts").then((module) => module.serveCommand()),
  send: () => import("./commands/send.ts").then((module) => module.sendCommand()),
  repl: () => import("./commands/repl.ts").then((module) => module.replCommand()),
  "echo-test": () => import("./commands/echo_test.ts").then((module) => module.echoTestCommand()),
};

/** Usage errors start with `linesock:` like every other message, not commander's `error:`. */
const USAGE_OUTPUT = {
  outputError: (text: string, write: (text: string) => void) =>
    write(text.replace(/^error: /, "linesock: ")),
};

/**
 * Builds the `linesock` program.
 * @param only Load just this subcommand (when it is the one being run); otherwise all of them.
 * @returns The program.
 */
export async function buildProgram(only?: string): Promise<Command> {
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
4 timed out, 5 connection lost before the expected replies, 70 internal error.`,
    )
    .configureOutput(USAGE_OUTPUT);
  const names = only !== undefined && Object.hasOwn(SUBCOMMANDS, only)
    ? [only]
    : Object.keys(SUBCOMMANDS);
  const commands = await Promise.all(names.map((name) => SUBCOMMANDS[name]!()));
  for (const command of commands) {
    command.exitOverride().showHelpAfterError("(run with --help for usage)").configureOutput(
      USAGE_OUTPUT,
    );
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
    const program = await buildProgram(args[0]);
    await program.parseAsync(args, { from: "user" });
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

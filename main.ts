/**
 * The `linesock` command line: finds the subcommand, loads only its module (start-up time of
 * `linesock send` matters in scripts), parses its arguments from its definition, and maps failures
 * to the documented exit statuses: usage errors exit 2 with one `linesock:` line.
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { ExitError, reportFailure } from "./commands/_cli.ts";
import {
  type CommandSpec,
  formatHelp,
  parse,
  type Parsed,
  UnknownOptionError,
  UsageError,
} from "./commands/_cli/spec.ts";

/** A subcommand's module: its definition and what runs it. */
export interface SubcommandModule {
  /** The definition (options, arguments, help). */
  readonly spec: CommandSpec;
  /** Runs it; returns the exit status. */
  run(parsed: Parsed): Promise<number | void>;
}

/** Every subcommand, each loaded only when it runs. */
export const SUBCOMMANDS: Record<string, () => Promise<SubcommandModule>> = {
  serve: () => load("serve.ts"),
  send: () => load("send.ts"),
  repl: () => load("repl.ts"),
  test: () => load("test.ts"),
  "echo-test": () => load("echo_test.ts"),
  bench: () => load("bench.ts"),
  completions: () => load("completions.ts"),
};

/**
 * Loads `commands/<file>`. The specifier is computed on purpose: Deno loads every statically written
 * `import("…")` target (and its npm packages) at start-up, which cost `linesock send` each other
 * subcommand's modules. `deno task compile` names each file with `--include` instead
 * (tests/compile_includes_test.ts keeps the lists in step).
 */
function load(file: string): Promise<SubcommandModule> {
  return import(new URL(`./commands/${file}`, import.meta.url).href);
}

/** The exit statuses every subcommand uses. */
export const EXIT_STATUSES: readonly (readonly [number, string])[] = [
  [0, "ok"],
  [1, "the server answered with an error (ERR …, a JSON status that is not 0), or a test failed"],
  [2, "usage error: bad options or arguments, or a malformed file"],
  [3, "cannot connect (refused, no such host or socket, TLS certificate not accepted)"],
  [4, "timed out"],
  [5, "connection lost before the expected replies"],
  [70, "internal error (a bug in linesock)"],
  [130, "interrupted (Ctrl-C in a client; a second Ctrl-C in serve)"],
];

/** Every subcommand's definition (for help, completions and the man page). */
export async function allSpecs(): Promise<CommandSpec[]> {
  const modules = await Promise.all(Object.values(SUBCOMMANDS).map((load) => load()));
  return modules.map((module) => module.spec);
}

async function programHelp(): Promise<string> {
  const specs = await allSpecs();
  const width = Math.max(...specs.map((spec) => spec.name.length)) + 2;
  return [
    "Usage: linesock COMMAND [options] [arguments]",
    "",
    "Newline-delimited messaging over TCP, TLS and Unix sockets: a line server, a client, an",
    "interactive client, scripted conversation tests, an echo-server tester and a load tester.",
    "",
    "Commands:",
    ...specs.map((spec) => `  ${spec.name.padEnd(width)}${spec.summary}`),
    `  ${"help".padEnd(width)}show help for a command`,
    "",
    "Options:",
    "  -h, --help     show this help",
    "  -V, --version  print the version and exit",
    "",
    "Examples:",
    "  linesock serve                      line server on tcp://127.0.0.1:1991 (text protocol)",
    "  linesock send PING                  send one line, print the reply",
    "  linesock send tcp://host:7000 PING  the same against another server",
    "  linesock repl                       interactive client",
    "  linesock test t/*.conv              scripted conversations against a server",
    "  linesock bench -m PING --expect PONG  throughput and latency, every reply verified",
    "",
    "Exit statuses: " + EXIT_STATUSES.map(([code, what]) => `${code} ${what.split(" (")[0]}`)
      .join(", ") +
    ".",
    "",
  ].join("\n");
}

function usage(message: string): number {
  console.error(`linesock: ${message}\n(run with --help for usage)`);
  return 2;
}

/**
 * Runs the CLI.
 * @param args The arguments after the program name.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined || name === "-h" || name === "--help") {
      console.log(await programHelp());
      return name === undefined ? 2 : 0;
    }
    if (name === "-V" || name === "--version") {
      console.log(denoJson.version);
      return 0;
    }
    if (name === "help") {
      if (rest[0] === undefined) {
        console.log(await programHelp());
        return 0;
      }
      const load = SUBCOMMANDS[rest[0]];
      if (load === undefined) return usage(`unknown command ${JSON.stringify(rest[0])}`);
      console.log(formatHelp((await load()).spec));
      return 0;
    }
    const load = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
    if (load === undefined) {
      return usage(
        `unknown command ${JSON.stringify(name)} (commands: ${
          Object.keys(SUBCOMMANDS).join(", ")
        })`,
      );
    }
    const module = await load();
    const parsed = parse(module.spec, rest);
    if (parsed.help) {
      console.log(formatHelp(module.spec));
      return 0;
    }
    for (const warning of parsed.warnings) console.error(`linesock: warning: ${warning}`);
    return (await module.run(parsed)) ?? 0;
  } catch (error) {
    if (error instanceof UnknownOptionError) return usage(await error.withHint());
    if (error instanceof UsageError) return usage(error.message);
    if (error instanceof ExitError && error.message === "") return error.exitCode;
    return reportFailure(error);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

/**
 * The `linesock` command line: finds the subcommand and loads only its module (start-up time of
 * `linesock send` matters in scripts), whose runner parses its arguments from its definition and
 * maps failures to the documented exit statuses (commands/_cli/run_subcommand.ts): usage errors
 * exit 2 with one `linesock:` line. main.ts itself imports no parser and no error class.
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import type { Subcommand } from "./commands/_cli/run_subcommand.ts";
import type { CommandSpec } from "./commands/_cli/spec.ts";
import { usage } from "./commands/_cli/usage.ts";

/**
 * A subcommand's module: its definition, what runs it, and the runner that maps its arguments to
 * its exit status (commands/_cli/run_subcommand.ts, re-exported by every subcommand module so that
 * it runs with the module's own error classes in the bundled build).
 */
export interface SubcommandModule extends Subcommand {
  /** Parses, runs and maps failures to exit statuses. */
  runSubcommand(subcommand: Subcommand, args: readonly string[]): Promise<number>;
}

/** Every subcommand, each loaded only when it runs. */
export const SUBCOMMANDS: Record<string, () => Promise<SubcommandModule>> = {
  serve: () => load("serve"),
  send: () => load("send"),
  repl: () => load("repl"),
  test: () => load("test"),
  "echo-test": () => load("echo_test"),
  bench: () => load("bench"),
  completions: () => load("completions"),
};

/**
 * From the sources, `commands/send.ts`; in the bundled build (`deno task build`, which
 * `deno task install` installs), `send.js` beside `main.js`: each subcommand is one file there.
 */
const BUNDLED = import.meta.url.endsWith(".js");

/**
 * Loads `commands/<name>`. The specifier is computed on purpose: Deno loads every statically written
 * `import("…")` target (and its npm packages) at start-up, which cost `linesock send` each other
 * subcommand's modules. `deno task compile` and `deno task build` name each file instead
 * (tests/compile_includes_test.ts keeps the lists in step).
 */
function load(name: string): Promise<SubcommandModule> {
  const path = BUNDLED ? `./${name}.js` : `./commands/${name}.ts`;
  return import(new URL(path, import.meta.url).href);
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
      const module = await load();
      return await module.runSubcommand(module, ["--help"]);
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
    return await module.runSubcommand(module, rest);
  } catch (error) {
    // Only a failure to load a subcommand gets here (its runner maps everything else).
    const { reportFailure } = await import("./commands/_cli.ts");
    return reportFailure(error);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

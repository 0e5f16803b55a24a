/**
 * `deno task mutation [area…]`: mutation testing with StrykerJS (its `command` test runner drives
 * `deno test` on the tests of the area). For each area it writes a Stryker configuration (the base in
 * stryker.config.json, plus the files to mutate and the test command) under `.stryker-tmp/` and runs
 * `npx -y -p @stryker-mutator/core@VERSION stryker run` on it: no package.json in the repository.
 * Reports go to `.stryker-tmp/reports/AREA.{json,html}`; the figures and the verdict on every
 * surviving mutant are kept in docs/mutation.md. Not part of CI: a run takes minutes to hours.
 *
 * ```sh
 * deno task mutation            # lists the areas
 * deno task mutation framing    # one area (concurrency 1 unless --concurrency N)
 * deno task mutation framing --concurrency 2
 * deno task mutation routes --concurrency 2 --timeout-ms 15000   # a busy machine
 * deno task mutation framing --mutate lib/framing/_read_buffer.ts   # only that file
 * ```
 *
 * @module
 */
import base from "../stryker.config.json" with { type: "json" };

/** StrykerJS 9 is the last line that runs on Node 20 (10.x needs Node 22). */
export const STRYKER_VERSION = "9.6.1";

/** The `deno test` flags every area uses: no type check (Stryker's switches are untyped), stop at
 * the first failure (a killed mutant needs no more). */
const DENO_TEST = "deno test --no-check --unstable-net --allow-all --fail-fast --parallel";

/**
 * The tests that run the CLI as a process (the deno.json tasks, `--allow-env=LIST`) need the
 * mutated code there to read Stryker's `__STRYKER_ACTIVE_MUTANT__`: the sandbox's deno.json (a
 * copy) gets it added to every task's list before the first test run.
 */
const SANDBOX_ENV = "grep -q __STRYKER_ACTIVE_MUTANT__ deno.json || " +
  `sed -i "s/--allow-env=/--allow-env=__STRYKER_ACTIVE_MUTANT__,/g" deno.json;`;

/** An area: the files Stryker mutates and the tests (and doc examples) that judge each mutant. */
export interface Area {
  /** What it is. */
  readonly description: string;
  /** Globs of the files to mutate. */
  readonly mutate: readonly string[];
  /** Arguments given to `deno test`: tests, `--doc` sources, `--ignore=` paths. */
  readonly tests: readonly string[];
}

/** The core modules of issue #20. */
export const AREAS: Readonly<Record<string, Area>> = {
  framing: {
    description: "lib/framing: LineFramer, LineSplitter, decodeLine, LineWriter, ConnectionReader",
    mutate: ["lib/framing/**/*.ts", "!lib/framing/mod.ts"],
    tests: ["--doc", "lib/framing/", "tests/lib/framing/"],
  },
  session: {
    description: "lib/server: the session, its phases and replies, admission (line_server)",
    mutate: [
      "lib/server/session*.ts",
      "lib/server/line_server.ts",
      "lib/server/connection_context.ts",
    ],
    tests: [
      "tests/lib/server/",
      "tests/reliability/limits_test.ts",
      "tests/reliability/slow_clients_test.ts",
      // The accept loop's failures and the per-address limit at accept (line_server.ts), and what a
      // protocol reports into the server's metrics.
      "tests/reliability/accept_errors_test.ts",
      "tests/reliability/attacks_test.ts",
      "tests/lib/metrics/protocol_metrics_test.ts",
    ],
  },
  protocols: {
    description: "lib/protocols: text, json, echo",
    mutate: ["lib/protocols/text.ts", "lib/protocols/json.ts", "lib/protocols/echo.ts"],
    // The chat routes test starts the CLI as a process without --allow-env, where Stryker's
    // instrumented code cannot read its active mutant; chat does not use text, json or echo.
    tests: [
      "--doc",
      "lib/protocols/",
      "tests/lib/protocols/",
      "--ignore=tests/lib/protocols/chat_routes_file_test.ts",
    ],
  },
  routes: {
    description: "lib/routes: routes files, templates, the program runner",
    mutate: ["lib/routes/**/*.ts", "!lib/routes/mod.ts"],
    tests: ["--doc", "lib/routes/", "tests/lib/routes/"],
  },
  client: {
    description: "lib/client: the conversation engine of send and repl, LineConnection",
    mutate: ["lib/client/conversation.ts", "lib/client/client.ts"],
    tests: ["--doc", "lib/client/", "tests/lib/client/"],
  },
};

function usage(): never {
  console.error(
    "Usage: deno task mutation AREA… [--concurrency N] [--timeout-ms N] [--mutate GLOB]…\n\nAreas:",
  );
  for (const [name, area] of Object.entries(AREAS)) {
    console.error(`  ${name.padEnd(10)} ${area.description}`);
  }
  Deno.exit(2);
}

const args = [...Deno.args];

/** Takes `flag N` (a positive integer) out of `args`; `fallback` when it is not there. */
function positiveOption(flag: string, fallback: number): number {
  const at = args.indexOf(flag);
  if (at === -1) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) usage();
  args.splice(at, 2);
  return value;
}

const concurrency = positiveOption("--concurrency", 1);
/**
 * `--timeout-ms N`: Stryker's fixed allowance above a run's usual time before a mutant counts as
 * timed out (killed). The base 3000 suits a quiet machine; on a busy one a normal run can pass it
 * and a surviving mutant would count as killed, so raise it there.
 */
const timeoutMS = positiveOption("--timeout-ms", base.timeoutMS);
/** `--mutate GLOB` (repeatable): only these files of the area (to re-check survivors quickly). */
const only: string[] = [];
for (let i = args.indexOf("--mutate"); i !== -1; i = args.indexOf("--mutate")) {
  if (args[i + 1] === undefined) usage();
  only.push(args[i + 1]!);
  args.splice(i, 2);
}
if (args.length === 0 || args.some((name) => !Object.hasOwn(AREAS, name))) usage();

await Deno.mkdir(".stryker-tmp/reports", { recursive: true });
let failed = false;
for (const name of args) {
  const area = AREAS[name]!;
  const config = {
    ...base,
    concurrency,
    timeoutMS,
    mutate: only.length > 0 ? only : area.mutate,
    // slow_clients_test imports bench/_reliability: the rest of bench/ stays out of the sandbox.
    ignorePatterns: [
      ...base.ignorePatterns.filter((pattern) => pattern !== "bench"),
      "bench/*",
      "!bench/_reliability",
    ],
    commandRunner: { command: `${SANDBOX_ENV} ${DENO_TEST} ${area.tests.join(" ")}` },
    jsonReporter: { fileName: `.stryker-tmp/reports/${name}.json` },
    htmlReporter: { fileName: `.stryker-tmp/reports/${name}.html` },
  };
  const file = `.stryker-tmp/${name}.config.json`;
  await Deno.writeTextFile(file, JSON.stringify(config, null, 2));
  console.error(`mutation: ${name}: ${area.description}`);
  const { code } = await new Deno.Command("npx", {
    args: ["-y", "-p", `@stryker-mutator/core@${STRYKER_VERSION}`, "stryker", "run", file],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn().status;
  if (code !== 0) failed = true;
}
Deno.exit(failed ? 1 : 0);

/**
 * `deno task test`: runs the suite with `deno test`, without colour when its output is not a
 * terminal (Deno's test reporter colours piped output otherwise) or when `NO_COLOR` is set, and
 * exits with its status. Extra arguments go to `deno test` (a file or `--filter NAME`).
 *
 * @module
 */
const ARGS = ["test", "--unstable-net", "--allow-all", "--doc", "--parallel"];
const DEFAULT_PATHS = ["lib/", "commands/", "tests/"];

const extra = Deno.args;
const paths = extra.some((arg) => !arg.startsWith("-")) ? [] : DEFAULT_PATHS;
const plain = !Deno.stdout.isTerminal() || (Deno.env.get("NO_COLOR") ?? "") !== "";
const { code } = await new Deno.Command(Deno.execPath(), {
  args: [...ARGS, ...extra, ...paths],
  env: plain ? { NO_COLOR: "1" } : {},
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn().status;
Deno.exit(code);

/**
 * `main.ts` with an injected internal failure, for the exit-status tests: every subcommand's `run`
 * throws a `TypeError`, as a bug in linesock would. Run it with a task's permission flags in place of
 * `main.ts` (`internalFailureArgs` in cli.ts); the real runner then maps the failure to exit 70 and
 * one `linesock: internal error (TypeError): …` line. Nothing a client sends can reach this: it is a
 * separate entry point that only tests run.
 *
 * @module
 */
import { main, SUBCOMMANDS } from "../../main.ts";

for (const [name, load] of Object.entries(SUBCOMMANDS)) {
  SUBCOMMANDS[name] = async () => {
    const module = await load();
    return {
      spec: module.spec,
      run: () => Promise.reject(new TypeError(`injected internal failure in ${name}`)),
      runSubcommand: module.runSubcommand,
    };
  };
}

Deno.exit(await main(Deno.args));

/**
 * main.ts loads each subcommand with a computed `import()` (so that Deno does not load every
 * subcommand's modules at start-up), which `deno compile` cannot follow: the compile task must name
 * each subcommand's module with `--include` (and `deno task build` bundles the same list). This test
 * keeps the two lists in step, and the V8 flags of the three ways to run a server.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

Deno.test("deno task compile includes every subcommand module main.ts loads", async () => {
  const main = await Deno.readTextFile(new URL("../main.ts", import.meta.url));
  const loaded = [...main.matchAll(/load\("(\w+)"\)/g)].map((match) => `commands/${match[1]}.ts`);
  assert.ok(loaded.length >= 6, `main.ts's subcommands were not found: ${loaded}`);
  const task = denoJson.tasks.compile;
  const command = typeof task === "string" ? task : task.command;
  const included = [...command.matchAll(/--include (\S+)/g)].map((match) => match[1]);
  for (const module of loaded) {
    assert.ok(included.includes(module), `deno task compile lacks --include ${module}`);
  }
});

Deno.test("the serve, linesock and compile tasks run the server with the same V8 flags", () => {
  const flagsOf = (name: keyof typeof denoJson.tasks) => {
    const task = denoJson.tasks[name];
    const command = typeof task === "string" ? task : task.command;
    return command.split(/\s+/).filter((word) => word.startsWith("--v8-flags="));
  };
  // A capped young generation: 10,000 idle connections take ~125 MiB instead of ~160
  // (docs/benchmarks.md, "Where the idle target stands").
  assert.deepEqual(flagsOf("serve"), ["--v8-flags=--max-semi-space-size=4"]);
  assert.deepEqual(flagsOf("linesock"), flagsOf("serve"));
  assert.deepEqual(flagsOf("compile"), flagsOf("serve"));
});

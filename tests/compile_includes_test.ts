/**
 * main.ts loads each subcommand with a computed `import()` (so that Deno does not load every
 * subcommand's modules at start-up), which `deno compile` cannot follow: the compile task must name
 * each subcommand's module with `--include` (and `deno task build` bundles the same list). This test
 * keeps the two lists in step.
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

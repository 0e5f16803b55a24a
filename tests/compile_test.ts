/**
 * Builds the single executable with the `compile` task's exact flags and runs `linesock --version`
 * with it. `deno compile` downloads Deno's runtime base once; where that download is impossible (an
 * offline machine), the test is reported as ignored, with the reason in its name, never as passed.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

const task = denoJson.tasks.compile.command.trim().split(/\s+/);
assert.equal(task[0], "deno");
const outputDir = await Deno.makeTempDir({ prefix: "linesock-compile-" });
const binary = `${outputDir}/linesock`;
const args = task.slice(1).map((word, i, all) => all[i - 1] === "--output" ? binary : word);
const build = await new Deno.Command(Deno.execPath(), {
  args,
  cwd: new URL("..", import.meta.url),
  stdout: "piped",
  stderr: "piped",
  env: { NO_COLOR: "1" },
}).output();
const buildLog = new TextDecoder().decode(build.stderr);
const downloadImpossible = !build.success &&
  /Setting up base binary|error sending request|dns error|denort/i.test(buildLog);
const reason = downloadImpossible
  ? ` (ignored: deno compile cannot download its runtime base here: ${
    /dl\.deno\.land[^\s):]*/.exec(buildLog)?.[0] ?? "download failed"
  })`
  : "";

Deno.test({
  name: `compiled binary: linesock --version${reason}`,
  ignore: downloadImpossible,
  async fn() {
    assert.ok(build.success, `deno compile failed:\n${buildLog}`);
    const run = await new Deno.Command(binary, { args: ["--version"], stdout: "piped" }).output();
    assert.equal(run.code, 0);
    assert.equal(new TextDecoder().decode(run.stdout).trim(), denoJson.version);
  },
});

Deno.test("compile task: bakes in the same narrow permissions as the tasks (no -A)", () => {
  assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
  assert.ok(args.includes("--allow-net"));
});

globalThis.addEventListener("unload", () => Deno.removeSync(outputDir, { recursive: true }));

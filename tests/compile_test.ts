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
const buildLog = new TextDecoder().decode(build.stderr); // NO_COLOR: no escapes
const downloadImpossible = !build.success && runtimeDownloadFailed(buildLog);
const reason = downloadImpossible
  ? ` (ignored: deno compile cannot download its runtime base here: ${
    /https:\/\/dl\.deno\.land\/\S*denort\S*\.zip/.exec(buildLog)?.[0]
  })`
  : "";

/**
 * Whether a failed `deno compile` failed because downloading the runtime base (`denort`) failed,
 * and for no other reason: its "Setting up base binary" step reports a failed request for the
 * denort archive. A build that fails otherwise (a type error, a bad flag) is a failure even if its
 * log mentions denort somewhere.
 */
function runtimeDownloadFailed(log: string): boolean {
  return /^\s*\d+: Setting up base binary\.?$/m.test(log) &&
    /error sending request for url \(https:\/\/dl\.deno\.land\/\S*denort\S*\.zip\)/.test(log);
}

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

Deno.test("compile test: only a failed download of the runtime base is ignored", () => {
  const offline = [
    "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
    "error: Writing deno compile executable to temporary file '/tmp/x.tmp'",
    "",
    "Caused by:",
    "    0: Setting up base binary.",
    "    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information",
  ].join("\n");
  assert.equal(runtimeDownloadFailed(offline), true);
  // A real build failure whose log happens to name denort (a cached base, a type error) must fail.
  const typeError = [
    "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
    "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
    "error: Type checking failed.",
  ].join("\n");
  assert.equal(runtimeDownloadFailed(typeError), false);
  // The base is set up, but another request fails (an npm package): not the runtime base.
  const npm = "    0: Setting up base binary.\nerror sending request for url " +
    "(https://registry.npmjs.org/some-package)";
  assert.equal(runtimeDownloadFailed(npm), false);
  assert.equal(runtimeDownloadFailed("error: denort not found"), false);
});

Deno.test("compile task: bakes in the same narrow permissions as the tasks (no -A)", () => {
  assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
  assert.ok(args.includes("--allow-net"));
});

globalThis.addEventListener("unload", () => Deno.removeSync(outputDir, { recursive: true }));

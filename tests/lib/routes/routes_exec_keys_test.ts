/**
 * A routes file's `"exec"` speaks the words of the top level and of the command line: `maxLine`
 * (the old `maxLineBytes` still works, with a positioned deprecation warning), `timeout`, `env`, and
 * `inheritEnv` **added** to the default allow-list, which is what `ExecOptions.inheritEnv` (and so
 * `serve --exec-env`) means too.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Routes } from "../../../lib/routes/routes.ts";
import { RoutesError } from "../../../lib/routes/routes_error.ts";
import { execProtocol } from "../../../lib/protocols/exec.ts";
import { runLines } from "../../../lib/server/run_lines.ts";
import { startServer } from "../../_support/cli.ts";

function execFile(exec: Record<string, unknown>, top: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...top, exec: { argv: ["cat"], ...exec } }, null, 2);
}

Deno.test("a routes file's exec: maxLine, as at the top level", () => {
  const routes = Routes.parse(execFile({ maxLine: "4KiB", timeout: "10s" }), "f.jsonc");
  assert.equal(routes.settings.exec?.maxLineBytes, 4096);
  assert.equal(routes.settings.exec?.timeoutMs, 10_000);
  assert.deepEqual(routes.warnings, []);
});

Deno.test("a routes file's exec: the top-level maxLine holds for the program too", () => {
  const routes = Routes.parse(execFile({}, { maxLine: 512 }), "f.jsonc");
  assert.equal(routes.settings.exec?.maxLineBytes, 512);
  const own = Routes.parse(execFile({ maxLine: 64 }, { maxLine: 512 }), "f.jsonc");
  assert.equal(own.settings.exec?.maxLineBytes, 64);
});

Deno.test("a routes file's exec: maxLineBytes still works, with a positioned warning", () => {
  const routes = Routes.parse(execFile({ maxLineBytes: 100 }), "f.jsonc");
  assert.equal(routes.settings.exec?.maxLineBytes, 100);
  assert.deepEqual(routes.warnings, [
    'f.jsonc:6:5: exec.maxLineBytes: deprecated: write "maxLine" instead',
  ]);
  assert.throws(
    () => Routes.parse(execFile({ maxLine: 1, maxLineBytes: 2 }), "f.jsonc"),
    (error) =>
      error instanceof RoutesError &&
      error.message ===
        'f.jsonc:7:5: exec.maxLineBytes: give "maxLine" only ("maxLineBytes" is its old name)',
  );
});

Deno.test("a routes file's exec: inheritEnv and the programEnv option are added to the defaults", () => {
  const routes = Routes.parse(execFile({ inheritEnv: ["LINESOCK_A"] }), "f.jsonc", {
    programEnv: ["LINESOCK_B"],
  });
  assert.deepEqual(routes.settings.exec?.inheritEnv, ["LINESOCK_B", "LINESOCK_A"]);
  // The option alone still reaches the program (it was dropped without the file's inheritEnv).
  const optionOnly = Routes.parse(execFile({}), "f.jsonc", { programEnv: ["LINESOCK_B"] });
  assert.deepEqual(optionOnly.settings.exec?.inheritEnv, ["LINESOCK_B"]);
});

Deno.test("ExecOptions.inheritEnv is added to DEFAULT_PROGRAM_ENV, not instead of it", async () => {
  Deno.env.set("LINESOCK_EXEC_KEYS_ADDED", "yes");
  Deno.env.set("LINESOCK_EXEC_KEYS_OTHER", "no");
  try {
    const protocol = execProtocol({ argv: ["env"], inheritEnv: ["LINESOCK_EXEC_KEYS_ADDED"] });
    const { lines } = await runLines(protocol, "");
    assert.ok(lines.includes("LINESOCK_EXEC_KEYS_ADDED=yes"), lines.join("\n"));
    assert.ok(lines.some((line) => line.startsWith("PATH=")), "PATH kept");
    assert.ok(!lines.some((line) => line.startsWith("LINESOCK_EXEC_KEYS_OTHER=")));
  } finally {
    Deno.env.delete("LINESOCK_EXEC_KEYS_ADDED");
    Deno.env.delete("LINESOCK_EXEC_KEYS_OTHER");
  }
});

Deno.test("serve --routes with exec.maxLineBytes logs the deprecation once, and serves", async () => {
  const path = await Deno.makeTempFile({ suffix: ".jsonc" });
  try {
    await Deno.writeTextFile(path, execFile({ maxLineBytes: 100 }));
    await using server = await startServer(["--port", "0", "--routes", path]);
    await server.waitForStderr("deprecated");
    assert.match(server.stderr(), /exec\.maxLineBytes: deprecated: write "maxLine" instead/);
    // Logged where the protocol is built, not also where serve reads the file's settings.
    assert.equal(server.stderr().split("deprecated").length - 1, 1, server.stderr());
  } finally {
    await Deno.remove(path);
  }
});

/** The CLI wiring in main.ts, through the real `linesock` process. */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { runCli } from "./_util/cli.ts";

Deno.test("linesock (main.ts)", async (t) => {
  await t.step("--version prints the version from deno.json", async () => {
    const result = await runCli("linesock", ["--version"]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), denoJson.version);
  });

  await t.step("--help lists every subcommand and the exit statuses", async () => {
    const result = await runCli("linesock", ["--help"]);
    assert.equal(result.code, 0);
    for (const name of ["serve", "send", "repl", "echo-test"]) {
      assert.match(result.stdout, new RegExp(`^\\s+${name}\\b`, "m"));
    }
    assert.match(result.stdout, /Exit statuses: 0 ok/);
  });

  await t.step("help <command> shows that command's help with examples", async () => {
    for (const name of ["serve", "send", "repl", "echo-test"]) {
      const result = await runCli("linesock", ["help", name]);
      assert.equal(result.code, 0, name);
      assert.match(result.stdout, new RegExp(`^Usage: linesock ${name} `, "m"));
      assert.match(result.stdout, /Examples?:|linesock \w/, name);
    }
  });

  await t.step("usage errors exit 2 with one line starting with linesock:", async () => {
    for (const args of [["frob"], ["send", "--bogus"], ["serve", "--port", "x"]]) {
      const result = await runCli("linesock", args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, /^linesock: /, args.join(" "));
      assert.equal(result.stdout, "");
    }
  });
});

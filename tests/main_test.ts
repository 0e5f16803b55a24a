/** The CLI wiring in main.ts, through the real `linesock` process. */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { runCli } from "./_support/cli.ts";

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

  await t.step(
    "help <command> and <command> --help: the usage line, then an Examples: section of that command",
    async () => {
      for (const name of ["serve", "send", "repl", "echo-test", "test", "completions"]) {
        for (const args of [["help", name], [name, "--help"]]) {
          const result = await runCli("linesock", args);
          const what = args.join(" ");
          assert.equal(result.code, 0, what);
          assert.match(result.stdout, new RegExp(`^Usage: linesock ${name} `), what);
          // The section itself: its heading on a line of its own, then at least one example line
          // that runs this very command (the usage line alone must not satisfy this).
          const section = /^Examples:\n((?: {2}.*\n)+)/m.exec(result.stdout);
          assert.ok(section, `${what}: no Examples: section in\n${result.stdout}`);
          assert.match(
            section[1]!,
            new RegExp(`^ {2}(?:\\S+ \\| )?linesock ${name}\\b`, "m"),
            what,
          );
        }
      }
    },
  );

  await t.step(
    "usage errors exit 2 with exactly one line, linesock: MESSAGE, then the hint",
    async () => {
      const cases: [string[], RegExp][] = [
        [
          ["frob"],
          /^linesock: unknown command "frob" \(commands: (?:[a-z-]+, )+[a-z-]+\)$/,
        ],
        [["send", "--bogus"], /^linesock: unknown option --bogus\b.*$/],
        [["serve", "--port", "x"], /^linesock: --port: .+$/],
      ];
      for (const [args, message] of cases) {
        const result = await runCli("linesock", args);
        assert.equal(result.code, 2, args.join(" "));
        assert.equal(result.stdout, "");
        // One message line, then the one hint line; nothing else (no stack trace, no second error).
        const lines = result.stderr.split("\n");
        assert.deepEqual(lines.slice(1), ["(run with --help for usage)", ""], result.stderr);
        assert.match(lines[0]!, message, args.join(" "));
      }
    },
  );
});

/**
 * The bundled build (`deno task build`), which `deno task install` installs: built into a temporary
 * folder and run with the install task's permission flags, as the installed `linesock` runs it.
 * Each subcommand is one bundle with its own copy of the parser and the error classes, so the exit
 * statuses (usage 2, cannot connect 3) are checked through it; the worker pool must find the
 * bundled worker; and `send` must start on two files (`main.js`, `send.js`: no static import, so no
 * `node:` one; Deno also reads the small chunks behind their literal `import()`s).
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { build } from "../_tools/build.ts";
import { launcherArgs } from "../_tools/install.ts";
import { startServer, within } from "./_support/cli.ts";
import { unusedPort } from "./_support/ports.ts";

/** The static imports of a bundle file (`import … from "x"` and `import "x"`). */
function staticImports(source: string): string[] {
  return [...source.matchAll(/^(?:import|export)\b[^;'"]*?(?:from\s*)?["']([^"']+)["']/gm)]
    .map((match) => match[1]!);
}

Deno.test("deno task build: the bundled command line", async (t) => {
  const outdir = await Deno.makeTempDir({ prefix: "linesock-build-" });
  try {
    await build(outdir);
    // As the installed launcher runs it.
    const bundled = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: launcherArgs(outdir, args),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      });
    const run = (args: string[]) => bundled(args).output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

    await t.step("only a missing or empty folder or a previous build is replaced", async () => {
      await build(outdir); // over the build made above: replaced
      const other = await Deno.makeTempDir({ prefix: "linesock-not-a-build-" });
      try {
        await Deno.writeTextFile(`${other}/notes.txt`, "mine");
        const refused = await new Deno.Command(Deno.execPath(), {
          args: ["task", "build", "--outdir", other],
          cwd: new URL("../", import.meta.url),
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(refused.code, 1);
        assert.match(text(refused.stderr), /is not a linesock build .*not replacing it/);
        assert.equal(await Deno.readTextFile(`${other}/notes.txt`), "mine");
      } finally {
        await Deno.remove(other, { recursive: true });
      }
    });

    await t.step("send starts on main.js and send.js, with no node: import", async () => {
      const main = await Deno.readTextFile(`${outdir}/main.js`);
      const send = await Deno.readTextFile(`${outdir}/send.js`);
      assert.deepEqual(staticImports(main), []);
      // npm packages stay external, loaded only where used: none is imported by send at start-up.
      assert.deepEqual(staticImports(send), []);
      assert.match(send, /import\("\.\/[\w-]+\.js"\)/, "the TLS fallback stays a separate chunk");
    });

    await using server = await startServer(["--port", "0"]);
    await t.step("send PING through the bundle", async () => {
      const output = await run(["send", "--port", String(server.port), "PING"]);
      assert.equal(text(output.stderr), "");
      assert.equal(text(output.stdout), "PONG\n");
      assert.equal(output.code, 0);
    });

    await t.step("the subcommand's own runner maps its errors to exit statuses", async () => {
      const unknown = await run(["send", "--bogus"]);
      assert.equal(unknown.code, 2);
      assert.equal(
        text(unknown.stderr),
        "linesock: unknown option --bogus\n(run with --help for usage)\n",
      );
      const refused = await run(["send", "--port", String(unusedPort()), "PING"]);
      assert.equal(refused.code, 3, text(refused.stderr));
      assert.match(text(refused.stderr), /^linesock: Cannot connect to 127\.0\.0\.1:\d+/);
      const unknownCommand = await run(["sned"]);
      assert.equal(unknownCommand.code, 2);
      assert.match(text(unknownCommand.stderr), /^linesock: unknown command "sned"/);
    });

    await t.step("help, --version and completions find every bundled subcommand", async () => {
      const help = await run(["help", "send"]);
      assert.equal(help.code, 0);
      assert.match(text(help.stdout), /^Usage: linesock send /);
      const version = await run(["--version"]);
      assert.equal(text(version.stdout), `${denoJson.version}\n`);
      const completions = await run(["completions", "bash"]);
      assert.equal(completions.code, 0, text(completions.stderr));
      assert.match(text(completions.stdout), /echo-test/);
    });

    await t.step("serve --workers 2 from the bundle finds the bundled worker", async () => {
      const child = bundled(["serve", "--port", "0", "--workers", "2"]).spawn();
      const stderr = new Response(child.stderr).text();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        const first = await within(lines.read(), 15_000, "the bundled server's first line");
        const port = /listening on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(first.value ?? "")?.[1];
        assert.ok(port, `no listening line: ${first.value}`);
        const output = await run(["send", "--port", port, "PING", "PING"]);
        assert.equal(text(output.stdout), "PONG\nPONG\n", text(output.stderr));
      } finally {
        try {
          child.kill("SIGTERM");
        } catch {
          // It exited already (its stderr says why).
        }
        await lines.cancel();
        assert.equal((await child.status).code, 0, await stderr);
      }
    });
  } finally {
    await Deno.remove(outdir, { recursive: true });
  }
});

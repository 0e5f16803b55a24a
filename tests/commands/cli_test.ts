/**
 * The command line's conventions (docs/cli.md), through the real `linesock` process: every target
 * form, the shared flags and old spellings, shell completions, the man page, `--json` output and
 * colour.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCli, startServer } from "../_support/cli.ts";
import { hasTool, ignoredName, toolMissing } from "../_support/tools.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("targets: every form serve prints, and HOST PORT", async (t) => {
  await using server = await startServer(["--port", "0"]);
  const port = String(server.port);
  const forms: [string, string[]][] = [
    ["a URL first", [server.url, "PING"]],
    ["tcp://[::1] is refused cleanly when nothing listens there", []],
    ["--host HOST:PORT", ["--host", `127.0.0.1:${port}`, "PING"]],
    ["--host URL", ["--host", server.url, "PING"]],
    ["--host and -p", ["--host", "127.0.0.1", "-p", port, "PING"]],
    ["HOST PORT, nc's order", ["127.0.0.1", port, "PING"]],
    ["localhost PORT", ["localhost", port, "PING"]],
  ];
  for (const [name, args] of forms) {
    if (args.length === 0) continue;
    await t.step(`send with ${name}`, async () => {
      const result = await runCli("send", [...args, "--replies", "1"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "PONG\n");
    });
  }
  await t.step("a bare word before a port is refused with a hint (exit 2)", async () => {
    const result = await runCli("send", ["myhost", port, "PING"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^linesock: "myhost \d+" looks like HOST PORT: write tcp:\/\/myhost:\d+/,
    );
    assert.equal(result.stdout, "");
  });
  await t.step("after --, words are lines even when they look like options", async () => {
    const result = await runCli("send", ["-p", port, "--replies", "1", "--", "ECHO -q"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "-q\n");
  });
  await t.step("a target given twice is a usage error", async () => {
    const result = await runCli("send", [server.url, "-p", port, "PING"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /names the target already/);
  });
  await t.step("unix:/// and -U reach a Unix socket; -u still works with a warning", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await using unix = await startServer(["-U", `${dir}/s.sock`]);
      assert.equal(unix.url, `unix://${dir}/s.sock`);
      for (const args of [[unix.url], ["-U", `${dir}/s.sock`], ["-u", `${dir}/s.sock`]]) {
        const result = await runCli("send", [...args, "--replies", "1", "PING"]);
        assert.equal(result.stdout, "PONG\n", args.join(" "));
        if (args[0] === "-u") {
          assert.equal(
            result.stderr,
            "linesock: warning: -u is deprecated and goes away in 1.0: use -U/--unix\n",
          );
        } else {
          assert.equal(result.stderr, "");
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("repl, echo-test and test take the same target forms", async () => {
    const repl = await runCli("repl", [server.url], { stdin: "PING\n" });
    assert.equal(repl.stdout, "PONG\n");
    await using echo = await startServer(["-p", "0", "--protocol", "echo"]);
    const conformance = await runCli("echo-test", [echo.url, "--case", "short-line"]);
    assert.equal(conformance.code, 0, conformance.stdout + conformance.stderr);
  });
});

Deno.test("serve listens where its first argument says; --json prints the summary", async () => {
  await using server = await startServer(["tcp://127.0.0.1:0", "--json"]);
  assert.match(server.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const send = await runCli("send", [server.url, "--replies", "1", "PING"]);
  assert.equal(send.stdout, "PONG\n");
  const stopped = await server.stop("SIGTERM");
  const summary = JSON.parse(
    server.stdoutLines.at(-1) ?? stopped.stdout.trim().split("\n").at(-1)!,
  );
  assert.equal(summary.summary.connections, 1);
  assert.equal(summary.summary.linesIn, 1);
});

Deno.test("the serve summary says 1 connection, 2 connections", async () => {
  const { summarize } = await import("../../commands/serve.ts");
  const stats = {
    connections: 1,
    open: 0,
    linesIn: 2,
    linesOut: 1,
    bytesIn: 1,
    bytesOut: 0,
    errors: 1,
    acceptErrors: 0,
    workerRestarts: 0,
  };
  assert.equal(
    summarize(stats),
    "summary: 1 connection, 2 lines in, 1 line out, 1 byte in, 0 bytes out, 1 error",
  );
});

Deno.test("usage errors: unknown options, bad values, old spellings", async (t) => {
  await t.step("an unknown option suggests the right one", async () => {
    const result = await runCli("send", ["--conect-timeout", "1s", "PING"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^linesock: unknown option --conect-timeout \(did you mean --connect-timeout\?\)/,
    );
  });
  await t.step("send -p 0 is a usage error, not a connection failure", async () => {
    const result = await runCli("send", ["-p", "0", "PING"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^linesock: -p: expected a port number/);
  });
  await t.step("echo-test against a closed port: one error line, no table header", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = String((listener.addr as Deno.NetAddr).port);
    listener.close();
    const result = await runCli("echo-test", ["-p", port]);
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused\n$/,
    );
  });
  await t.step("-q and stackable -v on every subcommand", async () => {
    for (const command of ["serve", "send", "repl", "test", "echo-test"]) {
      const help = await runCli("linesock", [command, "--help"]);
      assert.match(help.stdout, /-q, --quiet/, command);
      assert.match(help.stdout, /-v, --verbose\s+say more \(repeat/, command);
    }
  });
});

Deno.test({
  name: ignoredName(
    "completions: bash, zsh and fish from the same definitions",
    toolMissing("bash"),
  ),
  ignore: toolMissing("bash") !== undefined,
  async fn(t) {
    await t.step(
      "bash: source <(linesock completions bash); se<Tab> offers send and serve",
      async () => {
        const script = await runCli("linesock", ["completions", "bash"]);
        assert.equal(script.code, 0, script.stderr);
        const file = await Deno.makeTempFile({ suffix: ".bash" });
        try {
          await Deno.writeTextFile(file, script.stdout);
          const out = await new Deno.Command("bash", {
            args: [
              "-c",
              `source ${file}; complete -p linesock; ` +
              `COMP_WORDS=(linesock se); COMP_CWORD=1; _linesock; echo "\${COMPREPLY[*]}"; ` +
              `COMP_WORDS=(linesock send --conn); COMP_CWORD=2; _linesock; echo "\${COMPREPLY[*]}"; ` +
              `COMP_WORDS=(linesock serve --protocol ""); COMP_CWORD=3; _linesock; echo "\${COMPREPLY[*]}"`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
          assert.ok(out.success, new TextDecoder().decode(out.stderr));
          assert.match(lines[0]!, /complete .*-F _linesock linesock/);
          assert.deepEqual(lines[1]!.split(" ").sort(), ["send", "serve"]);
          assert.equal(lines[2], "--connect-timeout");
          assert.deepEqual(lines[3]!.split(" "), ["echo", "text", "json", "chat"]);
        } finally {
          await Deno.remove(file);
        }
      },
    );
    await t.step("zsh and fish scripts name every subcommand and option", async () => {
      for (const shell of ["zsh", "fish"]) {
        const script = await runCli("linesock", ["completions", shell]);
        assert.equal(script.code, 0);
        for (const word of ["serve", "send", "repl", "echo-test", "connect-timeout", "max-line"]) {
          assert.ok(script.stdout.includes(word), `${shell}: ${word}`);
        }
      }
      if (hasTool("fish", ["-c", "true"])) {
        const check = await new Deno.Command("fish", {
          args: ["--no-execute", "-c", (await runCli("linesock", ["completions", "fish"])).stdout],
        }).output();
        assert.ok(check.success, "fish could not parse its completions");
      }
    });
    await t.step("an unknown shell is a usage error", async () => {
      const result = await runCli("linesock", ["completions", "tcsh"]);
      assert.equal(result.code, 2);
    });
  },
});

Deno.test({
  name: ignoredName(
    "man page: generated from the definitions, up to date, rendered by man -l",
    toolMissing("man"),
  ),
  ignore: toolMissing("man") !== undefined,
  async fn() {
    const check = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}_tools/man.ts`, "--check"],
      stderr: "piped",
    }).output();
    assert.ok(check.success, new TextDecoder().decode(check.stderr));
    const rendered = await new Deno.Command("man", {
      args: ["-l", `${ROOT}docs/linesock.1`],
      env: { MANPAGER: "cat", PAGER: "cat", MANWIDTH: "100" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(rendered.success, new TextDecoder().decode(rendered.stderr));
    const text = new TextDecoder().decode(rendered.stdout);
    for (
      const word of ["LINESOCK(1)", "SYNOPSIS", "linesock send", "--connect-timeout", "EXIT STATUS"]
    ) {
      assert.ok(text.includes(word), word);
    }
  },
});

Deno.test("send --json: one JSON object per reply, with the round-trip time in lockstep", async () => {
  await using server = await startServer(["--port", "0"]);
  const lockstep = await runCli("send", [
    server.url,
    "--json",
    "--replies",
    "1",
    "PING",
    "ECHO a\tb",
  ]);
  assert.equal(lockstep.code, 0, lockstep.stderr);
  const replies = lockstep.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(replies.map(({ line, bytes }) => ({ line, bytes })), [
    { line: "PONG", bytes: 4 },
    { line: "a\tb", bytes: 3 },
  ]);
  for (const reply of replies) assert.ok(reply.rttMs >= 0 && reply.rttMs < 10_000, reply.rttMs);
  const stream = await runCli("send", [server.url, "--json", "PING"]);
  assert.deepEqual(JSON.parse(stream.stdout), { line: "PONG", bytes: 4 });
  // The wire protocol is --protocol json; --json then still prints objects.
  await using json = await startServer(["--port", "0", "--protocol", "json"]);
  const wire = await runCli("send", [json.url, "--protocol", "json", "--json", "ping"]);
  assert.equal(wire.code, 0, wire.stderr);
  assert.equal(JSON.parse(JSON.parse(wire.stdout).line).message, "pong");
});

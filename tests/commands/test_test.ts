/**
 * `linesock test` through the CLI: conversations for linesock's own protocols pass; deliberately
 * broken servers fail at the right step with the right diff; reports parse; bad files exit 2.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCli, startServer } from "../_support/cli.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { ignoredName } from "../_support/tools.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/conversations/", import.meta.url));

/** A server with one scripted bug, answering `PING` lines. */
function brokenServer(
  bug: "wrong" | "missing" | "extra" | "early-close" | "hang",
): { url: string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(1024);
        let pings = 0;
        const say = (text: string) => conn.write(new TextEncoder().encode(text));
        for (let count; (count = await conn.read(buffer)) !== null;) {
          const lines = new TextDecoder().decode(buffer.subarray(0, count)).split("\n");
          for (const line of lines.slice(0, -1)) {
            if (line !== "PING") continue;
            pings++;
            if (bug === "hang") continue;
            if (bug === "missing" && pings > 1) continue;
            if (bug === "wrong" && pings > 1) await say("PANG\n");
            else await say(bug === "extra" && pings === 1 ? "PONG\nEXTRA\n" : "PONG\n");
            if (bug === "early-close") {
              conn.close();
              return;
            }
          }
        }
      })().catch(() => {}).finally(() => conns.delete(conn));
    }
  })();
  return {
    url: `tcp://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("linesock test", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("conversations for the text, JSON and echo protocols pass", async () => {
      for (
        const [protocol, files] of [
          ["text", ["text.conv", "capture.conv"]],
          ["json", ["json.conv"]],
          ["echo", ["echo.conv", "two_clients.conv"]],
        ] as const
      ) {
        await using server = await startServer(["--port", "0", "--protocol", protocol]);
        const result = await runCli("linesock", [
          "test",
          ...files.map((file) => `${FIXTURES}${file}`),
          "--target",
          server.url,
        ]);
        assert.equal(result.code, 0, result.stdout + result.stderr);
        for (const file of files) {
          assert.match(result.stdout, new RegExp(`^PASS \\S*${file} `, "m"));
        }
      }
    });

    await t.step("--serve starts the server for the run", async () => {
      const result = await runCli("linesock", [
        "test",
        "--serve",
        "--protocol json",
        `${FIXTURES}json.conv`,
      ]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^PASS /m);
    });

    const pings = `${dir}/pings.conv`;
    await Deno.writeTextFile(pings, "> PING\n< PONG\n> PING\n< PONG\n");
    const cases: [Parameters<typeof brokenServer>[0], RegExp][] = [
      [
        "wrong",
        /FAIL \S+pings\.conv:4: a different line arrived[^\n]*\n {2}step: < PONG\n {2}- PONG\n {2}\+ PANG\n/,
      ],
      [
        "missing",
        /FAIL \S+pings\.conv:4: no line within 300 ms \(step 4 of 4, waited \d+ ms\)\n {2}step: < PONG\n {2}- PONG\n/,
      ],
      [
        "extra",
        /FAIL \S+pings\.conv:4: a different line arrived[^\n]*\n {2}step: < PONG\n {2}- PONG\n {2}\+ EXTRA\n/,
      ],
      [
        "early-close",
        /FAIL \S+pings\.conv:4: the server closed the connection[^\n]*\n {2}step: < PONG\n/,
      ],
      ["hang", /FAIL \S+pings\.conv:2: no line within 300 ms \(step 2 of 4, waited \d+ ms\)/],
    ];
    for (const [bug, expected] of cases) {
      await t.step(`a server that goes wrong (${bug}) fails at the right step`, async () => {
        await using server = brokenServer(bug);
        const result = await runCli("linesock", ["test", server.url, pings, "--timeout", "300ms"]);
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.match(result.stdout, expected);
      });
    }

    await t.step("--json, --tap and --junit (read back by a real XML parser)", async () => {
      await using server = brokenServer("wrong");
      const junit = `${dir}/report.xml`;
      const files = [pings, `${FIXTURES}capture.conv`];
      const json = await runCli("linesock", [
        "test",
        server.url,
        ...files,
        "--json",
        "--junit",
        junit,
      ]);
      assert.equal(json.code, 1);
      const report = JSON.parse(json.stdout);
      assert.equal(report.passed, 0);
      assert.equal(report.failed, 2);
      assert.equal(report.files[0].failure.line, 4);
      const parsed = await new Deno.Command("python3", {
        args: [
          "-c",
          "import sys, xml.etree.ElementTree as ET\n" +
          "s = ET.parse(sys.argv[1]).getroot().find('testsuite')\n" +
          "print(s.get('tests'), s.get('failures'), s.find('testcase/failure').get('message'))",
          junit,
        ],
        stdout: "piped",
      }).output();
      assert.ok(parsed.success, "python3 could not parse the JUnit XML");
      assert.match(new TextDecoder().decode(parsed.stdout), /^2 2 FAIL \S+pings\.conv:4: /);
      const tap = await runCli("linesock", ["test", server.url, pings, "--tap"]);
      assert.match(tap.stdout, /^TAP version 13\n1\.\.1\nnot ok 1 - \S+pings\.conv\n/);
    });

    await t.step("--update writes the server's answers and shows the diff", async () => {
      await using server = brokenServer("wrong");
      const file = `${dir}/update.conv`;
      await Deno.writeTextFile(file, "> PING\n< PONG\n> PING\n< PONG\n");
      const result = await runCli("linesock", ["test", server.url, file, "--update"]);
      assert.match(result.stdout, /@@ line 4 @@\n- < PONG\n\+ < PANG/);
      assert.equal(await Deno.readTextFile(file), "> PING\n< PONG\n> PING\n< PANG\n");
      const again = await runCli("linesock", ["test", server.url, file]);
      assert.equal(again.code, 0, again.stdout);
    });

    await t.step("send --record, then test: green on that server, red on another", async () => {
      await using text = await startServer(["--port", "0"]);
      const recorded = `${dir}/recorded.conv`;
      const sent = await runCli("send", [
        text.url,
        "--record",
        recorded,
        "PING",
        "ECHO a\\b $x",
        "HELLO",
      ]);
      assert.equal(sent.code, 0, sent.stderr);
      const file = await Deno.readTextFile(recorded);
      assert.match(file, /^# recorded by linesock/);
      assert.match(file, /\n> PING\n> ECHO a\\\\b \\\$x\n/);
      assert.match(file, /\n< PONG\n< a\\\\b \\\$x\n/);
      assert.match(file, /\nhalfclose\n/);
      const replay = await runCli("linesock", ["test", text.url, recorded]);
      assert.equal(replay.code, 0, replay.stdout + replay.stderr);
      await using json = await startServer(["--port", "0", "--protocol", "json"]);
      const other = await runCli("linesock", ["test", json.url, recorded]);
      assert.equal(other.code, 1, other.stdout);
      assert.match(other.stdout, /^FAIL \S+recorded\.conv:\d+: a different line arrived/m);
    });

    await t.step({
      name: ignoredName("a repl session recorded in tmux replays green", TMUX_MISSING),
      ignore: TMUX_MISSING !== undefined,
      async fn() {
        await using text = await startServer(["--port", "0"]);
        const recorded = `${dir}/repl.conv`;
        const home = await Deno.makeTempDir();
        try {
          await using pty = await startPty(
            cliCommand("repl", [text.url, "--record", recorded, "--no-history"]),
            { env: ptyEnv(home, { NO_COLOR: "1" }) },
          );
          await pty.waitFor(/:\d+>$/m);
          await pty.type("PING");
          await pty.press("Enter");
          await pty.waitFor("< PONG");
          await pty.type("ECHO recorded in tmux");
          await pty.press("Enter");
          await pty.waitFor("< recorded in tmux");
          await pty.press("C-d");
          assert.equal(await pty.waitForExit(), 0);
        } finally {
          await Deno.remove(home, { recursive: true });
        }
        const file = await Deno.readTextFile(recorded);
        assert.match(file, /\n> PING\n< PONG\n> ECHO recorded in tmux\n< recorded in tmux\n/);
        const replay = await runCli("linesock", ["test", text.url, recorded]);
        assert.equal(replay.code, 0, replay.stdout + replay.stderr);
      },
    });

    await t.step("a malformed file exits 2 naming its line", async () => {
      const bad = `${dir}/bad.conv`;
      await Deno.writeTextFile(bad, "> PING\n\n# fine\nPONG\n");
      const result = await runCli("linesock", ["test", bad]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^linesock: \S+bad\.conv:4: expected a step: .*got "PONG"/);
      for (
        const [text, message] of [
          ["<re (\n", /:1: bad regular expression/],
          ["<json {x}\n", /:1: bad JSON after <json/],
          ["silence soon\n", /:1: expected silence DURATION/],
          ["<any 0\n", /:1: expected <any or <any N/],
          ["# only a comment\n", /:1: no steps/],
        ] as const
      ) {
        await Deno.writeTextFile(bad, text);
        const failed = await runCli("linesock", ["test", bad]);
        assert.equal(failed.code, 2, text);
        assert.match(failed.stderr, message, text);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

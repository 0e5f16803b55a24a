/**
 * What `-q`, `-v` and `-vv` mean in each subcommand (docs/cli.md, "`-q`, `-v`, `-vv`: saying less
 * or more"), through the real CLI against real servers on loopback. tests/commands/cli_rows_test.ts
 * checks only that each says more or less; these check what it says.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type LineProtocol, serve, type Server } from "../../lib/server/mod.ts";
import { runCli, startServer } from "../_support/cli.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";

const ESC = "\x1b";

/** An in-process server: `reply` answers each line (an array: several lines). */
async function lineServer(reply: (line: string) => string | string[] | undefined): Promise<Server> {
  const protocol: LineProtocol = {
    stripCR: false,
    onLine: (bytes) => reply(new TextDecoder().decode(bytes)),
  };
  return await serve({ port: 0 }, protocol);
}

function portOf(server: Server): string {
  return String((server.addr as Deno.NetAddr).port);
}

function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

function shown(result: { code: number; stdout: string; stderr: string }): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** A conversation file in a fresh directory; `using` removes it. */
function conversationFiles(files: Record<string, string>): { dir: string } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "linesock-verbosity-" });
  for (const [name, text] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, text);
  return { dir, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

Deno.test("send: -v says where and how it ended; -vv shows the traffic with times", async (t) => {
  await using server = await lineServer((line) =>
    line === "CLEAR" ? `${ESC}[2J` : line === "LONG" ? "x".repeat(500) : `re ${line}`
  );
  const port = ["-p", portOf(server)];

  await t.step("-v: the connection and the counts, no traffic", async () => {
    const result = await runCli("send", [...port, "--replies", "1", "-v", "PING"]);
    assert.equal(result.stdout, "re PING\n", shown(result));
    assert.deepEqual(linesOf(result.stderr), [
      `linesock: connected to tcp://127.0.0.1:${portOf(server)}`,
      "linesock: sent 1 line(s), received 1 reply; ended: the last expected reply arrived",
    ]);
  });

  await t.step("-vv lockstep: each line and reply, sizes, and the round-trip time", async () => {
    const result = await runCli("send", [...port, "--replies", "1", "-vv", "PING", "AB"]);
    assert.equal(result.stdout, "re PING\nre AB\n", shown(result));
    const traffic = linesOf(result.stderr).filter((line) => /^linesock: [<>] /.test(line));
    assert.equal(traffic.length, 4, result.stderr);
    assert.match(traffic[0]!, /^linesock: > PING {2}\[\+\d+\.\d\d ms, 4 bytes\]$/);
    assert.match(
      traffic[1]!,
      /^linesock: < re PING {2}\[\+\d+\.\d\d ms, 7 bytes, rtt \d+\.\d\d ms\]$/,
    );
    assert.match(traffic[2]!, /^linesock: > AB {2}\[\+\d+\.\d\d ms, 2 bytes\]$/);
    assert.match(traffic[3]!, /^linesock: < re AB {2}\[.*, rtt \d+\.\d\d ms\]$/);
  });

  await t.step("-vv stream mode: no round-trip time, and the half-close", async () => {
    const result = await runCli("send", [...port, "-vv", "--wait", "300ms"], {
      stdin: "PING\nAB\n",
    });
    assert.equal(result.stdout, "re PING\nre AB\n", shown(result));
    assert.match(result.stderr, /^linesock: > PING {2}\[/m);
    assert.match(result.stderr, /^linesock: < re AB {2}\[\+\d+\.\d\d ms, 5 bytes\]$/m);
    assert.doesNotMatch(result.stderr, /rtt/);
    assert.match(result.stderr, /^linesock: half-closed \(end of input\)/m);
  });

  await t.step("-vv: a reply's control characters escaped, a long one cut", async () => {
    const result = await runCli("send", [...port, "--replies", "1", "-vv", "CLEAR", "LONG"]);
    assert.ok(
      !result.stderr.includes(ESC),
      `a raw ESC on stderr: ${JSON.stringify(result.stderr)}`,
    );
    assert.match(result.stderr, /^linesock: < \\x1b\[2J {2}\[/m);
    assert.match(result.stderr, new RegExp(`^linesock: < x{200}… {2}\\[.*, 500 bytes, rtt`, "m"));
  });

  await t.step("-q wins over -vv", async () => {
    const result = await runCli("send", [...port, "--replies", "1", "-q", "-vv", "PING"]);
    assert.equal(result.stdout, "re PING\n");
    assert.equal(result.stderr, "", shown(result));
  });
});

Deno.test("repl without a terminal: -v details and counts, -vv the traffic", async (t) => {
  await using server = await lineServer((line) => `re ${line}`);
  const port = portOf(server);

  await t.step("-v: time to connect, the addresses, then the counts", async () => {
    const result = await runCli("repl", ["-p", port, "-v"], { stdin: "PING\n" });
    assert.equal(result.stdout, "re PING\n", shown(result));
    const [details, counts, ...more] = linesOf(result.stderr);
    assert.match(
      details ?? "",
      new RegExp(
        `^linesock: tcp://127\\.0\\.0\\.1:${port}: connected in \\d+\\.\\d\\d ms to ` +
          `127\\.0\\.0\\.1:${port} from 127\\.0\\.0\\.1:\\d+$`,
      ),
    );
    assert.equal(
      counts,
      "linesock: sent 1 line(s), received 1 reply; ended: the server closed the connection",
    );
    assert.deepEqual(more, []);
  });

  await t.step("-vv: each line and each reply, as send -vv shows them", async () => {
    const result = await runCli("repl", ["-p", port, "-vv"], { stdin: "PING\n" });
    assert.equal(result.stdout, "re PING\n", shown(result));
    assert.match(result.stderr, /^linesock: > PING {2}\[\+\d+\.\d\d ms, 4 bytes\]$/m);
    assert.match(result.stderr, /^linesock: < re PING {2}\[\+\d+\.\d\d ms, 7 bytes\]$/m);
  });

  await t.step("without -v: nothing on stderr", async () => {
    const result = await runCli("repl", ["-p", port], { stdin: "PING\n" });
    assert.equal(result.stderr, "", shown(result));
  });
});

Deno.test({
  name: "repl on a terminal: -q keeps the warnings only; -v details and times; -vv the probe",
  ignore: TMUX_MISSING !== undefined,
  async fn(t) {
    // TWO answers two lines: the second is no request's first reply, so it shows no round trip.
    const server = await lineServer((line) =>
      line === "HELP" ? "commands: PING TWO" : line === "TWO" ? ["one", "two"] : `re ${line}`
    );
    const port = portOf(server);
    const where = `127.0.0.1:${port}>`;
    const home = await Deno.makeTempDir({ prefix: "linesock-verbosity-home-" });
    const repl = (flags: string[]) =>
      startPty(cliCommand("repl", ["-p", port, ...flags]), {
        columns: 160,
        env: ptyEnv(home, { NO_COLOR: "1" }),
      });
    let stopped = false;
    try {
      await t.step("-v: the connection's details, and a time on every reply", async () => {
        await using pty = await repl(["-v"]);
        await pty.waitFor(where);
        const screen = await pty.waitFor(/connected in \d+\.\d\d ms to 127\.0\.0\.1:\d+ from/);
        assert.match(screen, /^\* connected to 127\.0\.0\.1:\d+; :help/m);
        await pty.type("TWO");
        await pty.press("Enter");
        const replies = await pty.waitFor(/^< two .*$/m);
        assert.match(replies, /^< one \(\d+\.\d\d ms\)$/m, "the first reply: its round trip");
        assert.match(replies, /^< two \(\d+\.\d\d ms after the last line sent\)$/m);
        assert.doesNotMatch(replies, /probe/, "-v does not show the probe");
      });

      await t.step("without -v: no details, and no time where the request is unknown", async () => {
        await using pty = await repl([]);
        await pty.waitFor(where);
        await pty.type("TWO");
        await pty.press("Enter");
        const screen = await pty.waitFor(/^< two$/m);
        assert.doesNotMatch(screen, /connected in/);
      });

      await t.step("-vv: the HELP probe and its reply", async () => {
        await using pty = await repl(["-vv"]);
        const screen = await pty.waitFor(/probe reply .*< commands: PING TWO/);
        assert.match(screen, /^\* probe for command names \(Tab completion\): > HELP$/m);
      });

      await t.step("-q: no notices of its own, but the lost connection is a warning", async () => {
        await using pty = await repl(["-q"]);
        await pty.waitFor(where);
        await pty.type("PING");
        await pty.press("Enter");
        await pty.waitFor("< re PING");
        await server.shutdown();
        stopped = true;
        const screen = await pty.waitFor(/^! connection to 127\.0\.0\.1:\d+ lost/m);
        assert.doesNotMatch(screen, /connected to|reconnecting/, screen);
      });
    } finally {
      if (!stopped) await server.shutdown();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("test: -q the failures only; -v the transcript on stderr; -vv with times and steps", async (t) => {
  await using server = await lineServer((line) => line === "PING" ? "PONG" : `ERR ${line}`);
  using files = conversationFiles({
    "pass.conv": "> PING\n< PONG\nalice> PING\nalice< PONG\n",
    "fail.conv": "> PING\n< PING\n",
  });
  const target = `tcp://127.0.0.1:${portOf(server)}`;
  const pass = `${files.dir}/pass.conv`;
  const fail = `${files.dir}/fail.conv`;

  await t.step("-q: a passing run prints nothing; a failing one its failure only", async () => {
    const passing = await runCli("linesock", ["test", "-q", target, pass]);
    assert.equal(passing.code, 0, shown(passing));
    assert.equal(passing.stdout + passing.stderr, "");
    const failing = await runCli("linesock", ["test", "-q", target, pass, fail]);
    assert.equal(failing.code, 1, shown(failing));
    assert.match(failing.stdout, /^FAIL .*fail\.conv:2: a different line arrived/);
    assert.doesNotMatch(failing.stdout, /PASS|passed/);
  });

  await t.step("-v: the transcript in the file's notation; stdout unchanged", async () => {
    const plain = await runCli("linesock", ["test", target, pass]);
    const verbose = await runCli("linesock", ["test", "-v", target, pass]);
    assert.equal(verbose.code, 0, shown(verbose));
    assert.equal(
      verbose.stdout.replace(/\d+ ms\)/, "T)"),
      plain.stdout.replace(/\d+ ms\)/, "T)"),
    );
    const transcript = linesOf(verbose.stderr);
    assert.deepEqual(transcript.slice(0, 6), [
      `linesock: ${pass}: connected to 127.0.0.1:${portOf(server)}`,
      `linesock: ${pass}: > PING`,
      `linesock: ${pass}: < PONG`,
      `linesock: ${pass}: alice: connected to 127.0.0.1:${portOf(server)}`,
      `linesock: ${pass}: alice> PING`,
      `linesock: ${pass}: alice< PONG`,
    ]);
    // Both connections are closed at once at the end: in either order.
    assert.deepEqual(transcript.slice(6).sort(), [
      `linesock: ${pass}: alice: closed (the conversation is over)`,
      `linesock: ${pass}: closed (the conversation is over)`,
    ]);
  });

  await t.step("-vv: times, sizes, and each step's outcome", async () => {
    const result = await runCli("linesock", ["test", "-vv", target, fail]);
    assert.equal(result.code, 1, shown(result));
    assert.match(result.stderr, /: > PING {2}\[\+\d+\.\d\d ms, 4 bytes\]$/m);
    assert.match(result.stderr, /: < PONG {2}\[\+\d+\.\d\d ms, 4 bytes\]$/m);
    assert.match(result.stderr, /fail\.conv:1: ok in \d+\.\d\d ms: > PING$/m);
    assert.match(result.stderr, /fail\.conv:2: FAILED in \d+\.\d\d ms: < PING$/m);
  });

  await t.step("--json: the same object with -v (the transcript is on stderr)", async () => {
    const json = await runCli("linesock", ["test", "--json", "-v", target, pass]);
    assert.equal(JSON.parse(json.stdout).passed, 1, shown(json));
    assert.match(json.stderr, /> PING/);
  });
});

Deno.test("echo-test: -q failures only, -v each case, -vv each connection", async (t) => {
  await using echo = await startServer(["-p", "0", "--protocol", "echo", "-q"]);
  await using text = await startServer(["-p", "0", "-q"]);
  const cases = ["--case", "short-line,concurrent-clients"];

  await t.step("-q: a pass prints nothing; a failure its FAIL row only", async () => {
    const passing = await runCli("echo-test", [echo.url, ...cases, "-q"]);
    assert.equal(passing.code, 0, shown(passing));
    assert.equal(passing.stdout + passing.stderr, "");
    const failing = await runCli("echo-test", [text.url, "--case", "short-line,empty-line", "-q"]);
    assert.equal(failing.code, 1, shown(failing));
    const rows = linesOf(failing.stdout);
    assert.ok(rows.length >= 1 && rows.every((row) => row.startsWith("FAIL ")), failing.stdout);
  });

  await t.step("-v: under each row, what the case checks and its bytes", async () => {
    const result = await runCli("echo-test", [echo.url, ...cases, "-v"]);
    assert.equal(result.code, 0, shown(result));
    assert.match(
      result.stdout,
      /^PASS +short-line .*\n {8}a line shorter than one buffer \(2048 bytes with its \\n\); 1 connection, 2048 bytes sent, 2048 received$/m,
    );
    assert.match(
      result.stdout,
      /^ {8}several clients at once.*; 8 connections, (\d+) bytes sent, \1 received$/m,
    );
    assert.doesNotMatch(result.stdout, /connection 1:/);
  });

  await t.step("-vv: each connection's figures", async () => {
    const result = await runCli("echo-test", [echo.url, ...cases, "-vv"]);
    assert.equal(result.code, 0, shown(result));
    const connections = linesOf(result.stdout).filter((line) => /^ {10}connection \d+:/.test(line));
    assert.equal(connections.length, 1 + 8, result.stdout);
    assert.match(
      connections[0]!,
      /connected in \d+\.\d\d ms; 2048 bytes in \d+ write\(s\); 2048 bytes in \d+ read\(s\); last byte \d+\.\d\d ms after connecting$/,
    );
  });

  await t.step("--json: the same report whatever -q or -v say", async () => {
    const plain = JSON.parse((await runCli("echo-test", [echo.url, ...cases, "--json"])).stdout);
    const verbose = JSON.parse(
      (await runCli("echo-test", [echo.url, ...cases, "--json", "-vv"])).stdout,
    );
    assert.deepEqual(Object.keys(verbose).sort(), Object.keys(plain).sort());
    assert.deepEqual(Object.keys(verbose.results[0]).sort(), Object.keys(plain.results[0]).sort());
  });

  await t.step("load: -q nothing on a pass, -v per second, -vv the distribution", async () => {
    const load = [echo.url, "-n", "200", "-c", "2"];
    const quiet = await runCli("echo-test", [...load, "-q"]);
    assert.equal(quiet.code, 0, shown(quiet));
    assert.equal(quiet.stdout + quiet.stderr, "");
    const plain = await runCli("echo-test", load);
    assert.doesNotMatch(plain.stdout, /per second|latency distribution/);
    const verbose = await runCli("echo-test", [...load, "-v"]);
    assert.match(verbose.stdout, /^per second$/m);
    assert.doesNotMatch(verbose.stdout, /latency distribution/);
    const more = await runCli("echo-test", [...load, "-vv"]);
    assert.match(more.stdout, /^latency distribution$/m);
    const json = JSON.parse((await runCli("echo-test", [...load, "--json", "-vv"])).stdout);
    assert.equal(json.intervals, undefined, "--json keeps its figures as they were");
  });

  await t.step("load: a lossy run with -q prints the FAILED line and its errors", async () => {
    // The text server answers PONG-less errors: every line comes back wrong.
    const result = await runCli("echo-test", [text.url, "-n", "20", "-c", "1", "-q"]);
    assert.equal(result.code, 1, shown(result));
    assert.match(
      result.stdout,
      /^FAILED: \d+ lost, \d+ mismatched of \d+ lines sent; \d+ errors$/m,
    );
  });
});

Deno.test("echo-test --connect-timeout: load mode gives up connecting after it", async () => {
  // Accepts TCP and never answers the TLS handshake.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  try {
    const result = await runCli("echo-test", [
      "-p",
      String(listener.addr.port),
      "--tls",
      "--connect-timeout",
      "500ms",
      "-n",
      "10",
    ]);
    assert.equal(result.code, 4, shown(result));
    assert.match(
      result.stderr,
      /^linesock: Timed out after 500 ms: connect to 127\.0\.0\.1:\d+\n$/,
    );
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("serve: -q hides the shutdown notice; -vv logs each line and reply", async (t) => {
  await t.step("-q: no SIGTERM notice, the summary stays", async () => {
    await using server = await startServer(["-p", "0", "-q"]);
    const stopped = await server.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stderr, "");
    assert.match(server.stdoutLines.at(-1) ?? "", /^summary: 0 connections/);
  });

  await t.step("-vv: each line in and reply out, escaped; -v none", async () => {
    for (const flag of ["-v", "-vv"]) {
      await using server = await startServer(["-p", "0", flag]);
      await runCli("send", [server.url, "PING", `${ESC}[2J`]);
      const stderr = (await server.stop("SIGTERM")).stderr;
      const traced = [
        /\[TRC\] linesock\.server: Connection 1 from 127\.0\.0\.1:\d+: line 1 in \(4 bytes\): "PING"$/m,
        /\[TRC\] linesock\.server: Connection 1 from 127\.0\.0\.1:\d+: reply out: "PONG"$/m,
        /\[TRC\] .*: line 2 in \(4 bytes\): "\\u001b\[2J"$/m,
      ];
      for (const pattern of traced) {
        if (flag === "-vv") assert.match(stderr, pattern);
        else assert.doesNotMatch(stderr, pattern);
      }
      assert.ok(!stderr.includes(ESC), "a client's ESC reached the log raw");
    }
  });

  await t.step("-vv with echo: each chunk each way", async () => {
    await using server = await startServer(["-p", "0", "--protocol", "echo", "-vv"]);
    await runCli("send", [server.url, "hello"]);
    const stderr = (await server.stop("SIGTERM")).stderr;
    assert.match(stderr, /\[TRC\] .*: 6 bytes in: "hello\\n"$/m);
    assert.match(stderr, /\[TRC\] .*: 6 bytes out: "hello\\n"$/m);
  });
});

/**
 * The text protocol's replies, through the socket-free harness (runLines); what needs a socket
 * (closing one connection while the server stays up, stopping the server) through a real server.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runLines, type RunLinesOptions, type RunLinesResult } from "../../../lib/server/mod.ts";
import { serve, type ServeOptions, type Server } from "../../../lib/server/serve.ts";
import {
  TEXT_COMMANDS,
  textProtocol,
  type TextProtocolOptions,
} from "../../../lib/protocols/text.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { exchange, LineSession } from "../../_support/line_session.ts";
import { within } from "../../_support/cli.ts";

function start(
  options: TextProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<Server> {
  return serve({ port: 0, ...serveOptions }, textProtocol({ name: "unit", ...options }));
}

/** Runs the protocol (named "unit") over `input` without a socket. */
function run(
  input: string | Uint8Array,
  options: TextProtocolOptions = {},
  runOptions: RunLinesOptions = {},
): Promise<RunLinesResult> {
  return runLines(textProtocol({ name: "unit", ...options }), input, runOptions);
}

/** The replies to `lines`, each sent with its `\n`. */
async function replies(lines: string[], options: TextProtocolOptions = {}): Promise<string[]> {
  return (await run(lines.map((line) => `${line}\n`).join(""), options)).lines;
}

/** A route table from its rules (the format is tested in tests/lib/routes/routes_test.ts). */
function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }), "test routes");
}

Deno.test("textProtocol", async (t) => {
  await t.step("PING in any case gets PONG, lowercase ping gets pong", async () => {
    assert.deepEqual(
      await replies(["PING", "ping", "Ping", "pInG", "PING now", "ping "]),
      ["PONG", "pong", "PONG", "PONG", "PONG", "pong"],
    );
  });

  await t.step("HELLO answers the name, TIME an ISO 8601 instant", async () => {
    const [hello, time, lower] = await replies(["HELLO", "TIME", "hello"]);
    assert.equal(hello, "unit");
    assert.equal(lower, "unit");
    assert.match(time!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(new Date(time!).toISOString(), time);
  });

  await t.step("HELLO defaults to the host name", async () => {
    assert.deepEqual((await runLines(textProtocol(), "HELLO\n")).lines, [Deno.hostname()]);
  });

  await t.step("ECHO returns the rest of the line exactly, Unicode included", async () => {
    assert.deepEqual(
      await replies([
        "ECHO hello world",
        "echo  two  spaces ",
        "ECHO",
        "ECHO héllo ✓",
      ]),
      ["hello world", " two  spaces ", "", "héllo ✓"],
    );
  });

  await t.step("HELP lists the commands on one line", async () => {
    assert.deepEqual(await replies(["HELP"]), [
      "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]",
    ]);
    assert.deepEqual(TEXT_COMMANDS.length, 10);
    assert.deepEqual(await replies(["help"], { allowShutdown: true }), [
      "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT SHUTDOWN [t] [d]",
    ]);
  });

  await t.step(
    "QUIT, CLOSE and DISCONNECT say BYE and close; later lines are ignored",
    async () => {
      for (const command of ["QUIT", "close", "Disconnect"]) {
        const result = await run(`PING\n${command}\nPING\n`);
        assert.deepEqual(result.lines, ["PONG", "BYE"], command);
        assert.equal(result.closed, true, command);
        assert.equal(result.reason, `client sent ${command.toUpperCase()}`);
        assert.equal(result.shutdownRequested, false);
      }
    },
  );

  await t.step(
    "QUIT closes its connection without a half-close, and the server stays up",
    async () => {
      await using server = await start();
      await using session = await LineSession.open(server.addr);
      await session.write("PING\nQUIT\nPING\n");
      // Everything after the command is ignored; the server closes without a half-close from us.
      assert.deepEqual(await session.readAll(), ["PONG", "BYE"]);
      assert.deepEqual(await exchange(server.addr, ["PING"]), ["PONG"]);
    },
  );

  await t.step("[t]text answers text, [d] alone answers Done! and closes", async () => {
    const result = await run("[t]hello there\n[t]\n[T]x\n[d]x\n[d]\nPING\n");
    assert.deepEqual(result.lines, ["hello there", "", "x", "ERR unknown command: [d]x", "Done!"]);
    assert.equal(result.closed, true);
    assert.deepEqual((await run("[d]\n")).lines, ["Done!"]);
  });

  await t.step("unknown commands and empty lines get one ERR line each", async () => {
    const long = "X".repeat(500);
    const result = await run(["FOO bar", "", long, "PING"].map((line) => `${line}\n`).join(""));
    assert.deepEqual(result.lines, [
      "ERR unknown command: FOO",
      "ERR empty line",
      `ERR unknown command: ${"X".repeat(64)}...`,
      "PONG",
    ]);
    assert.equal(result.stats.errors, 3);
  });

  await t.step(
    "spaces and tabs around the command word are skipped, for every command",
    async () => {
      assert.deepEqual(
        await replies([
          "  PING",
          "PING  ",
          "\tPING",
          " \t ping \t",
          "   ",
          "\t",
          "  HELLO",
          "\tHELP ",
          "  [t]tagged",
          "  FROB  ",
          "  SHUTDOWN",
          "PING",
        ]),
        [
          "PONG",
          "PONG",
          "PONG",
          "pong",
          "ERR empty line",
          "ERR empty line",
          "unit",
          "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]",
          "tagged",
          "ERR unknown command: FROB",
          "ERR shutdown not allowed (start the server with --allow-shutdown)",
          "PONG",
        ],
      );
      for (const quit of ["  QUIT", "QUIT\t", "\t[d] "]) {
        const result = await run(`${quit}\nPING\n`);
        assert.deepEqual(result.lines, [quit.includes("[d]") ? "Done!" : "BYE"], quit);
        assert.equal(result.closed, true, quit);
      }
    },
  );

  await t.step("ECHO's text is everything after its one separator, spacing kept", async () => {
    assert.deepEqual(
      await replies([
        "ECHO  two  spaces",
        "  ECHO x",
        "ECHO\ttab",
        "ECHO trailing  ",
        "  echo  é  ✓ ",
        "ECHO",
        "  ECHO",
      ]),
      [" two  spaces", "x", "tab", "trailing  ", " é  ✓ ", "", ""],
    );
  });

  await t.step("command names fold ASCII letters only (no Unicode case mapping)", async () => {
    // Each of these upper-cases to a command through Unicode case mapping: "ſ" (U+017F) to "S",
    // "ı" (U+0131) to "I", "ﬅ" (U+FB05) to "ST"; "İ" (U+0130) and the Kelvin sign (U+212A) are
    // letters that lower-case to ASCII. None is a command.
    const words = ["ſHUTDOWN", "ſhutdown", "pıng", "quıt", "DIſCONNECT", "ﬅ", "PİNG", "\u212Aill"];
    assert.deepEqual(
      await replies([...words, "ECHO still here", "ping"], { allowShutdown: true }),
      [...words.map((word) => `ERR unknown command: ${word}`), "still here", "pong"],
    );
    assert.deepEqual(await replies(["PiNg", "hElLo"]), ["PONG", "unit"]);
  });

  await t.step("invalid UTF-8 gets ERR invalid encoding, or the configured reply", async () => {
    const invalid = new Uint8Array([0xff, 0xfe, 0x0a, 0x45, 0x43, 0x48, 0x4f, 0x20, 0xc3, 0x0a]);
    const result = await runLines(textProtocol({ name: "unit" }), [invalid, "PING\n"]);
    assert.deepEqual(result.lines, ["ERR invalid encoding", "ERR invalid encoding", "PONG"]);
    assert.equal(result.stats.errors, 2);
    assert.deepEqual((await run(new Uint8Array([0x80, 0x0a]), { invalidReply: "invalid" })).lines, [
      "invalid",
    ]);
  });

  await t.step("SHUTDOWN is refused unless allowed", async () => {
    const result = await run("SHUTDOWN\nPING\n");
    assert.deepEqual(result.lines, [
      "ERR shutdown not allowed (start the server with --allow-shutdown)",
      "PONG",
    ]);
    assert.equal(result.shutdownRequested, false);
  });

  await t.step("SHUTDOWN, when allowed, answers, closes and asks for the shutdown", async () => {
    const result = await run("PING\nshutdown\nPING\n", { allowShutdown: true });
    assert.deepEqual(result.lines, ["PONG", "BYE shutting down"]);
    assert.equal(result.closed, true);
    assert.equal(result.shutdownRequested, true);
    assert.equal(result.reason, "shutdown requested");
  });

  await t.step("SHUTDOWN, when allowed, stops the server and its other connections", async () => {
    await using server = await start({ allowShutdown: true });
    await using other = await LineSession.open(server.addr);
    await other.write("PING\n");
    assert.equal(await other.readLine(), "PONG");
    await using session = await LineSession.open(server.addr);
    await session.write("shutdown\n");
    assert.deepEqual(await session.readAll(), ["BYE shutting down"]);
    await within(server.finished, 10_000, "server stop");
    assert.equal(await other.readLine(), null);
    await assert.rejects(Deno.connect({ port: (server.addr as Deno.NetAddr).port }));
  });

  await t.step("CRLF lines are answered like LF lines", async () => {
    assert.deepEqual((await run("PING\r\nECHO a\r\n")).lines, ["PONG", "a"]);
  });

  await t.step("pipelined lines are answered in order", async () => {
    const lines: string[] = [];
    const expected: string[] = [];
    for (let index = 0; index < 3000; index++) {
      const kind = index % 4;
      if (kind === 0) lines.push("PING"), expected.push("PONG");
      else if (kind === 1) lines.push(`ECHO ${index}`), expected.push(`${index}`);
      else if (kind === 2) lines.push(`ECHO é${index}`), expected.push(`é${index}`);
      else lines.push(`[t]${index}`), expected.push(`${index}`);
    }
    assert.deepEqual(await replies(lines), expected);
  });

  await t.step("routes come before built-ins", async () => {
    const routes = routesOf(
      { match: { exact: "PING" }, reply: ["route pong", "from {peer}"] },
      { match: { regex: "^add (?<a>\\d+) (?<b>\\d+)$" }, reply: "{a}+{b}" },
      { match: { prefix: "LEAVE" }, reply: "see you{rest}", close: true },
    );
    const result = await run("PING\nping\nadd 1 2\nLEAVE now\nPING\n", { routes });
    assert.deepEqual(result.lines, [
      "route pong",
      "from 127.0.0.1:50000",
      "pong",
      "1+2",
      "see you now",
    ]);
    assert.equal(result.closed, true);
  });

  await t.step("a route program's lines are replies; its failure is one ERR line", async () => {
    const routes = routesOf(
      { match: { prefix: "up " }, run: { argv: ["tr", "a-z", "A-Z"], stdin: "{rest}" } },
      { match: { exact: "fail" }, run: { argv: ["false"] } },
    );
    const result = await run("up a; `b`\nfail\nPING\nup c\n", { routes });
    assert.deepEqual(result.lines, ["A; `B`", "ERR program exited with status 1", "PONG", "C"]);
    assert.equal(result.stats.errors, 1);
  });

  await t.step("a shutdown route still needs allowShutdown", async () => {
    const routes = routesOf({ match: { exact: "stop" }, reply: "stopping", shutdown: true });
    const refused = await run("stop\n", { routes });
    assert.deepEqual(refused.lines, [
      "ERR shutdown not allowed (start the server with --allow-shutdown)",
    ]);
    assert.equal(refused.shutdownRequested, false);
    const allowed = await run("stop\nPING\n", { routes, allowShutdown: true });
    assert.deepEqual(allowed.lines, ["stopping"]);
    assert.equal(allowed.shutdownRequested, true);
  });
});

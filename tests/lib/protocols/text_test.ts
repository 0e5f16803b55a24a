import assert from "node:assert/strict";
import { serve, type ServeOptions, type Server } from "../../../lib/server/server.ts";
import {
  TEXT_COMMANDS,
  textProtocol,
  type TextProtocolOptions,
} from "../../../lib/protocols/text.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { exchange, LineSession } from "../../_util/line_session.ts";
import { within } from "../../_util/cli.ts";

function start(
  options: TextProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<Server> {
  return serve({ port: 0, ...serveOptions }, textProtocol({ name: "unit", ...options }));
}

/** A route table from its rules (the format is tested in tests/lib/routes/routes_test.ts). */
function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }), "test routes");
}

Deno.test("textProtocol", async (t) => {
  await t.step("PING in any case gets PONG, lowercase ping gets pong", async () => {
    await using server = await start();
    assert.deepEqual(
      await exchange(server.addr, ["PING", "ping", "Ping", "pInG", "PING now", "ping "]),
      ["PONG", "pong", "PONG", "PONG", "PONG", "pong"],
    );
  });

  await t.step("HELLO answers the name, TIME an ISO 8601 instant", async () => {
    await using server = await start();
    const [hello, time, lower] = await exchange(server.addr, ["HELLO", "TIME", "hello"]);
    assert.equal(hello, "unit");
    assert.equal(lower, "unit");
    assert.match(time!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(new Date(time!).toISOString(), time);
  });

  await t.step("HELLO defaults to the host name", async () => {
    await using server = await serve({ port: 0 }, textProtocol());
    assert.deepEqual(await exchange(server.addr, ["HELLO"]), [Deno.hostname()]);
  });

  await t.step("ECHO returns the rest of the line exactly, Unicode included", async () => {
    await using server = await start();
    assert.deepEqual(
      await exchange(server.addr, [
        "ECHO hello world",
        "echo  two  spaces ",
        "ECHO",
        "ECHO héllo ✓",
      ]),
      ["hello world", " two  spaces ", "", "héllo ✓"],
    );
  });

  await t.step("HELP lists the commands on one line", async () => {
    await using server = await start();
    assert.deepEqual(await exchange(server.addr, ["HELP"]), [
      "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]",
    ]);
    assert.deepEqual(TEXT_COMMANDS.length, 10);
    await using allowing = await start({ allowShutdown: true });
    assert.deepEqual(await exchange(allowing.addr, ["help"]), [
      "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT SHUTDOWN [t] [d]",
    ]);
  });

  for (const command of ["QUIT", "close", "Disconnect"]) {
    await t.step(
      `${command} says BYE, closes the connection, and the server stays up`,
      async () => {
        await using server = await start();
        await using session = await LineSession.open(server.addr);
        await session.write(`PING\n${command}\nPING\n`);
        // Everything after the command is ignored; the server closes without a half-close from us.
        assert.deepEqual(await session.readAll(), ["PONG", "BYE"]);
        assert.deepEqual(await exchange(server.addr, ["PING"]), ["PONG"]);
      },
    );
  }

  await t.step("[t]text answers text, [d] answers Done and closes", async () => {
    await using server = await start();
    await using session = await LineSession.open(server.addr);
    await session.write("[t]hello there\n[t]\n[T]x\n[d]\nPING\n");
    assert.deepEqual(await session.readAll(), ["hello there", "", "x", "Done"]);
    assert.deepEqual(await exchange(server.addr, ["[d]"]), ["Done"]);
  });

  await t.step("unknown commands and empty lines get one ERR line each", async () => {
    await using server = await start();
    const long = "X".repeat(500);
    assert.deepEqual(await exchange(server.addr, ["FOO bar", "", long, "PING"]), [
      "ERR unknown command: FOO",
      "ERR empty line",
      `ERR unknown command: ${"X".repeat(64)}...`,
      "PONG",
    ]);
    assert.equal(server.stats.errors, 3);
  });

  await t.step(
    "spaces and tabs around the command word are skipped, for every command",
    async () => {
      await using server = await start();
      assert.deepEqual(
        await exchange(server.addr, [
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
        await using session = await LineSession.open(server.addr);
        await session.write(`${quit}\nPING\n`);
        assert.deepEqual(await session.readAll(), [quit.includes("[d]") ? "Done" : "BYE"], quit);
      }
    },
  );

  await t.step("ECHO's text is everything after its one separator, spacing kept", async () => {
    await using server = await start();
    assert.deepEqual(
      await exchange(server.addr, [
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
    await using server = await start({ allowShutdown: true });
    // Each of these upper-cases to a command through Unicode case mapping: "ſ" (U+017F) to "S",
    // "ı" (U+0131) to "I", "ﬅ" (U+FB05) to "ST"; "İ" (U+0130) and the Kelvin sign (U+212A) are
    // letters that lower-case to ASCII. None is a command.
    const words = ["ſHUTDOWN", "ſhutdown", "pıng", "quıt", "DIſCONNECT", "ﬅ", "PİNG", "\u212Aill"];
    assert.deepEqual(
      await exchange(server.addr, [...words, "ECHO still here", "ping"]),
      [...words.map((word) => `ERR unknown command: ${word}`), "still here", "pong"],
    );
    assert.deepEqual(await exchange(server.addr, ["PiNg", "hElLo"]), ["PONG", "unit"]);
  });

  await t.step("invalid UTF-8 gets ERR invalid encoding, or the configured reply", async () => {
    await using server = await start();
    await using session = await LineSession.open(server.addr);
    await session.write(
      new Uint8Array([0xff, 0xfe, 0x0a, 0x45, 0x43, 0x48, 0x4f, 0x20, 0xc3, 0x0a]),
    );
    await session.write("PING\n");
    await session.closeWrite();
    assert.deepEqual(await session.readAll(), [
      "ERR invalid encoding",
      "ERR invalid encoding",
      "PONG",
    ]);

    await using custom = await start({ invalidReply: "invalid" });
    await using second = await LineSession.open(custom.addr);
    await second.write(new Uint8Array([0x80, 0x0a]));
    await second.closeWrite();
    assert.deepEqual(await second.readAll(), ["invalid"]);
  });

  await t.step("SHUTDOWN is refused unless allowed", async () => {
    await using server = await start();
    assert.deepEqual(await exchange(server.addr, ["SHUTDOWN", "PING"]), [
      "ERR shutdown not allowed (start the server with --allow-shutdown)",
      "PONG",
    ]);
  });

  await t.step("SHUTDOWN, when allowed, answers and stops the server", async () => {
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
    await using server = await start();
    await using session = await LineSession.open(server.addr);
    await session.write("PING\r\nECHO a\r\n");
    await session.closeWrite();
    assert.deepEqual(await session.readAll(), ["PONG", "a"]);
  });

  await t.step("pipelined lines are answered in order", async () => {
    await using server = await start();
    const lines: string[] = [];
    const expected: string[] = [];
    for (let index = 0; index < 3000; index++) {
      const kind = index % 4;
      if (kind === 0) lines.push("PING"), expected.push("PONG");
      else if (kind === 1) lines.push(`ECHO ${index}`), expected.push(`${index}`);
      else if (kind === 2) lines.push(`ECHO é${index}`), expected.push(`é${index}`);
      else lines.push(`[t]${index}`), expected.push(`${index}`);
    }
    assert.deepEqual(await exchange(server.addr, lines), expected);
  });

  await t.step("routes come before built-ins", async () => {
    const routes = routesOf(
      { match: { exact: "PING" }, reply: ["route pong", "from {peer}"] },
      { match: { regex: "^add (?<a>\\d+) (?<b>\\d+)$" }, reply: "{a}+{b}" },
      { match: { prefix: "LEAVE" }, reply: "see you{rest}", close: true },
    );
    await using server = await start({ routes });
    await using session = await LineSession.open(server.addr);
    await session.write("PING\nping\nadd 1 2\nLEAVE now\nPING\n");
    const replies = await session.readAll();
    assert.equal(replies.length, 5);
    assert.equal(replies[0], "route pong");
    assert.match(replies[1]!, /^from 127\.0\.0\.1:\d+$/);
    assert.deepEqual(replies.slice(2), ["pong", "1+2", "see you now"]);
  });

  await t.step("a route program's lines are replies; its failure is one ERR line", async () => {
    const routes = routesOf(
      { match: { prefix: "up " }, run: { argv: ["tr", "a-z", "A-Z"], stdin: "{rest}" } },
      { match: { exact: "fail" }, run: { argv: ["false"] } },
    );
    await using server = await start({ routes });
    assert.deepEqual(await exchange(server.addr, ["up a; `b`", "fail", "PING", "up c"]), [
      "A; `B`",
      "ERR program exited with status 1",
      "PONG",
      "C",
    ]);
    assert.equal(server.stats.errors, 1);
  });

  await t.step("a shutdown route still needs allowShutdown", async () => {
    const routes = routesOf({ match: { exact: "stop" }, reply: "stopping", shutdown: true });
    await using refusing = await start({ routes });
    assert.deepEqual(await exchange(refusing.addr, ["stop"]), [
      "ERR shutdown not allowed (start the server with --allow-shutdown)",
    ]);
    await using server = await start({ routes, allowShutdown: true });
    assert.deepEqual(await exchange(server.addr, ["stop", "PING"]), ["stopping"]);
    await within(server.finished, 10_000, "server stop");
  });
});

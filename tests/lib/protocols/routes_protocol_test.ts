/**
 * A routes file as a whole protocol, through the text and json protocols: greeting, farewells
 * (close, idle timeout, shutdown), `"builtins": false`, the fallback, lines that are not UTF-8 or
 * too long, the placeholders, and `HELP` listing exactly what is usable (with the repl's completion
 * following it).
 */
import assert from "node:assert/strict";
import {
  jsonProtocol,
  protocolFromConfig,
  Routes,
  runLines,
  serve,
  textProtocol,
} from "../../../lib/mod.ts";
import { LineSession, WAIT_MS } from "../../_support/mod.ts";
import { commandsFromHelpReply, completeLine } from "../../../commands/_repl/completion.ts";

function routes(file: unknown): Routes {
  return Routes.parse(JSON.stringify(file), "protocol.json");
}

function port(server: { addr: Deno.Addr }): number {
  return (server.addr as Deno.NetAddr).port;
}

const HOST = (() => {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
})();

Deno.test("a routes file as a text protocol", async (t) => {
  await t.step("greeting, no built-ins, case-sensitive routes, the fallback", async () => {
    const protocol = textProtocol({
      routes: routes({
        name: "alpha",
        greeting: [
          "MSG Welcome aboard !",
          "you are {peer}, client {id} of {connections} on {name}",
        ],
        builtins: false,
        routes: [
          { match: { exact: "HELLO" }, reply: "MSG Hello from {host}" },
          { match: { exact: "CLOSE" }, reply: "MSG Bye", close: true },
        ],
        fallback: { reply: "Command not found: {line} (line {lineNumber})" },
      }),
    });
    const result = await runLines(protocol, "HELLO\nclose\nPING\nQUIT\nCLOSE\nHELLO\n");
    assert.deepEqual(result.lines, [
      "MSG Welcome aboard !",
      "you are 127.0.0.1:50000, client 1 of 1 on alpha",
      `MSG Hello from ${HOST}`,
      "Command not found: close (line 2)",
      "Command not found: PING (line 3)",
      "Command not found: QUIT (line 4)",
      "MSG Bye",
    ]);
    assert.equal(result.closed, true);
  });

  await t.step("without a fallback, what no route answers is an unknown command", async () => {
    const protocol = textProtocol({
      routes: routes({ builtins: false, routes: [{ match: { exact: "a" }, reply: "b" }] }),
    });
    assert.deepEqual((await runLines(protocol, "a\nPING\n\n")).lines, [
      "b",
      "ERR unknown command: PING",
      "ERR empty line",
    ]);
  });

  await t.step("with built-ins, the fallback answers after them", async () => {
    const protocol = textProtocol({
      name: "n",
      routes: routes({ fallback: { reply: "?? {0}" } }),
    });
    assert.deepEqual((await runLines(protocol, "HELLO\nnope\n")).lines, ["n", "?? nope"]);
  });

  await t.step("the close farewell follows the client's end, and every close", async () => {
    const file = routes({
      farewell: { close: ["bye {id}", "see you"] },
      routes: [{ match: { exact: "out" }, reply: "leaving", close: true }],
    });
    assert.deepEqual((await runLines(textProtocol({ routes: file }), "PING\n")).lines, [
      "PONG",
      "bye 1",
      "see you",
    ]);
    assert.deepEqual((await runLines(textProtocol({ routes: file }), "out\nPING\n")).lines, [
      "leaving",
      "bye 1",
      "see you",
    ]);
    assert.deepEqual((await runLines(textProtocol({ routes: file }), "QUIT\n")).lines, [
      "BYE",
      "bye 1",
      "see you",
    ]);
    assert.deepEqual((await runLines(textProtocol({ routes: file }), "[d]\n")).lines, [
      "Done!",
      "bye 1",
      "see you",
    ]);
  });

  await t.step("explicit routes for a line that is not UTF-8 and for a line too long", async () => {
    const protocol = textProtocol({
      routes: routes({
        routes: [
          { match: { regex: "" }, reply: "text: {line}" },
          { match: { undecodable: true }, reply: "not text (line {lineNumber})" },
          { match: { tooLong: true }, reply: "too long, bye", close: true },
        ],
      }),
    });
    const input = new Uint8Array([
      ...new TextEncoder().encode("ok\n"),
      0xff,
      0xfe,
      0x0a,
      ...new TextEncoder().encode(`${"x".repeat(40)}\nnever\n`),
    ]);
    const result = await runLines(protocol, input, { maxLineBytes: 16 });
    assert.deepEqual(result.lines, ["text: ok", "not text (line 2)", "too long, bye"]);
    assert.equal(result.closed, true);
  });

  await t.step("--invalid-reply wins over the file's undecodable route", async () => {
    const protocol = textProtocol({
      invalidReply: "BAD",
      routes: routes({ routes: [{ match: { undecodable: true }, reply: "file's" }] }),
    });
    assert.deepEqual((await runLines(protocol, new Uint8Array([0xff, 0x0a]))).lines, ["BAD"]);
  });

  await t.step("placeholders: {time}, {0}…{9} and named groups", async () => {
    const protocol = textProtocol({
      routes: routes({
        routes: [{
          match: { regex: "^(a)(b)(c)(d)(e)(f)(g)(h)(?<nine>i)$" },
          reply: ["{0}|{1}{5}{9}|{nine}", "{time}"],
        }],
      }),
    });
    const [groups, time] = (await runLines(protocol, "abcdefghi\n")).lines;
    assert.equal(groups, "abcdefghi|aei|i");
    assert.ok(Math.abs(Date.parse(time!) - Date.now()) < 60_000, time);
  });

  await t.step("{connections} counts the server's open connections", async () => {
    await using server = await serve(
      { port: 0 },
      textProtocol({
        routes: routes({ routes: [{ match: { exact: "n" }, reply: "{connections}" }] }),
      }),
    );
    await using first = await LineSession.open(port(server));
    await first.write("n\n");
    assert.equal(await first.readLine(), "1");
    await using second = await LineSession.open(port(server));
    await second.write("n\n");
    assert.equal(await second.readLine(), "2");
  });

  await t.step("the idle and shutdown farewells replace the server's own lines", async () => {
    const file = routes({
      farewell: { idle: "quiet too long, {peer}", shutdown: ["going down", "bye {id}"] },
    });
    await using idle = await serve({ port: 0, idleTimeoutMs: 100 }, textProtocol({ routes: file }));
    await using quiet = await LineSession.open(port(idle));
    assert.match((await quiet.readAll(WAIT_MS)).join("\n"), /^quiet too long, 127\.0\.0\.1:\d+$/);

    const server = await serve({ port: 0 }, textProtocol({ routes: file }));
    await using waiting = await LineSession.open(port(server));
    await waiting.write("PING\n");
    assert.equal(await waiting.readLine(), "PONG");
    await server.shutdown();
    assert.deepEqual(await waiting.readAll(WAIT_MS), ["going down", "bye 1"]);
  });

  await t.step("the shutdown farewell comes after the reply being made", async () => {
    const file = routes({
      farewell: { shutdown: "going down" },
      routes: [{
        match: { exact: "slow" },
        run: { argv: ["sh", "-c", "read line; echo started; sleep 0.2; echo done"] },
      }],
    });
    const server = await serve({ port: 0 }, textProtocol({ routes: file }));
    await using busy = await LineSession.open(port(server));
    await busy.write("slow\n");
    // The line is being answered (its program runs) when the shutdown begins.
    assert.equal(await busy.readLine(), "started");
    await server.shutdown();
    assert.deepEqual(await busy.readAll(WAIT_MS), ["done", "going down"]);
  });

  await t.step("the command line's greeting replaces the file's", async () => {
    const protocol = await protocolFromConfig({
      protocol: "text",
      greeting: "from the flag",
      routesPath: await writeFile({ greeting: "from the file" }),
    });
    assert.deepEqual((await runLines(protocol, "PING\n")).lines, ["from the flag", "PONG"]);
    await removeWritten();
  });

  await t.step("the file's name, shutdown permission and protocol; options win", async () => {
    const path = await writeFile({
      protocol: "json",
      name: "from-file",
      allowShutdown: true,
      routes: [{ match: { exact: "x" }, reply: "y" }],
    });
    const text = await protocolFromConfig({ protocol: "text", routesPath: path });
    assert.deepEqual((await runLines(text, "HELLO\nx\n")).lines, ["from-file", "y"]);
    const named = await protocolFromConfig({ protocol: "text", routesPath: path, name: "flag" });
    assert.deepEqual((await runLines(named, "HELLO\n")).lines, ["flag"]);
    const stopping = await runLines(text, "SHUTDOWN\n");
    assert.deepEqual(stopping.lines, ["BYE shutting down"]);
    assert.equal(stopping.shutdownRequested, true);
    const refused = await protocolFromConfig({
      protocol: "text",
      routesPath: path,
      allowShutdown: false,
    });
    assert.match((await runLines(refused, "SHUTDOWN\n")).lines[0]!, /^ERR shutdown not allowed/);
    await removeWritten();
  });
});

Deno.test("HELP lists exactly the commands usable, and the repl completes them", async (t) => {
  const file = {
    allowShutdown: true,
    routes: [
      { match: { exact: "status" }, reply: "ok" },
      { match: { prefix: "say " }, reply: "{rest}" },
      { match: { regex: "^add (\\d+) (\\d+)$" }, reply: "{1}+{2}", help: "add" },
      { match: { regex: "^unlisted" }, reply: "x" },
      { match: { exact: "PING" }, reply: "my pong" },
      { match: { command: "greet" }, reply: "hi" },
      { match: { undecodable: true }, reply: "?" },
    ],
  };

  await t.step(
    "text: built-ins, SHUTDOWN when allowed, text routes; no command routes",
    async () => {
      const [help] = (await runLines(textProtocol({ routes: routes(file) }), "HELP\n")).lines;
      assert.equal(
        help,
        "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT SHUTDOWN [t] [d] status say add",
      );
      const names = commandsFromHelpReply(help!)!;
      assert.deepEqual(completeLine("sa", names), [["say"], "sa"]);
      assert.deepEqual(completeLine("gr", names), [[], "gr"]);
    },
  );

  await t.step("text without built-ins: the routes only", () => {
    const help = routes({
      builtins: false,
      routes: [...file.routes, { match: { exact: "HELP" }, reply: "commands: {name}" }],
    }).textCommands;
    assert.deepEqual(help, ["status", "say", "add", "PING", "HELP"]);
  });

  await t.step("json: built-ins, shutdown when allowed, command routes", async () => {
    const [response] = (await runLines(
      jsonProtocol({ routes: routes(file) }),
      '{"command":"help"}\n',
    )).lines;
    assert.deepEqual(JSON.parse(response!).message, [
      "ping",
      "echo",
      "time",
      "hello",
      "help",
      "shutdown",
      "greet",
    ]);
  });
});

Deno.test("a routes file as a json protocol", async (t) => {
  await t.step("no built-ins, a fallback, a greeting and the close farewell", async () => {
    const protocol = jsonProtocol({
      routes: routes({
        builtins: false,
        greeting: '{{"hello":"{name}"}}',
        name: "svc",
        farewell: { close: '{{"bye":{id}}}' },
        routes: [{ match: { command: "add" }, reply: "{args.a}+{args.b}", extra: { ok: true } }],
        fallback: { reply: "no such command: {command}" },
      }),
    });
    const result = await runLines(
      protocol,
      '{"command":"add","args":{"a":1,"b":2},"id":1}\n{"command":"ping"}\n',
    );
    assert.deepEqual(result.lines.map((line) => JSON.parse(line)), [
      { hello: "svc" },
      { status: 0, message: "1+2", extra: { ok: true }, id: 1 },
      { status: 0, message: "no such command: ping", extra: null },
      { bye: 1 },
    ]);
  });

  await t.step("without a fallback, an unknown command is status 1", async () => {
    const protocol = jsonProtocol({ routes: routes({ builtins: false }) });
    const [response] = (await runLines(protocol, '{"command":"ping"}\n')).lines;
    assert.deepEqual(JSON.parse(response!), {
      status: 1,
      message: 'unknown command: "ping"',
      extra: null,
    });
  });
});

const written: string[] = [];

/** Writes a routes file, removed by the test that made it ({@linkcode removeWritten}). */
async function writeFile(file: unknown): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "linesock-protocol-", suffix: ".jsonc" });
  written.push(path);
  await Deno.writeTextFile(path, JSON.stringify(file));
  return path;
}

async function removeWritten(): Promise<void> {
  for (const path of written.splice(0)) await Deno.remove(path);
}

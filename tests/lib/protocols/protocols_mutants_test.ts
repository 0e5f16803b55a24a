/**
 * Issue #20, the `protocols` area of mutation testing (docs/mutation.md, "lib/protocols"): the
 * behaviours of the text, json and echo protocols that no other test pinned down, each found by a
 * mutant that survived the rest of tests/lib/protocols/. Requests go through the socket-free harness
 * (runLines); the farewells that only a server sends (idle timeout, shutdown) through a real server
 * and a real socket.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ConnectionContext, runLines, serve } from "../../../lib/server/mod.ts";
import { textProtocol, type TextProtocolOptions } from "../../../lib/protocols/text.ts";
import { jsonProtocol, type JsonProtocolOptions } from "../../../lib/protocols/json.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { LineSession } from "../../_support/line_session.ts";
import { WAIT_MS } from "../../_support/timeouts.ts";

/** A routes file from its JSON value. */
function file(value: unknown): Routes {
  return Routes.parse(JSON.stringify(value), "mutants.json");
}

/** The text protocol's replies (the server named "unit") to `input`. */
async function text(input: string | Uint8Array, options: TextProtocolOptions = {}) {
  return (await runLines(textProtocol({ name: "unit", ...options }), input)).lines;
}

/** The json protocol's responses (the server named "unit") to request lines, parsed. */
async function json(
  lines: string[],
  options: JsonProtocolOptions = {},
): Promise<Record<string, unknown>[]> {
  const input = lines.map((line) => `${line}\n`).join("");
  const result = await runLines(jsonProtocol({ name: "unit", ...options }), input);
  return result.lines.map((line) => JSON.parse(line));
}

Deno.test("text protocol: the byte fast path answers PING and ECHO only", async (t) => {
  await t.step("PING with one letter off, or a fifth letter, is an unknown command", async () => {
    const words = ["XING", "PXNG", "PIXG", "PINX", "PINGS", "pings", "ping!"];
    assert.deepEqual(
      await text(words.map((word) => `${word}\n`).join("")),
      words.map((word) => `ERR unknown command: ${word}`),
    );
  });

  await t.step("only the all-lowercase ping gets pong; any capital gets PONG", async () => {
    assert.deepEqual(await text("pIng\npiNg\npinG\nPing\nping\n"), [
      "PONG",
      "PONG",
      "PONG",
      "PONG",
      "pong",
    ]);
  });

  await t.step(
    "ECHO with one letter off, or without its space, is an unknown command",
    async () => {
      const words = ["XCHO", "EXHO", "ECXO", "ECHX", "ECHOx", "echo-"];
      assert.deepEqual(
        await text(words.map((word) => `${word} text\n`).join("")),
        words.map((word) => `ERR unknown command: ${word}`),
      );
      assert.deepEqual(await text("ECHOxyz\n"), ["ERR unknown command: ECHOxyz"]);
    },
  );

  await t.step("ECHO of a byte from 0x80 up that is not UTF-8 is an invalid line", async () => {
    for (const byte of [0x80, 0xbf, 0xc0, 0xff]) {
      const line = new Uint8Array([...new TextEncoder().encode("ECHO a"), byte, 0x0a]);
      assert.deepEqual(await text(line), ["ERR invalid encoding"], `byte ${byte}`);
    }
    // The last ASCII byte is echoed as it is.
    assert.deepEqual(await text("ECHO a\x7f\n"), ["a\x7f"]);
  });
});

Deno.test("text protocol: the [t] and [d] tags", async (t) => {
  await t.step("[D] in capitals closes like [d]", async () => {
    const result = await runLines(textProtocol({ name: "unit" }), "[D]\nPING\n");
    assert.deepEqual(result.lines, ["Done!"]);
    assert.equal(result.closed, true);
    assert.equal(result.reason, "client sent [d]");
  });

  await t.step("a tag needs both its brackets, and only t or d inside", async () => {
    const lines = ["(t]x", "[t)x", "[tx", "(d]", "[d)", "[x]", "[x]y", "[dd]"];
    assert.deepEqual(
      await text(lines.map((line) => `${line}\n`).join("")),
      lines.map((line) => `ERR unknown command: ${line}`),
    );
  });

  await t.step("[t] after blanks answers what follows it, blanks included", async () => {
    assert.deepEqual(await text(" \t[t] a \n[T]\t\n"), [" a ", "\t"]);
  });
});

Deno.test("text protocol: a routes file that only greets or says goodbye still counts", async (t) => {
  await t.step("a file with only a greeting: it is sent first", async () => {
    assert.deepEqual(await text("PING\n", { routes: file({ greeting: "hi {name}" }) }), [
      "hi unit",
      "PONG",
    ]);
  });

  await t.step("a file with only a close farewell: it follows the end of input", async () => {
    assert.deepEqual(await text("PING\n", { routes: file({ farewell: { close: "bye" } }) }), [
      "PONG",
      "bye",
    ]);
  });

  await t.step("a file with only an idle farewell: it replaces the idle timeout's", async () => {
    const routes = file({ farewell: { idle: "quiet, bye" } });
    await using server = await serve(
      { port: 0, idleTimeoutMs: 100 },
      textProtocol({ name: "unit", routes }),
    );
    await using session = await LineSession.open(server.addr);
    assert.deepEqual(await session.readAll(WAIT_MS), ["quiet, bye"]);
  });

  await t.step("a file with only a shutdown farewell: it replaces the server's", async () => {
    const routes = file({ farewell: { shutdown: "going down" } });
    const server = await serve({ port: 0 }, textProtocol({ name: "unit", routes }));
    await using session = await LineSession.open(server.addr);
    await session.write("PING\n");
    assert.equal(await session.readLine(), "PONG");
    const stopping = server.shutdown();
    assert.equal(await session.readLine(WAIT_MS), "going down");
    // Draining, the server waits for the client's end (or its grace period) to close.
    await session.closeWrite();
    assert.deepEqual(await session.readAll(WAIT_MS), []);
    await stopping;
  });

  await t.step("without built-ins and text routes, PING is no command", async () => {
    const routes = file({ builtins: false, greeting: "hello" });
    assert.deepEqual(await text(`PING\nping\nECHO x\n\n  \n${"Y".repeat(70)} z\n`, { routes }), [
      "hello",
      "ERR unknown command: PING",
      "ERR unknown command: ping",
      "ERR unknown command: ECHO",
      "ERR empty line",
      "ERR empty line",
      `ERR unknown command: ${"Y".repeat(64)}...`,
    ]);
  });

  await t.step(
    "with built-ins, an empty line is theirs: the fallback does not get it",
    async () => {
      const routes = file({ fallback: { reply: "fallback: {line}" } });
      assert.deepEqual(await text("\n  \nnope\n", { routes }), [
        "ERR empty line",
        "ERR empty line",
        "fallback: nope",
      ]);
    },
  );

  await t.step("a route for a built-in's name is listed once by HELP", async () => {
    const routes = file({
      routes: [{ match: { exact: "HELLO" }, reply: "mine" }, {
        match: { exact: "extra" },
        reply: "x",
      }],
    });
    assert.deepEqual(await text("HELP\nHELLO\n", { routes }), [
      "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d] extra",
      "mine",
    ]);
  });
});

const EXAMPLE = 'like {"command": "ping"}';

Deno.test("json protocol: the exact response to each malformed request", async (t) => {
  await t.step("not JSON, blank, not an object, no command: status 2 and its message", async () => {
    const responses = await json([
      "   ",
      "\t",
      "null",
      "[]",
      "42",
      '{"command":""}',
      '{"command":null}',
      '{"id":1}',
    ]);
    assert.deepEqual(responses, [
      { status: 2, message: `empty line: send one JSON object per line, ${EXAMPLE}`, extra: null },
      { status: 2, message: `empty line: send one JSON object per line, ${EXAMPLE}`, extra: null },
      { status: 2, message: `the request must be a JSON object, ${EXAMPLE}`, extra: null },
      { status: 2, message: `the request must be a JSON object, ${EXAMPLE}`, extra: null },
      { status: 2, message: `the request must be a JSON object, ${EXAMPLE}`, extra: null },
      {
        status: 2,
        message: `the request needs "command" (a non-empty string), ${EXAMPLE}`,
        extra: null,
      },
      {
        status: 2,
        message: `the request needs "command" (a non-empty string), ${EXAMPLE}`,
        extra: null,
      },
      {
        status: 2,
        message: `the request needs "command" (a non-empty string), ${EXAMPLE}`,
        extra: null,
        id: 1,
      },
    ]);
  });

  await t.step("malformed JSON names the parser's error and the example", async () => {
    const [response] = await json(["{oops"]);
    assert.equal(response!.status, 2);
    let parserMessage = "";
    try {
      JSON.parse("{oops");
    } catch (error) {
      parserMessage = (error as Error).message;
    }
    assert.equal(
      response!.message,
      `malformed JSON (${parserMessage}): send one JSON object per line, ${EXAMPLE}`,
    );
  });

  await t.step("invalid UTF-8 and too deep a request: their exact messages", async () => {
    const result = await runLines(
      jsonProtocol({ name: "unit" }),
      new Uint8Array([0x7b, 0xc3, 0x7d, 0x0a, ...new TextEncoder().encode(`${"[".repeat(65)}\n`)]),
    );
    assert.deepEqual(result.lines.map((line) => JSON.parse(line)), [
      { status: 2, message: "invalid encoding: the line is not valid UTF-8", extra: null },
      {
        status: 2,
        message: "nesting deeper than 64 levels (arrays and objects inside each other): " +
          "the request was not parsed",
        extra: null,
      },
    ]);
    assert.equal(result.stats.errors, 2);
  });

  await t.step("args: null counts as no args; echo without text says how", async () => {
    assert.deepEqual(
      await json([
        '{"command":"ping","args":null}',
        '{"command":"echo","args":null}',
        '{"command":"echo","args":"hi"}',
        '{"command":"echo","args":{"text":null}}',
      ]),
      [
        { status: 0, message: "pong", extra: null },
        {
          status: 3,
          message:
            'echo needs "args": {"text": ...}, like {"command": "echo", "args": {"text": "hi"}}',
          extra: null,
        },
        { status: 3, message: '"args" must be a JSON object when given', extra: null },
        { status: 0, message: null, extra: null },
      ],
    );
  });

  await t.step("an unknown command's name is cut to 64 characters", async () => {
    const long = "n".repeat(100);
    assert.deepEqual(await json([`{"command":"${long}"}`]), [{
      status: 1,
      message: `unknown command: "${"n".repeat(64)}" (send {"command": "help"} for the list)`,
      extra: null,
    }]);
  });
});

Deno.test("json protocol: a routes file's actions and farewells", async (t) => {
  await t.step("a shutdown route: status 5 unless allowed, then it stops the server", async () => {
    const routes = file({
      routes: [{ match: { command: "stop" }, reply: "stopping", shutdown: true, extra: 1 }],
    });
    const refused = await runLines(
      jsonProtocol({ name: "unit", routes }),
      '{"command":"stop","id":1}\n{"command":"ping"}\n',
    );
    assert.deepEqual(refused.lines.map((line) => JSON.parse(line)), [
      {
        status: 5,
        message: "shutdown not allowed (start the server with --allow-shutdown)",
        extra: null,
        id: 1,
      },
      { status: 0, message: "pong", extra: null },
    ]);
    assert.equal(refused.shutdownRequested, false);
    assert.equal(refused.stats.errors, 1);
    const allowed = await runLines(
      jsonProtocol({ name: "unit", routes, allowShutdown: true }),
      '{"command":"stop","id":1}\n{"command":"ping"}\n',
    );
    assert.deepEqual(allowed.lines.map((line) => JSON.parse(line)), [
      { status: 0, message: "stopping", extra: 1, id: 1 },
    ]);
    assert.equal(allowed.shutdownRequested, true);
    assert.equal(allowed.closed, true);
  });

  await t.step("a closing route closes, then the close farewell follows", async () => {
    const routes = file({
      farewell: { close: "farewell" },
      routes: [{ match: { command: "bye" }, reply: ["a", "b"], close: true }],
    });
    const result = await runLines(
      jsonProtocol({ name: "unit", routes }),
      '{"command":"bye"}\n{"command":"ping"}\n',
    );
    assert.deepEqual(result.lines, ['{"status":0,"message":["a","b"],"extra":null}', "farewell"]);
    assert.equal(result.closed, true);
    assert.equal(result.reason, "closed by route");
  });

  await t.step("a file with only a greeting: it is sent first", async () => {
    const result = await runLines(
      jsonProtocol({ name: "unit", routes: file({ greeting: "hi {name}" }) }),
      '{"command":"ping"}\n',
    );
    assert.deepEqual(result.lines, ["hi unit", '{"status":0,"message":"pong","extra":null}']);
  });

  await t.step("a file with only a close farewell: it follows the end of input", async () => {
    const result = await runLines(
      jsonProtocol({ name: "unit", routes: file({ farewell: { close: "bye" } }) }),
      '{"command":"ping"}\n',
    );
    assert.deepEqual(result.lines, ['{"status":0,"message":"pong","extra":null}', "bye"]);
  });

  await t.step("a file with only an idle farewell: it replaces the idle timeout's", async () => {
    const routes = file({ farewell: { idle: "quiet, bye" } });
    await using server = await serve(
      { port: 0, idleTimeoutMs: 100 },
      jsonProtocol({ name: "unit", routes }),
    );
    await using session = await LineSession.open(server.addr);
    assert.deepEqual(await session.readAll(WAIT_MS), ["quiet, bye"]);
  });

  await t.step("a file with only a shutdown farewell: it replaces the server's", async () => {
    const routes = file({ farewell: { shutdown: "going down" } });
    const server = await serve({ port: 0 }, jsonProtocol({ name: "unit", routes }));
    await using session = await LineSession.open(server.addr);
    await session.write('{"command":"ping"}\n');
    assert.equal(await session.readLine(), '{"status":0,"message":"pong","extra":null}');
    const stopping = server.shutdown();
    assert.equal(await session.readLine(WAIT_MS), "going down");
    // Draining, the server waits for the client's end (or its grace period) to close.
    await session.closeWrite();
    assert.deepEqual(await session.readAll(WAIT_MS), []);
    await stopping;
  });

  await t.step("without a connection, the farewells give way to the server's error", () => {
    const protocol = jsonProtocol({
      name: "unit",
      routes: file({ farewell: { idle: "quiet", shutdown: "down" } }),
    });
    assert.equal(
      protocol.formatError!("idle_timeout", "idle timeout"),
      '{"status":4,"message":"idle timeout","extra":{"error":"idle_timeout"}}',
    );
    assert.equal(
      protocol.formatError!("shutting_down", "shutting down"),
      '{"status":4,"message":"shutting down","extra":{"error":"shutting_down"}}',
    );
  });
});

Deno.test("echo protocol: the line interface, for a caller that frames lines itself", () => {
  const protocol = echoProtocol();
  // The session relays chunks through onData; onLine still answers each line with its bytes, and
  // the protocol asks for no \r to be stripped.
  const line = new Uint8Array([0x61, 0x0d, 0xff]);
  assert.equal(protocol.onLine(line, undefined as never), line);
  assert.equal(protocol.stripCR, false);
});

Deno.test("json protocol: the depth limit past long strings, escapes and unterminated ones", async (t) => {
  const tooDeep = "nesting deeper than 64 levels (arrays and objects inside each other): " +
    "the request was not parsed";
  /** A request whose args hold `text`, then `levels` nested arrays (the request adds two). */
  const request = (text: string, levels: number) =>
    `{"command":"echo","args":{"text":${JSON.stringify(text)},"n":${"[".repeat(levels)}${
      "]".repeat(levels)
    }}}`;

  await t.step("strings of every length around 32 bytes, with escapes at their end", async () => {
    const texts: string[] = [];
    for (let length = 28; length <= 40; length++) {
      const x = "x".repeat(length);
      // Plain; an escaped quote then brackets; a final backslash (\\ before the closing quote);
      // a backslash then an escaped quote; many backslashes then brackets.
      texts.push(x, `${x}"${"[".repeat(70)}`, `${x}\\`, `${x}\\"{{{{`, `${x}${"\\".repeat(5)}]]]`);
    }
    texts.push(`${"\\".repeat(41)}${"[".repeat(70)}`, `${"[".repeat(40)}\\"${"{".repeat(70)}`);
    for (const text of texts) {
      const [shallow, deep] = await json([request(text, 62), request(text, 63)]);
      assert.deepEqual(shallow, { status: 0, message: text, extra: null }, JSON.stringify(text));
      assert.deepEqual(deep, { status: 2, message: tooDeep, extra: null }, JSON.stringify(text));
    }
  });

  await t.step("an unterminated string ends the scan: malformed JSON, not too deep", async () => {
    const lines = [
      `{"command":"${"x".repeat(70)}`,
      `{"command":"echo","args":{"text":"${"[".repeat(80)}`,
      `{"command":"echo","n":${"[1,".repeat(30)}"`,
    ];
    const responses = await json(lines);
    assert.equal(responses.length, lines.length);
    for (const [index, response] of responses.entries()) {
      assert.equal(response.status, 2, lines[index]);
      assert.match(response.message as string, /^malformed JSON \(/, lines[index]);
    }
  });

  await t.step("a byte order mark before the request is not JSON whitespace", async () => {
    const [response] = await json(['\uFEFF{"command":"echo","args":{"text":"x"}}']);
    assert.equal(response!.status, 2);
    assert.match(response!.message as string, /^malformed JSON \(/);
  });
});

Deno.test("json protocol: formatError with a routes file's idle and shutdown farewells", () => {
  const protocol = jsonProtocol({
    name: "unit",
    routes: file({ farewell: { idle: "quiet {id}", shutdown: "down {id}" } }),
  });
  // What routes see of a connection (the server gives the protocol its own).
  const context = {
    id: 7,
    peer: "127.0.0.1:50000",
    lineNumber: 1,
    connections: 1,
    signal: new AbortController().signal,
  } as unknown as ConnectionContext;
  assert.deepEqual(protocol.formatError!("idle_timeout", "idle timeout", context), ["quiet 7"]);
  assert.deepEqual(protocol.formatError!("shutting_down", "shutting down", context), ["down 7"]);
  // Every other condition keeps the protocol's own phrasing, farewells or not.
  for (const kind of ["line_too_long", "busy", "line_timeout", "internal"] as const) {
    assert.equal(
      protocol.formatError!(kind, "about it", context),
      JSON.stringify({
        status: kind === "line_too_long" ? 2 : 4,
        message: "about it",
        extra: { error: kind },
      }),
      kind,
    );
  }
});

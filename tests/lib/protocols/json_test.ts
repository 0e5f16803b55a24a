/**
 * The JSON protocol's responses, through the socket-free harness (runLines); what needs a socket
 * (stopping the server, the idle timeout, many clients at once) through a real server.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type ConnectionContext,
  runLines,
  type RunLinesOptions,
  type RunLinesResult,
  serve,
  type ServeOptions,
  type Server,
} from "../../../lib/server/mod.ts";
import {
  JSON_COMMANDS,
  JSON_MAX_DEPTH,
  jsonProtocol,
  type JsonProtocolOptions,
} from "../../../lib/protocols/json.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { fastPingReply } from "../../../lib/protocols/_json_fast_ping.ts";
import fc from "fast-check";
import { LineSession } from "../../_support/line_session.ts";
import { within } from "../../_support/cli.ts";

function start(
  options: JsonProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<Server> {
  return serve({ port: 0, ...serveOptions }, jsonProtocol({ name: "unit", ...options }));
}

/** Sends raw request lines to a server, half-closes, and parses every response line. */
async function askServer(server: Server, lines: string[]): Promise<Record<string, unknown>[]> {
  await using session = await LineSession.open(server.addr);
  const replies = await session.exchange(lines);
  return replies.map((line) => JSON.parse(line));
}

/** Runs the protocol (named "unit") over request lines without a socket. */
function run(
  lines: string[],
  options: JsonProtocolOptions = {},
  runOptions: RunLinesOptions = {},
): Promise<RunLinesResult> {
  const input = lines.map((line) => `${line}\n`).join("");
  return runLines(jsonProtocol({ name: "unit", ...options }), input, runOptions);
}

/** Every response to request lines, parsed. */
async function ask(
  lines: string[],
  options: JsonProtocolOptions = {},
  runOptions: RunLinesOptions = {},
): Promise<Record<string, unknown>[]> {
  return (await run(lines, options, runOptions)).lines.map((line) => JSON.parse(line));
}

function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }), "test routes");
}

Deno.test("jsonProtocol", async (t) => {
  await t.step("ping answers pong and echoes any id", async () => {
    assert.deepEqual(
      await ask([
        '{"command":"ping","id":1}',
        '{"command": "ping", "id": "a"}',
        '{"id": {"n": [1]}, "command": "PING"}',
        '{"command":"ping","id":null}',
        '{"command":"ping"}',
      ]),
      [
        { status: 0, message: "pong", extra: null, id: 1 },
        { status: 0, message: "pong", extra: null, id: "a" },
        { status: 0, message: "pong", extra: null, id: { n: [1] } },
        { status: 0, message: "pong", extra: null, id: null },
        { status: 0, message: "pong", extra: null },
      ],
    );
  });

  await t.step("the plain ping's response has a fixed form", async () => {
    assert.deepEqual((await run(['{"command":"ping"}', '{"command": "ping"}'])).lines, [
      '{"status":0,"message":"pong","extra":null}',
      '{"status":0,"message":"pong","extra":null}',
    ]);
  });

  await t.step("echo, time, hello and help", async () => {
    const [echo, time, hello, help] = await ask([
      '{"command":"echo","args":{"text":"hi ✓"},"id":2}',
      '{"command":"time"}',
      '{"command":"hello"}',
      '{"command":"help"}',
    ]);
    assert.deepEqual(echo, { status: 0, message: "hi ✓", extra: null, id: 2 });
    assert.equal(time!.status, 0);
    assert.equal(new Date(time!.message as string).toISOString(), time!.message);
    assert.deepEqual(hello, { status: 0, message: "unit", extra: null });
    assert.deepEqual(help, { status: 0, message: [...JSON_COMMANDS], extra: null });
  });

  await t.step("bad requests get status 2 or 3 and the connection carries on", async () => {
    const result = await run([
      "{not json",
      "[1, 2]",
      '"ping"',
      '{"id": 5}',
      '{"command": 7, "id": 6}',
      "",
      '{"command":"echo","args":[1]}',
      '{"command":"echo","args":{}}',
      '{"command":"ping","id":9}',
    ]);
    const replies = result.lines.map((line) => JSON.parse(line));
    assert.deepEqual(replies.map((reply) => reply.status), [2, 2, 2, 2, 2, 2, 3, 3, 0]);
    assert.match(
      replies[0]!.message as string,
      /^malformed JSON \(.+\): send one JSON object per line/,
    );
    assert.match(replies[1]!.message as string, /must be a JSON object/);
    assert.match(replies[3]!.message as string, /needs "command"/);
    assert.equal(replies[3]!.id, 5);
    assert.equal(replies[4]!.id, 6);
    assert.match(replies[5]!.message as string, /empty line/);
    assert.match(replies[6]!.message as string, /"args" must be a JSON object/);
    assert.match(replies[7]!.message as string, /echo needs "args": \{"text"/);
    assert.equal(replies[8]!.id, 9);
    assert.equal(result.stats.errors, 8);
  });

  await t.step("invalid UTF-8 gets status 2", async () => {
    const result = await runLines(jsonProtocol(), new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]));
    const [reply] = result.lines.map((line) => JSON.parse(line));
    assert.equal(reply.status, 2);
    assert.match(reply.message, /invalid encoding/);
  });

  await t.step("an unknown command gets status 1 naming it", async () => {
    const [reply] = await ask(['{"command":"launch","id":"x"}']);
    assert.deepEqual(reply, {
      status: 1,
      message: 'unknown command: "launch" (send {"command": "help"} for the list)',
      extra: null,
      id: "x",
    });
  });

  await t.step("shutdown: status 5 unless allowed, then it closes and asks for it", async () => {
    const refusing = await run(['{"command":"shutdown","id":1}', '{"command":"help"}']);
    const [refused, help] = refusing.lines.map((line) => JSON.parse(line));
    assert.equal(refused!.status, 5);
    assert.match(refused!.message as string, /--allow-shutdown/);
    assert.ok(!(help!.message as string[]).includes("shutdown"));
    assert.equal(refusing.shutdownRequested, false);

    const allowed = await run(['{"command":"shutdown","id":1}', '{"command":"ping"}'], {
      allowShutdown: true,
    });
    assert.deepEqual(allowed.lines.map((line) => JSON.parse(line)), [
      { status: 0, message: "shutting down", extra: null, id: 1 },
    ]);
    assert.equal(allowed.closed, true);
    assert.equal(allowed.shutdownRequested, true);
  });

  await t.step("shutdown, when allowed, stops the server", async () => {
    await using server = await start({ allowShutdown: true });
    const [reply] = await askServer(server, ['{"command":"shutdown","id":1}']);
    assert.deepEqual(reply, { status: 0, message: "shutting down", extra: null, id: 1 });
    await within(server.finished, 10_000, "server stop");
  });

  await t.step("engine errors are JSON too: line too long, then it carries on", async () => {
    const replies = await ask(
      [
        `{"command":"echo","args":{"text":"${"x".repeat(100)}"}}`,
        '{"command":"ping"}',
      ],
      {},
      { maxLineBytes: 64 },
    );
    assert.deepEqual(replies, [
      { status: 2, message: "line too long (limit 64 bytes)", extra: { error: "line_too_long" } },
      { status: 0, message: "pong", extra: null },
    ]);
  });

  await t.step("engine errors are JSON too: idle timeout", async () => {
    await using server = await start({}, { idleTimeoutMs: 100 });
    await using session = await LineSession.open(server.addr);
    await session.write('{"command":"ping"}\n{"comm');
    const replies = (await session.readAll()).map((line) => JSON.parse(line));
    assert.deepEqual(replies, [
      { status: 0, message: "pong", extra: null },
      { status: 4, message: "idle timeout", extra: { error: "idle_timeout" } },
    ]);
  });

  await t.step(
    "a request nested deeper than 64 levels is refused before it is parsed",
    async () => {
      const deep = "[".repeat(1024 * 1024);
      const nested = (levels: number) =>
        `{"command":"echo","args":{"text":"x","n":${"[".repeat(levels)}${
          "]".repeat(levels)
        }},"id":1}`;
      const replies = await ask(
        [
          deep,
          `{"command":"echo","args":{"text":"${"[{".repeat(50_000)}"},"id":2}`,
          // Escaped backslashes and quotes inside strings: the brackets after them are still text.
          JSON.stringify({ command: "echo", args: { text: '\\"' + "[".repeat(100) } }),
          nested(JSON_MAX_DEPTH - 2),
          nested(JSON_MAX_DEPTH - 1),
          `{"command":"ping","args":${'{"a":'.repeat(200)}1${"}".repeat(200)}}`,
          '{"command":"ping"}',
        ],
        {},
        { maxLineBytes: 2 * 1024 * 1024 },
      );
      const tooDeep = {
        status: 2,
        message: "nesting deeper than 64 levels (arrays and objects inside each other): the " +
          "request was not parsed",
        extra: null,
      };
      assert.deepEqual(replies[0], tooDeep);
      assert.deepEqual(replies[1], { status: 0, message: "[{".repeat(50_000), extra: null, id: 2 });
      assert.deepEqual(replies[2], { status: 0, message: '\\"' + "[".repeat(100), extra: null });
      assert.equal(replies[3]!.status, 0);
      assert.deepEqual(replies[4], tooDeep);
      assert.deepEqual(replies[5], tooDeep);
      assert.deepEqual(replies[6], { status: 0, message: "pong", extra: null });
    },
  );

  await t.step("property: refused exactly when the request nests deeper than 64 levels", () => {
    const protocol = jsonProtocol({ name: "unit" });
    const context = {
      id: 1,
      peer: "127.0.0.1:50000",
      lineNumber: 1,
      signal: new AbortController().signal,
      countError: () => {},
      close: () => {},
    } as unknown as ConnectionContext;
    const depthOf = (value: unknown): number =>
      typeof value !== "object" || value === null
        ? 0
        : 1 + Math.max(0, ...Object.values(value).map(depthOf));
    // Strings full of the characters that matter to the scan: quotes, backslashes, brackets.
    const tricky = fc.string({
      unit: fc.constantFrom('"', "\\", "[", "]", "{", "}", "a", "é", "\u2028", "\n"),
      maxLength: 80,
    });
    const leaf = fc.oneof(tricky, fc.integer(), fc.constantFrom(null, true, [], {}));
    const layer = fc.constantFrom("array", "object", "pair");
    // Around the limit: 55-70 layers (each one level deep) inside the request's two levels.
    const layers = fc.integer({ min: 55, max: 70 }).chain((count) =>
      fc.array(layer, { minLength: count, maxLength: count })
    );
    const value = fc.tuple(layers, leaf, tricky).map(
      ([kinds, inner, key]) =>
        kinds.reduce<unknown>(
          (acc, kind) =>
            kind === "array" ? [acc] : kind === "object" ? { [key]: acc } : [key, acc, {}],
          inner,
        ),
    );
    let refused = 0;
    fc.assert(
      fc.property(value, fc.constantFrom("", " ", "\t"), (nested, ws) => {
        const request = { command: "echo", args: { text: "t", v: nested } };
        const line = JSON.stringify(request, null, ws);
        const reply = JSON.parse(
          protocol.onLine(new TextEncoder().encode(line.replaceAll("\n", "")), context) as string,
        );
        if (depthOf(request) > JSON_MAX_DEPTH) {
          refused++;
          assert.equal(reply.status, 2);
          assert.match(reply.message, /^nesting deeper than 64 levels/);
        } else {
          assert.deepEqual(reply, { status: 0, message: "t", extra: null });
        }
      }),
      { numRuns: 3000 },
    );
    // Both sides of the limit were tried.
    assert.ok(refused > 300 && refused < 2700, `${refused} of 3000 refused`);
  });

  await t.step("8 clients sending 4 deep 1 MiB lines each all get the refusal", async () => {
    await using server = await start({}, { maxLineBytes: 2 * 1024 * 1024 });
    const deep = `${"[".repeat(1024 * 1024)}\n`.repeat(4);
    const all = await Promise.all(
      Array.from({ length: 8 }, async () => {
        await using session = await LineSession.open(server.addr);
        await session.write(`${deep}{"command":"ping","id":"after"}\n`);
        await session.closeWrite();
        return (await session.readAll()).map((line) => JSON.parse(line));
      }),
    );
    for (const replies of all) {
      assert.deepEqual(replies.map((reply) => reply.status), [2, 2, 2, 2, 0]);
      assert.match(replies[0].message, /^nesting deeper than 64 levels/);
      assert.equal(replies[4].id, "after");
    }
  });

  await t.step("command names fold ASCII letters only", async () => {
    const replies = await ask([
      '{"command":"PING","id":1}',
      '{"command":"Hello"}',
      '{"command":"p\u0131ng"}',
      '{"command":"P\u0130NG"}',
      '{"command":"\u017fhutdown"}',
      '{"command":"\u212Aill"}',
      '{"command":"ping"}',
    ], { allowShutdown: true });
    assert.deepEqual(replies.map((reply) => reply.status), [0, 0, 1, 1, 1, 1, 0]);
    assert.match(replies[2]!.message as string, /^unknown command: "pıng"/);
  });

  await t.step("a command route's extra goes with its successful responses", async () => {
    const routes = routesOf(
      { match: { command: "version" }, reply: "1.4.2", extra: { build: 42, tags: ["a"] } },
      { match: { command: "lines" }, reply: ["a", "b"], extra: "two" },
      {
        match: { commandRegex: "^up" },
        run: { argv: ["tr", "a-z", "A-Z"], stdin: "{args.t}" },
        extra: 1,
      },
      { match: { command: "broken" }, run: { argv: ["false"] }, extra: { never: true } },
      { match: { command: "nothing" }, reply: "n", extra: null },
      { match: { command: "bye" }, reply: "ciao", close: true, extra: [] },
    );
    const replies = await ask([
      '{"command":"version","id":"v"}',
      '{"command":"lines"}',
      '{"command":"upper","args":{"t":"ok"}}',
      '{"command":"broken","id":3}',
      '{"command":"nothing"}',
      '{"command":"ping"}',
      '{"command":"bye"}',
    ], { routes });
    assert.deepEqual(replies, [
      { status: 0, message: "1.4.2", extra: { build: 42, tags: ["a"] }, id: "v" },
      { status: 0, message: ["a", "b"], extra: "two" },
      { status: 0, message: "OK", extra: 1 },
      { status: 4, message: "program exited with status 1", extra: null, id: 3 },
      { status: 0, message: "n", extra: null },
      { status: 0, message: "pong", extra: null },
      { status: 0, message: "ciao", extra: [] },
    ]);
  });

  await t.step(
    "routes come first; program output becomes the message, failure status 4",
    async () => {
      const routes = routesOf(
        { match: { command: "ping" }, reply: "routed" },
        { match: { command: "list" }, reply: ["a", "b"] },
        { match: { command: "upper" }, run: { argv: ["tr", "a-z", "A-Z"], stdin: "{args.text}" } },
        { match: { command: "fail" }, run: { argv: ["false"] } },
        { match: { command: "bye" }, reply: "ciao", close: true },
      );
      const result = await run([
        '{"command":"ping","id":1}',
        '{"command":"list"}',
        '{"command":"upper","args":{"text":"ok"},"id":2}',
        '{"command":"fail","id":3}',
        '{"command":"hello"}',
        '{"command":"help"}',
        '{"command":"bye"}',
        '{"command":"ping"}',
      ], { routes });
      assert.equal(result.closed, true);
      const replies = result.lines.map((line) => JSON.parse(line));
      assert.deepEqual(replies, [
        { status: 0, message: "routed", extra: null, id: 1 },
        { status: 0, message: ["a", "b"], extra: null },
        { status: 0, message: "OK", extra: null, id: 2 },
        { status: 4, message: "program exited with status 1", extra: null, id: 3 },
        { status: 0, message: "unit", extra: null },
        { status: 0, message: [...JSON_COMMANDS, "list", "upper", "fail", "bye"], extra: null },
        { status: 0, message: "ciao", extra: null },
      ]);
    },
  );
});

Deno.test("fastPingReply", async (t) => {
  const decode = (bytes: Uint8Array | undefined) =>
    bytes === undefined ? undefined : new TextDecoder().decode(bytes);
  /** What the general path answers: the parsed id, stringified. */
  const general = (request: string) => {
    const { id } = JSON.parse(request);
    return JSON.stringify(
      Object.hasOwn(JSON.parse(request), "id")
        ? { status: 0, message: "pong", extra: null, id }
        : { status: 0, message: "pong", extra: null },
    );
  };

  await t.step("answers plain pings, with ids spliced byte for byte", () => {
    for (
      const request of [
        '{"command":"ping"}',
        '{"command": "ping"}',
        ' { "command" : "ping" } ',
        '{"command":"ping","id":7}',
        '{"id":-42,"command":"ping"}',
        '{"command":"ping","id":"req-1"}',
        '{"command":"ping", "id": null}',
        '{"command":"ping","id":true}',
        '{"command":"ping","id":0}',
        '{"command":"ping","id":123456789012345}',
      ]
    ) {
      assert.equal(decode(fastPingReply(new TextEncoder().encode(request))), general(request));
    }
  });

  await t.step("leaves everything else to the general path", () => {
    for (
      const request of [
        '{"command":"PING"}',
        '{"command":"ping","id":1.5}',
        '{"command":"ping","id":1e3}',
        '{"command":"ping","id":-0}',
        '{"command":"ping","id":007}',
        '{"command":"ping","id":1234567890123456}',
        '{"command":"ping","id":"a\\"b"}',
        '{"command":"ping","id":"é"}',
        '{"command":"ping","id":{"n":1}}',
        '{"command":"ping","id":1,"id":2}',
        '{"command":"ping","command":"ping"}',
        '{"command":"ping","args":{}}',
        '{"command":"ping",}',
        '{"command":"ping"} x',
        '{"command":"ping"',
        '{"id":1}',
        "",
      ]
    ) {
      assert.equal(fastPingReply(new TextEncoder().encode(request)), undefined, request);
    }
  });

  await t.step("property: whatever it answers is the protocol's own general answer", () => {
    // With routes the protocol never takes the fast path: every ping is parsed and stringified.
    const parsed = jsonProtocol({ routes: routesOf({ match: { command: "other" }, reply: "x" }) });
    const context = {
      id: 1,
      peer: "127.0.0.1:50000",
      lineNumber: 1,
      signal: new AbortController().signal,
      countError: () => {},
      close: () => {},
    } as unknown as ConnectionContext;
    const id = fc.oneof(
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double(),
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.constantFrom(null, true, false, "", -1, 0, 1e21),
      fc.jsonValue(),
    );
    const space = fc.constantFrom("", " ", "\t", "\r", "  ");
    fc.assert(
      fc.property(id, fc.boolean(), fc.boolean(), space, (value, withId, idFirst, ws) => {
        const command = `"command"${ws}:${ws}"ping"`;
        const idMember = `"id"${ws}:${ws}${JSON.stringify(value)}`;
        const members = withId ? (idFirst ? [idMember, command] : [command, idMember]) : [command];
        const request = new TextEncoder().encode(`${ws}{${ws}${members.join(`${ws},${ws}`)}${ws}}`);
        const fast = fastPingReply(request);
        const slow = parsed.onLine(request, context);
        assert.equal(typeof slow, "string");
        const expected = withId
          ? { status: 0, message: "pong", extra: null, id: JSON.parse(JSON.stringify(value)) }
          : { status: 0, message: "pong", extra: null };
        assert.equal(slow, JSON.stringify(expected));
        if (fast !== undefined) assert.equal(decode(fast), slow);
      }),
      { numRuns: 5000 },
    );
  });

  await t.step("property: whatever it answers equals the general path's answer", () => {
    const id = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.constantFrom(null, true, false),
      fc.bigInt().map((n) => Number(n)),
    );
    const space = fc.constantFrom("", " ", "\t", "  ");
    fc.assert(
      fc.property(id, fc.boolean(), fc.boolean(), space, (value, withId, idFirst, ws) => {
        const command = `"command"${ws}:${ws}"ping"`;
        const idMember = `"id":${ws}${JSON.stringify(value)}`;
        const members = withId ? (idFirst ? [idMember, command] : [command, idMember]) : [command];
        const request = `{${ws}${members.join(`,${ws}`)}${ws}}`;
        const fast = fastPingReply(new TextEncoder().encode(request));
        if (fast !== undefined) assert.equal(decode(fast), general(request));
      }),
      { numRuns: 2000 },
    );
  });
});

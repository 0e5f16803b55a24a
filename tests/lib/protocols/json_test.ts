import assert from "node:assert/strict";
import { serve, type ServeOptions, type Server } from "../../../lib/server.ts";
import {
  JSON_COMMANDS,
  jsonProtocol,
  type JsonProtocolOptions,
} from "../../../lib/protocols/json.ts";
import { Routes } from "../../../lib/routes.ts";
import { fastPingReply } from "../../../lib/protocols/_json_fast_ping.ts";
import fc from "fast-check";
import { LineSession } from "../../_util/line_session.ts";
import { within } from "../../_util/cli.ts";

function start(
  options: JsonProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<Server> {
  return serve({ port: 0, ...serveOptions }, jsonProtocol({ name: "unit", ...options }));
}

/** Sends raw request lines, half-closes, and parses every response line. */
async function ask(server: Server, lines: string[]): Promise<Record<string, unknown>[]> {
  await using session = await LineSession.open(server.addr);
  const replies = await session.exchange(lines);
  return replies.map((line) => JSON.parse(line));
}

function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }), "test routes");
}

Deno.test("jsonProtocol", async (t) => {
  await t.step("ping answers pong and echoes any id", async () => {
    await using server = await start();
    assert.deepEqual(
      await ask(server, [
        '{"command":"ping","id":1}',
        '{"command": "ping", "id": "a"}',
        '{"id": {"n": [1]}, "command": "PING"}',
        '{"command":"ping","id":null}',
        '{"command":"ping"}',
      ]),
      [
        { status: 0, message: "pong", id: 1 },
        { status: 0, message: "pong", id: "a" },
        { status: 0, message: "pong", id: { n: [1] } },
        { status: 0, message: "pong", id: null },
        { status: 0, message: "pong" },
      ],
    );
  });

  await t.step("the plain ping's response has a fixed form", async () => {
    await using server = await start();
    await using session = await LineSession.open(server.addr);
    assert.deepEqual(await session.exchange(['{"command":"ping"}', '{"command": "ping"}']), [
      '{"status":0,"message":"pong"}',
      '{"status":0,"message":"pong"}',
    ]);
  });

  await t.step("echo, time, hello and help", async () => {
    await using server = await start();
    const [echo, time, hello, help] = await ask(server, [
      '{"command":"echo","args":{"text":"hi ✓"},"id":2}',
      '{"command":"time"}',
      '{"command":"hello"}',
      '{"command":"help"}',
    ]);
    assert.deepEqual(echo, { status: 0, message: "hi ✓", id: 2 });
    assert.equal(time!.status, 0);
    assert.equal(new Date(time!.message as string).toISOString(), time!.message);
    assert.deepEqual(hello, { status: 0, message: "unit" });
    assert.deepEqual(help, { status: 0, message: [...JSON_COMMANDS] });
  });

  await t.step("bad requests get status 2 or 3 and the connection carries on", async () => {
    await using server = await start();
    const replies = await ask(server, [
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
    assert.equal(server.stats.errors, 8);
  });

  await t.step("invalid UTF-8 gets status 2", async () => {
    await using server = await start();
    await using session = await LineSession.open(server.addr);
    await session.write(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]));
    await session.closeWrite();
    const [reply] = (await session.readAll()).map((line) => JSON.parse(line));
    assert.equal(reply.status, 2);
    assert.match(reply.message, /invalid encoding/);
  });

  await t.step("an unknown command gets status 1 naming it", async () => {
    await using server = await start();
    const [reply] = await ask(server, ['{"command":"launch","id":"x"}']);
    assert.deepEqual(reply, {
      status: 1,
      message: 'unknown command: "launch" (send {"command": "help"} for the list)',
      id: "x",
    });
  });

  await t.step("shutdown: status 5 unless allowed, then it stops the server", async () => {
    await using refusing = await start();
    const [refused] = await ask(refusing, ['{"command":"shutdown","id":1}']);
    assert.equal(refused!.status, 5);
    assert.match(refused!.message as string, /--allow-shutdown/);

    await using server = await start({ allowShutdown: true });
    const [reply] = await ask(server, ['{"command":"shutdown","id":1}']);
    assert.deepEqual(reply, { status: 0, message: "shutting down", id: 1 });
    await within(server.finished, 10_000, "server stop");
    const [help] = await ask(refusing, ['{"command":"help"}']);
    assert.ok(!(help!.message as string[]).includes("shutdown"));
  });

  await t.step("engine errors are JSON too: line too long, then it carries on", async () => {
    await using server = await start({}, { maxLineBytes: 64 });
    const replies = await ask(server, [
      `{"command":"echo","args":{"text":"${"x".repeat(100)}"}}`,
      '{"command":"ping"}',
    ]);
    assert.deepEqual(replies, [
      { status: 2, message: "line too long (limit 64 bytes)", extra: { error: "line_too_long" } },
      { status: 0, message: "pong" },
    ]);
  });

  await t.step("engine errors are JSON too: idle timeout", async () => {
    await using server = await start({}, { idleTimeoutMs: 100 });
    await using session = await LineSession.open(server.addr);
    await session.write('{"command":"ping"}\n{"comm');
    const replies = (await session.readAll()).map((line) => JSON.parse(line));
    assert.deepEqual(replies, [
      { status: 0, message: "pong" },
      { status: 4, message: "idle timeout", extra: { error: "idle_timeout" } },
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
      await using server = await start({ routes });
      await using session = await LineSession.open(server.addr);
      await session.write(
        [
          '{"command":"ping","id":1}',
          '{"command":"list"}',
          '{"command":"upper","args":{"text":"ok"},"id":2}',
          '{"command":"fail","id":3}',
          '{"command":"hello"}',
          '{"command":"help"}',
          '{"command":"bye"}',
          '{"command":"ping"}',
        ].join("\n") + "\n",
      );
      const replies = (await session.readAll()).map((line) => JSON.parse(line));
      assert.deepEqual(replies, [
        { status: 0, message: "routed", id: 1 },
        { status: 0, message: ["a", "b"] },
        { status: 0, message: "OK", id: 2 },
        { status: 4, message: "program exited with status 1", id: 3 },
        { status: 0, message: "unit" },
        { status: 0, message: [...JSON_COMMANDS, "list", "upper", "fail", "bye"] },
        { status: 0, message: "ciao" },
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
        ? { status: 0, message: "pong", id }
        : { status: 0, message: "pong" },
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

/**
 * Issue #19: every response of the JSON protocol, whoever phrases it (a command, a route, a program,
 * the protocol's request checks, or the server's own errors and farewells), is one JSON object with
 * exactly the keys `status`, `message` and `extra`, plus `id` when the request had one. The replies
 * to requests are produced through the socket-free harness (runLines), the server's own errors and
 * farewells through a real server and a real socket.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  runLines,
  serve,
  type ServeOptions,
  type Server,
  type ServerErrorKind,
} from "../../../lib/server/mod.ts";
import { jsonProtocol, type JsonProtocolOptions } from "../../../lib/protocols/json.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { LineSession } from "../../_support/line_session.ts";
import { within } from "../../_support/cli.ts";

const KEYS = ["status", "message", "extra"];
const KEYS_WITH_ID = [...KEYS, "id"];

function start(
  options: JsonProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<Server> {
  return serve({ port: 0, ...serveOptions }, jsonProtocol({ name: "unit", ...options }));
}

/**
 * Parses a response line and checks its shape: exactly status, message and extra (and id when
 * `id` is given, with that value), in that order, and a numeric status.
 */
function response(line: string | null | undefined, id?: unknown): Record<string, unknown> {
  assert.ok(typeof line === "string", "a response line");
  const value = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(value), id === undefined ? KEYS : KEYS_WITH_ID, line);
  assert.equal(typeof value.status, "number", line);
  if (id !== undefined) assert.deepEqual(value.id, id, line);
  return value;
}

/** A server-side error or farewell: its status, and `extra.error` naming the condition. */
function serverError(line: string | null | undefined, status: number, kind: ServerErrorKind) {
  const value = response(line);
  assert.equal(value.status, status, line ?? "");
  assert.deepEqual(value.extra, { error: kind }, line ?? "");
  return value;
}

Deno.test("every JSON response has status, message and extra (and id when sent)", async (t) => {
  await t.step("commands, request errors, routes and programs, with and without id", async () => {
    const routes = Routes.parse(
      JSON.stringify({
        routes: [
          { match: { command: "version" }, reply: "1.0", extra: { build: 7 } },
          { match: { command: "plain" }, reply: "p" },
          { match: { command: "upper" }, run: { argv: ["tr", "a-z", "A-Z"], stdin: "{args.t}" } },
          { match: { command: "broken" }, run: { argv: ["false"] } },
          { match: { command: "stop" }, reply: "stopping", shutdown: true },
        ],
      }),
      "test routes",
    );
    // [request, expected status, expected extra]; each is sent once without an id and once with.
    const cases: [string, number, unknown][] = [
      ['"command":"ping"', 0, null],
      ['"command":"echo","args":{"text":"hi"}', 0, null],
      ['"command":"time"', 0, null],
      ['"command":"hello"', 0, null],
      ['"command":"help"', 0, null],
      ['"command":"version"', 0, { build: 7 }],
      ['"command":"plain"', 0, null],
      ['"command":"upper","args":{"t":"x"}', 0, null],
      ['"command":"launch"', 1, null],
      ['"nocommand":1', 2, null],
      ['"command":""', 2, null],
      ['"command":"echo","args":[1]', 3, null],
      ['"command":"echo"', 3, null],
      ['"command":"broken"', 4, null],
      ['"command":"shutdown"', 5, null],
      ['"command":"stop"', 5, null],
    ];
    const lines: string[] = [];
    for (const [members] of cases) lines.push(`{${members}}`, `{${members},"id":["r",1]}`);
    // Requests that cannot carry an id: not JSON, not an object, empty, too deep.
    lines.push("{oops", "[1]", "", "   ", "[".repeat(100));
    const protocol = jsonProtocol({ name: "unit", routes });
    const replies = (await runLines(protocol, lines.map((line) => `${line}\n`).join(""))).lines;
    assert.equal(replies.length, lines.length);
    for (const [index, [members, status, extra]] of cases.entries()) {
      for (const [offset, id] of [[0, undefined], [1, ["r", 1]]] as const) {
        const value = response(replies[2 * index + offset], id);
        assert.equal(value.status, status, members);
        assert.deepEqual(value.extra, extra, members);
      }
    }
    for (const line of replies.slice(2 * cases.length)) assert.equal(response(line).status, 2);
  });

  await t.step("a line over the limit, then invalid UTF-8", async () => {
    const result = await runLines(jsonProtocol({ name: "unit" }), [
      `{"command":"echo","args":{"text":"${"x".repeat(100)}"}}\n`,
      new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d, 0x0a]),
      '{"command":"ping","id":1}\n',
    ], { maxLineBytes: 64 });
    const [long, invalid, ping, ...rest] = result.lines;
    serverError(long, 2, "line_too_long");
    assert.equal(response(invalid).status, 2);
    assert.match(response(invalid).message as string, /invalid encoding/);
    assert.equal(response(ping, 1).status, 0);
    assert.deepEqual(rest, []);
  });

  await t.step("busy: every slot taken and no queue", async () => {
    await using server = await start({}, { maxClients: 1, queue: 0 });
    await using served = await LineSession.open(server.addr);
    await served.write('{"command":"ping"}\n');
    response(await served.readLine());
    await using refused = await LineSession.open(server.addr);
    const [line, ...rest] = await refused.readAll();
    serverError(line, 4, "busy");
    assert.deepEqual(rest, []);
  });

  await t.step("too many connections", async () => {
    await using server = await start({}, { maxConnections: 1 });
    await using served = await LineSession.open(server.addr);
    await served.write('{"command":"ping"}\n');
    response(await served.readLine());
    await using refused = await LineSession.open(server.addr);
    const [line, ...rest] = await refused.readAll();
    serverError(line, 4, "too_many_connections");
    assert.deepEqual(rest, []);
  });

  await t.step("idle timeout farewell", async () => {
    await using server = await start({}, { idleTimeoutMs: 100 });
    await using session = await LineSession.open(server.addr);
    await session.write('{"command":"ping","id":"i"}\n');
    const [ping, farewell, ...rest] = await session.readAll();
    assert.equal(response(ping, "i").status, 0);
    serverError(farewell, 4, "idle_timeout");
    assert.deepEqual(rest, []);
  });

  await t.step("line timeout farewell: a line that never ends", async () => {
    await using server = await start({}, { lineTimeoutMs: 100 });
    await using session = await LineSession.open(server.addr);
    await session.write('{"command":"ping","id":"l"}\n{"command":"pi');
    const [ping, farewell, ...rest] = await session.readAll();
    assert.equal(response(ping, "l").status, 0);
    serverError(farewell, 4, "line_timeout");
    assert.deepEqual(rest, []);
  });

  await t.step("too many connections from one address", async () => {
    await using server = await start({}, { maxConnectionsPerAddress: 1 });
    await using served = await LineSession.open(server.addr);
    await served.write('{"command":"ping"}\n');
    response(await served.readLine());
    await using refused = await LineSession.open(server.addr);
    const [line, ...rest] = await refused.readAll();
    serverError(line, 4, "too_many_connections");
    assert.deepEqual(rest, []);
  });

  await t.step("shutdown: the command's reply, and the farewell to a waiting client", async () => {
    await using server = await start({ allowShutdown: true }, { maxClients: 1, queue: 1 });
    await using served = await LineSession.open(server.addr);
    await served.write('{"command":"ping"}\n');
    response(await served.readLine());
    await using waiting = await LineSession.open(server.addr);
    // The queue (1) is full once `waiting` is in it: a third client is refused at once, which
    // shows that the server took `waiting` into the queue before.
    await using third = await LineSession.open(server.addr);
    serverError((await third.readAll())[0], 4, "busy");
    await served.write('{"command":"shutdown","id":0}\n');
    const [bye, ...more] = await served.readAll();
    assert.equal(response(bye, 0).status, 0);
    assert.equal(response(bye, 0).message, "shutting down");
    assert.deepEqual(more, []);
    const [farewell, ...rest] = await waiting.readAll();
    serverError(farewell, 4, "shutting_down");
    assert.deepEqual(rest, []);
    // The server lingers until its clients close (at most 2 s): close them, then it stops.
    for (const session of [served, waiting, third]) session.close();
    await within(server.finished, 10_000, "server stop");
  });

  await t.step("an invalid PROXY header", async () => {
    await using server = await start({}, { proxyProtocol: true });
    for (
      const header of [
        '{"command":"ping"}\n',
        "PROXY TCP6 ::::::: ::1 1 2\r\n",
        "PROXY TCP4 01.2.3.4 127.0.0.1 1 2\r\n",
      ]
    ) {
      await using session = await LineSession.open(server.addr);
      await session.write(header);
      const [line, ...rest] = await session.readAll();
      serverError(line, 2, "invalid_proxy_header");
      assert.deepEqual(rest, []);
    }
    await using good = await LineSession.open(server.addr);
    const replies = await good.exchange([
      "PROXY TCP6 2001:db8::7 ::1 40000 1991\r",
      '{"command":"ping","id":2}',
    ]);
    assert.deepEqual(replies.map((line) => response(line, 2).status), [0]);
  });

  await t.step("the protocol phrases every server error kind the same way", () => {
    const protocol = jsonProtocol({ name: "unit" });
    // A Record, so that a new kind without an entry here fails type-checking.
    const statuses: Record<ServerErrorKind, number> = {
      line_too_long: 2,
      invalid_encoding: 2,
      invalid_proxy_header: 2,
      idle_timeout: 4,
      line_timeout: 4,
      busy: 4,
      too_many_connections: 4,
      internal: 4,
      shutting_down: 4,
    };
    for (const [kind, status] of Object.entries(statuses) as [ServerErrorKind, number][]) {
      const value = serverError(
        protocol.formatError!(kind, `about ${kind}`) as string,
        status,
        kind,
      );
      assert.equal(value.message, `about ${kind}`);
    }
  });
});

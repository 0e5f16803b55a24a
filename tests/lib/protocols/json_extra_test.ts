/**
 * Issue #19 outside the protocol itself: a route's `"extra"` in the routes file, the client's
 * `JsonResponse.extra`, and `send`/`repl` showing `extra` when it is not null.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, parseJsonResponse } from "../../../lib/client/client.ts";
import { RemoteError } from "../../../lib/errors.ts";
import { jsonProtocol } from "../../../lib/protocols/json.ts";
import { Routes, RoutesError } from "../../../lib/routes/routes.ts";
import { runExchange } from "../../../lib/client/conversation.ts";
import { serve } from "../../../lib/server/mod.ts";
import { describeJsonResponse } from "../../../commands/_repl/json_request.ts";

const context = { peer: "unix", connectionId: 1, lineNumber: 1 };

function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }, null, 2), "routes.json");
}

const versionRoutes = () =>
  routesOf(
    { match: { command: "version" }, reply: "1.0", extra: { build: 7, tags: ["x"] } },
    { match: { command: "note" }, reply: "n", extra: "just a string" },
  );

Deno.test("routes: extra", async (t) => {
  await t.step("a command rule's extra comes with its action, as any JSON value", () => {
    const routes = routesOf(
      { match: { command: "a" }, reply: "A", extra: { n: 1, list: [true, null] } },
      { match: { commandRegex: "^b" }, reply: ["B", "b"], close: true, extra: [1, "two"] },
      { match: { command: "c" }, run: { argv: ["true"] }, extra: 0 },
      { match: { command: "d" }, reply: "D" },
    );
    assert.deepEqual(routes.matchCommand("a", {}, context), {
      kind: "reply",
      lines: ["A"],
      extra: { n: 1, list: [true, null] },
    });
    assert.deepEqual(routes.matchCommand("bee", {}, context), {
      kind: "close",
      lines: ["B", "b"],
      extra: [1, "two"],
    });
    assert.equal(routes.matchCommand("c", {}, context)?.extra, 0);
    // Without "extra" the action has no such key at all.
    assert.deepEqual(routes.matchCommand("d", {}, context), { kind: "reply", lines: ["D"] });
    // As JSON.parse does, a "__proto__" key stays an ordinary key.
    const proto = Routes.parse(
      '{"routes": [{"match": {"command": "p"}, "reply": "P", "extra": {"__proto__": {"x": 1}}}]}',
    ).matchCommand("p", {}, context)?.extra as Record<string, unknown>;
    assert.ok(Object.hasOwn(proto, "__proto__"));
    assert.equal(JSON.stringify(proto), '{"__proto__":{"x":1}}');
  });

  await t.step("extra on a text rule, or a misspelt one, is an error where it stands", () => {
    const cases: [unknown, string][] = [
      [
        { match: { exact: "x" }, reply: "y", extra: 1 },
        `routes.json:8:7: routes[0].extra: "extra" is only for command rules ("command" or ` +
        `"commandRegex"): it is a field of the json protocol's responses`,
      ],
      [
        { match: { command: "x" }, reply: "y", extras: 1 },
        'routes.json:8:7: routes[0].extras: unknown key (did you mean "extra"?); expected one of ' +
        '"comment", "match", "reply", "close", "shutdown", "run", "extra", "help"',
      ],
    ];
    for (const [rule, message] of cases) {
      assert.throws(() => routesOf(rule), (error: unknown) => {
        assert.ok(error instanceof RoutesError);
        assert.equal(error.message, message);
        return true;
      });
    }
  });
});

Deno.test("client: JsonResponse.extra", async (t) => {
  await t.step("command() returns extra: the route's value, or null", async () => {
    await using server = await serve({ port: 0 }, jsonProtocol({ routes: versionRoutes() }));
    await using client = await connect({ port: (server.addr as Deno.NetAddr).port });
    assert.deepEqual(await client.command("version"), {
      status: 0,
      message: "1.0",
      extra: { build: 7, tags: ["x"] },
      id: 1,
    });
    assert.deepEqual(await client.command("ping"), {
      status: 0,
      message: "pong",
      extra: null,
      id: 2,
    });
    await assert.rejects(client.command("nope"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.status, 1);
      assert.equal(error.extra, null);
      return true;
    });
  });

  await t.step("parseJsonResponse gives extra null when a server leaves it out", () => {
    assert.deepEqual(parseJsonResponse('{"status":0,"message":"m"}'), {
      status: 0,
      message: "m",
      extra: null,
    });
    assert.deepEqual(parseJsonResponse('{"status":0,"message":"m","extra":false}').extra, false);
  });
});

Deno.test("send and repl show extra when it is not null", async (t) => {
  await t.step("runExchange --json prints extra after the message", async () => {
    await using server = await serve({ port: 0 }, jsonProtocol({ routes: versionRoutes() }));
    await using connection = await connect({ port: (server.addr as Deno.NetAddr).port });
    let printed = "";
    const errors: RemoteError[] = [];
    const output = {
      write(bytes: Uint8Array) {
        printed += new TextDecoder().decode(bytes);
        return Promise.resolve(bytes.length);
      },
    };
    const result = await runExchange(connection, {
      input: [
        new TextEncoder().encode(
          '{"command":"version"}\n{"command":"ping"}\n{"command":"note"}\n{"command":"nope"}\n',
        ),
      ],
      output,
      json: true,
      onRemoteError: (error) => errors.push(error),
    });
    assert.equal(
      printed,
      '1.0\nextra: {\n  "build": 7,\n  "tags": [\n    "x"\n  ]\n}\npong\nn\nextra: just a string\n',
    );
    assert.equal(result.remoteErrors, 1);
    assert.equal(errors[0]?.extra, null);
  });

  await t.step("the repl's description shows extra unless it is null", () => {
    assert.deepEqual(describeJsonResponse('{"status":0,"message":"pong","extra":null,"id":1}'), {
      kind: "ok",
      id: 1,
      lines: ["pong"],
    });
    assert.deepEqual(
      describeJsonResponse('{"status":0,"message":"1.0","extra":{"build":7}}').lines,
      ["1.0", "extra: {", '  "build": 7', "}"],
    );
    assert.deepEqual(
      describeJsonResponse('{"status":4,"message":"busy","extra":{"error":"busy"}}').lines,
      ["error 4: busy", "extra: {", '  "error": "busy"', "}"],
    );
  });
});

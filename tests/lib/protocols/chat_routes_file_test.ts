/**
 * A routes file with the chat protocol, through a real server on a real socket: its greeting goes to
 * the connecting client only (before the welcome), its close farewell follows `/quit`, a route's
 * close and the client's end of input, its fallback answers a `/command` the chat does not know, and
 * `"builtins": false` turns the chat's commands off (lines are still said in the room). The same
 * with `linesock serve --protocol chat --routes examples/protocols/hello.jsonc`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../../../lib/server/serve.ts";
import { chatProtocol } from "../../../lib/protocols/chat.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { LineSession } from "../../_support/line_session.ts";
import { startServer } from "../../_support/cli.ts";

/** A chat server with the routes file `text` on a free port; dispose of it with `await using`. */
async function chatWith(text: string, greeting?: string) {
  const chat = chatProtocol({
    routes: Routes.parse(text, "chat.jsonc"),
    name: "alpha",
    ...(greeting !== undefined ? { greeting } : {}),
  });
  const server = await serve({ port: 0 }, chat);
  return {
    port: (server.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await chat.close();
    },
  };
}

const FILE = JSON.stringify({
  greeting: ["MSG hello client {id}", "MSG this is {name}"],
  farewell: { close: "MSG bye from {name}" },
  routes: [
    { match: { exact: "status" }, reply: "OK" },
    { match: { exact: "leave" }, reply: "leaving", close: true },
  ],
  fallback: { reply: "MSG no such command: {line}" },
});

const WELCOME = /^\* welcome guest\d+: you are in lobby/;

Deno.test("chat with a routes file: the greeting goes to the connecting client only, first", async () => {
  await using chat = await chatWith(FILE);
  await using alice = await LineSession.open(chat.port);
  const [first, second, welcome] = await alice.readLines(3);
  assert.match(first!, /^MSG hello client \d+$/);
  assert.equal(second, "MSG this is alpha");
  assert.match(welcome!, WELCOME);
  await using bob = await LineSession.open(chat.port);
  assert.match((await bob.readLine())!, /^MSG hello client \d+$/);
  assert.equal(await bob.readLine(), "MSG this is alpha");
  assert.match((await bob.readLine())!, WELCOME);
  // Alice hears Bob join, not his greeting.
  assert.match((await alice.readLine())!, /^\* guest\d+ joined lobby$/);
  await bob.write("hi\n");
  assert.match((await alice.readLine())!, /^<guest\d+> hi$/);
});

Deno.test("chat with a routes file: --greeting replaces the file's", async () => {
  await using chat = await chatWith(FILE, "MSG literal");
  await using alice = await LineSession.open(chat.port);
  assert.equal(await alice.readLine(), "MSG literal");
  assert.match((await alice.readLine())!, WELCOME);
});

Deno.test("chat with a routes file: the close farewell follows /quit, a closing route and the end of input", async () => {
  for (const [send, expected] of [["/quit", "* bye"], ["leave", "leaving"]] as const) {
    // A server each: a client alone in its room hears no one leave.
    await using chat = await chatWith(FILE);
    await using client = await LineSession.open(chat.port);
    await client.readLines(3);
    await client.write(`${send}\n`);
    assert.deepEqual(await client.readAll(), [expected, "MSG bye from alpha"]);
  }
  await using chat = await chatWith(FILE);
  await using quiet = await LineSession.open(chat.port);
  await quiet.readLines(3);
  await quiet.closeWrite();
  assert.deepEqual(await quiet.readAll(), ["MSG bye from alpha"]);
});

Deno.test("chat with a routes file: the fallback answers a /command the chat does not know", async () => {
  await using chat = await chatWith(FILE);
  await using alice = await LineSession.open(chat.port);
  await alice.readLines(3);
  await alice.write("/frobnicate now\nstatus\n/nick alice\n");
  assert.deepEqual(await alice.readLines(3), [
    "MSG no such command: /frobnicate now",
    "OK",
    "* you are now alice",
  ]);
});

Deno.test('chat with a routes file: "builtins": false turns the chat\'s commands off', async () => {
  await using chat = await chatWith(JSON.stringify({ builtins: false }));
  await using alice = await LineSession.open(chat.port);
  assert.match((await alice.readLine())!, WELCOME);
  await alice.write("/nick alice\n/who\n");
  assert.deepEqual(await alice.readLines(2), [
    "ERR unknown command: /nick (try /help)",
    "ERR unknown command: /who (try /help)",
  ]);
  await using bob = await LineSession.open(chat.port);
  assert.match((await bob.readLine())!, WELCOME);
  assert.match((await alice.readLine())!, /^\* guest\d+ joined lobby$/);
  // Lines are still said in the room, HELP and //text too.
  await alice.write("HELP\n//x\n");
  assert.deepEqual(
    (await bob.readLines(2)).map((line) => line.replace(/^<guest\d+>/, "<a>")),
    ["<a> HELP", "<a> /x"],
  );
});

Deno.test("serve --protocol chat --routes examples/protocols/hello.jsonc greets and says goodbye", async () => {
  await using server = await startServer([
    "--port",
    "0",
    "--protocol",
    "chat",
    "--routes",
    "examples/protocols/hello.jsonc",
  ]);
  await using client = await LineSession.open(server.port);
  assert.equal(await client.readLine(), "MSG Welcome aboard !");
  assert.match((await client.readLine())!, WELCOME);
  await client.write("/nick x\n");
  assert.equal(await client.readLine(), "MSG Command not found");
  await client.write("CLOSE\n");
  assert.deepEqual(await client.readAll(), ["MSG Bye"]);
});

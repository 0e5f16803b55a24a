/**
 * The limits of `linesock serve` that tests/commands/serve_test.ts does not cover yet:
 * --max-connections, the write-queue cap with --write-timeout, and the json phrasing of --max-line
 * and --idle-timeout.
 */
import assert from "node:assert/strict";
import { startServer, within } from "../_support/cli.ts";
import { exchange, LineSession } from "../_support/line_session.ts";

/** Reads and discards until the server closes; returns the byte count (bounded by `ms`). */
async function drainToEnd(conn: Deno.Conn, ms: number): Promise<number> {
  let total = 0;
  const buffer = new Uint8Array(256 * 1024);
  await within(
    (async () => {
      try {
        for (let n; (n = await conn.read(buffer)) !== null;) total += n;
      } catch (error) {
        if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
      }
    })(),
    ms,
    "the server to close the connection",
  );
  return total;
}

Deno.test("reliability: limits of serve", async (t) => {
  await t.step(
    "--max-connections 2: the third gets ERR too many connections, then close",
    async () => {
      await using server = await startServer(["--port", "0", "--max-connections", "2"]);
      await using first = await LineSession.open(server.port);
      await using second = await LineSession.open(server.port);
      for (const session of [first, second]) {
        await session.write("PING\n");
        assert.equal(await session.readLine(), "PONG");
      }
      await using third = await LineSession.open(server.port);
      assert.deepEqual(await third.readAll(), ["ERR too many connections"]);
      // Once a slot is free again, a new client is served (the server frees it in its own time).
      first.close();
      let reply: string[] = [];
      for (let attempt = 0; attempt < 100; attempt++) {
        reply = await exchange(server.port, ["PING"]);
        if (reply[0] === "PONG") break;
        assert.deepEqual(reply, ["ERR too many connections"]);
      }
      assert.deepEqual(reply, ["PONG"]);
      await second.write("PING\n");
      assert.equal(await second.readLine(), "PONG");
    },
  );

  await t.step(
    "a client that never reads is paused at the write-queue cap, then dropped after --write-timeout",
    async () => {
      await using server = await startServer(["--port", "0", "--write-timeout", "500ms"]);
      await using hog = await LineSession.open(server.port);
      // Each line asks for a 64 KiB answer; the client never reads them.
      const request = new TextEncoder().encode(`ECHO ${"y".repeat(64 * 1024)}\n`.repeat(16));
      let written = 0;
      let paused = false;
      for (let attempt = 0; attempt < 400; attempt++) {
        const done = await within(hog.write(request).then(() => true), 2000, "write")
          .catch(() => false);
        if (!done) {
          paused = true;
          break;
        }
        written += request.length;
      }
      assert.ok(paused, `the server kept reading: ${written} bytes`);
      await server.waitForStderr(/closed after .*\("?write timeout after 500 ms"?\)/, 15_000);
      // Others are served meanwhile and afterwards.
      assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
      // The hog gets what was already on its way, then the end of the connection.
      const received = await drainToEnd(hog.conn, 15_000);
      assert.ok(received < written, `received ${received} of ${written} requested`);
    },
  );

  await t.step("json: --max-line and --idle-timeout errors are JSON objects", async () => {
    await using server = await startServer([
      "--port",
      "0",
      "--protocol",
      "json",
      "--max-line",
      "64",
      "--idle-timeout",
      "300ms",
    ]);
    await using session = await LineSession.open(server.port);
    await session.write(`{"command":"echo","args":{"text":"${"z".repeat(100)}"}}\n`);
    await session.write('{"command":"ping","id":7}\n');
    const replies = (await session.readAll()).map((line) => JSON.parse(line));
    assert.deepEqual(replies, [
      { status: 2, message: "line too long (limit 64 bytes)", extra: { error: "line_too_long" } },
      { status: 0, message: "pong", extra: null, id: 7 },
      { status: 4, message: "idle timeout", extra: { error: "idle_timeout" } },
    ]);
  });
});

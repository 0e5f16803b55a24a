/**
 * Time limits happen at their configured value: each is measured from the test's own events (the
 * connection made, the first write, the shutdown called) to the server's action (the farewell line
 * and close, the drop) and asserted within a margin on both sides (tests/_support/timeouts.ts), so a
 * limit that is ignored, doubled, or replaced by its default fails. Each limit is set to a value far
 * from its default and from the other limits in the same server.
 *
 * The grace period at shutdown is measured the same way in server_test.ts.
 */
import assert from "node:assert/strict";
import { serve } from "../../../lib/server/mod.ts";
import { textProtocol } from "../../../lib/protocols/text.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { LineSession } from "../../_support/line_session.ts";
import { assertTookAbout, since, WAIT_MS, within } from "../../_support/timeouts.ts";
import { makeTestCertificates, OPENSSL_MISSING, readPem } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";
import { LINGER_MS, SERVE_DEFAULTS } from "../../../lib/server/defaults.ts";

Deno.test("time limits: each at its configured value, within a margin", async (t) => {
  await t.step("idleTimeoutMs: a silent connection gets its farewell after 700 ms", async () => {
    await using server = await serve({ port: 0, idleTimeoutMs: 700 }, textProtocol());
    const started = performance.now();
    await using silent = await LineSession.open(server.addr);
    assert.deepEqual(await silent.readAll(), ["ERR idle timeout"]);
    assertTookAbout(since(started), 700, "idle timeout");
  });

  await t.step("idleTimeoutMs counts from the last line, not from the connection", async () => {
    await using server = await serve({ port: 0, idleTimeoutMs: 700 }, textProtocol());
    await using session = await LineSession.open(server.addr);
    await session.write("PING\n");
    assert.equal(await session.readLine(), "PONG");
    const lastLine = performance.now();
    assert.deepEqual(await session.readAll(), ["ERR idle timeout"]);
    assertTookAbout(since(lastLine), 700, "idle timeout after a line");
  });

  await t.step("lineTimeoutMs: a line begun and not finished is cut after 600 ms", async () => {
    // The idle timeout is far away, so only the line timeout can close it.
    await using server = await serve(
      { port: 0, lineTimeoutMs: 600, idleTimeoutMs: 60_000 },
      textProtocol(),
    );
    await using session = await LineSession.open(server.addr);
    await session.write("PIN");
    const begun = performance.now();
    const replies = await session.readAll();
    assert.equal(replies.length, 1, JSON.stringify(replies));
    assert.match(replies[0]!, /^ERR /);
    assertTookAbout(since(begun), 600, "line timeout");
  });

  await t.step(
    "linger: a client that keeps its end open after shutdown's FIN is dropped after LINGER_MS, not graceMs",
    async () => {
      await using server = await serve({ port: 0, graceMs: 8000 }, textProtocol());
      await using session = await LineSession.open(server.addr);
      await session.write("PING\n");
      assert.equal(await session.readLine(), "PONG");
      const started = performance.now();
      const stopping = server.shutdown();
      // The FIN comes first, at once (the client could close now); it does not.
      assert.deepEqual(await session.readAll(), []);
      assert.ok(since(started) < LINGER_MS / 2, `the FIN after ${since(started)} ms`);
      await within(stopping, WAIT_MS, "the shutdown");
      assertTookAbout(since(started), LINGER_MS, "linger after shutdown");
    },
  );

  await t.step(
    "queueTimeoutMs: a client waiting for a slot gets ERR busy after 800 ms",
    async () => {
      await using server = await serve(
        { port: 0, maxClients: 1, queueTimeoutMs: 800, idleTimeoutMs: 60_000 },
        textProtocol(),
      );
      await using first = await LineSession.open(server.addr);
      await first.write("PING\n");
      assert.equal(await first.readLine(), "PONG");
      const queued = performance.now();
      await using second = await LineSession.open(server.addr);
      assert.deepEqual(await second.readAll(), ["ERR busy"]);
      assertTookAbout(since(queued), 800, "queue timeout");
    },
  );

  await t.step(
    "writeTimeoutMs: a client whose replies do not drain is dropped 900 ms after it stopped reading",
    async () => {
      const dropped = Promise.withResolvers<void>();
      const echo = echoProtocol();
      await using server = await serve(
        { port: 0, writeBufferBytes: 64 * 1024, writeTimeoutMs: 900 },
        {
          ...echo,
          onConnect(context) {
            context.signal.addEventListener("abort", () => dropped.resolve());
            return echo.onConnect?.(context);
          },
        },
      );
      const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
      try {
        // Never reads: the echo fills the socket buffers within the first megabytes, and from then
        // on the server's writes make no progress.
        const chunk = new Uint8Array(1024 * 1024).fill(0x0a);
        const started = performance.now();
        const writing = (async () => {
          for (let attempt = 0; attempt < 256; attempt++) await conn.write(chunk);
        })().catch(() => {});
        await within(dropped.promise, WAIT_MS, "the server to drop the client");
        assertTookAbout(since(started), 900, "write timeout");
        conn.close();
        await writing;
      } finally {
        try {
          conn.close();
        } catch {
          // Closed above.
        }
      }
    },
  );

  await t.step(
    "the limits above are far from their defaults (so a default in their place fails)",
    () => {
      for (
        const [name, configured] of [
          ["idleTimeoutMs", 700],
          ["writeTimeoutMs", 900],
          ["graceMs", 1200],
        ] as const
      ) {
        const fallback = SERVE_DEFAULTS[name];
        assert.ok(
          fallback === 0 || Math.abs(fallback - configured) > 1500,
          `${name}: ${configured} vs default ${fallback}`,
        );
      }
    },
  );
});

Deno.test({
  name: ignoredName(
    "time limits: tlsHandshakeTimeoutMs closes a client that never starts its handshake after 800 ms",
    OPENSSL_MISSING,
  ),
  ignore: OPENSSL_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);
    await using server = await serve(
      { port: 0, tls, tlsHandshakeTimeoutMs: 800, idleTimeoutMs: 60_000 },
      textProtocol(),
    );
    const started = performance.now();
    // Plain TCP, nothing sent: the handshake never begins.
    await using session = await LineSession.open(server.addr);
    assert.deepEqual(await session.readAll(), []);
    assertTookAbout(since(started), 800, "TLS handshake timeout");
  },
});

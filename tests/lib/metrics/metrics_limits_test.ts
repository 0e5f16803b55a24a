/**
 * The metrics endpoint cannot be held by whoever reaches it: at most 64 connections are open at
 * once (one more is closed at once, unanswered), and a request head that does not arrive whole
 * within 5 s gets `408` and the close. Before, 500 connections that sent half a `GET /metrics` were
 * all still open a second later, 50 of them after 40 s. Real sockets against the real endpoint.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  METRICS_MAX_CONNECTIONS,
  METRICS_REQUEST_TIMEOUT_MS,
  serveMetrics,
} from "../../../lib/metrics/mod.ts";
import { serve } from "../../../lib/server/mod.ts";
import { within } from "../../_support/cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HALF_REQUEST = encoder.encode("GET /metrics HTTP/1.1\r\nHost: x\r\n");

/** Everything the endpoint sends on `conn` until it closes it (bounded). */
async function readToClose(conn: Deno.Conn, ms: number): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  await within(
    (async () => {
      for (;;) {
        let count: number | null;
        try {
          count = await conn.read(buffer);
        } catch (error) {
          if (error instanceof Deno.errors.ConnectionReset) return;
          throw error;
        }
        if (count === null) return;
        chunks.push(decoder.decode(buffer.subarray(0, count)));
      }
    })(),
    ms,
    "the endpoint to close the connection",
  );
  return chunks.join("");
}

Deno.test("metrics endpoint: a connection cap and a request timeout", async (t) => {
  await using server = await serve({ port: 0, metrics: true }, (line) => line);
  await using endpoint = serveMetrics({ port: 0 }, server);
  const { port } = endpoint.addr;
  const conns: Deno.Conn[] = [];
  try {
    await t.step(`connection ${METRICS_MAX_CONNECTIONS + 1} is closed at once`, async () => {
      for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) {
        const conn = await Deno.connect({ port });
        conns.push(conn);
        await conn.write(HALF_REQUEST);
      }
      const extra = await Deno.connect({ port });
      await extra.write(HALF_REQUEST).catch(() => 0);
      // Closed unanswered, well before the request timeout would answer 408.
      assert.equal(await readToClose(extra, METRICS_REQUEST_TIMEOUT_MS - 1000), "");
      extra.close();
    });

    await t.step("a request that does not arrive whole gets 408 and the close", async () => {
      const reply = await readToClose(conns[0]!, METRICS_REQUEST_TIMEOUT_MS + 10_000);
      assert.match(reply, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(reply, /\r\nconnection: close\r\n/);
      // The others end the same way.
      for (const conn of conns.slice(1)) {
        assert.match(await readToClose(conn, 10_000), /^HTTP\/1\.1 408 /);
      }
    });

    await t.step("then the endpoint answers again", async () => {
      const response = await fetch(`${endpoint.url}/metrics`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^linesock_serving 1$/m);
      const head = await fetch(`${endpoint.url}/healthz`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
    });
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  }
});

import assert from "node:assert/strict";
import { within } from "../_support/cli.ts";
import { FaultProxy, type FaultProxyOptions } from "./fault_proxy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An upstream that echoes until the end of input, then sends `bye\n` and closes. */
function startUpstream(): { port: number; done: Promise<"end" | "reset" | "error"> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const count = await conn.read(buffer);
        if (count === null) break;
        await conn.write(buffer.subarray(0, count));
      }
      await conn.write(encoder.encode("bye\n"));
      return "end" as const;
    } catch (error) {
      return error instanceof Deno.errors.ConnectionReset ? "reset" as const : "error" as const;
    } finally {
      conn.close();
    }
  })();
  return { port: listener.addr.port, done };
}

/** Reads to the end of input. */
async function readAll(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const count = await conn.read(buffer);
    if (count === null) return text;
    text += decoder.decode(buffer.subarray(0, count));
  }
}

async function withProxy(
  options: FaultProxyOptions,
  body: (
    proxy: FaultProxy,
    conn: Deno.Conn,
    upstream: ReturnType<typeof startUpstream>,
  ) => Promise<void>,
): Promise<void> {
  const upstream = startUpstream();
  const proxy = await FaultProxy.start(
    { main: { hostname: "127.0.0.1", port: upstream.port } },
    options,
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("main") });
  try {
    await within(body(proxy, conn, upstream), 15_000, "the proxy test");
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the test.
    }
    await proxy.close();
    await upstream.done;
  }
}

Deno.test("fault proxy", async (t) => {
  await t.step("passes bytes both ways and a half-close, then the upstream's answer", async () => {
    await withProxy({}, async (_proxy, conn) => {
      await conn.write(encoder.encode("hello\nworld\n"));
      await conn.closeWrite();
      assert.equal(await readAll(conn), "hello\nworld\nbye\n");
    });
  });

  await t.step("1-byte slices: one write per byte, every byte in order", async () => {
    await withProxy({ slices: true }, async (proxy, conn) => {
      const text = "abcdefghij\n".repeat(20);
      await conn.write(encoder.encode(text));
      await conn.closeWrite();
      assert.equal(await readAll(conn), `${text}bye\n`);
      // Each byte of the text went out alone, both ways, and so did each byte of "bye\n".
      assert.equal(proxy.writes, text.length * 2 + 4);
    });
  });

  await t.step("delay: a round trip takes at least both delays, order kept", async () => {
    await withProxy({ delayMs: 60, jitterMs: 20 }, async (_proxy, conn) => {
      const started = performance.now();
      for (let index = 0; index < 50; index++) await conn.write(encoder.encode(`${index}\n`));
      await conn.closeWrite();
      const text = await readAll(conn);
      assert.ok(performance.now() - started >= 80, "each way is delayed by at least 40 ms");
      const expected = Array.from({ length: 50 }, (_, index) => `${index}\n`).join("") + "bye\n";
      assert.equal(text, expected);
    });
  });

  await t.step("stall: nothing passes until the stall is over", async () => {
    await withProxy({}, async (proxy, conn) => {
      proxy.stall(300);
      const started = performance.now();
      await conn.write(encoder.encode("late\n"));
      await conn.closeWrite();
      assert.equal(await readAll(conn), "late\nbye\n");
      assert.ok(performance.now() - started >= 290, "the reply came before the stall's end");
    });
  });

  await t.step("reset: both sides see a reset", async () => {
    await withProxy({}, async (proxy, conn, upstream) => {
      await conn.write(encoder.encode("ping\n"));
      const buffer = new Uint8Array(64);
      assert.equal(await conn.read(buffer), 5);
      assert.equal(proxy.reset("main"), 1);
      await assert.rejects(conn.read(buffer), Deno.errors.ConnectionReset);
      assert.equal(await upstream.done, "reset");
    });
  });
});

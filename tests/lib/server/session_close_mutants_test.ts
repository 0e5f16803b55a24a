/**
 * Tests written for the mutants of lib/server/session.ts and line_server.ts (issue #20,
 * docs/mutation.md, "session.ts and line_server.ts") that the server's other tests let survive:
 * closes asked for from outside the reply flow, a context used after its connection closed, the
 * farewell and error lines given as several lines, a server stopped by its signal or by a protocol,
 * the per-address count as connections come and go. Real servers on port 0 and real sockets; every
 * wait is bounded.
 */
import assert from "node:assert/strict";
import { type Logs, withLogs } from "../../_support/logs.ts";
import { type ConnectionContext, type LineProtocol, serve } from "../../../lib/server/mod.ts";
import { LINGER_MS } from "../../../lib/server/defaults.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { LineSession } from "../../_support/line_session.ts";
import { assertTookAbout, since, WAIT_MS, waitUntil, within } from "../../_support/timeouts.ts";

/** Runs `body` with the server's logs down to info level captured in `logs`. */
function withServerLogs(body: (logs: Logs) => Promise<void>): Promise<void> {
  return withLogs(["linesock", "server"], "info", body);
}

/** A text protocol that keeps the context of its last connection. */
function keepingContext(): { protocol: LineProtocol; context: () => ConnectionContext } {
  let kept: ConnectionContext | undefined;
  return {
    protocol: {
      onLine(bytes, context) {
        kept = context;
        return `re ${new TextDecoder().decode(bytes)}`;
      },
    },
    context: () => kept!,
  };
}

Deno.test("a close asked for from outside the reply flow while the client is silent", async (t) => {
  await t.step("is carried out at once: the FIN, and the reason in the log", async () => {
    await withServerLogs(async (logs) => {
      const { protocol, context } = keepingContext();
      await using server = await serve({ port: 0 }, protocol);
      await using client = await LineSession.open(server.addr);
      await client.write("a\n");
      assert.equal(await client.readLine(WAIT_MS), "re a");
      context().close("closed from outside");
      // A second close keeps the first reason.
      context().close("closed twice");
      assert.deepEqual(await client.readAll(WAIT_MS), []);
      client.close();
      assert.match(await logs.waitFor(/closed after/), /\(closed from outside\)$/);
    });
  });

  await t.step("a client that keeps its end open is dropped after the linger", async () => {
    const { protocol, context } = keepingContext();
    await using server = await serve({ port: 0, idleTimeoutMs: 60_000 }, protocol);
    await using client = await LineSession.open(server.addr);
    await client.write("a\n");
    assert.equal(await client.readLine(WAIT_MS), "re a");
    const started = performance.now();
    context().close();
    assert.deepEqual(await client.readAll(WAIT_MS), []);
    await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the connection dropped");
    assertTookAbout(since(started), LINGER_MS, "linger after a close from outside");
  });
});

Deno.test("a context used after its connection closed: the signal is aborted, send rejects", async () => {
  const { protocol, context } = keepingContext();
  await using server = await serve({ port: 0 }, protocol);
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["a"], WAIT_MS), ["re a"]);
  await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the connection closed");
  // The signal is made on first use: made after the close, it is aborted already.
  assert.equal(context().signal.aborted, true);
  await assert.rejects(context().send("late"), Deno.errors.BadResource);
});

Deno.test("onShutdown and formatError may give several lines: each is sent, in order", async () => {
  const protocol: LineProtocol = {
    onLine: (bytes) => `re ${new TextDecoder().decode(bytes)}`,
    onShutdown: () => ["bye", "see you"],
    formatError: (kind, message) => [`ERR ${kind}`, message],
  };
  await using server = await serve({ port: 0, maxLineBytes: 8 }, protocol);
  await using client = await LineSession.open(server.addr);
  await client.write(`${"x".repeat(20)}\n`);
  assert.deepEqual(await client.readLines(2, WAIT_MS), [
    "ERR line_too_long",
    "line too long (limit 8 bytes)",
  ]);
  const stopping = server.shutdown();
  assert.deepEqual(await client.readAll(WAIT_MS), ["bye", "see you"]);
  client.close();
  await within(stopping, WAIT_MS, "the shutdown");
});

Deno.test("a server stops by itself when its signal is aborted, even before it started", async () => {
  const server = await serve({ port: 0, signal: AbortSignal.abort() }, (line) => line);
  await within(server.finished, WAIT_MS, "the server to finish");
  await assert.rejects(Deno.connect({ port: (server.addr as Deno.NetAddr).port }));
});

Deno.test("a protocol's requestShutdown stops the server: the connection is answered, then closed", async () => {
  await using server = await serve({ port: 0 }, (line, context) => {
    if (line === "stop") context.requestShutdown();
    return `re ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["stop"], WAIT_MS), ["re stop"]);
  await within(server.finished, WAIT_MS, "the server to finish");
});

Deno.test("the per-address limit counts connections as they come and go", async () => {
  await using server = await serve({ port: 0, maxConnectionsPerAddress: 2 }, (line) => line);
  await using first = await LineSession.open(server.addr);
  await using second = await LineSession.open(server.addr);
  assert.deepEqual(await first.exchange(["1"], WAIT_MS), ["1"]);
  await waitUntil(() => server.metrics().stats.open === 1, WAIT_MS, "the first to end");
  // One of two gone: one more may come, not two.
  await using third = await LineSession.open(server.addr);
  await third.write("3\n");
  assert.equal(await third.readLine(WAIT_MS), "3");
  await using fourth = await LineSession.open(server.addr);
  assert.deepEqual(await fourth.readAll(WAIT_MS), ["ERR too many connections from 127.0.0.1"]);
  assert.deepEqual(await second.exchange(["2"], WAIT_MS), ["2"]);
});

Deno.test("a close or an abort without a reason: the default reasons in the log", async () => {
  await withServerLogs(async (logs) => {
    await using server = await serve({ port: 0 }, (line, context) => {
      if (line === "close") context.close();
      else context.abort();
      return undefined;
    });
    await using closing = await LineSession.open(server.addr);
    await closing.write("close\n");
    assert.deepEqual(await closing.readAll(WAIT_MS), []);
    closing.close();
    assert.match(await logs.waitFor(/^Connection 1 .* closed after/), /\(closed by handler\)$/);
    await using aborting = await LineSession.open(server.addr);
    await aborting.write("abort\n");
    assert.deepEqual(await aborting.readAll(WAIT_MS), []);
    assert.match(await logs.waitFor(/^Connection 2 .* closed after/), /\(aborted by handler\)$/);
  });
});

Deno.test("lines after the last one the budget allows, in the same read, are not handled", async () => {
  const handled: string[] = [];
  await using server = await serve({ port: 0, closeAfterLines: 1, maxLineBytes: 4 }, (line) => {
    handled.push(line);
    return `re ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("a\nb\ntoo long\n");
  assert.deepEqual(await client.readAll(WAIT_MS), ["re a"]);
  assert.deepEqual(handled, ["a"]);
  client.close();
  await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the connection closed");
  assert.equal(server.stats.linesIn, 1);
});

Deno.test("a handler without stripCR: a CR before the newline is taken off by default", async () => {
  await using server = await serve({ port: 0 }, (line) => `[${line}]`);
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["a\r"], WAIT_MS), ["[a]"]);
});

Deno.test("formatError may give nothing: no error line, and the connection goes on", async () => {
  const protocol: LineProtocol = {
    onLine: (bytes) => `re ${new TextDecoder().decode(bytes)}`,
    formatError: () => undefined,
  };
  await using server = await serve({ port: 0, maxLineBytes: 4 }, protocol);
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["too long", "ok"], WAIT_MS), ["re ok"]);
  assert.equal(server.stats.errors, 1);
});

Deno.test("timeouts: their exact words, their kinds, and no refusal counted", async (t) => {
  await t.step("the line timeout", async () => {
    await using server = await serve({ port: 0, lineTimeoutMs: 100 }, (line) => line);
    await using client = await LineSession.open(server.addr);
    await client.write("par");
    assert.deepEqual(await client.readAll(WAIT_MS), [
      "ERR line timeout (a line must arrive within 100 ms)",
    ]);
    await server.shutdown();
    assert.deepEqual(server.metrics().errors, { line_timeout: 1 });
    assert.deepEqual(server.metrics().refused, {});
  });

  await t.step("the idle timeout", async () => {
    await using server = await serve({ port: 0, idleTimeoutMs: 100 }, (line) => line);
    await using client = await LineSession.open(server.addr);
    assert.deepEqual(await client.readAll(WAIT_MS), ["ERR idle timeout"]);
    await server.shutdown();
    assert.deepEqual(server.metrics().errors, { idle_timeout: 1 });
    assert.deepEqual(server.metrics().refused, {});
  });

  await t.step("the write timeout: counted, and one warning", async () => {
    await withServerLogs(async (logs) => {
      await using server = await serve(
        { port: 0, writeTimeoutMs: 200, writeBufferBytes: 64 * 1024 },
        echoProtocol(),
      );
      const client = await LineSession.open(server.addr);
      // Never reads: the echo fills the socket buffers within the first megabytes.
      const chunk = new Uint8Array(1024 * 1024).fill(0x0a);
      const writing = (async () => {
        for (let attempt = 0; attempt < 256; attempt++) await client.write(chunk);
      })();
      assert.match(
        await logs.waitFor(/failed/),
        /^Connection 1 from .* failed: write timeout after 200 ms$/,
      );
      await writing.catch(() => {});
      client.close();
      await server.shutdown();
      assert.deepEqual(server.metrics().errors, { write_timeout: 1 });
    });
  });
});

Deno.test("PROXY: a connection refused for its header frees no other's place under the per-address limit", async () => {
  await using server = await serve(
    { port: 0, proxyProtocol: true, maxConnectionsPerAddress: 1 },
    (line) => line,
  );
  await using holder = await LineSession.open(server.addr);
  await holder.write("PROXY TCP4 127.0.0.1 127.0.0.1 40000 1991\r\nhold\n");
  assert.equal(await holder.readLine(WAIT_MS), "hold");
  await using bad = await LineSession.open(server.addr);
  await bad.write("PROXY nonsense\r\n");
  assert.equal((await bad.readAll(WAIT_MS)).length, 1);
  await waitUntil(() => server.metrics().stats.open === 1, WAIT_MS, "the bad one to end");
  await using next = await LineSession.open(server.addr);
  await next.write("PROXY TCP4 127.0.0.1 127.0.0.1 40001 1991\r\nnext\n");
  assert.deepEqual(await next.readAll(WAIT_MS), ["ERR too many connections from 127.0.0.1"]);
});

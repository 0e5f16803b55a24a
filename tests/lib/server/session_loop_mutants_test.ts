/**
 * Tests written for the mutants of lib/server/session_loop.ts (the read loop of a connection) that
 * the server's other tests let survive (issue #20, docs/mutation.md, "session_loop.ts"): the latency
 * histogram's values, the words of the close log, the kinds of failure, the farewell when shutdown
 * finds a reply pending, and the linger's takeover of a read made while a reply was pending. Real
 * servers on port 0 and real sockets; every wait is bounded.
 */
import assert from "node:assert/strict";
import { type Logs, withLogs } from "../../_support/logs.ts";
import { type ConnectionContext, type LineProtocol, serve } from "../../../lib/server/mod.ts";
import type { LatencyCounts } from "../../../lib/server/metrics.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { LineSession } from "../../_support/line_session.ts";
import { since, WAIT_MS, waitUntil, within } from "../../_support/timeouts.ts";
import { gate } from "../../_support/gate.ts";
import { makeTestCertificates, OPENSSL_MISSING, readPem } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";

/** Runs `body` with the server's logs down to info level captured in `logs`. */
function withServerLogs(body: (logs: Logs) => Promise<void>): Promise<void> {
  return withLogs(["linesock", "server"], "info", body);
}

/** Keeps the CPU for `ms`: a handler whose handling time is known (not a wait for an event). */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spin.
  }
}

/** Observations in the buckets whose upper bound is `seconds` or less. */
function countUpTo(latency: LatencyCounts, seconds: number): number {
  return latency.bounds.reduce(
    (sum, bound, index) => bound <= seconds ? sum + latency.counts[index]! : sum,
    0,
  );
}

Deno.test("latency: lines answered in one push share its time; a pending reply is timed until it settles", async (t) => {
  await t.step("two lines of 30 ms each in one read: two observations of about 30 ms", async () => {
    await using server = await serve({ port: 0, metrics: true }, (line) => {
      busyFor(30);
      return line;
    });
    await using client = await LineSession.open(server.addr);
    await client.write("a\nb\n");
    assert.deepEqual(await client.readLines(2, WAIT_MS), ["a", "b"]);
    const latency = server.metrics().latency!;
    assert.equal(latency.count, 2);
    // Each took 30 ms at least: none in a bucket of 25 ms or less; the push's 60 ms is shared,
    // not given to each line whole (2 × 60 = 120 ms) nor multiplied.
    assert.equal(countUpTo(latency, 0.025), 0, JSON.stringify(latency));
    assert.ok(latency.sum >= 0.06 && latency.sum < 0.11, `sum ${latency.sum}`);
  });

  await t.step("a push that ends no line is not timed (nor counted)", async () => {
    await using server = await serve({ port: 0, metrics: true }, (line) => line);
    await using client = await LineSession.open(server.addr);
    await client.write("par");
    await waitUntil(() => server.metrics().stats.bytesIn === 3, WAIT_MS, "the first part read");
    await client.write("tial\n");
    assert.equal(await client.readLine(WAIT_MS), "partial");
    const latency = server.metrics().latency!;
    assert.equal(latency.count, 1);
    assert.ok(Number.isFinite(latency.sum) && latency.sum < 0.05, `sum ${latency.sum}`);
  });

  await t.step(
    "two lines answered at once and a third pending 150 ms: three observations",
    async () => {
      // a and b are answered at once; slow's reply is a promise, so framing pauses behind it.
      await using server = await serve({ port: 0, metrics: true }, (line) => {
        busyFor(30);
        if (line !== "slow") return line;
        return new Promise<string>((resolve) => setTimeout(() => resolve(line), 150));
      });
      await using client = await LineSession.open(server.addr);
      await client.write("a\nb\nslow\n");
      assert.deepEqual(await client.readLines(3, WAIT_MS), ["a", "b", "slow"]);
      const latency = server.metrics().latency!;
      assert.equal(latency.count, 3);
      // a and b: 30 ms each; slow: its 30 ms share of the push and then 150 ms until it settled.
      assert.equal(countUpTo(latency, 0.025), 0, JSON.stringify(latency));
      assert.equal(countUpTo(latency, 0.1), 2, JSON.stringify(latency));
      assert.equal(countUpTo(latency, 0.5), 3, JSON.stringify(latency));
      assert.ok(latency.sum >= 0.24, `sum ${latency.sum}`);
    },
  );
});

Deno.test("the close log: its duration and the reason each way of closing gives", async (t) => {
  await t.step("the duration is the connection's, in whole milliseconds", async () => {
    await withServerLogs(async (logs) => {
      const started = performance.now();
      await using server = await serve({ port: 0 }, (line) => line);
      await using client = await LineSession.open(server.addr);
      assert.deepEqual(await client.exchange(["a"], WAIT_MS), ["a"]);
      client.close();
      const line = await logs.waitFor(/closed after/);
      const duration = Number(/closed after (\d+) ms/.exec(line)?.[1]);
      assert.ok(duration >= 0 && duration <= since(started) + 1, line);
    });
  });

  await t.step("a handler's abort: its reason", async () => {
    await withServerLogs(async (logs) => {
      await using server = await serve({ port: 0 }, (_line, context) => {
        context.abort("dropped by the handler");
        return undefined;
      });
      await using client = await LineSession.open(server.addr);
      await client.write("a\n");
      assert.equal(await client.readLine(WAIT_MS), null);
      assert.match(await logs.waitFor(/closed after/), /\(dropped by the handler\)$/);
    });
  });

  await t.step("the line budget of a relay: `closed after N lines`", async () => {
    await withServerLogs(async (logs) => {
      await using server = await serve({ port: 0, closeAfterLines: 2 }, echoProtocol());
      await using client = await LineSession.open(server.addr);
      await client.write("a\nb\nc\n");
      await client.closeWrite();
      assert.deepEqual(await client.readAll(WAIT_MS), ["a", "b"]);
      assert.match(await logs.waitFor(/closed after \d+ ms/), /\(closed after 2 lines\)$/);
    });
  });

  await t.step("a client gone before its PROXY header", async () => {
    await withServerLogs(async (logs) => {
      await using server = await serve({ port: 0, proxyProtocol: true }, (line) => line);
      const client = await LineSession.open(server.addr);
      client.close();
      assert.match(
        await logs.waitFor(/closed after/),
        /\(closed by client before its PROXY header\)$/,
      );
      assert.deepEqual(server.metrics().refused, {});
    });
  });

  await t.step(
    "a client that stays open after the FIN that followed its reply: the linger timeout",
    async () => {
      const started = gate();
      const release = gate();
      await withServerLogs(async (logs) => {
        // The grace is longer than the linger (2 s): the linger's timer is what ends it.
        await using server = await serve({ port: 0, graceMs: 8000 }, async (line) => {
          if (line === "slow") {
            started.open();
            await release.promise;
          }
          return line;
        });
        await using busy = await LineSession.open(server.addr);
        await using idle = await LineSession.open(server.addr);
        await idle.write("hi\n");
        assert.equal(await idle.readLine(WAIT_MS), "hi");
        await busy.write("slow\n");
        await within(started.promise, WAIT_MS, "the handler to start");
        const stopping = server.shutdown();
        // The idle client's FIN shows that the shutdown reached every session, the busy one too.
        assert.deepEqual(await idle.readAll(WAIT_MS), []);
        idle.close();
        release.open();
        assert.deepEqual(await busy.readAll(WAIT_MS), ["slow"]);
        assert.match(
          await logs.waitFor(/^Connection 1 from .* closed after/, WAIT_MS),
          /\(linger timeout\)$/,
        );
        await within(stopping, WAIT_MS, "the shutdown");
      });
    },
  );
});

Deno.test({
  name: ignoredName(
    "a TLS client that never starts its handshake: counted as tls_handshake_timeout, one warning",
    OPENSSL_MISSING,
  ),
  ignore: OPENSSL_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);
    await withServerLogs(async (logs) => {
      await using server = await serve(
        { port: 0, tls, tlsHandshakeTimeoutMs: 100 },
        (line) => line,
      );
      await using client = await LineSession.open(server.addr);
      const peer = client.peer.replaceAll(".", "\\.");
      await client.readAllBytes(WAIT_MS);
      assert.match(
        await logs.waitFor(/failed/),
        new RegExp(`^Connection 1 from ${peer} failed: TLS: `),
      );
      await server.shutdown();
      assert.deepEqual(server.metrics().errors, { tls_handshake_timeout: 1 });
      assert.equal(server.stats.errors, 1);
    });
  },
});

Deno.test("a relay protocol that throws: a connection error, counted and logged with the error", async () => {
  await withServerLogs(async (logs) => {
    const protocol: LineProtocol = {
      onLine: () => undefined,
      onData: () => {
        throw new Error("relay broke");
      },
    };
    await using server = await serve({ port: 0 }, protocol);
    await using client = await LineSession.open(server.addr);
    const peer = client.peer.replaceAll(".", "\\.");
    await client.write("a\n");
    assert.equal(await client.readLine(WAIT_MS), null);
    assert.match(
      await logs.waitFor(/failed/),
      new RegExp(`^Connection 1 from ${peer} failed: Error: relay broke`),
    );
    assert.match(await logs.waitFor(/closed after/), /\(Error: relay broke\)$|\(relay broke\)$/);
    assert.deepEqual(server.metrics().errors, { connection: 1 });
  });
});

/**
 * Shutdown lands while `busy`'s last line (`held`) is being handled: an idle client beside it gets
 * the farewell (which shows the shutdown reached every session), then the held line is let go.
 * @returns What `busy` got before its close.
 */
async function shutdownWhilePending(
  options: { closeAfterLines?: number },
  lines: string[],
): Promise<string[]> {
  const started = gate();
  const release = gate();
  const held = lines.at(-1);
  const protocol: LineProtocol = {
    async onLine(bytes) {
      const line = new TextDecoder().decode(bytes);
      if (line === held) {
        started.open();
        await release.promise;
      }
      return `re ${line}`;
    },
    onShutdown: () => "bye",
  };
  await using server = await serve({ port: 0, ...options }, protocol);
  await using busy = await LineSession.open(server.addr);
  await using idle = await LineSession.open(server.addr);
  await idle.write("hi\n");
  assert.equal(await idle.readLine(WAIT_MS), "re hi");
  await busy.write(lines.map((line) => `${line}\n`).join(""));
  await within(started.promise, WAIT_MS, "the handler to start");
  const stopping = server.shutdown();
  assert.deepEqual(await idle.readAll(WAIT_MS), ["bye"]);
  release.open();
  const got = await busy.readAll(WAIT_MS);
  busy.close();
  idle.close();
  await within(stopping, WAIT_MS, "the shutdown");
  return got;
}

Deno.test("shutdown that lands while a reply is pending: the reply, then the protocol's farewell", async () => {
  assert.deepEqual(await shutdownWhilePending({}, ["slow"]), ["re slow", "bye"]);
});

Deno.test("shutdown that lands while the budget's last line is pending: the reply, no farewell", async () => {
  // The connection was closing for its budget already: the farewell is for those the shutdown
  // closes.
  assert.deepEqual(
    await shutdownWhilePending({ closeAfterLines: 2 }, ["first", "last"]),
    ["re first", "re last"],
  );
});

Deno.test("a close while a reply is pending: the linger takes over the read made meanwhile", async () => {
  const release = gate();
  await using server = await serve({ port: 0, closeAfterLines: 1 }, async (line) => {
    await release.promise;
    return `re ${line}`;
  });
  const client = await LineSession.open(server.addr);
  const input = `a\n${"b\n".repeat(512 * 1024)}`;
  const writing = client.write(input);
  await waitUntil(() => server.metrics().stats.bytesIn > 2, WAIT_MS, "input read while pending");
  release.open();
  assert.equal(await client.readLine(WAIT_MS), "re a");
  assert.equal(await client.readLine(WAIT_MS), null);
  await within(writing, WAIT_MS, "the client's input to be taken");
  client.close();
  await server.shutdown();
  assert.equal(server.stats.bytesIn, input.length);
});

Deno.test("a connection refused for its PROXY header is logged as refused, never as opened", async () => {
  await withServerLogs(async (logs) => {
    await using server = await serve({ port: 0, proxyProtocol: true }, (line) => line);
    await using client = await LineSession.open(server.addr);
    await client.write("PROXY nonsense\r\n");
    assert.equal((await client.readAll(WAIT_MS)).length, 1);
    await logs.waitFor(/^Refused connection 1 /);
    await logs.waitFor(/^Connection 1 .* closed after/);
    assert.deepEqual(logs.lines.filter((line) => / opened$/.test(line)), []);
  });
});

Deno.test("a connection aborted from outside while it waits for input: no error counted", async () => {
  let kept: ConnectionContext | undefined;
  await using server = await serve({ port: 0 }, (line, context) => {
    kept = context;
    return line;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "a");
  kept!.abort("dropped from outside");
  assert.equal(await client.readLine(WAIT_MS), null);
  await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the connection closed");
  assert.equal(server.stats.errors, 0);
  assert.deepEqual(server.metrics().errors, {});
});

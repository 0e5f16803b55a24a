/**
 * The load engine in-process, against servers of this process: what the CLI tests cannot see
 * directly (coordinated omission, stop and abort, impossible options, greetings).
 */
import assert from "node:assert/strict";
import { type BenchOptions, runBench } from "../../../commands/_bench/engine.ts";
import { LineTemplate } from "../../../commands/_bench/template.ts";
import type { Workload } from "../../../commands/_bench/workload.ts";
import { ConnectError, serve, textProtocol } from "../../../lib/mod.ts";
import { startLineServer } from "./line_server.ts";
import { within } from "../../_support/timeouts.ts";

const PING: Workload = {
  requests: [{
    line: LineTemplate.fromText("PING"),
    reply: [{ kind: "exact", line: LineTemplate.fromText("PONG") }],
  }],
  greeting: [],
  crlf: false,
};

/** Answers PONG to every line, except that it holds every reply for `stallMs` at line `at`. */
function stallingServer(at: number, stallMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let index = 0;
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          for (let n; (n = await conn.read(buffer)) !== null;) {
            let replies = "";
            for (const byte of buffer.subarray(0, n)) {
              if (byte !== 0x0a) continue;
              // The stall is what this server does, not a wait for the test's sake.
              if (index++ === at) await new Promise((resolve) => setTimeout(resolve, stallMs));
              replies += "PONG\n";
            }
            await conn.write(new TextEncoder().encode(replies));
          }
        } catch {
          // The client went away.
        } finally {
          conns.delete(conn);
          closeQuietly(conn);
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
      await serving;
    },
  };
}

Deno.test("open loop: latency counts from when each request was due", async (t) => {
  // 400 requests at 200/s; the server holds its replies for 500 ms at the 100th. About 100
  // requests were due during the hold: each must show the wait, not only the one that met it.
  const options = (port: number): BenchOptions => ({
    target: { port },
    workload: PING,
    connections: 1,
    pipeline: 1,
    count: 400,
  });

  await t.step("fixed rate: every request due during the stall is slow", async () => {
    await using server = stallingServer(100, 500);
    const { report } = await runBench({ ...options(server.port), rate: 200 });
    assert.equal(report.answered, 400);
    const slow = report.distribution.filter(([ms]) => ms < 100).at(-1)!;
    const slowCount = 400 - slow[2];
    assert.ok(slowCount >= 40, `${slowCount} requests took 100 ms or more`);
    assert.ok(report.latencyMs.p90 >= 100, `p90 ${report.latencyMs.p90} ms`);
  });

  await t.step("closed loop hides it: one request met the stall", async () => {
    await using server = stallingServer(100, 500);
    const { report } = await runBench(options(server.port));
    assert.equal(report.answered, 400);
    assert.ok(report.latencyMs.max >= 450, `max ${report.latencyMs.max} ms`);
    const under = report.distribution.filter(([ms]) => ms < 100).at(-1)!;
    // Only the request that met the stall waited for it (others are slow only if the machine is).
    assert.ok(400 - under[2] < 40, `${400 - under[2]} requests took 100 ms or more`);
  });
});

Deno.test("runBench: stop, abort, impossible options", async (t) => {
  await using server = await serve({ port: 0 }, textProtocol());
  const port = (server.addr as Deno.NetAddr).port;

  await t.step("signal: stops sending, awaits what is in flight", async () => {
    const stop = new AbortController();
    const { report } = await runBench({
      target: { port },
      workload: PING,
      pipeline: 16,
      durationMs: 600_000,
      signal: stop.signal,
      progressIntervalMs: 10,
      onProgress: (progress) => {
        if (progress.answered > 1000) stop.abort();
      },
    });
    assert.ok(report.answered > 1000);
    assert.equal(report.answered, report.sent);
    assert.equal(report.passed, true);
    assert.equal(report.wasInterrupted, false);
  });

  await t.step(
    "abortSignal: ends at once; what was in flight is interrupted, not an error",
    async () => {
      await using silent = startLineServer(() => undefined);
      const abort = new AbortController();
      const running = runBench({
        target: { port: silent.port },
        workload: PING,
        connections: 2,
        pipeline: 5,
        durationMs: 600_000,
        abortSignal: abort.signal,
      });
      await within(silent.receivedAtLeast(10), 10_000, "the requests to arrive");
      abort.abort();
      const { report } = await within(running, 10_000, "the run to end");
      assert.equal(report.wasInterrupted, true);
      assert.equal(report.interrupted, 10);
      assert.equal(report.errors.total, 0);
    },
  );

  await t.step("a greeting is read first and not taken for a reply", async () => {
    await using greeter = await serve({ port: 0, greeting: "hello" }, textProtocol());
    const greeterPort = (greeter.addr as Deno.NetAddr).port;
    const { report } = await runBench({
      target: { port: greeterPort },
      workload: { ...PING, greeting: [{ kind: "exact", line: LineTemplate.fromText("hello") }] },
      count: 200,
      pipeline: 4,
    });
    assert.equal(report.answered, 200);
    assert.equal(report.passed, true, report.errorMessages.join("\n"));
  });

  await t.step("unreachable: a ConnectError before anything runs", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closed = listener.addr.port;
    listener.close();
    await assert.rejects(runBench({ target: { port: closed }, workload: PING }), ConnectError);
    await assert.rejects(
      runBench({ target: { port: closed }, workload: PING, churn: true }),
      ConnectError,
    );
  });

  await t.step("impossible options are RangeErrors", async () => {
    const target = { port };
    await assert.rejects(runBench({ target, workload: PING, connections: 0 }), RangeError);
    await assert.rejects(runBench({ target, workload: PING, pipeline: 1.5 }), RangeError);
    await assert.rejects(runBench({ target, workload: PING, count: 0 }), RangeError);
    await assert.rejects(runBench({ target, workload: PING, rate: -1 }), RangeError);
    await assert.rejects(runBench({ target, workload: PING, timeoutMs: 0 }), RangeError);
  });
});

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import {
  CRASH_WORKER,
  protocolFromConfig,
  type ServeConfig,
  serveWorkers,
} from "../../../lib/workers/worker_pool.ts";
import { protocolFromConfig as fromProtocols } from "../../../lib/protocols/config.ts";
import { exchange, LineSession } from "../../_support/line_session.ts";
import { within } from "../../_support/cli.ts";
import { LinesockError } from "../../../lib/errors.ts";

/** Captures linesock's log records (as the CLI's stderr sink would get them). */
function captureLogs(): { records: LogRecord[]; [Symbol.dispose](): void } {
  const records: LogRecord[] = [];
  configureSync({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["linesock"], lowestLevel: "info", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
    ],
  });
  return { records, [Symbol.dispose]: () => resetSync() };
}

Deno.test("serveWorkers", async (t) => {
  await t.step(
    "a worker that crashes is restarted; the other worker's connections carry on",
    async () => {
      using logs = captureLogs();
      const pool = await serveWorkers({ protocol: "echo", serve: { port: 0 } }, 2);
      const sessions: LineSession[] = [];
      try {
        // 16 connections: all on one worker would be a 1 in 32,768 chance.
        for (let index = 0; index < 16; index++) {
          const session = await LineSession.open(pool.addr);
          sessions.push(session);
          await session.write(`before ${index}\n`);
          assert.deepEqual(await session.readLines(1), [`before ${index}`]);
        }
        (pool as unknown as Record<typeof CRASH_WORKER, (index: number) => void>)[CRASH_WORKER](0);
        const deadline = performance.now() + 10_000;
        const restarted = () =>
          logs.records.some((record) => /Worker 1 restarted/.test(record.message.join("")));
        while (!restarted()) {
          assert.ok(performance.now() < deadline, "no restart within 10 s");
          // The pause between polls of the counter, not a synchronisation.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        // Connections of the crashed worker are closed; the others still echo.
        let alive = 0;
        for (const [index, session] of sessions.entries()) {
          const reply = await session.write(`after ${index}\n`).then(() => session.readLines(1))
            .catch(() => []);
          if (reply[0] === `after ${index}`) alive++;
        }
        assert.ok(alive >= 1 && alive < 16, `${alive} of 16 connections survived`);
        // New connections are served by both workers again.
        for (let index = 0; index < 8; index++) {
          assert.deepEqual(await exchange(pool.addr, ["again"]), ["again"]);
        }
        const messages = logs.records.map((record) => record.message.join(""));
        assert.ok(messages.some((m) => /Worker 1 crashed; restarting it in 100 ms/.test(m)));
        assert.ok(messages.some((m) => /Worker 1 restarted \(1 restarts so far\)/.test(m)));
      } finally {
        for (const session of sessions) session.close();
        await within(pool.shutdown(), 15_000, "pool shutdown");
      }
      assert.equal(pool.stats.workerRestarts, 1);
    },
  );

  await t.step(
    "connections are spread over the workers, logs say which worker, the counters add up",
    async () => {
      using logs = captureLogs();
      const pool = await serveWorkers({ protocol: "text", name: "pool", serve: { port: 0 } }, 2);
      assert.equal(pool.size, 2);
      assert.match(pool.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      const connections = 40;
      for (let index = 0; index < connections; index++) {
        assert.deepEqual(await exchange(pool.addr, ["PING", "HELLO"]), ["PONG", "pool"]);
      }
      await within(pool.shutdown(), 15_000, "pool shutdown");
      await pool.finished;
      assert.equal(pool.stats.connections, connections);
      assert.equal(pool.stats.linesIn, 2 * connections);
      assert.equal(pool.stats.linesOut, 2 * connections);
      assert.equal(pool.stats.bytesIn, connections * "PING\nHELLO\n".length);
      const openedBy = new Map<unknown, number>();
      for (const record of logs.records) {
        if (String(record.rawMessage).includes("opened")) {
          const worker = record.properties.worker;
          openedBy.set(worker, (openedBy.get(worker) ?? 0) + 1);
          assert.equal(record.category.at(-1), `w${worker}`);
        }
      }
      // SO_REUSEPORT hashes each connection's addresses: 40 connections on one worker would be a
      // 1 in 2^39 chance.
      assert.deepEqual([...openedBy.keys()].sort(), [1, 2]);
      assert.equal([...openedBy.values()].reduce((a, b) => a + b), connections);
    },
  );

  await t.step("counters are live: connections accepted and open now (refreshStats)", async () => {
    await using pool = await serveWorkers(
      { protocol: "text", serve: { port: 0 }, logLevel: "error" },
      2,
    );
    const sessions = [];
    try {
      for (let index = 0; index < 3; index++) {
        const session = await LineSession.open(pool.addr);
        sessions.push(session);
        await session.write("PING\n");
        assert.equal(await session.readLine(), "PONG");
      }
      const live = await within(pool.refreshStats(), 10_000, "the workers' counters");
      assert.equal(live.open, 3);
      assert.equal(live.connections, 3);
      assert.equal(pool.stats.open, 3);
    } finally {
      for (const session of sessions) session.close();
    }
  });

  await t.step("a client's SHUTDOWN stops every worker, with one total", async () => {
    const pool = await serveWorkers(
      { protocol: "json", allowShutdown: true, serve: { port: 0 }, logLevel: "error" },
      2,
    );
    assert.deepEqual(await exchange(pool.addr, ['{"command":"ping","id":1}']), [
      '{"status":0,"message":"pong","extra":null,"id":1}',
    ]);
    const [reply] = await exchange(pool.addr, ['{"command":"shutdown"}']);
    assert.equal(JSON.parse(reply!).message, "shutting down");
    await within(pool.finished, 15_000, "pool to stop after SHUTDOWN");
    assert.equal(pool.stats.connections, 2);
    await assert.rejects(Deno.connect({ port: (pool.addr as Deno.NetAddr).port }));
  });

  await t.step("a port taken by another program fails the start", async () => {
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const failure = await serveWorkers(
      { protocol: "echo", serve: { port: taken.addr.port }, logLevel: "fatal" },
      2,
    ).then(() => undefined, (error) => error);
    // The worker's typed error crosses the thread with its code.
    assert.ok(failure instanceof LinesockError, String(failure));
    assert.equal(failure.code, "CANNOT_LISTEN");
    assert.equal(
      failure.message,
      `Cannot listen on tcp://127.0.0.1:${taken.addr.port}: address already in use`,
    );
  });

  await t.step(
    "a port another pool serves fails the start (SO_REUSEPORT would let it share it)",
    async () => {
      await using first = await serveWorkers(
        { protocol: "echo", serve: { port: 0 }, logLevel: "fatal" },
        2,
      );
      const port = (first.addr as Deno.NetAddr).port;
      const failure = await serveWorkers(
        { protocol: "echo", serve: { port }, logLevel: "fatal" },
        2,
      ).then(async (second) => {
        await second[Symbol.asyncDispose]();
        return undefined;
      }, (error) => error);
      assert.ok(failure instanceof LinesockError, String(failure));
      assert.equal(failure.code, "CANNOT_LISTEN");
      assert.equal(
        failure.message,
        `Cannot listen on tcp://127.0.0.1:${port}: address already in use`,
      );
      // The first pool still answers.
      const conn = await Deno.connect({ port });
      await conn.write(new TextEncoder().encode("still mine\n"));
      const buffer = new Uint8Array(64);
      const count = await conn.read(buffer);
      assert.equal(new TextDecoder().decode(buffer.subarray(0, count ?? 0)), "still mine\n");
      conn.close();
    },
  );

  await t.step("a Unix socket or a count below 1 is refused", async () => {
    await assert.rejects(
      serveWorkers({ protocol: "echo", serve: { path: "/tmp/x.sock" } }, 2),
      TypeError,
    );
    await assert.rejects(serveWorkers({ protocol: "echo", serve: {} }, 0), RangeError);
  });
});

Deno.test("protocolFromConfig", async (t) => {
  await t.step(
    "is lib/protocols/config.ts's, still exported here, and takes a ServeConfig",
    async () => {
      // Its own tests are in tests/lib/protocols/config_test.ts.
      assert.equal(protocolFromConfig, fromProtocols);
      const config: ServeConfig = { protocol: "text", name: "n", serve: { port: 0 } };
      const text = await protocolFromConfig(config);
      assert.equal(text.onData, undefined);
    },
  );
});

/**
 * A server's metrics snapshot (`Server.metrics()`, `WorkerPool.metrics()`), over real sockets: the
 * counters with open connections' traffic added in, errors and refusals by kind, the queue, the
 * latency histogram (only with `metrics: true`), what a protocol reports (route hits, programs),
 * and a pool's sum over its workers; and the pieces: the histogram's buckets and `addMetrics`.
 */
import assert from "node:assert/strict";
import {
  addMetrics,
  emptyMetrics,
  LATENCY_BUCKETS_SECONDS,
  LatencyHistogram,
  type LineProtocol,
  serve,
  type ServerMetrics,
} from "../../../lib/server/mod.ts";
import { protocolFromConfig } from "../../../lib/protocols/config.ts";
import { CRASH_WORKER, serveWorkers } from "../../../lib/workers/worker_pool.ts";
import { exchange, LineSession } from "../../_support/line_session.ts";
import { routesFile } from "../../_support/routes.ts";
import { WAIT_MS, waitUntil } from "../../_support/timeouts.ts";
import { gate } from "../../_support/gate.ts";

Deno.test("LatencyHistogram", async (t) => {
  await t.step("an observation on a bound counts in that bound's bucket", () => {
    const histogram = new LatencyHistogram();
    histogram.observe(0.01); // exactly 10 µs: le="0.00001"
    histogram.observe(0.0100001); // just above: the next bucket
    histogram.observe(10_000); // 10 s: the last bound
    histogram.observe(60_000); // beyond every bound
    const counts = histogram.snapshot();
    assert.deepEqual(counts.bounds, LATENCY_BUCKETS_SECONDS);
    assert.equal(counts.counts.length, LATENCY_BUCKETS_SECONDS.length + 1);
    assert.equal(counts.counts[0], 1);
    assert.equal(counts.counts[1], 1);
    assert.equal(counts.counts[LATENCY_BUCKETS_SECONDS.length - 1], 1);
    assert.equal(counts.counts[LATENCY_BUCKETS_SECONDS.length], 1);
    assert.equal(counts.count, 4);
    assert.ok(Math.abs(counts.sum - 70.0000200001) < 1e-9, `sum ${counts.sum}`);
  });

  await t.step("observeMany counts several of the same time", () => {
    const histogram = new LatencyHistogram();
    histogram.observeMany(0.2, 5); // 200 µs each: le="0.00025"
    const counts = histogram.snapshot();
    assert.equal(counts.counts[4], 5);
    assert.equal(counts.count, 5);
    assert.ok(Math.abs(counts.sum - 0.001) < 1e-12, `sum ${counts.sum}`);
  });

  await t.step("a snapshot is a copy", () => {
    const histogram = new LatencyHistogram();
    const before = histogram.snapshot();
    histogram.observe(1);
    assert.equal(before.count, 0);
    assert.equal(histogram.snapshot().count, 1);
  });
});

Deno.test("addMetrics adds counters, gauges, kinds and histograms", () => {
  const one = emptyMetrics();
  one.stats.connections = 2;
  one.stats.open = 1;
  one.errors = { busy: 1 };
  one.refused = { busy: 1 };
  one.routeHits = { "routes[0]": 3 };
  one.programsRunning = 1;
  const histogram = new LatencyHistogram();
  histogram.observe(1);
  const oneLatency = one.latency = histogram.snapshot();
  const two: ServerMetrics = {
    ...emptyMetrics(),
    queued: 4,
    errors: { busy: 2, tls: 1 },
    routeHits: { "routes[0]": 1, "routes[1]": 5 },
    latency: histogram.snapshot(),
  };
  two.stats.connections = 5;
  const total = addMetrics(addMetrics(emptyMetrics(), one), two);
  assert.equal(total.stats.connections, 7);
  assert.equal(total.stats.open, 1);
  assert.equal(total.queued, 4);
  assert.deepEqual(total.errors, { busy: 3, tls: 1 });
  assert.deepEqual(total.refused, { busy: 1 });
  assert.deepEqual(total.routeHits, { "routes[0]": 4, "routes[1]": 5 });
  assert.equal(total.programsRunning, 1);
  assert.equal(total.latency?.count, 2);
  assert.equal(total.latency?.counts[6], 2); // 1 ms: le="0.001"
  // The first snapshot added was copied, not taken over.
  assert.equal(oneLatency.count, 1);
  assert.throws(
    () => addMetrics(total, { ...emptyMetrics(), latency: { ...oneLatency, bounds: [1] } }),
    RangeError,
  );
});

Deno.test("Server.metrics", async (t) => {
  await t.step("counts the traffic of connections still open, and once only", async () => {
    await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
    await using session = await LineSession.open(server.addr);
    await session.write("hello\nyou\n");
    assert.deepEqual(await session.readLines(2), ["HELLO", "YOU"]);
    const live = server.metrics();
    assert.equal(live.stats.connections, 1);
    assert.equal(live.stats.open, 1);
    assert.equal(live.stats.linesIn, 2);
    assert.equal(live.stats.linesOut, 2);
    assert.equal(live.stats.bytesIn, "hello\nyou\n".length);
    assert.equal(live.stats.bytesOut, "HELLO\nYOU\n".length);
    // The plain counters join when the connection ends.
    assert.equal(server.stats.linesIn, 0);
    await session.closeWrite();
    assert.deepEqual(await session.readAll(), []);
    await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the connection ended");
    const ended = server.metrics();
    assert.deepEqual({ ...ended.stats, open: 1 }, live.stats);
    assert.deepEqual(ended.stats, server.stats);
  });

  await t.step("no latency histogram unless asked for; then one observation per line", async () => {
    await using plain = await serve({ port: 0 }, (line) => line);
    await exchange(plain.addr, ["a", "b"]);
    assert.equal(plain.metrics().latency, undefined);

    const held = gate();
    await using timed = await serve({ port: 0, metrics: true }, async (line) => {
      if (line === "slow") await held.promise;
      return line;
    });
    await using session = await LineSession.open(timed.addr);
    await session.write("fast\n");
    assert.deepEqual(await session.readLines(1), ["fast"]);
    assert.equal(timed.metrics().latency?.count, 1);
    await session.write("slow\n");
    await waitUntil(() => timed.metrics().stats.linesIn === 2, WAIT_MS, "the slow line taken");
    // An asynchronous reply is timed once it has settled.
    assert.equal(timed.metrics().latency?.count, 1);
    held.open();
    assert.deepEqual(await session.readLines(1), ["slow"]);
    const latency = timed.metrics().latency!;
    assert.equal(latency.count, 2);
    assert.equal(latency.counts.reduce((sum, count) => sum + count, 0), 2);
    // Pipelined lines, timed together, count once each.
    await session.write("a\nb\nc\nd\n");
    assert.deepEqual(await session.readLines(4), ["a", "b", "c", "d"]);
    assert.equal(timed.metrics().latency?.count, 6);
  });

  await t.step("errors by kind add up to the total", async () => {
    await using server = await serve(
      { port: 0, maxLineBytes: 8 },
      {
        onLine(line, context) {
          const text = new TextDecoder().decode(line);
          if (text === "bad") {
            context.countError();
            return "ERR bad";
          }
          if (text === "busy") return void context.sendError("internal", "oops");
          return text;
        },
      } satisfies LineProtocol,
    );
    assert.deepEqual(await exchange(server.addr, ["bad", "busy", "0123456789abcdef", "ok"]), [
      "ERR bad",
      "ERR oops",
      "ERR line too long (limit 8 bytes)",
      "ok",
    ]);
    const metrics = server.metrics();
    assert.deepEqual(metrics.errors, { protocol: 1, internal: 1, line_too_long: 1 });
    assert.equal(metrics.stats.errors, 3);
  });

  await t.step("refusals by reason, and the queue", async () => {
    await using server = await serve(
      { port: 0, maxClients: 1, queue: 1, maxConnections: 3 },
      (line) => line,
    );
    await using served = await LineSession.open(server.addr);
    await served.write("one\n");
    assert.deepEqual(await served.readLines(1), ["one"]);
    await using waiting = await LineSession.open(server.addr);
    await waitUntil(() => server.metrics().queued === 1, WAIT_MS, "one connection queued");
    // The queue is full: busy.
    assert.deepEqual(await exchange(server.addr, ["x"]), ["ERR busy"]);
    const metrics = server.metrics();
    assert.deepEqual(metrics.refused, { busy: 1 });
    assert.equal(metrics.errors.busy, 1);
    assert.equal(metrics.stats.open, 2);
    served.close();
    await waitUntil(() => server.metrics().queued === 0, WAIT_MS, "the queue moved on");
    assert.deepEqual(await waiting.exchange(["two"]), ["two"]);
  });

  await t.step("serving turns false once the shutdown begins", async () => {
    const server = await serve({ port: 0 }, (line) => line);
    assert.equal(server.serving, true);
    assert.equal(server.metrics().serving, true);
    const stopping = server.shutdown();
    assert.equal(server.serving, false);
    assert.equal(server.metrics().serving, false);
    await stopping;
  });

  await t.step("a protocol's own metrics: route hits and programs", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock-metrics-" });
    const fifo = `${dir}/release`;
    try {
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      await using routes = await routesFile(
        { match: { exact: "status" }, reply: "OK" },
        // Runs until the test writes to the FIFO.
        { match: { exact: "wait" }, run: { argv: ["cat", fifo], timeout: "30s" } },
        { match: { prefix: "never " }, reply: "no" },
      );
      const protocol = await protocolFromConfig({ protocol: "text", routesPath: routes.path });
      await using server = await serve({ port: 0 }, protocol);
      assert.deepEqual(server.metrics().routeHits, {
        "routes[0]": 0,
        "routes[1]": 0,
        "routes[2]": 0,
      });
      await using session = await LineSession.open(server.addr);
      await session.write("status\nstatus\nPING\n");
      assert.deepEqual(await session.readLines(3), ["OK", "OK", "PONG"]);
      await session.write("wait\n");
      await waitUntil(() => server.metrics().programsRunning === 1, WAIT_MS, "a program runs");
      const writer = await Deno.open(fifo, { write: true });
      await writer.write(new TextEncoder().encode("released\n"));
      writer.close();
      assert.deepEqual(await session.readLines(1), ["released"]);
      await waitUntil(() => server.metrics().programsRunning === 0, WAIT_MS, "the program ended");
      assert.deepEqual(server.metrics().routeHits, {
        "routes[0]": 2,
        "routes[1]": 1,
        "routes[2]": 0,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("WorkerPool.metrics adds up its workers", async () => {
  const pool = await serveWorkers({ protocol: "text", serve: { port: 0, metrics: true } }, 2);
  try {
    assert.equal(pool.serving, true);
    // 16 connections: all on one worker would be a 1 in 32,768 chance.
    for (let index = 0; index < 16; index++) {
      assert.deepEqual(await exchange(pool.addr, ["PING", "nope"]), [
        "PONG",
        "ERR unknown command: nope",
      ]);
    }
    const metrics = await pool.metrics();
    assert.equal(metrics.workers, 2);
    assert.equal(metrics.stats.connections, 16);
    assert.equal(metrics.stats.linesIn, 32);
    assert.equal(metrics.errors.protocol, 16);
    assert.equal(metrics.latency?.count, 32);
    assert.equal(metrics.stats.workerRestarts, 0);

    // A crashed worker's counters stay in the sum; its replacement counts on.
    (pool as unknown as Record<typeof CRASH_WORKER, (index: number) => void>)[CRASH_WORKER](0);
    await waitUntil(
      async () => (await pool.metrics()).stats.workerRestarts === 1 && pool.size === 2,
      WAIT_MS,
      "the worker restarted",
    );
    const after = await pool.metrics();
    assert.equal(after.workers, 2);
    // What the crashed worker had last reported (every second) is kept.
    assert.equal(after.stats.connections, 16);
    assert.equal(after.stats.linesIn, 32);
    assert.deepEqual(await exchange(pool.addr, ["PING"]), ["PONG"]);
  } finally {
    const stopping = pool.shutdown();
    assert.equal(pool.serving, false);
    await stopping;
  }
});

/**
 * The Prometheus text of a snapshot (checked by the real `promtool check metrics`, Debian
 * `prometheus`), and the HTTP endpoint: `/metrics`, `/healthz` (200 while serving, 503 once the
 * shutdown began), nothing else, and never a public address unless asked.
 */
import assert from "node:assert/strict";
import {
  formatPrometheus,
  isLoopback,
  PROMETHEUS_CONTENT_TYPE,
  serveMetrics,
} from "../../../lib/metrics/mod.ts";
import {
  emptyMetrics,
  LatencyHistogram,
  serve,
  type ServerMetrics,
} from "../../../lib/server/mod.ts";
import { ListenError } from "../../../lib/errors.ts";
import { ignoredName } from "../../_support/tools.ts";
import { PROMTOOL_MISSING, promtoolCheck } from "../../_support/prometheus.ts";

/** A snapshot with something in every family. */
function busyMetrics(): ServerMetrics {
  const histogram = new LatencyHistogram();
  for (const ms of [0.005, 0.02, 0.3, 7, 120, 20_000]) histogram.observe(ms);
  const metrics: ServerMetrics = {
    ...emptyMetrics(),
    queued: 2,
    errors: { protocol: 4, tls: 1, some_new_kind: 1 },
    refused: { busy: 3 },
    routeHits: { "routes[0]": 7, "routes[1]": 0 },
    programsRunning: 1,
    programsWaiting: 2,
    latency: histogram.snapshot(),
    workers: 2,
  };
  Object.assign(metrics.stats, {
    connections: 10,
    open: 3,
    linesIn: 100,
    linesOut: 99,
    bytesIn: 4096,
    bytesOut: 8192,
    errors: 6,
    acceptErrors: 1,
    workerRestarts: 1,
  });
  return metrics;
}

Deno.test("formatPrometheus", async (t) => {
  await t.step("every family has HELP and TYPE; known kinds are listed at 0", () => {
    const text = formatPrometheus(emptyMetrics());
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => match[1]);
    for (const name of names) assert.match(text, new RegExp(`^# HELP ${name} \\S`, "m"));
    assert.match(text, /^linesock_errors_total\{kind="tls_handshake_timeout"\} 0$/m);
    assert.match(text, /^linesock_connections_refused_total\{reason="busy"\} 0$/m);
    // No routes, no latency histogram, no process facts: no such families.
    assert.doesNotMatch(text, /route_hits|line_handling|process_/);
    assert.ok(text.endsWith("\n"));
  });

  await t.step("the histogram's buckets are cumulative and end in +Inf", () => {
    const text = formatPrometheus(busyMetrics(), { protocol: "json" });
    const bucket = (le: string) =>
      Number(
        new RegExp(
          `^linesock_line_handling_seconds_bucket\\{protocol="json",le="${le}"\\} (\\S+)$`,
          "m",
        )
          .exec(text)?.[1],
      );
    assert.equal(bucket("0.00001"), 1);
    assert.equal(bucket("0.000025"), 2);
    assert.equal(bucket("0.0005"), 3);
    assert.equal(bucket("0.01"), 4);
    assert.equal(bucket("0.25"), 5);
    assert.equal(bucket("10"), 5);
    assert.equal(bucket("\\+Inf"), 6);
    assert.match(text, /^linesock_line_handling_seconds_count\{protocol="json"\} 6$/m);
    const sum = Number(
      /^linesock_line_handling_seconds_sum\{protocol="json"\} (\S+)$/m.exec(text)?.[1],
    );
    assert.ok(Math.abs(sum - 20.127325) < 1e-9, `sum ${sum}`);
  });

  await t.step("label values are escaped", () => {
    const metrics = emptyMetrics();
    metrics.routeHits['a "quoted"\\back\nslash'] = 1;
    const text = formatPrometheus(metrics);
    assert.match(text, /^linesock_route_hits_total\{route="a \\"quoted\\"\\\\back\\nslash"\} 1$/m);
  });

  await t.step({
    name: ignoredName("promtool check metrics accepts it", PROMTOOL_MISSING),
    ignore: PROMTOOL_MISSING !== undefined,
    async fn() {
      const text = formatPrometheus(busyMetrics(), {
        protocol: "text",
        process: {
          residentMemoryBytes: 50_000_000,
          startTimeSeconds: 1_700_000_000.5,
          openFds: 30,
          maxFds: 1024,
        },
      });
      const checked = await promtoolCheck(text);
      assert.deepEqual(checked, { code: 0, output: "" });
      // And it can fail: a counter without its _total is reported.
      const broken = await promtoolCheck(
        text.replace(/linesock_sent_lines_total/g, "linesock_sent_lines"),
      );
      assert.match(broken.output, /counter metrics should have "_total" suffix/);
    },
  });
});

Deno.test("isLoopback", () => {
  for (const host of ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (const host of ["0.0.0.0", "::", "192.168.1.2", "10.0.0.1", "example.com", "128.0.0.1"]) {
    assert.equal(isLoopback(host), false, host);
  }
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
});

Deno.test("serveMetrics", async (t) => {
  await t.step("/metrics and /healthz; 503 once the shutdown began", async () => {
    const server = await serve({ port: 0, metrics: true }, (line) => line);
    try {
      await using endpoint = serveMetrics({ port: 0, protocol: "text" }, server);
      assert.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const metrics = await fetch(`${endpoint.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.equal(metrics.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
      const text = await metrics.text();
      assert.match(text, /^linesock_serving 1$/m);
      assert.match(text, /^linesock_line_handling_seconds_count\{protocol="text"\} 0$/m);
      assert.match(text, /^process_resident_memory_bytes \d+$/m);
      const healthy = await fetch(`${endpoint.url}/healthz`);
      assert.deepEqual([healthy.status, await healthy.text()], [200, "serving\n"]);

      const stopping = server.shutdown();
      const going = await fetch(`${endpoint.url}/healthz`);
      assert.deepEqual([going.status, await going.text()], [503, "shutting down\n"]);
      assert.match(await (await fetch(`${endpoint.url}/metrics`)).text(), /^linesock_serving 0$/m);
      await stopping;
    } finally {
      await server.shutdown();
    }
  });

  await t.step("nothing else: 404 for other paths, 405 for other methods", async () => {
    const source = { serving: true, metrics: () => emptyMetrics() };
    await using endpoint = serveMetrics({ port: 0 }, source);
    for (const path of ["/", "/metrics/", "/favicon.ico", "/healthz?x"]) {
      const response = await fetch(`${endpoint.url}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, path === "/healthz?x" ? 200 : 404, path);
    }
    const posted = await fetch(`${endpoint.url}/metrics`, { method: "POST", body: "x" });
    await posted.body?.cancel();
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get("allow"), "GET, HEAD");
    const head = await fetch(`${endpoint.url}/healthz`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });

  await t.step("a failing source answers 500, and the endpoint goes on", async () => {
    let fail = true;
    const source = {
      serving: true,
      metrics: () => {
        if (fail) throw new Error("no snapshot");
        return emptyMetrics();
      },
    };
    await using endpoint = serveMetrics({ port: 0 }, source);
    const failed = await fetch(`${endpoint.url}/metrics`);
    await failed.body?.cancel();
    assert.equal(failed.status, 500);
    fail = false;
    const answered = await fetch(`${endpoint.url}/metrics`);
    await answered.body?.cancel();
    assert.equal(answered.status, 200);
  });

  await t.step("refuses an address that is not loopback unless public", () => {
    const source = { serving: true, metrics: () => emptyMetrics() };
    assert.throws(
      () => serveMetrics({ hostname: "0.0.0.0", port: 0 }, source),
      (error: unknown) =>
        error instanceof ListenError &&
        error.message ===
          "Cannot listen on http://0.0.0.0:0: not a loopback address, and metrics are not " +
            "public unless asked for",
    );
    assert.throws(() => serveMetrics({ hostname: "::", port: 0 }, source), ListenError);
  });

  await t.step("an address in use is a ListenError", () => {
    const source = { serving: true, metrics: () => emptyMetrics() };
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    assert.throws(
      () => serveMetrics({ port }, source),
      (error: unknown) =>
        error instanceof ListenError &&
        error.message === `Cannot listen on http://127.0.0.1:${port}: address already in use`,
    );
  });
});

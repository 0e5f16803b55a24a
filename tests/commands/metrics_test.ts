/**
 * `linesock serve --metrics HOST:PORT`, end to end with the real CLI and real consumers: off by
 * default, never on a public address unless `--metrics-public` says so, a scrape that
 * `promtool check metrics` (Debian `prometheus`) accepts and that counts the traffic, `/healthz`
 * going from 200 to 503 when the shutdown begins and staying up until the server is gone, the
 * workers of `--workers` summed by the main process, a real Prometheus scraping it, and HAProxy's
 * `option httpchk` taking the server out of its backend when it shuts down.
 *
 * The tools are ignored, with the reason in the test's name, where they are not installed
 * (`.ci/run` installs them).
 */
import assert from "node:assert/strict";
import { runCli, type RunningServer, startServer, within } from "../_support/cli.ts";
import { exchange, LineSession } from "../_support/line_session.ts";
import { unusedPort } from "../_support/ports.ts";
import { routesFile } from "../_support/routes.ts";
import { WAIT_MS, waitUntil } from "../_support/timeouts.ts";
import { ignoredName, toolMissing } from "../_support/tools.ts";
import { PROMTOOL_MISSING, promtoolCheck, sample } from "../_support/prometheus.ts";

const PROMETHEUS_MISSING = toolMissing("prometheus", ["--version"]);
const HAPROXY_MISSING = toolMissing("haproxy", ["-v"]);
const MKFIFO_MISSING = toolMissing("mkfifo", ["--version"]);

/** The metrics URL that `serve --metrics` prints on its second stdout line. */
async function metricsUrl(server: RunningServer): Promise<string> {
  await waitUntil(() => server.stdoutLines.length > 0, WAIT_MS, "the metrics line");
  const match = /^metrics on (http:\/\/\S+)\/metrics$/.exec(server.stdoutLines[0]!);
  assert.ok(match, `second stdout line: ${server.stdoutLines[0]}`);
  return match[1]!;
}

/** GET a path; its status and body. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await within(fetch(url), WAIT_MS, `GET ${url}`);
  return { status: response.status, body: await response.text() };
}

/**
 * A routes file whose `hold` runs `cat FIFO`: the program (and the line's reply, and so a graceful
 * shutdown) lasts until the test writes to the FIFO; `release()` does.
 */
async function holdRoutes(): Promise<{ path: string; release(): Promise<void> } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "linesock-metrics-" });
  const fifo = `${dir}/release`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success, "mkfifo");
  const routes = await routesFile(
    { match: { exact: "hold" }, run: { argv: ["cat", fifo], timeout: "60s" } },
    { match: { exact: "status" }, reply: "OK" },
  );
  return {
    path: routes.path,
    async release() {
      // Opening a FIFO for writing waits for its reader: the program is running by now.
      const writer = await Deno.open(fifo, { write: true });
      await writer.write(new TextEncoder().encode("released\n"));
      writer.close();
    },
    async [Symbol.asyncDispose]() {
      await routes[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("serve --metrics: wrong uses are usage errors", async () => {
  const cases: [string[], string][] = [
    [
      ["--metrics", "0.0.0.0:9464"],
      "linesock: --metrics 0.0.0.0:9464 is not a loopback address: metrics would be open to the " +
      "network (add --metrics-public to serve them there)",
    ],
    [
      ["--metrics", "[::]:9464"],
      "linesock: --metrics [::]:9464 is not a loopback address: metrics would be open to the " +
      "network (add --metrics-public to serve them there)",
    ],
    [["--metrics-public"], "linesock: --metrics-public needs --metrics"],
    [["--metrics", "9464x"], "linesock: --metrics: expected HOST:PORT, such as 127.0.0.1:9464"],
    [
      ["--metrics", "unix:///tmp/m.sock"],
      "linesock: --metrics: expected HOST:PORT, such as 127.0.0.1:9464",
    ],
  ];
  for (const [args, message] of cases) {
    const result = await runCli("serve", ["--port", "0", ...args]);
    assert.equal(result.code, 2, args.join(" "));
    assert.equal(result.stderr.split("\n")[0], message);
    assert.equal(result.stdout, "");
  }
});

Deno.test("serve --metrics: off by default", async () => {
  await using server = await startServer(["--port", "0"]);
  assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
  const result = await server.stop();
  // Nothing but the summary after the first line: no metrics line, no endpoint.
  assert.equal(result.stdout.split("\n").length, 1);
  assert.match(result.stdout, /^summary: /);
});

Deno.test({
  name: ignoredName(
    "serve --metrics: a scrape counts the traffic, and promtool accepts it",
    PROMTOOL_MISSING,
  ),
  ignore: PROMTOOL_MISSING !== undefined,
  async fn() {
    await using routes = await routesFile({ match: { exact: "status" }, reply: "OK" });
    await using server = await startServer([
      "--port",
      "0",
      "--routes",
      routes.path,
      "--max-clients",
      "1",
      "--metrics",
      "127.0.0.1:0",
    ]);
    const url = await metricsUrl(server);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await using held = await LineSession.open(server.port);
    await held.write("status\nPING\nnope\n");
    assert.deepEqual(await held.readLines(3), [
      "OK",
      "PONG",
      "ERR unknown command: nope",
    ]);
    // A second client waits for the one slot.
    await using waiting = await LineSession.open(server.port);
    await waitUntil(
      async () => sample((await get(`${url}/metrics`)).body, "linesock_connections_queued") === 1,
      WAIT_MS,
      "a connection queued",
    );
    const { status, body } = await get(`${url}/metrics`);
    assert.equal(status, 200);
    const expected: Record<string, number> = {
      "linesock_serving": 1,
      "linesock_connections_open": 2,
      "linesock_connections_queued": 1,
      "linesock_connections_total": 2,
      // The open connection's traffic shows before it ends.
      "linesock_received_lines_total": 3,
      "linesock_sent_lines_total": 3,
      "linesock_received_bytes_total": "status\nPING\nnope\n".length,
      'linesock_errors_total{kind="protocol"}': 1,
      'linesock_route_hits_total{route="routes[0]"}': 1,
      'linesock_line_handling_seconds_count{protocol="text"}': 3,
      'linesock_line_handling_seconds_bucket{protocol="text",le="+Inf"}': 3,
      "linesock_workers": 0,
    };
    for (const [series, value] of Object.entries(expected)) {
      assert.equal(sample(body, series), value, series);
    }
    assert.deepEqual(await promtoolCheck(body), { code: 0, output: "" });
    held.close();
    assert.deepEqual(await waiting.exchange(["PING"]), ["PONG"]);
  },
});

Deno.test({
  name: ignoredName(
    "serve --metrics: /healthz answers 503 from the start of the shutdown until the server is gone",
    MKFIFO_MISSING,
  ),
  ignore: MKFIFO_MISSING !== undefined,
  async fn() {
    await using routes = await holdRoutes();
    await using server = await startServer([
      "--port",
      "0",
      "--routes",
      routes.path,
      "--grace",
      "60s",
      "--metrics",
      "localhost:0",
    ]);
    const url = await metricsUrl(server);
    assert.deepEqual(await get(`${url}/healthz`), { status: 200, body: "serving\n" });
    await using session = await LineSession.open(server.port);
    await session.write("hold\n");
    await waitUntil(
      async () => sample((await get(`${url}/metrics`)).body, "linesock_programs_running") === 1,
      WAIT_MS,
      "the program running",
    );
    // The shutdown waits for the program's reply (grace 60 s): meanwhile, 503.
    server.process.kill("SIGTERM");
    await waitUntil(
      async () => (await get(`${url}/healthz`)).status === 503,
      WAIT_MS,
      "/healthz answering 503",
    );
    assert.deepEqual(await get(`${url}/healthz`), { status: 503, body: "shutting down\n" });
    const during = (await get(`${url}/metrics`)).body;
    assert.equal(sample(during, "linesock_serving"), 0);
    assert.equal(sample(during, "linesock_connections_open"), 1);
    await routes.release();
    assert.deepEqual(await session.readLines(1), ["released"]);
    const status = await within(server.process.status, WAIT_MS, "the server's exit");
    assert.equal(status.code, 0);
    // The endpoint went with it.
    await assert.rejects(fetch(`${url}/healthz`));
    const result = await server.stop();
    assert.match(result.stdout, /summary: 1 connection, 1 line in, 1 line out/);
  },
});

Deno.test("serve --workers 2 --metrics: the main process adds up the workers", async () => {
  await using server = await startServer([
    "--port",
    "0",
    "--workers",
    "2",
    "--metrics",
    "127.0.0.1:0",
  ]);
  const url = await metricsUrl(server);
  // 16 connections: all on one worker would be a 1 in 32,768 chance.
  for (let index = 0; index < 16; index++) {
    assert.deepEqual(await exchange(server.port, ["PING", "HELLO"]), ["PONG", hostName()]);
  }
  const { body } = await get(`${url}/metrics`);
  assert.equal(sample(body, "linesock_workers"), 2);
  assert.equal(sample(body, "linesock_worker_restarts_total"), 0);
  assert.equal(sample(body, "linesock_connections_total"), 16);
  assert.equal(sample(body, "linesock_received_lines_total"), 32);
  assert.equal(sample(body, 'linesock_line_handling_seconds_count{protocol="text"}'), 32);
  const result = await server.stop();
  assert.match(result.stdout, /summary: 16 connections, 32 lines in/);
});

/** What HELLO answers without --name. */
function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "linesock";
  }
}

/**
 * A child process that runs until disposed (SIGTERM, then SIGKILL after a while), its stderr kept
 * for failure messages.
 */
function spawnTool(
  command: string,
  args: string[],
): { child: Deno.ChildProcess; stderr(): string; exited(): boolean } & AsyncDisposable {
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  let exited = false;
  child.status.then(() => exited = true);
  const reading = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) stderr += text;
  })();
  return {
    child,
    stderr: () => stderr,
    exited: () => exited,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 10_000);
      await child.status;
      clearTimeout(timer);
      await reading;
    },
  };
}

Deno.test({
  name: ignoredName("a real Prometheus scrapes serve --metrics", PROMETHEUS_MISSING),
  ignore: PROMETHEUS_MISSING !== undefined,
  async fn() {
    await using server = await startServer(["--port", "0", "--metrics", "127.0.0.1:0"]);
    const target = (await metricsUrl(server)).slice("http://".length);
    assert.equal((await exchange(server.port, ["PING", "PING", "TIME"])).length, 3);
    const dir = await Deno.makeTempDir({ prefix: "linesock-prometheus-" });
    try {
      await Deno.writeTextFile(
        `${dir}/prometheus.yml`,
        [
          "global:",
          "  scrape_interval: 1s",
          "  scrape_timeout: 1s",
          "  evaluation_interval: 1s",
          "scrape_configs:",
          "  - job_name: linesock",
          "    static_configs:",
          `      - targets: ["${target}"]`,
          "",
        ].join("\n"),
      );
      // A port taken between the check and Prometheus's bind: try another one.
      let prometheus: ReturnType<typeof spawnTool> | undefined;
      let api = "";
      for (let attempt = 1; prometheus === undefined; attempt++) {
        const port = unusedPort();
        const started = spawnTool("prometheus", [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=warn",
        ]);
        api = `http://127.0.0.1:${port}`;
        try {
          await waitUntil(
            async () => {
              if (started.exited()) throw new Error(`prometheus exited: ${started.stderr()}`);
              return await fetch(`${api}/-/ready`).then(
                async (response) => (await response.body?.cancel(), response.status === 200),
                () => false,
              );
            },
            30_000,
            "Prometheus ready",
          );
          prometheus = started;
        } catch (error) {
          await started[Symbol.asyncDispose]();
          if (attempt === 3) throw error;
        }
      }
      await using _prometheus = prometheus;
      const query = async (promql: string) => {
        const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const answer = await response.json() as {
          status: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        assert.equal(answer.status, "success", promql);
        return answer.data.result;
      };
      // A few scrapes (one a second) until the series are there.
      await waitUntil(
        async () => (await query('linesock_received_lines_total{job="linesock"}')).length > 0,
        30_000,
        `Prometheus scraping linesock (its log: ${prometheus.stderr()})`,
      );
      const [lines] = await query('linesock_received_lines_total{job="linesock"}');
      assert.equal(lines!.value[1], "3");
      assert.equal(lines!.metric.instance, target);
      const [up] = await query('up{job="linesock"}');
      assert.equal(up!.value[1], "1");
      const [histogram] = await query(
        'linesock_line_handling_seconds_count{job="linesock",protocol="text"}',
      );
      assert.equal(histogram!.value[1], "3");
      const series = await query('{job="linesock",__name__=~"linesock_.+"}');
      assert.ok(series.length >= 30, `${series.length} linesock series`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** HAProxy's view of its servers (`show stat` on its stats socket): status by server name. */
async function haproxyStatus(socket: string): Promise<Record<string, string>> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await conn.write(new TextEncoder().encode("show stat\n"));
    const csv = await new Response(conn.readable).text();
    const [header, ...rows] = csv.trim().split("\n");
    const columns = header!.replace(/^# /, "").split(",");
    const name = columns.indexOf("svname");
    const status = columns.indexOf("status");
    const check = columns.indexOf("check_status");
    return Object.fromEntries(
      rows.map((row) => row.split(",")).map((cells) => [
        cells[name],
        `${cells[status]} ${cells[check]}`.trim(),
      ]),
    );
  } catch (error) {
    conn.close();
    throw error;
  }
}

Deno.test({
  name: ignoredName(
    "HAProxy option httpchk takes linesock out of its backend when it shuts down",
    HAPROXY_MISSING ?? MKFIFO_MISSING,
  ),
  ignore: HAPROXY_MISSING !== undefined || MKFIFO_MISSING !== undefined,
  async fn() {
    await using routes = await holdRoutes();
    await using server = await startServer([
      "--port",
      "0",
      "--routes",
      routes.path,
      "--grace",
      "60s",
      "--metrics",
      "127.0.0.1:0",
    ]);
    const metricsPort = Number(new URL(await metricsUrl(server)).port);
    const dir = await Deno.makeTempDir({ prefix: "linesock-haproxy-check-" });
    try {
      const socket = `${dir}/haproxy.sock`;
      let haproxy: ReturnType<typeof spawnTool> | undefined;
      let frontPort = 0;
      for (let attempt = 1; haproxy === undefined; attempt++) {
        frontPort = unusedPort();
        // The recipe of docs/metrics.md, with a short check interval.
        await Deno.writeTextFile(
          `${dir}/haproxy.cfg`,
          [
            "global",
            `  stats socket ${socket} mode 600 level admin`,
            "defaults",
            "  mode tcp",
            "  timeout connect 2s",
            "  timeout client 30s",
            "  timeout server 30s",
            "  timeout check 2s",
            "frontend lines",
            `  bind 127.0.0.1:${frontPort}`,
            "  default_backend linesock",
            "backend linesock",
            "  option httpchk GET /healthz",
            "  http-check expect status 200",
            `  server one 127.0.0.1:${server.port} check port ${metricsPort} inter 200ms fall 2 rise 1`,
            "",
          ].join("\n"),
        );
        const started = spawnTool("haproxy", ["-f", `${dir}/haproxy.cfg`, "-db"]);
        try {
          await waitUntil(
            async () => {
              if (started.exited()) throw new Error(`haproxy exited: ${started.stderr()}`);
              return (await haproxyStatus(socket).catch(() => ({} as Record<string, string>)))
                .one === "UP L7OK";
            },
            15_000,
            "HAProxy's first check of /healthz",
          );
          haproxy = started;
        } catch (error) {
          await started[Symbol.asyncDispose]();
          if (attempt === 3) throw error;
        }
      }
      await using _haproxy = haproxy;
      assert.deepEqual(await exchange(frontPort, ["PING"]), ["PONG"]);
      // A line in progress keeps the graceful shutdown going.
      await using session = await LineSession.open(frontPort);
      await session.write("hold\n");
      await waitUntil(
        async () =>
          sample(
            (await get(`http://127.0.0.1:${metricsPort}/metrics`)).body,
            "linesock_programs_running",
          ) === 1,
        WAIT_MS,
        "the program running",
      );
      server.process.kill("SIGTERM");
      await waitUntil(
        async () => (await haproxyStatus(socket)).one?.startsWith("DOWN") ?? false,
        WAIT_MS,
        "HAProxy marking linesock DOWN",
      );
      assert.match((await haproxyStatus(socket)).one!, /^DOWN L7STS/);
      // The line in progress is still answered, through HAProxy.
      await routes.release();
      assert.deepEqual(await session.readLines(1), ["released"]);
      assert.equal((await within(server.process.status, WAIT_MS, "linesock's exit")).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * {@linkcode serveMetrics}: a small HTTP server beside a line server, for the tools
 * operators already run: `GET /metrics` answers Prometheus text ({@linkcode formatPrometheus}) and
 * `GET /healthz` answers `200 serving` while the server accepts connections and `503 shutting down`
 * once its shutdown began, so that a load balancer stops sending clients before the port closes.
 *
 * Metrics show traffic, errors and load: the endpoint binds a loopback address unless `public` says
 * otherwise, and nothing is served on any other path. Whoever reaches it cannot hold it: at most
 * {@linkcode METRICS_MAX_CONNECTIONS} connections are open at once (one more is closed at once), a
 * request must arrive whole within {@linkcode METRICS_REQUEST_TIMEOUT_MS} (else `408` and the
 * close), and each connection carries one request (`connection: close`).
 *
 * @example Beside a server
 * ```ts
 * import { serveMetrics } from "@linesock/linesock/metrics";
 * import { serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0, metrics: true }, (line) => line);
 * await using endpoint = serveMetrics({ port: 0, protocol: "text" }, server);
 * const health = await fetch(`${endpoint.url}/healthz`);
 * assert.equal(health.status, 200);
 * assert.equal(await health.text(), "serving\n");
 * const metrics = await (await fetch(`${endpoint.url}/metrics`)).text();
 * assert.match(metrics, /^linesock_serving 1$/m);
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { formatAddress, hostPort } from "../address.ts";
import { ListenError } from "../errors.ts";
import type { ServerMetrics } from "../server/metrics.ts";
import { describeListenFailure } from "../server/_listen_failure.ts";
import { type HttpAnswer, plain, serveHttp } from "./_http_server.ts";
import {
  formatPrometheus,
  type ProcessMetrics,
  PROMETHEUS_CONTENT_TYPE,
} from "./prometheus_text.ts";

const logger = getLogger(["linesock", "metrics"]);

/** Connections the endpoint keeps open at once; one more is closed as soon as it is accepted. */
export const METRICS_MAX_CONNECTIONS = 64;
/** How long a connection may take to send its request (`408` and the close after it). */
export const METRICS_REQUEST_TIMEOUT_MS = 5000;

/** What the endpoint reports on: a `Server` of `serve()`, or a `WorkerPool`. */
export interface MetricsSource {
  /** False once the shutdown began: `/healthz` then answers 503. */
  readonly serving: boolean;
  /** The snapshot `/metrics` shows. */
  metrics(): ServerMetrics | Promise<ServerMetrics>;
}

/** Options of {@linkcode serveMetrics}. */
export interface MetricsEndpointOptions {
  /** Host to bind: a loopback address unless `public` is set. @default {"127.0.0.1"} */
  hostname?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /**
   * Allow a hostname that is not a loopback address (metrics show traffic and errors to whoever
   * reaches the port).
   * @default {false}
   */
  public?: boolean;
  /** The `protocol` label of the latency histogram. @default {"line"} */
  protocol?: string;
}

/** A running metrics endpoint. */
export interface MetricsEndpoint extends AsyncDisposable {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Its base URL, `http://127.0.0.1:9464` (the paths are `/metrics` and `/healthz`). */
  readonly url: string;
  /** Stops listening and ends the connections (requests under way are answered first). */
  shutdown(): Promise<void>;
}

/**
 * Whether a host name is a loopback address: `localhost`, 127.0.0.0/8, `::1` (also as
 * `::ffff:127.x.x.x`).
 * @param hostname A host name or IP literal (IPv6 with or without brackets).
 * @returns Whether only this machine can reach it.
 * @example
 * ```ts
 * import { isLoopback } from "@linesock/linesock/metrics";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isLoopback("127.0.0.1"), true);
 * assert.equal(isLoopback("[::1]"), true);
 * assert.equal(isLoopback("0.0.0.0"), false);
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = host.replace(/^::ffff:/, "");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Serves `/metrics` and `/healthz` for `source`.
 * @param options Where to listen.
 * @param source The server or pool to report on.
 * @returns The endpoint, listening.
 * @throws {ListenError} When the address is not a loopback one and `public` is not set, or cannot
 * be listened on.
 */
export function serveMetrics(
  options: MetricsEndpointOptions,
  source: MetricsSource,
): MetricsEndpoint {
  const hostname = (options.hostname ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1");
  const address = `http://${hostPort(hostname, options.port)}`;
  if (!options.public && !isLoopback(hostname)) {
    throw new ListenError(
      address,
      "not a loopback address, and metrics are not public unless asked for",
    );
  }
  const protocol = options.protocol ?? "line";
  let server: ReturnType<typeof serveHttp>;
  try {
    server = serveHttp({
      hostname,
      port: options.port,
      maxConnections: METRICS_MAX_CONNECTIONS,
      requestTimeoutMs: METRICS_REQUEST_TIMEOUT_MS,
      onError(error) {
        logger.error("Metrics request failed: {error}", { error });
      },
    }, (method, path) => answer(method, path, source, protocol));
  } catch (error) {
    throw new ListenError(address, describeListenFailure(error), { cause: error });
  }
  const addr = server.addr;
  const url = formatAddress(addr).replace(/^tcp:/, "http:");
  let stopping: Promise<void> | undefined;
  const shutdown = () => stopping ??= server.shutdown();
  return {
    addr,
    url,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

async function answer(
  method: string,
  path: string,
  source: MetricsSource,
  protocol: string,
): Promise<HttpAnswer> {
  if (path !== "/metrics" && path !== "/healthz") return plain(404, "not found\n");
  if (method !== "GET" && method !== "HEAD") {
    return plain(405, "method not allowed\n", { allow: "GET, HEAD" });
  }
  if (path === "/healthz") {
    return source.serving ? plain(200, "serving\n") : plain(503, "shutting down\n");
  }
  const body = formatPrometheus(await source.metrics(), { protocol, process: processMetrics() });
  return {
    status: 200,
    headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
    body,
  };
}

/** This process's memory and descriptors; the descriptors only where /proc can be read. */
function processMetrics(): ProcessMetrics {
  const facts: ProcessMetrics = {
    residentMemoryBytes: Deno.memoryUsage().rss,
    startTimeSeconds: performance.timeOrigin / 1000,
  };
  try {
    // Less the descriptor that reading the directory opens.
    facts.openFds = [...Deno.readDirSync("/proc/self/fd")].length - 1;
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    if (soft !== undefined) facts.maxFds = Number(soft);
  } catch {
    // Not Linux, or no permission to read /proc: the process metrics go without them.
  }
  return facts;
}

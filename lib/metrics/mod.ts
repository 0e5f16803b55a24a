/**
 * Monitoring: {@linkcode serveMetrics}, an HTTP endpoint beside a server (or a pool of workers)
 * with Prometheus text at `/metrics` and a health check at `/healthz` for load balancers, and
 * {@linkcode formatPrometheus}, which writes a server's metrics snapshot as Prometheus text. The
 * snapshot itself (`ServerMetrics`) is the server's: `Server.metrics()`, `WorkerPool.metrics()`.
 *
 * May import: `lib/errors.ts`, `lib/address.ts`, and `lib/server/` (the snapshot). Never the
 * client, protocols, routes or workers.
 *
 * @example
 * ```ts
 * import { formatPrometheus, isLoopback } from "@linesock/linesock/metrics";
 * import { emptyMetrics } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * assert.match(formatPrometheus(emptyMetrics()), /^linesock_connections_open 0$/m);
 * assert.equal(isLoopback("::1"), true);
 * ```
 *
 * @module
 */
export * from "./prometheus_text.ts";
export * from "./metrics_endpoint.ts";

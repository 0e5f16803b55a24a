/**
 * Internal: the messages between {@linkcode serveWorkers} and its workers.
 *
 * @module
 */
import type { LogRecord } from "@logtape/logtape";
import type { ServerStats } from "../server/serve.ts";
import type { ServerMetrics } from "../server/metrics.ts";
import type { LinesockErrorCode } from "../errors.ts";
import type { ServeConfig } from "./worker_pool.ts";

/** Messages from a worker. */
export type WorkerMessage =
  | { type: "listening"; addr: Deno.NetAddr }
  | { type: "log"; record: Omit<LogRecord, "category">; category: readonly string[] }
  | { type: "stats"; stats: ServerStats; metrics?: ServerMetrics; request?: number }
  | { type: "finished"; stats: ServerStats; metrics?: ServerMetrics }
  | { type: "failed"; name: string; message: string; code?: LinesockErrorCode };

/** Messages to a worker. */
export type WorkerCommand =
  | { type: "start"; config: ServeConfig; worker: number }
  | { type: "shutdown" }
  // With `metrics`, the answer carries the worker's metrics snapshot too.
  | { type: "stats"; request: number; metrics?: boolean }
  | { type: "abort" }
  // Tests only: the worker throws an uncaught error, as a bug would.
  | { type: "crash" };

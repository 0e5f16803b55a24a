/**
 * Internal: the entry point of one worker of {@linkcode serveWorkers}. It builds the protocol from
 * the plain {@linkcode ServeConfig} it receives, serves it on the shared port with SO_REUSEPORT,
 * sends its log records to the calling thread, and reports its counters when its server stops.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { configureSync, type LogRecord } from "@logtape/logtape";
import { serve, type Server } from "../server/serve.ts";
import { LinesockError } from "../errors.ts";
import { emptyStats } from "../server/_stats.ts";
import { protocolFromConfig } from "../protocols/config.ts";
import type { WorkerCommand, WorkerMessage } from "./_worker_messages.ts";

/** How often a worker reports its counters to the calling thread. */
const STATS_INTERVAL_MS = 1000;

let server: Server | undefined;
/** Whether every report carries the metrics snapshot (the server was started with `metrics`). */
let reportMetrics = false;

function reportStats(request?: number, withMetrics = reportMetrics): void {
  if (server === undefined && request === undefined) return;
  const stats = server === undefined ? emptyStats() : { ...server.stats };
  const metrics = withMetrics && server !== undefined ? { metrics: server.metrics() } : {};
  post({ type: "stats", stats, ...metrics, ...(request !== undefined ? { request } : {}) });
}
let stopRequested = false;

function post(message: WorkerMessage): void {
  self.postMessage(message);
}

/** A record as plain data: the message's values and properties may hold what cannot be cloned. */
function cloneable(record: LogRecord): Omit<LogRecord, "category"> {
  const plain = {
    level: record.level,
    message: record.message,
    rawMessage: record.rawMessage,
    timestamp: record.timestamp,
    properties: record.properties,
  };
  try {
    return structuredClone(plain);
  } catch {
    return {
      ...plain,
      message: record.message.map((part) => typeof part === "string" ? part : String(part)),
      rawMessage: String(record.rawMessage),
      properties: Object.fromEntries(
        Object.entries(record.properties).map(([key, value]) => [key, String(value)]),
      ),
    };
  }
}

async function start(command: Extract<WorkerCommand, { type: "start" }>): Promise<void> {
  configureSync({
    reset: true,
    sinks: {
      parent: (record: LogRecord) =>
        post({ type: "log", record: cloneable(record), category: record.category }),
    },
    loggers: [
      { category: ["linesock"], lowestLevel: command.config.logLevel ?? "info", sinks: ["parent"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["parent"] },
    ],
  });
  try {
    const protocol = await protocolFromConfig(command.config);
    server = await serve({ ...command.config.serve, reusePort: true }, protocol);
    reportMetrics = command.config.serve.metrics ?? false;
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    post({
      type: "failed",
      name: failure.name,
      message: failure.message,
      ...(failure instanceof LinesockError ? { code: failure.code } : {}),
    });
    return;
  }
  post({ type: "listening", addr: server.addr as Deno.NetAddr });
  if (stopRequested) void server.shutdown();
  // Counters now and then, so that a worker that must be terminated is still mostly counted.
  const reporter = setInterval(reportStats, STATS_INTERVAL_MS);
  try {
    await server.finished;
    await server.shutdown();
  } finally {
    clearInterval(reporter);
  }
  post({
    type: "finished",
    stats: { ...server.stats },
    ...(reportMetrics ? { metrics: server.metrics() } : {}),
  });
}

self.onmessage = (event: MessageEvent<WorkerCommand>) => {
  const command = event.data;
  switch (command.type) {
    case "start":
      void start(command);
      break;
    case "shutdown":
      stopRequested = true;
      // The counters so far, in case this worker overruns its stop time and is terminated.
      reportStats();
      if (server !== undefined) void server.shutdown();
      break;
    case "stats":
      reportStats(command.request, command.metrics || reportMetrics);
      break;
    case "abort":
      server?.abort();
      break;
    case "crash":
      setTimeout(() => {
        throw new Error("crash requested by a test");
      });
      break;
  }
};

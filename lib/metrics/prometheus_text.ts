/**
 * {@linkcode formatPrometheus}: a server's {@linkcode ServerMetrics} snapshot as Prometheus text
 * (exposition format 0.0.4), what `GET /metrics` answers. Every family has its `# HELP` and
 * `# TYPE`; counters end in `_total`, units are seconds and bytes, and the known kinds of errors
 * and refusals are listed at 0 from the start, so that a query never finds a series missing.
 *
 * | metric                                           | type      | what                                             |
 * | ------------------------------------------------ | --------- | ------------------------------------------------ |
 * | `linesock_serving`                               | gauge     | 1 while accepting, 0 once shutting down          |
 * | `linesock_connections_open`                      | gauge     | connections open (served and waiting)            |
 * | `linesock_connections_queued`                    | gauge     | connections waiting for a client slot            |
 * | `linesock_connections_total`                     | counter   | connections accepted                             |
 * | `linesock_connections_refused_total{reason}`     | counter   | refused with an error line, by reason            |
 * | `linesock_accept_errors_total`                   | counter   | accepts that failed                              |
 * | `linesock_received_lines_total`, `…_sent_…`      | counter   | lines in and out                                 |
 * | `linesock_received_bytes_total`, `…_sent_…`      | counter   | bytes in and out                                 |
 * | `linesock_errors_total{kind}`                    | counter   | errors by kind                                   |
 * | `linesock_route_hits_total{route}`               | counter   | lines each route matched (`routes[0]`…)          |
 * | `linesock_programs_running`, `…_waiting`         | gauge     | route or exec programs running, waiting for a slot |
 * | `linesock_line_handling_seconds{protocol}`       | histogram | from a line to its reply (with metrics on)       |
 * | `linesock_chat_delivered_lines_total`, `…_dropped_…` | counter | chat lines queued for members, dropped (queue full) |
 * | `linesock_chat_too_slow_disconnects_total`       | counter   | chat members disconnected for reading too slowly |
 * | `linesock_chat_bus_published_messages_total`, `…_received_…`, `…_duplicate_…` | counter | chat bus messages |
 * | `linesock_chat_bus_connected`                    | gauge     | chat buses connected (only with a bus)           |
 * | `linesock_workers`                               | gauge     | worker threads serving (0 without workers)       |
 * | `linesock_worker_restarts_total`                 | counter   | crashed workers started again                    |
 * | `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds` | gauge | the process, when given |
 *
 * @example
 * ```ts
 * import { formatPrometheus } from "@linesock/linesock/metrics";
 * import { emptyMetrics } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const metrics = emptyMetrics();
 * metrics.stats.connections = 3;
 * metrics.routeHits["routes[0]"] = 2;
 * const text = formatPrometheus(metrics);
 * assert.match(text, /^# TYPE linesock_connections_total counter$/m);
 * assert.match(text, /^linesock_connections_total 3$/m);
 * assert.match(text, /^linesock_route_hits_total\{route="routes\[0\]"\} 2$/m);
 * ```
 *
 * @module
 */
import { COUNTED_ERROR_KINDS, REFUSAL_KINDS, type ServerMetrics } from "../server/metrics.ts";

/** The `Content-Type` of Prometheus text. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Facts about the process, for the standard `process_*` metrics. */
export interface ProcessMetrics {
  /** Resident memory, in bytes. */
  residentMemoryBytes: number;
  /** When the process started, in seconds since the Unix epoch. */
  startTimeSeconds: number;
  /** Descriptors open now, where the system tells (`/proc/self/fd`). */
  openFds?: number;
  /** The limit of open descriptors (the soft `ulimit -n`), where the system tells. */
  maxFds?: number;
}

/** Options of {@linkcode formatPrometheus}. */
export interface PrometheusTextOptions {
  /** The `protocol` label of the latency histogram. @default {"line"} */
  protocol?: string;
  /** The process's facts; without them, no `process_*` metrics. */
  process?: ProcessMetrics;
}

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [labels: Labels | undefined, value: number, suffix?: string];

/**
 * Writes a snapshot as Prometheus text.
 * @param metrics The snapshot (one server's, or a pool's sum).
 * @param options The histogram's label, and the process's facts.
 * @returns The exposition, ending in a newline.
 */
export function formatPrometheus(
  metrics: Readonly<ServerMetrics>,
  options: PrometheusTextOptions = {},
): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string, samples: readonly Sample[]) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, value, suffix] of samples) {
      out.push(`${name}${suffix ?? ""}${formatLabels(labels)} ${formatValue(value)}`);
    }
  };
  const one = (value: number): Sample[] => [[undefined, value]];
  const byKind = (label: string, known: readonly string[], counts: Record<string, number>) => {
    const kinds = [...known, ...Object.keys(counts).filter((kind) => !known.includes(kind))];
    return kinds.map((kind): Sample => [{ [label]: kind }, counts[kind] ?? 0]);
  };
  const { stats } = metrics;

  family(
    "linesock_serving",
    "gauge",
    "1 while the server accepts connections, 0 once it is shutting down.",
    one(metrics.serving ? 1 : 0),
  );
  family(
    "linesock_connections_open",
    "gauge",
    "Connections open now, served or waiting for a slot.",
    one(stats.open),
  );
  family(
    "linesock_connections_queued",
    "gauge",
    "Connections waiting for a client slot (max clients).",
    one(metrics.queued),
  );
  family("linesock_connections_total", "counter", "Connections accepted.", one(stats.connections));
  family(
    "linesock_connections_refused_total",
    "counter",
    "Connections refused with an error line (or closed at once), by reason.",
    byKind("reason", REFUSAL_KINDS, metrics.refused),
  );
  family(
    "linesock_accept_errors_total",
    "counter",
    "Accepts that failed: a client that reset before it was accepted, or no descriptor left.",
    one(stats.acceptErrors),
  );
  family("linesock_received_lines_total", "counter", "Lines received.", one(stats.linesIn));
  family("linesock_sent_lines_total", "counter", "Lines sent.", one(stats.linesOut));
  family("linesock_received_bytes_total", "counter", "Bytes received.", one(stats.bytesIn));
  family("linesock_sent_bytes_total", "counter", "Bytes sent.", one(stats.bytesOut));
  family(
    "linesock_errors_total",
    "counter",
    "Errors reported to clients or met on connections, by kind.",
    byKind("kind", COUNTED_ERROR_KINDS, metrics.errors),
  );
  family(
    "linesock_route_hits_total",
    "counter",
    "Lines (or JSON commands) each route matched, by its place in the routes file.",
    Object.entries(metrics.routeHits).map(([route, hits]): Sample => [{ route }, hits]),
  );
  family(
    "linesock_programs_running",
    "gauge",
    "Route or exec programs running.",
    one(
      metrics.programsRunning,
    ),
  );
  family(
    "linesock_programs_waiting",
    "gauge",
    "Route or exec programs waiting for a slot (max exec).",
    one(metrics.programsWaiting),
  );
  const chat = metrics.chat;
  if (chat !== undefined) {
    family(
      "linesock_chat_delivered_lines_total",
      "counter",
      "Chat lines queued for members (said here or received from the bus).",
      one(chat.delivered),
    );
    family(
      "linesock_chat_dropped_lines_total",
      "counter",
      "Chat lines dropped for members whose queue was full.",
      one(chat.dropped),
    );
    family(
      "linesock_chat_too_slow_disconnects_total",
      "counter",
      "Chat members disconnected for reading too slowly.",
      one(chat.tooSlow),
    );
    family(
      "linesock_chat_bus_published_messages_total",
      "counter",
      "Chat messages published on the bus.",
      one(chat.published),
    );
    family(
      "linesock_chat_bus_received_messages_total",
      "counter",
      "Chat messages received from the bus.",
      one(chat.received),
    );
    family(
      "linesock_chat_bus_duplicate_messages_total",
      "counter",
      "Chat messages from the bus dropped as already seen.",
      one(chat.duplicates),
    );
    if (chat.busConnected !== undefined) {
      family(
        "linesock_chat_bus_connected",
        "gauge",
        "Chat buses connected now (1 or 0 per server, or per worker).",
        one(chat.busConnected),
      );
    }
  }
  const latency = metrics.latency;
  if (latency !== undefined) {
    const protocol = options.protocol ?? "line";
    const samples: Sample[] = [];
    let cumulative = 0;
    for (const [index, bound] of latency.bounds.entries()) {
      cumulative += latency.counts[index] ?? 0;
      samples.push([{ protocol, le: formatValue(bound) }, cumulative, "_bucket"]);
    }
    samples.push([{ protocol, le: "+Inf" }, latency.count, "_bucket"]);
    samples.push([{ protocol }, latency.sum, "_sum"], [{ protocol }, latency.count, "_count"]);
    family(
      "linesock_line_handling_seconds",
      "histogram",
      "Time from a line to its reply (an asynchronous reply: until it is complete), by protocol.",
      samples,
    );
  }
  family(
    "linesock_workers",
    "gauge",
    "Worker threads serving connections (0: the server runs without workers).",
    one(metrics.workers),
  );
  family(
    "linesock_worker_restarts_total",
    "counter",
    "Workers that crashed and were started again.",
    one(stats.workerRestarts),
  );
  const facts = options.process;
  if (facts !== undefined) {
    family(
      "process_resident_memory_bytes",
      "gauge",
      "Resident memory size in bytes.",
      one(facts.residentMemoryBytes),
    );
    if (facts.openFds !== undefined) {
      family("process_open_fds", "gauge", "Number of open file descriptors.", one(facts.openFds));
    }
    if (facts.maxFds !== undefined) {
      family(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        one(facts.maxFds),
      );
    }
    family(
      "process_start_time_seconds",
      "gauge",
      "Start time of the process since unix epoch in seconds.",
      one(facts.startTimeSeconds),
    );
  }
  return out.join("\n") + "\n";
}

function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return `{${pairs.join(",")}}`;
}

/** A sample value or an `le` bound: Prometheus spells infinities and NaN its own way. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

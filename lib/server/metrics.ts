/**
 * What a server tells about itself for monitoring: {@linkcode ServerMetrics}, a snapshot in plain
 * data (it crosses from a worker to the calling thread) that `Server.metrics()` makes; the
 * {@linkcode LatencyHistogram} that times the handling of each line when {@linkcode serve} is given
 * `metrics: true` (and only then: without it no line is timed); and {@linkcode addMetrics}, which
 * adds up the snapshots of several servers (the workers of a pool).
 *
 * The counters are the server's own (those of `Server.stats`, with the lines and bytes of the
 * connections still open added in), errors and refusals by kind, and what the protocol reports
 * ({@linkcode ProtocolMetrics}: route hits, programs running and waiting, the chat's counters). `lib/metrics/` turns a
 * snapshot into Prometheus text and serves it.
 *
 * @example A server's snapshot
 * ```ts
 * import { serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0, metrics: true }, (line) => line.toUpperCase());
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode("hi\n"));
 * await conn.read(new Uint8Array(16));
 * const metrics = server.metrics();
 * assert.equal(metrics.stats.open, 1);
 * assert.equal(metrics.stats.linesIn, 1);
 * assert.equal(metrics.latency?.count, 1);
 * conn.close();
 * ```
 *
 * @module
 */
import type { ServerErrorKind } from "./protocol.ts";
import type { ServerStats } from "./serve.ts";
import { addStats, emptyStats } from "./_stats.ts";

/**
 * The kinds of errors a server counts: those it reports to clients ({@linkcode ServerErrorKind}),
 * `protocol` (an error reply the protocol phrased: an unknown command, a failed program, a JSON
 * error status), `write_timeout` (a client that stopped reading its replies was dropped), `tls` (a
 * failed TLS handshake or a corrupt record), `tls_handshake_timeout`, and `connection` (any other
 * failure of a connection; a client that resets or goes away is not an error).
 */
export type CountedErrorKind =
  | ServerErrorKind
  | "protocol"
  | "write_timeout"
  | "tls"
  | "tls_handshake_timeout"
  | "connection";

/** Every {@linkcode CountedErrorKind}, in the order metrics list them. */
export const COUNTED_ERROR_KINDS: readonly CountedErrorKind[] = Object.freeze([
  "protocol",
  "line_too_long",
  "invalid_encoding",
  "idle_timeout",
  "line_timeout",
  "write_timeout",
  "busy",
  "too_many_connections",
  "shutting_down",
  "invalid_proxy_header",
  "internal",
  "tls",
  "tls_handshake_timeout",
  "connection",
]);

/** Why a connection can be refused (an error line, then the close, without being served). */
export const REFUSAL_KINDS: readonly ServerErrorKind[] = Object.freeze([
  "too_many_connections",
  "busy",
  "shutting_down",
  "invalid_proxy_header",
]);

/** What a protocol may report about itself (see `LineProtocol.metrics`). */
export interface ProtocolMetrics {
  /** Lines (or JSON commands) each route matched, by its place in the routes file (`routes[0]`). */
  routeHits?: Readonly<Record<string, number>>;
  /** Route programs running now. */
  programsRunning?: number;
  /** Route programs waiting for a slot (`--max-exec`). */
  programsWaiting?: number;
  /** The chat protocol's counters (its rooms and its bus). */
  chat?: Readonly<ChatMetrics>;
}

/**
 * What the chat protocol counts (`ChatStats`), for the server's metrics; counters but
 * `busConnected`, a gauge.
 */
export interface ChatMetrics {
  /** Lines queued for members (local and from the bus). */
  delivered: number;
  /** Lines dropped for members whose queue was full. */
  dropped: number;
  /** Members disconnected for reading too slowly. */
  tooSlow: number;
  /** Messages published on the bus. */
  published: number;
  /** Messages received from the bus. */
  received: number;
  /** Messages from the bus dropped as already seen. */
  duplicates: number;
  /** Buses connected now (1 or 0 for one server with a bus, a count over workers); none: no bus. */
  busConnected?: number;
}

/** The upper bounds of the handling latency buckets, in seconds (from 10 µs to 10 s). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.00001,
  0.000025,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** A latency histogram's counts, in plain data. */
export interface LatencyCounts {
  /** The buckets' upper bounds in seconds, ascending; a last bucket above them all is implied. */
  bounds: number[];
  /**
   * Observations per bucket, not cumulative: `bounds.length + 1` entries, the last one for those
   * above every bound.
   */
  counts: number[];
  /** The sum of every observation, in seconds. */
  sum: number;
  /** How many observations. */
  count: number;
}

/**
 * A snapshot of a server (or of all workers of a pool, added up), in plain data. Counters only
 * grow while the server lives; gauges (`stats.open`, `queued`, the programs) go up and down.
 */
export interface ServerMetrics {
  /**
   * The counters of `Server.stats`, with the lines and bytes of connections still open added in,
   * so that a long connection shows its traffic before it ends.
   */
  stats: ServerStats;
  /** False once the server began to shut down (it no longer accepts connections). */
  serving: boolean;
  /** Connections waiting for a client slot (`maxClients`) now. */
  queued: number;
  /** Errors by kind ({@linkcode CountedErrorKind}); they add up to `stats.errors`. */
  errors: Record<string, number>;
  /** Connections refused by reason ({@linkcode REFUSAL_KINDS}). */
  refused: Record<string, number>;
  /** Lines matched by each route (see {@linkcode ProtocolMetrics}). */
  routeHits: Record<string, number>;
  /** Route programs running now. */
  programsRunning: number;
  /** Route programs waiting for a slot now. */
  programsWaiting: number;
  /** The chat protocol's counters: only when the protocol is the chat. */
  chat?: ChatMetrics;
  /** How long lines took to handle: only when the server was started with `metrics: true`. */
  latency?: LatencyCounts;
  /** Worker threads serving (0: the server runs in the calling thread, without workers). */
  workers: number;
}

/**
 * A snapshot with every counter at zero.
 * @returns A new, empty snapshot (serving, no workers).
 * @example
 * ```ts
 * import { emptyMetrics } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(emptyMetrics().stats.connections, 0);
 * ```
 */
export function emptyMetrics(): ServerMetrics {
  return {
    stats: emptyStats(),
    serving: true,
    queued: 0,
    errors: {},
    refused: {},
    routeHits: {},
    programsRunning: 0,
    programsWaiting: 0,
    workers: 0,
  };
}

/**
 * Adds `more` to `total`, in place: counters, gauges and histograms (`serving` and `workers` are
 * the caller's to set).
 * @param total What is added to.
 * @param more What is added.
 * @returns `total`.
 * @throws {RangeError} When the two histograms have different buckets.
 * @example Two workers' snapshots
 * ```ts
 * import { addMetrics, emptyMetrics } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const one = emptyMetrics();
 * one.errors.busy = 2;
 * const two = emptyMetrics();
 * two.errors.busy = 1;
 * two.routeHits["routes[0]"] = 5;
 * const total = addMetrics(addMetrics(emptyMetrics(), one), two);
 * assert.deepEqual(total.errors, { busy: 3 });
 * assert.deepEqual(total.routeHits, { "routes[0]": 5 });
 * ```
 */
export function addMetrics(total: ServerMetrics, more: Readonly<ServerMetrics>): ServerMetrics {
  addStats(total.stats, more.stats);
  total.queued += more.queued;
  addCounts(total.errors, more.errors);
  addCounts(total.refused, more.refused);
  addCounts(total.routeHits, more.routeHits);
  total.programsRunning += more.programsRunning;
  total.programsWaiting += more.programsWaiting;
  if (more.chat !== undefined) total.chat = addChat(total.chat, more.chat);
  if (more.latency !== undefined) {
    if (total.latency === undefined) {
      total.latency = { ...more.latency, counts: [...more.latency.counts] };
    } else {
      if (total.latency.bounds.join() !== more.latency.bounds.join()) {
        throw new RangeError("cannot add latency histograms with different buckets");
      }
      total.latency.counts = total.latency.counts.map((count, index) =>
        count + (more.latency!.counts[index] ?? 0)
      );
      total.latency.sum += more.latency.sum;
      total.latency.count += more.latency.count;
    }
  }
  return total;
}

function addChat(total: ChatMetrics | undefined, more: Readonly<ChatMetrics>): ChatMetrics {
  if (total === undefined) return { ...more };
  for (const key of CHAT_COUNTERS) total[key] += more[key];
  if (more.busConnected !== undefined) {
    total.busConnected = (total.busConnected ?? 0) + more.busConnected;
  }
  return total;
}

const CHAT_COUNTERS = [
  "delivered",
  "dropped",
  "tooSlow",
  "published",
  "received",
  "duplicates",
] as const;

function addCounts(total: Record<string, number>, more: Readonly<Record<string, number>>): void {
  for (const [key, value] of Object.entries(more)) total[key] = (total[key] ?? 0) + value;
}

/**
 * The handling times of lines, in fixed buckets ({@linkcode LATENCY_BUCKETS_SECONDS}), for a
 * Prometheus histogram. Observing is a short scan of the bounds and three additions; lines that
 * arrived together may be counted at once ({@linkcode LatencyHistogram.observeMany}).
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const histogram = new LatencyHistogram();
 * histogram.observe(0.02); // 20 µs
 * histogram.observe(3000); // 3 s
 * const counts = histogram.snapshot();
 * assert.equal(counts.count, 2);
 * assert.equal(counts.counts[1], 1); // the bucket up to 25 µs
 * assert.equal(counts.counts[17], 1); // the bucket up to 5 s
 * ```
 */
export class LatencyHistogram {
  /** The bounds in milliseconds, what {@linkcode observe} takes. */
  readonly #boundsMs: Float64Array;
  readonly #counts: Float64Array;
  #sumMs = 0;
  #count = 0;

  constructor() {
    this.#boundsMs = Float64Array.from(LATENCY_BUCKETS_SECONDS, (seconds) => seconds * 1000);
    this.#counts = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  }

  /**
   * Counts one observation.
   * @param ms How long it took, in milliseconds (`performance.now()` differences).
   */
  observe(ms: number): void {
    this.observeMany(ms, 1);
  }

  /**
   * Counts `count` observations of the same time.
   * @param ms How long each took, in milliseconds.
   * @param count How many.
   */
  observeMany(ms: number, count: number): void {
    const bounds = this.#boundsMs;
    let index = 0;
    while (index < bounds.length && ms > bounds[index]!) index++;
    this.#counts[index] = this.#counts[index]! + count;
    this.#sumMs += ms * count;
    this.#count += count;
  }

  /**
   * The counts so far.
   * @returns A copy, in plain data (seconds).
   */
  snapshot(): LatencyCounts {
    return {
      bounds: [...LATENCY_BUCKETS_SECONDS],
      counts: [...this.#counts],
      sum: this.#sumMs / 1000,
      count: this.#count,
    };
  }
}

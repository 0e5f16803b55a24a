/**
 * {@linkcode serveWorkers}: one line server on all cores. N Web Workers each run their own accept
 * loop on the same TCP port (SO_REUSEPORT, so the kernel spreads connections over them), and the
 * calling thread is the one control point: it starts them, forwards their logs, shuts them all down
 * together, and adds up their counters.
 *
 * A worker cannot receive a protocol object (functions do not cross threads), so the server is
 * described by plain data, a {@linkcode ServeConfig}, that each worker turns into the same protocol
 * with {@linkcode protocolFromConfig} (lib/protocols/config.ts). `reusePort` needs Deno's `--unstable-net` flag: without it, Deno
 * ends the process (exit status 70) instead of throwing.
 *
 * Logs: each worker sends its log records to the calling thread, which emits them through its own
 * LogTape configuration under the category `[...category, "w<N>"]` and with a `worker` property, so
 * lines from different workers never interleave and each says which worker wrote it.
 *
 * @example Two workers on one port
 * ```ts
 * import { serveWorkers } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * // Needs --unstable-net.
 * await using pool = await serveWorkers({ protocol: "text", name: "w", serve: { port: 0 } }, 2);
 * const conn = await Deno.connect({ port: (pool.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode("PING\n"));
 * await conn.closeWrite();
 * assert.equal(new TextDecoder().decode(await new Response(conn.readable).bytes()), "PONG\n");
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { WorkerCommand, WorkerMessage } from "./_worker_messages.ts";
import type { ServeOptions, ServerStats } from "../server/serve.ts";
import { SERVE_DEFAULTS } from "../server/defaults.ts";
import { type ProtocolConfig, protocolFromConfig } from "../protocols/config.ts";
import { DEFAULT_MAX_EXEC } from "../routes/program_runner.ts";
import { formatAddress } from "../address.ts";
import { LinesockError, type LinesockErrorCode, ListenError } from "../errors.ts";
import { describeListenFailure } from "../server/_listen_failure.ts";
import { addStats, emptyStats } from "../server/_stats.ts";
import { addMetrics, emptyMetrics, type ServerMetrics } from "../server/metrics.ts";

const logger = getLogger(["linesock", "workers"]);

/** The options of {@linkcode serve} that are plain data, so that they can be sent to a worker. */
export type PlainServeOptions = Omit<ServeOptions, "signal" | "listener">;

/**
 * A server described by plain data: which protocol and its options (a
 * {@linkcode ProtocolConfig}), and the serve options.
 */
export interface ServeConfig extends ProtocolConfig {
  /** Where to listen, limits and timeouts. */
  serve: PlainServeOptions;
  /** The lowest log level a worker sends to the calling thread. @default {"info"} */
  logLevel?: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
}

// Where it was defined before lib/protocols/config.ts: `@linesock/linesock/workers` keeps it.
export { type ProtocolConfig, protocolFromConfig };

/** Servers running in workers, seen as one. */
export interface WorkerPool extends AsyncDisposable {
  /** The address all workers listen on. */
  readonly addr: Deno.Addr;
  /** The address as `tcp://host:port`. */
  readonly url: string;
  /** How many workers run. */
  readonly size: number;
  /**
   * The counters of all workers added up, as last reported: each worker reports every second and
   * when it stops, so they are complete once `finished` has settled.
   */
  readonly stats: Readonly<ServerStats>;
  /**
   * Asks every worker for its counters now.
   * @returns The counters of all workers added up, once each has answered.
   */
  refreshStats(): Promise<Readonly<ServerStats>>;
  /** False once the pool began to shut down. */
  readonly serving: boolean;
  /**
   * Asks every worker for its metrics snapshot (waiting up to a second for a busy one; then its
   * last report counts) and adds them up, with the workers serving and their restarts.
   * @returns The snapshot of the whole pool.
   */
  metrics(): Promise<ServerMetrics>;
  /** Settles when every worker's server has stopped and the workers are gone. */
  readonly finished: Promise<void>;
  /** Shuts every worker's server down gracefully (also when one of them stopped by itself). */
  shutdown(): Promise<void>;
  /** Closes every connection of every worker at once. */
  abort(): void;
}

/** How long a worker may take to stop beyond its server's grace time before it is terminated. */
const STOP_MARGIN_MS = 3000;
/** A crashed worker is restarted after a pause that doubles from the first to the last. */
const RESTART_PAUSE_FIRST_MS = 100;
const RESTART_PAUSE_LAST_MS = 10_000;
/** A worker that ran this long before it crashed starts the pauses over. */
const RESTART_STABLE_MS = 30_000;
/** How long `metrics()` waits for the workers' answers before it takes their last reports. */
const METRICS_WAIT_MS = 1000;

/**
 * Tests only: makes worker `index` (0-based) of a pool crash, as a bug in it would.
 * @internal
 */
export const CRASH_WORKER: unique symbol = Symbol("linesock.crashWorker");
/**
 * The worker's module: its sibling `_serve_worker.ts`, or `_serve_worker.js` beside this code in the
 * bundled build (`deno task build` puts every bundle in one folder).
 */
const WORKER_URL = new URL(
  `./_serve_worker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`,
  import.meta.url,
);

/**
 * Starts `count` workers serving `config` on one TCP port.
 * @param config The server; `serve.port` 0 picks a free port that all workers then share.
 * @param count How many workers (at least 1).
 * @returns The running pool, once every worker listens.
 * @throws When a worker cannot listen (the others are stopped first).
 *
 * @example Connections spread over the workers
 * ```ts
 * import { serveWorkers } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using pool = await serveWorkers({ protocol: "echo", serve: { port: 0 } }, 2);
 * assert.equal(pool.size, 2);
 * ```
 */
export async function serveWorkers(config: ServeConfig, count: number): Promise<WorkerPool> {
  if (!(Number.isInteger(count) && count >= 1)) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  if (config.serve.path !== undefined) {
    throw new TypeError("workers share a TCP port; a Unix socket cannot be shared");
  }
  // --max-exec is for the whole server: each worker gets its share (rounded up).
  const perWorker: ServeConfig = config.routesPath === undefined ? config : {
    ...config,
    maxExec: Math.ceil((config.maxExec ?? DEFAULT_MAX_EXEC) / count),
  };
  assertPortFree(config.serve);
  const pool = new Pool(perWorker);
  try {
    // The first worker binds (port 0 picks one); the others join the port it got.
    const first = await pool.spawn(perWorker, 1);
    const shared: ServeConfig = { ...perWorker, serve: { ...perWorker.serve, port: first.port } };
    await Promise.all(
      Array.from({ length: count - 1 }, (_, index) => pool.spawn(shared, index + 2)),
    );
    pool.started(first);
  } catch (error) {
    pool.abort();
    await pool.shutdown();
    throw error;
  }
  return pool;
}

/**
 * SO_REUSEPORT lets any process of the same user bind a port that is already served with it: a
 * second `serve --workers` on the same port would start without an error and silently take part of
 * the first one's connections. A plain bind, which any listener on the port refuses, proves the port
 * is free before the workers bind it together. (Port 0 gets a port nobody holds.) Best-effort: two
 * pools started at the very same moment can both pass it before either binds.
 */
function assertPortFree(options: ServeOptions): void {
  const hostname = options.hostname ?? SERVE_DEFAULTS.hostname;
  const port = options.port ?? SERVE_DEFAULTS.port;
  if (port === 0) return;
  try {
    Deno.listen({ hostname, port }).close();
  } catch (error) {
    const address = formatAddress({ transport: "tcp", hostname, port });
    throw new ListenError(address, describeListenFailure(error), { cause: error });
  }
}

interface WorkerState {
  id: number;
  worker: Worker;
  finished: boolean;
  /** The worker's counters as last reported (final once it posted `finished`). */
  stats: ServerStats;
  /** Whether the counters are final. */
  final: boolean;
  /** The worker's metrics as last reported, if it reported any. */
  metrics: ServerMetrics | undefined;
  resolveFinished: () => void;
  whenFinished: Promise<void>;
}

class Pool implements WorkerPool {
  addr: Deno.Addr = { transport: "tcp", hostname: "", port: 0 };
  url = "";
  readonly finished: Promise<void>;
  readonly #config: ServeConfig;
  readonly #workers: WorkerState[] = [];
  readonly #statsRequests = new Map<number, { waiting: Set<WorkerState>; done: () => void }>();
  #nextRequest = 1;
  #resolveFinished!: () => void;
  #stopping: Promise<void> | undefined;
  /** The config every worker (re)starts with, once the port is known. */
  #shared: ServeConfig | undefined;
  /** Counters of workers that crashed and were replaced. */
  readonly #retired = emptyStats();
  /** The same, for metrics (their gauges zeroed). */
  readonly #retiredMetrics = emptyMetrics();
  #restarts = 0;
  #restartPauseMs = 0;

  constructor(config: ServeConfig) {
    this.#config = config;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
  }

  get size(): number {
    return this.#workers.length;
  }

  /** The workers' counters added up, as last reported (each reports every second). */
  get stats(): Readonly<ServerStats> {
    const total = addStats(emptyStats(), this.#retired);
    for (const state of this.#workers) addStats(total, state.stats);
    total.workerRestarts = this.#restarts;
    return total;
  }

  async refreshStats(): Promise<Readonly<ServerStats>> {
    await this.#askForStats(false);
    return this.stats;
  }

  get serving(): boolean {
    return this.#stopping === undefined;
  }

  async metrics(): Promise<ServerMetrics> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#askForStats(true),
      new Promise<void>((resolve) => timer = setTimeout(resolve, METRICS_WAIT_MS)),
    ]);
    clearTimeout(timer);
    const total = addMetrics(emptyMetrics(), this.#retiredMetrics);
    for (const state of this.#workers) {
      addMetrics(total, state.metrics ?? { ...emptyMetrics(), stats: state.stats });
    }
    total.stats.workerRestarts = this.#restarts;
    total.workers = this.#workers.filter((state) => !state.finished).length;
    total.serving = this.#stopping === undefined;
    return total;
  }

  /** Asks every running worker for its counters (and metrics); settles once all answered. */
  async #askForStats(metrics: boolean): Promise<void> {
    const waiting = new Set(this.#workers.filter((state) => !state.finished));
    if (waiting.size === 0) return;
    const request = this.#nextRequest++;
    const answered = new Promise<void>((done) =>
      this.#statsRequests.set(request, { waiting, done })
    );
    for (const state of waiting) {
      state.worker.postMessage({ type: "stats", request, metrics } satisfies WorkerCommand);
    }
    await answered;
  }

  started(addr: Deno.NetAddr): void {
    this.addr = addr;
    this.url = formatAddress(addr);
    this.#shared = { ...this.#config, serve: { ...this.#config.serve, port: addr.port } };
  }

  [CRASH_WORKER](index: number): void {
    this.#workers[index]?.worker.postMessage({ type: "crash" } satisfies WorkerCommand);
  }

  /**
   * Replaces a worker that crashed, after a pause that grows while workers keep crashing; the
   * other workers and their connections are not touched.
   */
  async #restart(crashed: WorkerState, ranMs: number): Promise<void> {
    addStats(this.#retired, { ...crashed.stats, open: 0 });
    addMetrics(
      this.#retiredMetrics,
      withoutGauges(crashed.metrics ?? { ...emptyMetrics(), stats: crashed.stats }),
    );
    this.#workers.splice(this.#workers.indexOf(crashed), 1);
    this.#restartPauseMs = ranMs >= RESTART_STABLE_MS ? RESTART_PAUSE_FIRST_MS : Math.min(
      Math.max(this.#restartPauseMs * 2, RESTART_PAUSE_FIRST_MS),
      RESTART_PAUSE_LAST_MS,
    );
    const pauseMs = this.#restartPauseMs;
    logger.error("Worker {worker} crashed; restarting it in {pauseMs} ms", {
      worker: crashed.id,
      pauseMs,
    });
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    if (this.#stopping !== undefined || this.#shared === undefined) return;
    this.#restarts++;
    try {
      await this.spawn(this.#shared, crashed.id);
      logger.warn("Worker {worker} restarted ({restarts} restarts so far)", {
        worker: crashed.id,
        restarts: this.#restarts,
      });
    } catch (error) {
      logger.error("Worker {worker} could not restart: {error}", { worker: crashed.id, error });
    }
  }

  /** Starts one worker; resolves with its address once it listens. */
  spawn(config: ServeConfig, id: number): Promise<Deno.NetAddr> {
    const worker = new Worker(WORKER_URL.href, { type: "module", name: `linesock-worker-${id}` });
    let resolveFinished!: () => void;
    const whenFinished = new Promise<void>((resolve) => resolveFinished = resolve);
    const state: WorkerState = {
      id,
      worker,
      finished: false,
      stats: emptyStats(),
      final: false,
      metrics: undefined,
      resolveFinished,
      whenFinished,
    };
    this.#workers.push(state);
    let listening = false;
    let listeningAt = 0;
    return new Promise((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
        const message = event.data;
        switch (message.type) {
          case "listening":
            listening = true;
            listeningAt = performance.now();
            resolve(message.addr);
            break;
          case "log":
            getLogger([...message.category, `w${id}`]).emit({
              ...message.record,
              properties: { ...message.record.properties, worker: id },
            });
            break;
          case "stats":
            if (!state.final) {
              state.stats = message.stats;
              if (message.metrics !== undefined) state.metrics = message.metrics;
            }
            if (message.request !== undefined) this.#answered(message.request, state);
            break;
          case "finished":
            state.stats = message.stats;
            if (message.metrics !== undefined) state.metrics = message.metrics;
            state.final = true;
            this.#finish(state);
            // A server that stopped by itself (a client's SHUTDOWN) stops the whole pool.
            void this.shutdown();
            break;
          case "failed":
            reject(rebuildError(message.name, message.message, message.code));
            this.#finish(state);
            break;
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        const error = new Error(`worker ${id} failed: ${event.message}`);
        reject(error);
        this.#finish(state);
        if (listening && this.#stopping === undefined) {
          logger.error("Worker {worker} failed: {message}", { worker: id, message: event.message });
          void this.#restart(state, performance.now() - listeningAt);
        }
      };
      worker.postMessage({ type: "start", config, worker: id } satisfies WorkerCommand);
    });
  }

  shutdown(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    for (const state of this.#workers) {
      if (!state.finished) state.worker.postMessage({ type: "shutdown" } satisfies WorkerCommand);
    }
    const bound = (this.#config.serve.graceMs ?? SERVE_DEFAULTS.graceMs) + STOP_MARGIN_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#workers.map((state) => state.whenFinished)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, bound)),
    ]);
    clearTimeout(timer);
    for (const state of this.#workers) {
      if (!state.finished) {
        logger.warn(
          "Worker {worker} did not stop within {bound} ms and was terminated; its counters are " +
            "from its last report",
          { worker: state.id, bound },
        );
      }
      this.#finish(state);
    }
    this.#resolveFinished();
  }

  abort(): void {
    for (const state of this.#workers) {
      if (!state.finished) state.worker.postMessage({ type: "abort" } satisfies WorkerCommand);
    }
  }

  /** A worker answered a stats request. */
  #answered(request: number, state: WorkerState): void {
    const pending = this.#statsRequests.get(request);
    if (pending === undefined) return;
    pending.waiting.delete(state);
    if (pending.waiting.size === 0) {
      this.#statsRequests.delete(request);
      pending.done();
    }
  }

  #finish(state: WorkerState): void {
    if (state.finished) return;
    state.finished = true;
    state.worker.terminate();
    state.resolveFinished();
    // A terminated worker answers no stats request: stop waiting for it.
    for (const request of [...this.#statsRequests.keys()]) this.#answered(request, state);
    // It has no connections any more, whatever it last said.
    state.stats = { ...state.stats, open: 0 };
    if (state.metrics !== undefined) state.metrics = withoutGauges(state.metrics);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/** A stopped worker's metrics: its counters, with nothing open, queued or running any more. */
function withoutGauges(metrics: ServerMetrics): ServerMetrics {
  return {
    ...metrics,
    stats: { ...metrics.stats, open: 0 },
    queued: 0,
    programsRunning: 0,
    programsWaiting: 0,
  };
}

/**
 * Errors cross threads as name, message and code: make a linesock error (with its code) or a
 * `Deno.errors` class again where there is one.
 */
function rebuildError(name: string, message: string, code?: LinesockErrorCode): Error {
  if (code !== undefined) {
    const error = new LinesockError(code, message);
    error.name = name;
    return error;
  }
  const errorClass = (Deno.errors as Record<string, new (message: string) => Error>)[name];
  if (errorClass !== undefined) return new errorClass(message);
  const error = new Error(message);
  error.name = name;
  return error;
}

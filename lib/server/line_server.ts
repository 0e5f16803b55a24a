/**
 * Internal: the engine of {@linkcode serve} once it listens. {@linkcode LineServer} accepts
 * connections (a failed accept never stops it), admits them (the connection limit, the limit per
 * client address, client slots and the queue for them, refusals with an error line), runs each one's
 * session, sweeps the timeouts, and shuts down gracefully.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { formatAddress } from "../address.ts";
import type { LineFramerOptions } from "../framing/line_framer.ts";
import {
  ACCEPT_PAUSE_MAX_MS,
  ACCEPT_PAUSE_MIN_MS,
  MAX_REFUSALS_IN_FLIGHT,
  SERVE_DEFAULTS,
  SHRINK_AFTER_MS,
  SWEEP_MAX_INTERVAL_MS,
} from "./defaults.ts";
import { LatencyHistogram, type ServerMetrics } from "./metrics.ts";
import type { LineProtocol, ServerErrorKind } from "./protocol.ts";
import type { ServeOptions, Server, ServerStats } from "./serve.ts";
import { Session, type SessionHost, sessionSettings } from "./session.ts";
import type { SocketConn } from "./session_io.ts";
import { runSession } from "./session_loop.ts";
import type { UnixSocketListener } from "./unix_socket.ts";
import { describeEnd, isListenerClosed, isResourceExhaustion } from "./_socket_errors.ts";
import { countKind, emptyStats } from "./_stats.ts";
import type { TlsServerContext } from "./_tls_server_conn.ts";

const logger = getLogger(["linesock", "server"]);

/** A listening line server: see the module documentation. */
export class LineServer implements Server, SessionHost {
  readonly addr: Deno.Addr;
  readonly url: string;
  readonly stats: ServerStats = emptyStats();
  readonly errorsByKind: Record<string, number> = {};
  readonly refusedByKind: Record<string, number> = {};
  /** Only with the `metrics` option: then each line's handling is timed. */
  readonly latency: LatencyHistogram | undefined;
  readonly finished: Promise<void>;
  readonly protocol: LineProtocol;
  readonly options: ServeOptions;
  /** Unsent reply bytes beyond which a connection stops being read (writeBufferBytes). */
  readonly highWater: number;
  /** Lines after which a connection is closed (closeAfterLines). */
  readonly closeAfter: number;
  /** The framing options every connection shares. */
  readonly framerOptions: LineFramerOptions;
  readonly sessions = new Set<Session>();
  readonly #listener: Deno.Listener;
  readonly #unix: UnixSocketListener | undefined;
  readonly #tls: TlsServerContext | undefined;
  /** Open connections per client address, when `maxConnectionsPerAddress` is set. */
  readonly #perAddress = new Map<string, number>();
  readonly #maxPerAddress: number;
  readonly #waiting: Session[] = [];
  #active = 0;
  /** Refusals under way (see MAX_REFUSALS_IN_FLIGHT); shutdown waits for them (each is bounded). */
  readonly #refusals = new Set<Promise<void>>();
  #nextId = 1;
  #stopping = false;
  #shutdown: Promise<void> | undefined;
  #acceptLoop: Promise<void> = Promise.resolve();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  /** Ends the accept loop's pause after a failed accept (set only during that pause). */
  #wakeAccept: (() => void) | undefined;
  #resolveFinished!: () => void;
  #onAbort = () => void this.shutdown();

  constructor(
    listener: Deno.Listener,
    unix: UnixSocketListener | undefined,
    tls: TlsServerContext | undefined,
    protocol: LineProtocol,
    options: ServeOptions,
  ) {
    this.#listener = listener;
    this.#unix = unix;
    this.#tls = tls;
    this.#maxPerAddress = options.maxConnectionsPerAddress ??
      SERVE_DEFAULTS.maxConnectionsPerAddress;
    this.protocol = protocol;
    this.options = options;
    this.latency = options.metrics ? new LatencyHistogram() : undefined;
    ({
      highWater: this.highWater,
      closeAfter: this.closeAfter,
      framerOptions: this.framerOptions,
    } = sessionSettings(protocol, options));
    // A Unix listener was bound under a staging name and renamed: report the real path.
    this.addr = unix ? { transport: "unix", path: unix.path } : listener.addr;
    // A TLS server says so in its URL: what it prints is what clients take as their target.
    this.url = tls ? formatAddress(this.addr).replace(/^tcp:/, "tls:") : formatAddress(this.addr);
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
  }

  start(): void {
    logger.info("Listening on {url}", { url: this.url });
    this.#acceptLoop = this.#accept();
    const idle = this.options.idleTimeoutMs ?? SERVE_DEFAULTS.idleTimeoutMs;
    const write = this.options.writeTimeoutMs ?? SERVE_DEFAULTS.writeTimeoutMs;
    const queue = this.options.queueTimeoutMs ?? idle;
    const line = this.options.lineTimeoutMs ?? SERVE_DEFAULTS.lineTimeoutMs;
    const shortest = Math.min(
      ...[idle, write, queue, line].filter((ms) => ms > 0),
      SWEEP_MAX_INTERVAL_MS * 4,
    );
    this.#sweeper = setInterval(
      () => this.#sweep(idle, write, queue, line),
      Math.max(10, Math.min(SWEEP_MAX_INTERVAL_MS, shortest / 4)),
    );
    if (this.options.signal?.aborted) void this.shutdown();
    this.options.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Accepts until the server stops or its listener is closed. A failed accept never stops the
   * server: one that concerns a single connection (it was reset or aborted before it was accepted)
   * is counted and retried at once; running out of descriptors or memory is logged once per burst
   * and retried after a pause that grows while it lasts.
   */
  async #accept(): Promise<void> {
    const maxConnections = this.options.maxConnections ?? SERVE_DEFAULTS.maxConnections;
    let pauseMs = 0;
    let failures = 0;
    try {
      while (!this.#stopping) {
        let raw: Deno.Conn;
        try {
          raw = await this.#listener.accept();
        } catch (error) {
          if (this.#stopping || isListenerClosed(error)) break;
          this.stats.acceptErrors++;
          if (!isResourceExhaustion(error)) {
            logger.debug("An accept failed ({reason}); accepting the next connection", {
              reason: describeEnd(error),
            });
            continue;
          }
          pauseMs = Math.min(Math.max(pauseMs * 2, ACCEPT_PAUSE_MIN_MS), ACCEPT_PAUSE_MAX_MS);
          if (failures++ === 0) {
            logger.error("Cannot accept connections: {reason}; retrying, paused up to {maxMs} ms", {
              reason: describeEnd(error),
              maxMs: ACCEPT_PAUSE_MAX_MS,
            });
          }
          await this.#pause(pauseMs);
          continue;
        }
        if (failures > 0) {
          logger.warn("Accepting again after {failures} failed accepts", { failures });
          failures = 0;
        }
        pauseMs = 0;
        const conn: SocketConn = this.#tls ? this.#tls.accept(raw) : raw;
        const session = new Session(this, conn, this.#nextId++);
        this.stats.connections++;
        if (this.sessions.size >= maxConnections) {
          this.#refuse(session, "too_many_connections", "too many connections");
          continue;
        }
        const refusal = this.options.proxyProtocol ? undefined : this.claimAddress(session);
        if (refusal !== undefined) {
          this.#refuse(session, "too_many_connections", refusal);
          continue;
        }
        this.sessions.add(session);
        this.stats.open = this.sessions.size;
        this.#admit(session);
      }
    } catch (error) {
      logger.error("Accept loop failed: {error}", { error });
    }
    if (!this.#stopping) {
      // Nothing accepts any more: stop, so that `finished` settles instead of hanging.
      logger.error("The listener on {url} closed; shutting down", { url: this.url });
      void this.shutdown();
    }
  }

  get serving(): boolean {
    return !this.#stopping;
  }

  metrics(): ServerMetrics {
    const stats = { ...this.stats };
    // Connections still open: their traffic so far (a session's counters join `stats` as it ends).
    for (const session of this.sessions) {
      const output = session.output;
      stats.linesIn += session.linesIn;
      stats.linesOut += output.linesOut;
      stats.bytesOut += output.bytesWritten;
      stats.bytesIn += (session.reader?.bytesRead ?? 0) +
        (session.repliesIfAny?.watchedBytes ?? 0);
    }
    const reported = this.protocol.metrics?.();
    return {
      stats,
      serving: !this.#stopping,
      queued: this.#waiting.length,
      errors: { ...this.errorsByKind },
      refused: { ...this.refusedByKind },
      routeHits: { ...reported?.routeHits },
      programsRunning: reported?.programsRunning ?? 0,
      programsWaiting: reported?.programsWaiting ?? 0,
      ...(reported?.chat !== undefined ? { chat: { ...reported.chat } } : {}),
      ...(this.latency !== undefined ? { latency: this.latency.snapshot() } : {}),
      workers: 0,
    };
  }

  /**
   * Counts a connection against its address's limit (`maxConnectionsPerAddress`).
   * @returns `undefined` when the connection may go on, else the message of its refusal.
   */
  claimAddress(session: Session): string | undefined {
    if (this.#maxPerAddress === Infinity) return undefined;
    const address = addressKey(session.remoteAddr);
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= this.#maxPerAddress) return tooManyFrom(session.remoteAddr);
    this.#perAddress.set(address, count + 1);
    session.addressClaimed = true;
    return undefined;
  }

  /** The connection no longer counts against its address (see {@linkcode claimAddress}). */
  #releaseAddress(session: Session): void {
    if (!session.addressClaimed) return;
    session.addressClaimed = false;
    const address = addressKey(session.remoteAddr);
    const count = this.#perAddress.get(address) ?? 1;
    if (count <= 1) this.#perAddress.delete(address);
    else this.#perAddress.set(address, count - 1);
  }

  /** Waits `ms` between accept attempts, or less when the server stops meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeAccept = undefined;
        resolve();
      }, ms);
      this.#wakeAccept = () => {
        clearTimeout(timer);
        this.#wakeAccept = undefined;
        resolve();
      };
    });
  }

  #admit(session: Session): void {
    const maxClients = this.options.maxClients ?? SERVE_DEFAULTS.maxClients;
    if (this.#active < maxClients) {
      this.#run(session);
    } else if (this.#waiting.length < (this.options.queue ?? SERVE_DEFAULTS.queue)) {
      logger.debug("Connection {id} from {peer} waits for a slot", {
        id: session.id,
        peer: session.peer,
      });
      this.#waiting.push(session);
    } else {
      this.#releaseAddress(session);
      this.sessions.delete(session);
      this.stats.open = this.sessions.size;
      this.#refuse(session, "busy", "busy");
    }
  }

  #run(session: Session): void {
    this.#active++;
    // runSession() never rejects, and calls ended() itself: no promise chain per connection.
    void runSession(session);
  }

  /** A served connection ended: its slot goes to the next waiting one. */
  ended(session: Session): void {
    this.#active--;
    this.#releaseAddress(session);
    this.sessions.delete(session);
    this.stats.open = this.sessions.size;
    const next = this.#waiting.shift();
    if (next && !this.#stopping) this.#run(next);
    this.#maybeFinished();
  }

  /**
   * Refuses a connection that is not (or no longer) in `sessions`: an error line and close, or,
   * with too many refusals under way already, just the close.
   */
  #refuse(session: Session, kind: ServerErrorKind, message: string): void {
    if (this.#refusals.size >= MAX_REFUSALS_IN_FLIGHT) {
      countKind(this.refusedByKind, kind);
      logger.debug("Closed connection {id} from {peer} without a reply: {reason}", {
        id: session.id,
        peer: session.peer,
        reason: message,
      });
      session.destroy(`${message} (${MAX_REFUSALS_IN_FLIGHT} refusals under way: no reply)`);
      return;
    }
    const refusal: Promise<void> = session.reject(kind, message).catch(() => {}).finally(() =>
      this.#refusals.delete(refusal)
    );
    this.#refusals.add(refusal);
  }

  /**
   * Closes idle connections, drops those whose replies make no progress, and tells those that
   * waited too long for a slot that the server is busy (see the options). Connections quiet for a
   * while give back their reply buffers.
   */
  #sweep(idleMs: number, writeMs: number, queueMs: number, lineMs: number): void {
    const now = performance.now();
    for (const session of this.sessions) {
      if (writeMs > 0 && session.writeStalledMs(now) >= writeMs) {
        session.writeTimeout(writeMs);
      } else if (idleMs > 0 && session.idleMs(now) >= idleMs) {
        session.idleTimeout();
      } else if (lineMs > 0 && session.lineMs(now) >= lineMs) {
        session.lineTimeout(lineMs);
      } else if (session.idleMs(now) >= SHRINK_AFTER_MS) {
        session.shrink();
      }
    }
    if (queueMs > 0) {
      // The queue is in arrival order: the longest waiting come first.
      while (this.#waiting.length > 0 && now - this.#waiting[0]!.lastActivity >= queueMs) {
        const session = this.#waiting.shift()!;
        this.#releaseAddress(session);
        this.sessions.delete(session);
        this.stats.open = this.sessions.size;
        logger.debug("Connection {id} from {peer} waited {queueMs} ms for a slot", {
          id: session.id,
          peer: session.peer,
          queueMs,
        });
        this.#refuse(session, "busy", "busy");
      }
      this.#maybeFinished();
    }
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#stop();
    return this.#shutdown;
  }

  /** A protocol asked for the shutdown: once the reply it is making is queued. */
  requestShutdown(): void {
    queueMicrotask(() => void this.shutdown());
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.options.signal?.removeEventListener("abort", this.#onAbort);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#wakeAccept?.();
    try {
      this.#listener.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
    await this.#acceptLoop;
    for (const waiting of this.#waiting.splice(0)) {
      this.#releaseAddress(waiting);
      this.sessions.delete(waiting);
      this.#refuse(waiting, "shutting_down", "server shutting down");
    }
    const grace = this.options.graceMs ?? SERVE_DEFAULTS.graceMs;
    const timer = setTimeout(() => this.abort(), grace);
    for (const session of this.sessions) session.drain();
    this.stats.open = this.sessions.size;
    this.#maybeFinished();
    await this.finished;
    clearTimeout(timer);
    await Promise.all(this.#refusals);
    await this.#unix?.close();
  }

  abort(): void {
    for (const session of this.sessions) session.destroy("aborted");
  }

  #maybeFinished(): void {
    if (this.#stopping && this.sessions.size === 0) {
      this.#resolveFinished();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/** The address a per-address limit counts: the host, without the port. */
function addressKey(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp" ? addr.hostname : addr.transport;
}

function tooManyFrom(addr: Deno.Addr): string {
  return `too many connections from ${addressKey(addr)}`;
}

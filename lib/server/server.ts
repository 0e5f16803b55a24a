/**
 * {@linkcode serve}: a line server on TCP or a Unix socket, with bounded memory, ordered pipelined
 * replies batched into one write per burst, backpressure against clients that do not read, idle
 * timeouts, client slots, and graceful shutdown.
 *
 * A handler gets each line and a {@linkcode ConnectionContext}, and may return nothing, a line, several
 * lines, a promise of those, or an async iterable of lines. Replies always leave in the order of the
 * lines that caused them.
 *
 * @example A tiny upper-casing server
 * ```ts
 * import { serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode("hello\n"));
 * await conn.closeWrite();
 * const reply = new TextDecoder().decode((await new Response(conn.readable).bytes()));
 * assert.equal(reply, "HELLO\n");
 * ```
 *
 * @example Several replies, asynchronously, and closing from the handler
 * ```ts
 * import { serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, async function* (line, context) {
 *   yield `you said ${line}`;
 *   await Promise.resolve();
 *   yield "bye";
 *   context.close();
 * });
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode("hi\n"));
 * const reply = new TextDecoder().decode((await new Response(conn.readable).bytes()));
 * assert.equal(reply, "you said hi\nbye\n");
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { DEFAULT_HOST, DEFAULT_PORT, describePeer, formatAddress } from "../address.ts";
import { ConnectionReader } from "../framing/connection_reader.ts";
import { InvalidEncodingError, type LineTooLongError, ListenError } from "../errors.ts";
import { describeListenFailure } from "./_listen_failure.ts";
import { decodeLine } from "../framing/line_decoder.ts";
import {
  DEFAULT_MAX_LINE_BYTES,
  LineFramer,
  type LineFramerOptions,
} from "../framing/line_framer.ts";
import { LineWriter } from "../framing/line_writer.ts";
import { listenUnix, type UnixSocketListener } from "./unix_socket.ts";
import { MAX_PROXY_HEADER_BYTES, parseProxyHeader, ProxyProtocolError } from "./proxy_protocol.ts";
import { RelayReader } from "../framing/_relay_reader.ts";
import { countNewlines } from "../framing/_count_newlines.ts";
import { emptyStats } from "./_stats.ts";
import type { TlsServerContext } from "./_tls_server_conn.ts";

const logger = getLogger(["linesock", "server"]);

/** One reply line: text (sent as UTF-8) or bytes; the `\n` is added. */
export type ReplyLine = string | Uint8Array;

/** What a handler may return. */
export type Reply =
  | ReplyLine
  | Iterable<ReplyLine>
  | AsyncIterable<ReplyLine>
  | null
  | undefined
  | void;

/** A handler of decoded text lines. */
export type LineHandler = (
  line: string,
  context: ConnectionContext,
) => Reply | Promise<Reply>;

/** Why the server reports an error to a client; protocols may phrase each their own way. */
export type ServerErrorKind =
  | "line_too_long"
  | "invalid_encoding"
  | "idle_timeout"
  | "line_timeout"
  | "busy"
  | "too_many_connections"
  | "internal"
  | "shutting_down"
  | "invalid_proxy_header";

/**
 * A protocol at the byte level: the lower-level form of a handler, used by linesock's own protocols.
 * It sees each line as bytes (views valid only during the call) and may answer synchronously for speed.
 */
export interface LineProtocol {
  /** Strip one `\r` before each `\n`. @default {true} */
  readonly stripCR?: boolean;
  /** Called when a connection opens; its reply is sent first. */
  onConnect?(context: ConnectionContext): Reply | Promise<Reply>;
  /** Called for each line. The bytes are only valid during the call. */
  onLine(line: Uint8Array, context: ConnectionContext): Reply | Promise<Reply>;
  /**
   * Replaces line framing: called with each raw chunk instead (a byte relay such as echo). The bytes
   * are only valid during the call.
   */
  onData?(chunk: Uint8Array, context: ConnectionContext): void;
  /** Called when the peer half-closes (after its last line). */
  onEnd?(context: ConnectionContext): Reply | Promise<Reply>;
  /**
   * Phrases an error reply. Without it: `ERR <message>`.
   * @returns The line to send, or `undefined` to send nothing.
   */
  formatError?(kind: ServerErrorKind, message: string): string | undefined;
}

/** What a handler knows about its connection and can do with it. */
export interface ConnectionContext {
  /** A number unique within this server. */
  readonly id: number;
  /**
   * The peer, for logs: `127.0.0.1:50432`, `[::1]:50432` or `unix`. With the PROXY protocol, the
   * client the balancer relays.
   */
  readonly peer: string;
  /** The peer's address (with the PROXY protocol, the source address its header names). */
  readonly remoteAddr: Deno.Addr;
  /** The number of the line being handled (1-based). */
  readonly lineNumber: number;
  /** The server. */
  readonly server: Server;
  /** Aborted when this connection closes (to stop work started for it, such as a program). */
  readonly signal: AbortSignal;
  /**
   * Bytes of replies queued and not yet taken by the socket. The server stops reading a client
   * while this exceeds `writeBufferBytes`; a handler that sends on its own may check it too.
   */
  readonly queuedBytes: number;
  /**
   * Sends a line outside the normal reply flow (for example from a timer).
   * @returns A promise that settles once the line was handed to the socket.
   */
  send(line: ReplyLine): Promise<void>;
  /** Queues bytes as they are, with no terminator (byte relays). */
  sendRaw(bytes: Uint8Array): void;
  /** Sends a line made by the protocol's error phrasing for `kind` (and counts the error). */
  sendError(kind: ServerErrorKind, message: string): void;
  /** Counts an error reply that the handler phrases and sends itself, for the server's stats. */
  countError(): void;
  /** Closes this connection once the replies so far are sent; later lines are ignored. */
  close(reason?: string): void;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** TCP host to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** TCP port; 0 picks a free one. @default {1991} */
  port?: number;
  /** Listen on this Unix socket path instead of TCP. */
  path?: string;
  /** The Unix socket file's mode. @default {0o600} */
  socketMode?: number;
  /** A group id for the Unix socket file. */
  socketGid?: number;
  /** Bind with SO_REUSEPORT (needs `--unstable-net`), for several accept loops on one port. */
  reusePort?: boolean;
  /** TLS certificate and key (PEM text). */
  tls?: { cert: string; key: string };
  /**
   * How long a TLS client may take to complete its handshake, in ms; then the connection is closed
   * and its descriptor released. 0 disables.
   * @default {10000}
   */
  tlsHandshakeTimeoutMs?: number;
  /** An already listening socket to serve instead of binding one. */
  listener?: Deno.Listener;
  /** The longest accepted line in bytes. @default {1048576} */
  maxLineBytes?: number;
  /**
   * Close a connection that sends nothing, and reads none of its pending replies, for this long (a
   * farewell error line, then the close); 0 disables.
   * @default {0}
   */
  idleTimeoutMs?: number;
  /**
   * A line must arrive whole within this long of its first byte, in ms (a client dripping one byte
   * at a time keeps the idle timeout away, not this one): then an error line and close. 0 disables.
   * @default {0}
   */
  lineTimeoutMs?: number;
  /**
   * Connections open at once from one client address (with the PROXY protocol, the address its
   * header names); beyond it: an error line, then close. Unix socket clients share one address.
   * @default {Infinity}
   */
  maxConnectionsPerAddress?: number;
  /** Connections served at once; others wait in the queue. @default {Infinity} */
  maxClients?: number;
  /** Connections that may wait for a slot; beyond it they get a busy error. @default {64} */
  queue?: number;
  /**
   * How long a connection may wait for a slot before it gets a busy error and is closed, in ms;
   * 0 = as long as it takes.
   * @default {idleTimeoutMs}
   */
  queueTimeoutMs?: number;
  /**
   * Connections open at once (served and waiting); beyond it: an error line, then close. Each one
   * needs a file descriptor: keep it below the process's limit (`ulimit -n`).
   * @default {16384}
   */
  maxConnections?: number;
  /** Close a connection after this many lines. */
  closeAfterLines?: number;
  /** A line sent to each client on connect. */
  greeting?: string;
  /** How long shutdown waits for replies in flight, in ms. @default {5000} */
  graceMs?: number;
  /** Stop reading from a client whose unsent replies exceed this many bytes. @default {1048576} */
  writeBufferBytes?: number;
  /**
   * Drop a client whose replies make no progress for this long, in ms (a client that stopped
   * reading); 0 disables.
   * @default {30000}
   */
  writeTimeoutMs?: number;
  /** Reply for an undecodable line (text handlers). @default {"ERR invalid encoding"} */
  invalidReply?: string;
  /** Shut down when this signal aborts. */
  signal?: AbortSignal;
  /**
   * Expect a PROXY protocol header (v1 or v2) at the start of every connection, as sent by a load
   * balancer, and take the client address from it. A connection without one gets an error line and
   * is closed. Only for servers reachable through the balancer alone: a header is a claim.
   * @default {false}
   */
  proxyProtocol?: boolean;
  /** How long a connection may take to send its whole PROXY header, in ms. @default {5000} */
  proxyHeaderTimeoutMs?: number;
}

/** Counters of a server's life. */
export interface ServerStats {
  /** Connections accepted. */
  connections: number;
  /** Connections open now. */
  open: number;
  /** Lines received. */
  linesIn: number;
  /** Lines sent. */
  linesOut: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes sent. */
  bytesOut: number;
  /** Errors reported to clients or met on connections. */
  errors: number;
  /**
   * Accepts that failed: a client that reset before it was accepted (retried at once), or the
   * process out of descriptors or memory (retried after a pause).
   */
  acceptErrors: number;
  /** Workers that crashed and were started again (a pool of workers only). */
  workerRestarts: number;
}

/** A running server. */
export interface Server extends AsyncDisposable {
  /** The bound address. */
  readonly addr: Deno.Addr;
  /** The bound address as `tcp://host:port` or `unix://path`. */
  readonly url: string;
  /** Counters so far. */
  readonly stats: Readonly<ServerStats>;
  /** Settles when the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /** Stops accepting, answers lines already received (within the grace time), closes everything. */
  shutdown(): Promise<void>;
  /** Closes every connection at once, without waiting for replies. */
  abort(): void;
}

const HIGH_WATER_DEFAULT = 1024 * 1024;
const QUEUE_DEFAULT = 64;
const MAX_CONNECTIONS_DEFAULT = 16384;
/**
 * Refusals (an error line, then close) under way at once. Beyond it, a refused connection is
 * closed without the line, so that a flood cannot pile up descriptors in refusals.
 */
const MAX_REFUSALS_IN_FLIGHT = 64;
const WRITE_TIMEOUT_DEFAULT = 30_000;
/** The sweeper of timeouts runs at least this often (also when no timeout is set). */
const SWEEP_MAX_INTERVAL_MS = 1000;
/** A connection idle this long gives back its reply buffers (busy ones keep and reuse them). */
const SHRINK_AFTER_MS = 1000;
/** Read buffers start this small (an idle connection costs little) and double while reads fill them. */
const MIN_READ_BUFFER_BYTES = 256;
const MAX_READ_BUFFER_BYTES = 256 * 1024;
const PROXY_HEADER_TIMEOUT_DEFAULT = 5000;
const TLS_HANDSHAKE_TIMEOUT_DEFAULT = 10_000;
/** How much input a connection whose reply is pending may read ahead (to notice the client go). */
const WATCH_BYTES = 4096;

/** What the server needs of an accepted connection (a `Deno.Conn`, or TLS over one). */
type SocketConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close" | "remoteAddr">;

/**
 * Starts a line server.
 * @param options Where to listen, limits and timeouts.
 * @param handler A function of text lines, or a byte-level {@linkcode LineProtocol}.
 * @returns The running server.
 * @throws {ListenError} When the address cannot be listened on (in use, no such host or directory).
 */
export async function serve(
  options: ServeOptions,
  handler: LineHandler | LineProtocol,
): Promise<Server> {
  const protocol = typeof handler === "function" ? textProtocol(handler, options) : handler;
  let unix: UnixSocketListener | undefined;
  let listener: Deno.Listener;
  if (options.listener) {
    listener = options.listener;
  } else if (options.path !== undefined) {
    unix = await listenUnix(options.path, {
      ...(options.socketMode !== undefined ? { mode: options.socketMode } : {}),
      ...(options.socketGid !== undefined ? { gid: options.socketGid } : {}),
    });
    listener = unix.listener;
  } else {
    const hostname = options.hostname ?? DEFAULT_HOST;
    const port = options.port ?? DEFAULT_PORT;
    try {
      // TLS runs over connections the server accepts itself (see _tls_server_conn.ts).
      listener = Deno.listen({ hostname, port, ...(options.reusePort ? { reusePort: true } : {}) });
    } catch (error) {
      const address = formatAddress({ transport: "tcp", hostname, port });
      throw new ListenError(address, describeListenFailure(error), { cause: error });
    }
  }
  let tls: TlsServerContext | undefined;
  if (options.tls) {
    const { TlsServerContext } = await import("./_tls_server_conn.ts");
    try {
      tls = new TlsServerContext(
        options.tls,
        options.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_DEFAULT,
      );
    } catch (error) {
      listener.close();
      throw error;
    }
  }
  const server = new LineServer(listener, unix, tls, protocol, options);
  server.start();
  return server;
}

/** Wraps a text handler into a byte-level protocol with strict decoding. */
function textProtocol(handler: LineHandler, options: ServeOptions): LineProtocol {
  const invalidReply = options.invalidReply ?? "ERR invalid encoding";
  return {
    onLine(bytes, context) {
      let line: string;
      try {
        line = decodeLine(bytes, context.lineNumber);
      } catch (error) {
        if (error instanceof InvalidEncodingError) return invalidReply;
        throw error;
      }
      return handler(line, context);
    },
  };
}

class LineServer implements Server {
  readonly addr: Deno.Addr;
  readonly url: string;
  readonly stats: ServerStats = emptyStats();
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
    this.#maxPerAddress = options.maxConnectionsPerAddress ?? Infinity;
    this.protocol = protocol;
    this.options = options;
    this.highWater = options.writeBufferBytes ?? HIGH_WATER_DEFAULT;
    this.closeAfter = options.closeAfterLines ?? Infinity;
    this.framerOptions = {
      maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      stripCR: protocol.stripCR ?? true,
    };
    // A Unix listener was bound under a staging name and renamed: report the real path.
    this.addr = unix ? { transport: "unix", path: unix.path } : listener.addr;
    this.url = formatAddress(this.addr);
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
  }

  start(): void {
    logger.info("Listening on {url}", { url: this.url });
    this.#acceptLoop = this.#accept();
    const idle = this.options.idleTimeoutMs ?? 0;
    const write = this.options.writeTimeoutMs ?? WRITE_TIMEOUT_DEFAULT;
    const queue = this.options.queueTimeoutMs ?? idle;
    const line = this.options.lineTimeoutMs ?? 0;
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
    const maxConnections = this.options.maxConnections ?? MAX_CONNECTIONS_DEFAULT;
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
              reason: describeError(error),
            });
            continue;
          }
          pauseMs = Math.min(Math.max(pauseMs * 2, ACCEPT_PAUSE_MIN_MS), ACCEPT_PAUSE_MAX_MS);
          if (failures++ === 0) {
            logger.error("Cannot accept connections: {reason}; retrying, paused up to {maxMs} ms", {
              reason: describeError(error),
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
        if (!this.options.proxyProtocol && !this.claimAddress(session)) {
          this.#refuse(session, "too_many_connections", tooManyFrom(session.remoteAddr));
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

  /**
   * Counts a connection against its address's limit (`maxConnectionsPerAddress`).
   * @returns Whether the connection may go on (if not, the caller refuses it).
   */
  claimAddress(session: Session): boolean {
    if (this.#maxPerAddress === Infinity) return true;
    const address = addressKey(session.remoteAddr);
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= this.#maxPerAddress) return false;
    this.#perAddress.set(address, count + 1);
    session.addressClaimed = true;
    return true;
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
    const maxClients = this.options.maxClients ?? Infinity;
    if (this.#active < maxClients) {
      this.#run(session);
    } else if (this.#waiting.length < (this.options.queue ?? QUEUE_DEFAULT)) {
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
    // run() never rejects, and calls ended() itself: no promise chain per connection.
    void session.run();
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
    const grace = this.options.graceMs ?? 5000;
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

type SessionState = "waiting" | "reading" | "working" | "closing" | "closed";

class Session implements ConnectionContext {
  readonly id: number;
  /** Replaced by the PROXY header's source, when the server expects one. */
  peer: string;
  remoteAddr: Deno.Addr;
  readonly server: LineServer;
  /** Counted against its address's limit (see LineServer.claimAddress). */
  addressClaimed = false;
  readonly #conn: SocketConn;
  readonly #writer: LineWriter;
  readonly #protocol: LineProtocol;
  readonly #startedAt = performance.now();
  /** When input last arrived. */
  lastActivity = performance.now();
  /** When a write to the socket last started or made progress. */
  #lastWriteAt = 0;
  /** Writes to the socket started and not settled yet. */
  #writesInFlight = 0;
  lineNumber = 0;
  #state: SessionState = "waiting";
  #closeReason: string | undefined;
  #linesIn = 0;
  #linesOut = 0;
  /** A line handler's reply that has not settled yet; later lines wait behind it. */
  #pending: Promise<void> | undefined;
  #writeError: unknown;
  #draining = false;
  #lingering = false;
  #finSent = false;
  /** The pause between drain() and its FIN (see #finishDrain). */
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** An error line and close are under way (a refusal or an idle timeout): do it only once. */
  #refusing = false;
  #abort: AbortController | undefined;
  /** Relay mode: the chunk being handed to `onData`, which `sendRaw` may write without a copy. */
  #lendable: Uint8Array | undefined;
  /** Relay mode: the last write made straight from a read buffer, until it settles. */
  #direct: Promise<void> | undefined;
  #directBytes = 0;
  #resolveClosed: (() => void) | undefined;
  #closedPromise: Promise<void> | undefined;
  /** When the line being received began (`undefined` between lines), for the line timeout. */
  #lineStartedAt: number | undefined;
  /**
   * The read made while a reply is pending, to notice a client that goes away meanwhile (its
   * program is then stopped): it settles with what it read, and run() takes that as its next chunk.
   */
  #watch: Promise<Uint8Array | null> | undefined;
  /** The peer half-closed (its input is over): nothing more to read or watch. */
  #inputEnded = false;
  #watchedBytes = 0;

  constructor(server: LineServer, conn: SocketConn, id: number) {
    this.server = server;
    this.#conn = conn;
    this.id = id;
    this.remoteAddr = conn.remoteAddr;
    this.peer = describePeer(conn.remoteAddr);
    this.#writer = new LineWriter({ write: (bytes) => this.#write(bytes) });
    this.#protocol = server.protocol;
  }

  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  get signal(): AbortSignal {
    // Made on first use: most connections never need one.
    this.#abort ??= new AbortController();
    if (this.#state === "closed") this.#abort.abort();
    return this.#abort.signal;
  }

  /**
   * How long this connection has been idle at `now`: neither sending nor reading its replies. A
   * connection waiting for its handler is not idle.
   */
  idleMs(now: number): number {
    if (this.#refusing) return 0;
    if (this.#state === "reading" || (this.#state === "working" && this.#writesInFlight > 0)) {
      return now - Math.max(this.lastActivity, this.#lastWriteAt);
    }
    return 0;
  }

  /** How long the line being received has been arriving at `now` (0 between lines). */
  lineMs(now: number): number {
    return this.#lineStartedAt === undefined || this.#refusing || this.#state !== "reading"
      ? 0
      : now - this.#lineStartedAt;
  }

  /** Says goodbye to a client whose line did not arrive whole in time, and closes it. */
  lineTimeout(ms: number): void {
    this.#lineStartedAt = undefined;
    void this.#refuse("line_timeout", `line timeout (a line must arrive within ${ms} ms)`, false);
  }

  /** How long a write to the socket has been stuck at `now` (0 when none is). */
  writeStalledMs(now: number): number {
    return this.#writesInFlight > 0 && this.#state !== "closed" ? now - this.#lastWriteAt : 0;
  }

  /** Gives back the reply buffers of a quiet connection. */
  shrink(): void {
    this.#writer.shrink();
  }

  /** Drops a client whose replies made no progress for `ms`. */
  writeTimeout(ms: number): void {
    const reason = `write timeout after ${ms} ms`;
    this.server.stats.errors++;
    logger.warn("Connection {id} from {peer} failed: {reason}", {
      id: this.id,
      peer: this.peer,
      reason,
    });
    this.destroy(reason);
  }

  /** Writes to the socket for the reply writer. */
  #write(bytes: Uint8Array): Promise<number> {
    const conn = this.#conn;
    // Queued replies leave after a relay's direct write still in flight, to keep the byte order.
    return this.#tracked(
      this.#direct === undefined ? conn.write(bytes) : this.#direct.then(() => conn.write(bytes)),
    );
  }

  /** Notes a write's start and end, for the write timeout. */
  #tracked(written: Promise<number>): Promise<number> {
    this.#writesInFlight++;
    this.#lastWriteAt = performance.now();
    return written.then((count) => {
      this.#writesInFlight--;
      this.#lastWriteAt = performance.now();
      return count;
    }, (error) => {
      this.#writesInFlight--;
      throw error;
    });
  }

  /** A method, not a field read, so that TypeScript does not narrow it across awaits. */
  get #closed(): boolean {
    return this.#state === "closed";
  }

  /**
   * Settles when the connection is destroyed, so that no wait outlives it. Made on first use: an
   * idle connection does not need one.
   */
  get #whenClosed(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    return this.#closedPromise ??= new Promise((resolve) => this.#resolveClosed = resolve);
  }

  get #open(): boolean {
    return this.#closeReason === undefined;
  }

  send(line: ReplyLine): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new Deno.errors.BadResource("closed"));
    this.#enqueue(line);
    return this.#flush();
  }

  sendRaw(bytes: Uint8Array): void {
    if (bytes === this.#lendable && this.#writer.pendingBytes === 0 && !this.#writer.flushing) {
      this.#lendable = undefined;
      this.#writeDirect(bytes);
      return;
    }
    this.#writer.enqueueBytes(bytes);
  }

  sendError(kind: ServerErrorKind, message: string): void {
    this.server.stats.errors++;
    const line = this.#protocol.formatError
      ? this.#protocol.formatError(kind, message)
      : `ERR ${message}`;
    if (line !== undefined) this.#enqueue(line);
  }

  countError(): void {
    this.server.stats.errors++;
  }

  close(reason = "closed by handler"): void {
    this.#closeReason ??= reason;
  }

  /** Refuses a connection with one error line, without serving it. */
  reject(kind: ServerErrorKind, message: string): Promise<void> {
    return this.#refuse(kind, message, true);
  }

  /** Server shutdown: finish what was received, then close. */
  drain(): void {
    this.#draining = true;
    // A session blocked in read has answered everything it received: close it once replies are out.
    if (this.#state === "reading" || this.#state === "waiting") {
      this.#flushAll().catch(() => {}).finally(() => {
        // Input that arrived before the shutdown may be in the socket while its read has not
        // completed yet (the event loop polls sockets when it has nothing else to do): give it a
        // moment to come in and be answered before the FIN.
        if (this.#state !== "closed") {
          this.#drainTimer = setTimeout(() => this.#finishDrain(), DRAIN_QUIET_MS);
        }
      });
    }
  }

  #finishDrain(): void {
    this.#drainTimer = undefined;
    if (this.#state === "reading") {
      // Lingering close: FIN after the replies; run() then discards input until the peer closes.
      this.#finSent = true;
      this.#conn.closeWrite().catch(() => {});
    } else if (this.#state === "waiting") {
      this.destroy("server shutting down");
    }
    // Otherwise run() took a chunk meanwhile: it answers it, then flushes and closes itself.
  }

  /** Says goodbye to a connection that was idle too long, and closes it. */
  idleTimeout(): void {
    void this.#refuse("idle_timeout", "idle timeout", false);
  }

  /**
   * Sends one error line, then closes: the flush is bounded (a client that does not read must not
   * keep the connection), and it happens once however often it is asked for.
   */
  async #refuse(kind: ServerErrorKind, message: string, announce: boolean): Promise<void> {
    if (this.#refusing || this.#state === "closed") return;
    this.#refusing = true;
    if (announce) {
      logger.info("Refused connection {id} from {peer}: {reason}", {
        id: this.id,
        peer: this.peer,
        reason: message,
      });
    }
    this.sendError(kind, message);
    this.close(message);
    const timer = setTimeout(() => this.destroy(message), REFUSAL_TIMEOUT_MS);
    try {
      await Promise.race([this.#flushAll(), this.#whenClosed]);
      if (!this.#closed) await this.#conn.closeWrite();
    } catch {
      // The client went away first; nothing to tell it.
    } finally {
      clearTimeout(timer);
      this.destroy(message);
    }
  }

  destroy(reason: string): void {
    this.#closeReason ??= reason;
    if (this.#state === "closed") return;
    this.#state = "closed";
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#abort?.abort();
    this.#resolveClosed?.();
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async run(): Promise<void> {
    const options = this.server.options;
    const stats = this.server.stats;
    const relay = this.#protocol.onData !== undefined;
    const reader = relay
      ? new RelayReader(this.#conn, MIN_READ_BUFFER_BYTES, MAX_READ_BUFFER_BYTES)
      : new ConnectionReader(this.#conn, {
        minBufferBytes: MIN_READ_BUFFER_BYTES,
        maxBufferBytes: MAX_READ_BUFFER_BYTES,
      });
    const highWater = this.server.highWater;
    const closeAfter = this.server.closeAfter;
    const protocol = this.#protocol;
    // The session is the framer's sink: no closures per connection (idle ones should cost little).
    const framer = protocol.onData ? undefined : new LineFramer(this.server.framerOptions, this);
    let endReason = "closed by client";
    try {
      let early: Uint8Array | undefined;
      if (options.proxyProtocol) {
        const header = await this.#readProxyHeader(reader);
        if (header === undefined) return;
        early = header;
      }
      logger.info("Connection {id} from {peer} opened", { id: this.id, peer: this.peer });
      this.#state = "working";
      if (options.greeting !== undefined) this.#enqueue(options.greeting);
      if (protocol.onConnect) {
        await Promise.race([this.#emit(protocol.onConnect(this)), this.#whenClosed]);
      }
      while (this.#open && !this.#draining) {
        this.#state = "reading";
        this.#startFlush();
        let chunk: Uint8Array | null;
        if (early !== undefined) {
          // Bytes that came in the same read as the PROXY header.
          chunk = early;
          early = undefined;
        } else if (this.#watch !== undefined) {
          // The read made while a reply was pending is this loop's next read.
          chunk = await this.#watch;
          this.#watch = undefined;
        } else {
          try {
            chunk = await reader.read();
          } catch (error) {
            if (this.#closed) break;
            throw error;
          }
        }
        if (this.#closed) break;
        // Input read after drain()'s FIN arrived after the shutdown began, and can no longer be
        // answered: discard it (see #linger). Input read before it is framed and answered below.
        if (this.#finSent) break;
        this.#state = "working";
        this.lastActivity = performance.now();
        if (chunk === null) {
          this.#inputEnded = true;
          this.#lineStartedAt = undefined;
          framer?.end();
          await this.#settle();
          if (this.#open && protocol.onEnd) await this.#emit(protocol.onEnd(this));
          break;
        }
        if (framer) {
          await this.#frame(framer, chunk, highWater);
        } else {
          this.#relay(chunk, closeAfter);
          if (this.#direct !== undefined) (reader as RelayReader).hold(this.#direct);
        }
        if (this.#writeError !== undefined) throw this.#writeError;
        if (this.#writer.queuedBytes > highWater) await this.#flushWithTimeout();
      }
      if (this.#closeReason !== undefined) endReason = this.#closeReason;
      else if (this.#draining) endReason = "server shutting down";
      if (!this.#closed) {
        await this.#flushWithTimeout();
        await this.#conn.closeWrite().catch(() => {});
        await this.#linger(reader);
      }
    } catch (error) {
      endReason = describeError(error);
      if (error instanceof Deno.errors.InvalidData || error instanceof Deno.errors.TimedOut) {
        // A failed TLS handshake (a plain-text client, an untrusted certificate) or a corrupt
        // record: the peer's doing, worth one line, not a stack trace.
        stats.errors++;
        logger.warn("Connection {id} from {peer} failed: TLS: {reason}", {
          id: this.id,
          peer: this.peer,
          reason: endReason,
        });
      } else if (!isDisconnect(error)) {
        stats.errors++;
        logger.warn("Connection {id} from {peer} failed: {error}", {
          id: this.id,
          peer: this.peer,
          error,
        });
      }
    } finally {
      this.destroy(endReason);
      stats.linesIn += this.#linesIn;
      stats.linesOut += this.#linesOut;
      stats.bytesIn += reader.bytesRead + this.#watchedBytes;
      stats.bytesOut += this.#writer.bytesWritten + this.#directBytes;
      this.server.ended(this);
      logger.info(
        "Connection {id} from {peer} closed after {durationMs} ms: {linesIn} lines in, {linesOut} out, {bytesIn} bytes in, {bytesOut} out ({reason})",
        {
          id: this.id,
          peer: this.peer,
          durationMs: Math.round(performance.now() - this.#startedAt),
          linesIn: this.#linesIn,
          linesOut: this.#linesOut,
          bytesIn: reader.bytesRead + this.#watchedBytes,
          bytesOut: this.#writer.bytesWritten + this.#directBytes,
          reason: this.#closeReason ?? endReason,
        },
      );
    }
  }

  /** The framer's sink (internal): handles one line; `false` pauses framing. */
  onLine(bytes: Uint8Array, lineNumber: number): boolean {
    if (!this.#open) return false;
    this.lineNumber = lineNumber;
    this.#linesIn++;
    this.#handle(bytes);
    const closeAfter = this.server.closeAfter;
    if (this.#linesIn >= closeAfter) this.close(`closed after ${closeAfter} lines`);
    // Pause while a reply is pending (the lines behind it wait unframed in the read buffer), once
    // the unsent replies pass the cap, and after the last line.
    return this.#pending === undefined && this.#open &&
      this.#writer.queuedBytes <= this.server.highWater;
  }

  /** The framer's sink (internal): an over-long line (never while a reply is pending). */
  onTooLong(error: LineTooLongError): void {
    if (!this.#open) return;
    this.lineNumber = error.lineNumber;
    this.#linesIn++;
    this.sendError("line_too_long", `line too long (limit ${error.limit} bytes)`);
  }

  /**
   * Frames a chunk. When framing pauses (a reply went async, or the unsent replies passed the cap),
   * the rest of the chunk stays where it is, in the read buffer, which is not read into again
   * until the rest is framed: waiting lines cost no memory of their own.
   */
  async #frame(framer: LineFramer, chunk: Uint8Array, highWater: number): Promise<void> {
    let rest = chunk;
    for (;;) {
      const consumed = framer.push(rest);
      if (this.#pending !== undefined) {
        await this.#settle();
        this.#startFlush();
      }
      if (consumed === rest.length) {
        // A line begun and not finished: its time starts (the line timeout); none: it stops.
        if (!framer.midLine) this.#lineStartedAt = undefined;
        else this.#lineStartedAt ??= this.lastActivity;
        return;
      }
      if (!this.#open || this.#closed) return;
      rest = rest.subarray(consumed);
      if (this.#writeError !== undefined) throw this.#writeError;
      if (this.#writer.queuedBytes > highWater) await this.#flushWithTimeout();
      if (this.#closed) return;
    }
  }

  /**
   * After our FIN, reads and discards until the peer closes (bounded): closing with unread input
   * makes the kernel send an RST, which destroys the replies still in flight.
   */
  async #linger(reader: { read(): Promise<Uint8Array | null> }): Promise<void> {
    if (this.#lingering) return;
    this.#lingering = true;
    const timer = setTimeout(() => this.destroy("linger timeout"), LINGER_MS);
    try {
      if (this.#watch !== undefined && (await this.#watch) === null) return;
      while ((await reader.read()) !== null) {
        // Discard.
      }
    } catch {
      // Reset or closed: nothing left to protect.
    } finally {
      clearTimeout(timer);
    }
  }

  /** Relay mode: counts lines, honours the line budget, and hands the chunk to the protocol. */
  #relay(chunk: Uint8Array, closeAfter: number): void {
    let lines = countNewlines(chunk);
    let cut = chunk.length;
    if (this.#linesIn + lines >= closeAfter) {
      // The budget ends in this chunk: find the line where it does.
      lines = 0;
      for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) {
        lines++;
        if (this.#linesIn + lines >= closeAfter) {
          cut = at + 1;
          this.close(`closed after ${closeAfter} lines`);
          break;
        }
      }
    }
    this.#linesIn += lines;
    this.#linesOut += lines;
    const data = cut === chunk.length ? chunk : chunk.subarray(0, cut);
    this.#lendable = data;
    try {
      this.#protocol.onData!(data, this);
    } finally {
      this.#lendable = undefined;
    }
  }

  /**
   * Writes a chunk straight from the read buffer it is in, after the previous direct write; the
   * relay reads into that buffer again only once this write has settled.
   */
  #writeDirect(bytes: Uint8Array): void {
    const previous = this.#direct;
    const conn = this.#conn;
    const write = async () => {
      if (previous !== undefined) await previous;
      for (let offset = 0; offset < bytes.length;) {
        offset += await this.#tracked(conn.write(bytes.subarray(offset)));
      }
      this.#directBytes += bytes.length;
    };
    const done: Promise<void> = write().catch((error) => {
      this.#writeError ??= error;
    }).finally(() => {
      if (this.#direct === done) this.#direct = undefined;
    });
    this.#direct = done;
  }

  /** Waits until queued replies and direct writes have all been handed to the socket. */
  async #flushAll(): Promise<void> {
    for (;;) {
      if (this.#direct !== undefined) await this.#direct;
      if (this.#writer.pendingBytes > 0 || this.#writer.flushing) await this.#writer.flush();
      else if (this.#direct === undefined) return;
    }
  }

  /**
   * Reads the PROXY header within the size and time limits and takes the client address from it.
   * @returns Bytes read past the header (possibly empty), or `undefined` when the connection was
   * refused for a missing or bad header.
   */
  async #readProxyHeader(reader: { read(): Promise<Uint8Array | null> }): Promise<
    Uint8Array | undefined
  > {
    const options = this.server.options;
    const timeoutMs = options.proxyHeaderTimeoutMs ?? PROXY_HEADER_TIMEOUT_DEFAULT;
    let received = new Uint8Array(0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    this.#state = "reading";
    try {
      for (;;) {
        const chunk = await Promise.race([reader.read(), timedOut]);
        if (chunk === "timeout") {
          return await this.#refuseProxy(`no PROXY protocol header within ${timeoutMs} ms`);
        }
        if (chunk === null) {
          this.destroy("closed by client before its PROXY header");
          return undefined;
        }
        const joined = new Uint8Array(received.length + chunk.length);
        joined.set(received);
        joined.set(chunk, received.length);
        received = joined;
        let parsed;
        try {
          parsed = parseProxyHeader(received);
        } catch (error) {
          if (!(error instanceof ProxyProtocolError)) throw error;
          return await this.#refuseProxy(error.message.replace(/^Invalid/, "invalid"));
        }
        if (parsed === undefined) {
          if (received.length >= MAX_PROXY_HEADER_BYTES) {
            return await this.#refuseProxy("PROXY protocol header too long");
          }
          continue;
        }
        const source = parsed.header.source;
        // LOCAL (the balancer's own health check) and address-less headers keep the socket's address.
        if (parsed.header.command === "PROXY" && source !== undefined) {
          this.remoteAddr = { transport: "tcp", hostname: source.hostname, port: source.port };
          this.peer = describePeer(this.remoteAddr);
        }
        if (!this.server.claimAddress(this)) {
          await this.#refuse("too_many_connections", tooManyFrom(this.remoteAddr), true);
          return undefined;
        }
        return received.subarray(parsed.consumed);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async #refuseProxy(message: string): Promise<undefined> {
    await this.#refuse("invalid_proxy_header", message, true);
    return undefined;
  }

  /** Handles one line synchronously when the protocol answers synchronously. */
  #handle(bytes: Uint8Array): void {
    let result: Reply | Promise<Reply>;
    try {
      result = this.#protocol.onLine(bytes, this);
    } catch (error) {
      this.#handlerFailed(error);
      return;
    }
    const pending = this.#emit(result);
    if (pending) this.#pending = pending;
  }

  /** Waits for the pending asynchronous reply (not beyond the connection's end). */
  async #settle(): Promise<void> {
    if (this.#pending !== undefined) {
      this.#watchPeer();
      // A reply that never settles must not keep a destroyed connection (and shutdown) waiting.
      await Promise.race([this.#pending, this.#whenClosed]);
    }
    this.#pending = undefined;
  }

  /**
   * While a reply is pending (a program runs, or waits for a slot), reads ahead a little, so that a
   * client that resets meanwhile is noticed: the connection is destroyed and its signal stops the
   * work. What the read brings is kept, in order, as the next chunk. A FIN is not a departure: a
   * half-closed client may still read its replies.
   */
  #watchPeer(): void {
    if (this.#watch !== undefined || this.#inputEnded || this.#finSent || this.#closed) return;
    const buffer = new Uint8Array(WATCH_BYTES);
    this.#watch = this.#conn.read(buffer).then((count) => {
      if (count === null) return null;
      this.#watchedBytes += count;
      return buffer.subarray(0, count);
    }, (error) => {
      if (!this.#closed) {
        logger.info("Connection {id} from {peer}: {reason} while its reply was pending", {
          id: this.id,
          peer: this.peer,
          reason: describeError(error),
        });
        this.destroy(describeError(error));
      }
      return null;
    });
  }

  /** Queues a reply; returns a promise only when the reply is asynchronous. */
  #emit(result: Reply | Promise<Reply>): Promise<void> | undefined {
    if (result === undefined || result === null) return undefined;
    if (typeof result === "string" || result instanceof Uint8Array) {
      this.#enqueue(result);
      return undefined;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (settled) => this.#emit(settled),
        (error) => this.#handlerFailed(error),
      );
    }
    if (Symbol.iterator in result) {
      for (const line of result) this.#enqueue(line);
      return undefined;
    }
    return this.#emitStream(result);
  }

  async #emitStream(lines: AsyncIterable<ReplyLine>): Promise<void> {
    try {
      for await (const line of lines) {
        this.#enqueue(line);
        this.#startFlush();
        if (
          this.#writer.queuedBytes > (this.server.options.writeBufferBytes ?? HIGH_WATER_DEFAULT)
        ) {
          await this.#flushWithTimeout();
        }
      }
    } catch (error) {
      this.#handlerFailed(error);
    }
  }

  #handlerFailed(error: unknown): void {
    logger.error("Handler failed on connection {id} from {peer}: {error}", {
      id: this.id,
      peer: this.peer,
      error,
    });
    this.sendError("internal", "internal error");
  }

  #enqueue(line: ReplyLine): void {
    this.#writer.enqueue(line);
    this.#linesOut++;
  }

  /** Starts writing what is queued without waiting; a failure is seen by the read loop. */
  #startFlush(): void {
    if (this.#writer.pendingBytes === 0 || this.#writer.flushing) return;
    this.#writer.flush().catch((error) => this.#writeError ??= error);
  }

  #flush(): Promise<void> {
    return this.#writer.flush();
  }

  /**
   * Waits until the replies are out. A client that stops reading is dropped by the sweeper (write
   * and idle timeouts), which ends this wait.
   */
  async #flushWithTimeout(): Promise<void> {
    await Promise.race([this.#flushAll(), this.#whenClosed]);
  }
}

/** After a failed accept, the pause before the next attempt doubles from the min to the max. */
const ACCEPT_PAUSE_MIN_MS = 10;
const ACCEPT_PAUSE_MAX_MS = 1000;
const LF = 0x0a;
const REFUSAL_TIMEOUT_MS = 1000;
/** At shutdown, how long a connection waiting for input may still receive some before its FIN. */
const DRAIN_QUIET_MS = 50;
/** How long a closing connection keeps discarding the peer's input (see #linger). */
const LINGER_MS = 2000;

/** The address a per-address limit counts: the host, without the port. */
function addressKey(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp" ? addr.hostname : addr.transport;
}

function tooManyFrom(addr: Deno.Addr): string {
  return `too many connections from ${addressKey(addr)}`;
}

/** Failed accepts that pausing can help with: the process or the system is out of something. */
function isResourceExhaustion(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" || code === "ENOMEM";
}

function isPromiseLike(value: unknown): value is PromiseLike<Reply> {
  return typeof (value as PromiseLike<unknown>)?.then === "function";
}

/** The listener was closed (by us, or under us): accepting is over. */
function isListenerClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    // A TLS peer that closed without close_notify: common, and harmless for a line protocol.
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}

function describeError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset by client";
  if (error instanceof Deno.errors.BrokenPipe) return "client stopped reading";
  if (error instanceof Deno.errors.UnexpectedEof) {
    return "closed by client (without TLS close_notify)";
  }
  return error instanceof Error ? error.message : String(error);
}

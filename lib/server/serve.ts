/**
 * {@linkcode serve}: a line server on TCP (optionally TLS) or a Unix socket, with bounded memory,
 * ordered pipelined replies batched into one write per burst, backpressure against clients that do
 * not read, idle timeouts, client slots, and graceful shutdown.
 *
 * A handler gets each line and a {@linkcode ConnectionContext}, and may return nothing, a line, several
 * lines, a promise of those, or an async iterable of lines. Replies always leave in the order of the
 * lines that caused them. The engine behind it: `line_server.ts` (accepting, admission, timeouts,
 * shutdown) and `session.ts` (one connection).
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
import { formatAddress } from "../address.ts";
import { ListenError } from "../errors.ts";
import { SERVE_DEFAULTS } from "./defaults.ts";
import { LineServer } from "./line_server.ts";
import type { ServerMetrics } from "./metrics.ts";
import { type LineHandler, type LineProtocol, protocolOf } from "./protocol.ts";
import { listenUnix, type UnixSocketListener } from "./unix_socket.ts";
import { describeListenFailure } from "./_listen_failure.ts";
import type { TlsServerContext } from "./_tls_server_conn.ts";

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
  /**
   * Time the handling of lines, for the latency histogram of {@linkcode Server.metrics} (counters
   * are kept either way): the lines one read brings that are answered at once are timed together
   * (two clock reads per read, none per line), a pending reply on its own. Off, nothing is timed.
   * @default {false}
   */
  metrics?: boolean;
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
  /** The bound address as `tcp://host:port`, `tls://host:port` (with TLS) or `unix://path`. */
  readonly url: string;
  /** Counters so far. */
  readonly stats: Readonly<ServerStats>;
  /** False once the server began to shut down (it no longer accepts connections). */
  readonly serving: boolean;
  /**
   * A snapshot for monitoring: the counters with those of open connections added in, errors and
   * refusals by kind, the queue, what the protocol reports, and (with the `metrics` option) the
   * handling latency histogram. It walks the open connections: meant for a scrape now and then.
   */
  metrics(): ServerMetrics;
  /** Settles when the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /** Stops accepting, answers lines already received (within the grace time), closes everything. */
  shutdown(): Promise<void>;
  /** Closes every connection at once, without waiting for replies. */
  abort(): void;
}

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
  const protocol = protocolOf(handler, options.invalidReply);
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
    const hostname = options.hostname ?? SERVE_DEFAULTS.hostname;
    const port = options.port ?? SERVE_DEFAULTS.port;
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
        options.tlsHandshakeTimeoutMs ?? SERVE_DEFAULTS.tlsHandshakeTimeoutMs,
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

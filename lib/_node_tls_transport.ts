/**
 * Internal: TLS from `node:tls`, run over a TCP connection linesock owns, behind the same
 * `read`/`write`/`closeWrite`/`close` shape as a `Deno.Conn` with the same error classes.
 *
 * Two users: the client's `--insecure` (Deno's own TLS has no per-connection switch to skip the
 * certificate check; `node:tls` honours `rejectUnauthorized: false`), and the server's side of
 * TLS (lib/server/_tls_server_conn.ts), where owning the TCP connection is what lets a stalled handshake
 * be closed. Verified client connections keep using `Deno.startTls`.
 *
 * @module
 */
import tls from "node:tls";
import { isIP } from "node:net";
import { Duplex } from "node:stream";

/** The bytes one read of the TCP connection may take. */
const READ_BYTES = 16 * 1024;

/** Above this many received bytes that nobody read yet, input is held back (backpressure). */
export const HIGH_WATER_BYTES = 64 * 1024;

/** Where to connect, and the name to send as SNI. */
export interface InsecureTlsTarget {
  /** Host name or IP literal. */
  hostname: string;
  /** TCP port. */
  port: number;
  /** The SNI name; by default the host, when it is a name (SNI cannot carry an IP address). */
  serverName?: string | undefined;
  /** Aborting destroys the socket, also during the handshake. */
  signal?: AbortSignal | undefined;
}

/**
 * Connects and completes the TLS handshake without checking the certificate.
 * @param target Where.
 * @returns The connection once the handshake is done.
 * @throws A `Deno.errors` class where one fits (ConnectionRefused, ConnectionReset…), else the
 * node error (with its `code`).
 */
export async function connectInsecureTls(target: InsecureTlsTarget): Promise<NodeTlsTransport> {
  const serverName = target.serverName ?? (isIP(target.hostname) ? undefined : target.hostname);
  const conn = await Deno.connect({
    hostname: target.hostname,
    port: target.port,
    ...(target.signal ? { signal: target.signal } : {}),
  });
  conn.setNoDelay(true);
  const { socket, transport } = tlsOverConn(conn, (duplex) =>
    tls.connect({
      socket: duplex,
      ...(serverName !== undefined ? { servername: serverName } : {}),
      rejectUnauthorized: false,
    }));
  return await new Promise((resolve, reject) => {
    const onAbort = () => {
      transport.close();
      reject(target.signal?.reason);
    };
    const settle = () => {
      socket.off("error", onError);
      target.signal?.removeEventListener("abort", onAbort);
    };
    const onError = (error: Error) => {
      settle();
      transport.close();
      reject(toDenoError(error));
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      settle();
      resolve(transport);
    });
    if (target.signal?.aborted) onAbort();
    else target.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs TLS over a TCP connection the caller owns: closing the result closes that connection, at
 * any moment, its descriptor included (also mid-handshake).
 *
 * Backpressure holds back the TCP input rather than pausing the TLS socket: under Deno, a TLS
 * socket that is paused when the peer's end arrives can lose that end, and the stream never ends.
 * @param conn The TCP connection.
 * @param secure Makes the TLS socket over the byte stream it is given.
 * @returns The TLS socket (for its events) and the connection as a transport.
 */
export function tlsOverConn(
  conn: Deno.Conn,
  secure: (duplex: Duplex) => tls.TLSSocket,
): { socket: tls.TLSSocket; transport: NodeTlsTransport } {
  const made: { transport?: NodeTlsTransport } = {};
  const socket = secure(tcpDuplex(conn, () => made.transport?.whenDrained()));
  const transport = made.transport = new NodeTlsTransport(socket, conn);
  return { socket, transport };
}

/** A TCP connection as the byte stream `node:tls` runs over. */
function tcpDuplex(conn: Deno.Conn, drained: () => Promise<void> | undefined): Duplex {
  let reading = false;
  const duplex: Duplex = new Duplex({
    // The peer's FIN ends our reading only; our side closes when we say so.
    allowHalfOpen: true,
    read() {
      if (reading) return;
      reading = true;
      (async () => {
        for (;;) {
          await drained();
          const buffer = new Uint8Array(READ_BYTES);
          const count = await conn.read(buffer);
          if (count === null) {
            duplex.push(null);
            return;
          }
          if (!duplex.push(buffer.subarray(0, count))) {
            reading = false;
            return;
          }
        }
      })().catch((error) => duplex.destroy(error));
    },
    write(chunk: Uint8Array, _encoding, callback) {
      (async () => {
        for (let offset = 0; offset < chunk.length;) {
          offset += await conn.write(chunk.subarray(offset));
        }
      })().then(() => callback(), callback);
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), callback);
    },
    destroy(error, callback) {
      closeQuietly(conn);
      callback(error);
    },
  });
  return duplex;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** A `node:tls` socket behind the `Deno.Conn` read/write/closeWrite/close interface. */
export class NodeTlsTransport {
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #closed = false;
  #writeClosed = false;
  #waiters: (() => void)[] = [];
  readonly #conn: Deno.Conn;
  #drained: (() => void) | undefined;

  /**
   * Made by {@linkcode tlsOverConn}.
   * @param socket The TLS socket (its handshake done, or under way).
   * @param conn The TCP connection under it.
   */
  constructor(socket: tls.TLSSocket, conn: Deno.Conn) {
    this.#socket = socket;
    this.#conn = conn;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= toDenoError(error);
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /**
   * Reads what arrived into `buffer`, waiting for it when nothing did.
   * @param buffer Where to copy.
   * @returns The count copied, or `null` at the end of the stream.
   */
  /**
   * @returns `undefined` while the bytes received and not read yet are under
   * {@linkcode HIGH_WATER_BYTES}, else a promise that settles once reads took them below (or the
   * connection closed).
   */
  whenDrained(): Promise<void> | undefined {
    if (this.#buffered < HIGH_WATER_BYTES || this.#closed) return undefined;
    return new Promise((resolve) => this.#drained = resolve);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("The connection is closed");
      if (this.#buffered > 0) return this.#take(buffer);
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /**
   * Sends all of `bytes` (copied), and settles once the socket took them.
   * @param bytes The bytes.
   * @returns Their count.
   */
  async write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) throw new Deno.errors.BadResource("The connection is closed");
    if (this.#error) throw this.#error;
    if (this.#writeClosed) throw new Deno.errors.BrokenPipe("The sending side is closed");
    const copy = bytes.slice();
    await new Promise<void>((resolve, reject) => {
      this.#socket.write(copy, (error) => error ? reject(toDenoError(error)) : resolve());
    });
    return bytes.length;
  }

  /** Sends the TLS close-notify and a FIN; reading goes on. */
  async closeWrite(): Promise<void> {
    if (this.#closed) throw new Deno.errors.BadResource("The connection is closed");
    if (this.#error) throw this.#error;
    if (this.#writeClosed) return;
    this.#writeClosed = true;
    await new Promise<void>((resolve) => this.#socket.end(resolve));
  }

  /** Closes at once, the TCP connection too; a pending read fails with `BadResource`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#drained?.();
    this.#socket.destroy();
    closeQuietly(this.#conn);
    this.#wake();
  }

  #take(buffer: Uint8Array): number {
    let copied = 0;
    while (copied < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(chunk.length, buffer.length - copied);
      buffer.set(chunk.subarray(0, count), copied);
      copied += count;
      if (count === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(count);
    }
    this.#buffered -= copied;
    if (this.#buffered < HIGH_WATER_BYTES) {
      this.#drained?.();
      this.#drained = undefined;
    }
    return copied;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Node's socket error codes as the `Deno.errors` classes the rest of linesock handles. */
function toDenoError(error: Error): Error {
  const code = (error as { code?: string }).code;
  const make = {
    ECONNREFUSED: Deno.errors.ConnectionRefused,
    ECONNRESET: Deno.errors.ConnectionReset,
    EPIPE: Deno.errors.BrokenPipe,
    ERR_STREAM_DESTROYED: Deno.errors.BrokenPipe,
    ERR_STREAM_WRITE_AFTER_END: Deno.errors.BrokenPipe,
    ETIMEDOUT: Deno.errors.TimedOut,
    EACCES: Deno.errors.PermissionDenied,
    // A write still queued when the socket is closed (as Deno's own TLS reports it).
    ECANCELED: Deno.errors.Interrupted,
  }[code ?? ""];
  return make ? new make(error.message, { cause: error }) : error;
}

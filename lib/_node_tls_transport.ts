/**
 * A TLS connection that does not verify the server's certificate, for `--insecure` only.
 *
 * Deno's own TLS has no per-connection switch for that (`Deno.connectTls` ignores
 * `unsafelyIgnoreCertificateErrors`; `unsafelyDisableHostnameVerification` still checks the chain),
 * but `node:tls` honours `rejectUnauthorized: false`. This file adapts its socket to the same
 * `read`/`write`/`closeWrite`/`close` shape as a `Deno.Conn`, with the same error classes, so
 * nothing above it can tell the difference. Verified connections keep using `Deno.startTls`.
 *
 * @module
 */
import tls from "node:tls";
import { isIP } from "node:net";

/** Above this many received bytes that nobody read yet, the socket is paused (backpressure). */
const HIGH_WATER_BYTES = 64 * 1024;

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
export function connectInsecureTls(target: InsecureTlsTarget): Promise<NodeTlsTransport> {
  const serverName = target.serverName ?? (isIP(target.hostname) ? undefined : target.hostname);
  // `allowHalfOpen` works (tested) but is missing from the typings of `tls.ConnectionOptions`.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    host: target.hostname,
    port: target.port,
    ...(serverName !== undefined ? { servername: serverName } : {}),
    rejectUnauthorized: false,
    // Our half-close is ours to decide: the server's FIN must not end our sending side.
    allowHalfOpen: true,
  };
  const socket = tls.connect(options);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      socket.destroy();
      reject(target.signal?.reason);
    };
    const settle = () => {
      socket.off("error", onError);
      target.signal?.removeEventListener("abort", onAbort);
    };
    const onError = (error: Error) => {
      settle();
      socket.destroy();
      reject(toDenoError(error));
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      settle();
      socket.setNoDelay(true);
      resolve(new NodeTlsTransport(socket));
    });
    if (target.signal?.aborted) onAbort();
    else target.signal?.addEventListener("abort", onAbort, { once: true });
  });
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

  /** @param socket A connected socket (its handshake done). */
  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= HIGH_WATER_BYTES) socket.pause();
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
  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("The connection is closed");
      if (this.#buffered > 0) return this.#take(buffer);
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      this.#socket.resume();
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

  /** Closes at once; a pending read fails with `BadResource`, as on a `Deno.Conn`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
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
    if (this.#buffered < HIGH_WATER_BYTES && !this.#ended) this.#socket.resume();
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
  }[code ?? ""];
  return make ? new make(error.message, { cause: error }) : error;
}

/**
 * Internal: the server's side of TLS, on a TCP connection the server accepted and owns.
 *
 * Why not `Deno.listenTls`: its handshake runs in a task of the runtime that owns the socket until
 * the handshake ends, and `close()` does not end that task. A client that sends half a ClientHello
 * and waits therefore keeps a descriptor for as long as it likes, past every timeout and limit (80
 * such clients a second ran a server with 300 descriptors out of them). Here the server accepts
 * plain TCP itself and runs TLS (`node:tls`, in-process) over it, so closing the connection always
 * releases its descriptor, and a handshake that does not finish in time is closed.
 *
 * @module
 */
import tls from "node:tls";
import { type NodeTlsTransport, tlsOverConn } from "../_node_tls_transport.ts";

/** A certificate and key, made ready once for every connection. */
export class TlsServerContext {
  readonly #context: tls.SecureContext;
  readonly #handshakeTimeoutMs: number;

  /**
   * @param pem The certificate (chain) and private key, PEM text.
   * @param handshakeTimeoutMs How long a client may take to complete its handshake.
   */
  constructor(pem: { cert: string; key: string }, handshakeTimeoutMs: number) {
    this.#context = tls.createSecureContext({ cert: pem.cert, key: pem.key });
    this.#handshakeTimeoutMs = handshakeTimeoutMs;
  }

  /**
   * Starts the server's side of the handshake on an accepted connection.
   * @param conn The TCP connection; the result owns it.
   * @returns The connection, read and written as plain text.
   */
  accept(conn: Deno.Conn): TlsServerConn {
    return new TlsServerConn(conn, this.#context, this.#handshakeTimeoutMs);
  }
}

/** A TLS connection with the `read`/`write`/`closeWrite`/`close` shape of a `Deno.Conn`. */
export class TlsServerConn {
  /** The client's address. */
  readonly remoteAddr: Deno.Addr;
  /** The server's address. */
  readonly localAddr: Deno.Addr;
  readonly #transport: NodeTlsTransport;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #secure = false;

  constructor(conn: Deno.Conn, secureContext: tls.SecureContext, handshakeTimeoutMs: number) {
    this.remoteAddr = conn.remoteAddr;
    this.localAddr = conn.localAddr;
    const { socket, transport } = tlsOverConn(conn, (duplex) =>
      new tls.TLSSocket(duplex as never, {
        isServer: true,
        secureContext,
        // Replies may follow the client's close_notify and FIN (a line answered on half-close).
        allowHalfOpen: true,
      } as tls.TLSSocketOptions));
    socket.once("secure", () => {
      this.#secure = true;
      clearTimeout(this.#timer);
    });
    if (handshakeTimeoutMs > 0) {
      this.#timer = setTimeout(() => {
        socket.destroy(
          new Deno.errors.TimedOut(`TLS handshake not done within ${handshakeTimeoutMs} ms`),
        );
      }, handshakeTimeoutMs);
    }
    this.#transport = transport;
  }

  /**
   * Reads decrypted bytes into `buffer`.
   * @returns The count, or `null` at the end of the stream.
   */
  read(buffer: Uint8Array): Promise<number | null> {
    return this.#transport.read(buffer).catch((error) => this.#fail(error));
  }

  /**
   * Encrypts and sends `bytes`.
   * @returns Their count, once the socket took them.
   */
  write(bytes: Uint8Array): Promise<number> {
    return this.#transport.write(bytes).catch((error) => this.#fail(error));
  }

  /** Sends close_notify and a FIN; reading goes on. */
  closeWrite(): Promise<void> {
    return this.#transport.closeWrite();
  }

  /** Closes at once, the TCP connection (and its descriptor) included, also mid-handshake. */
  close(): void {
    clearTimeout(this.#timer);
    this.#transport.close();
  }

  /** A handshake that fails is the peer's doing: one class for it, as with Deno's own TLS. */
  #fail(error: unknown): never {
    if (!this.#secure && error instanceof Error && !isDeno(error)) {
      throw new Deno.errors.InvalidData(error.message, { cause: error });
    }
    throw error;
  }
}

/** One of Deno's error classes (a reset, a timeout, a closed resource): kept as it is. */
function isDeno(error: Error): boolean {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

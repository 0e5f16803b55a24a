/**
 * `repl -v`: connecting the way {@linkcode connect} does (without its retries, which the repl does
 * not use), keeping what the connection itself can tell: how long connecting took, the address
 * reached (which address a name resolved to) and the local one, and how TLS was set up. Deno's TLS
 * reports no protocol version or cipher, so neither is shown.
 *
 * @example Details of a TCP connection
 * ```ts
 * import { serve } from "@linesock/linesock";
 * import { connectDescribed } from "./connection_details.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line);
 * const { port } = server.addr as Deno.NetAddr;
 * const { connection, details } = await connectDescribed({ hostname: "127.0.0.1", port });
 * assert.match(details, /^connected in \d+\.\d\d ms to 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+$/);
 * await connection[Symbol.asyncDispose]();
 * ```
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT, formatAddress, hostPort } from "../../lib/address.ts";
import { connect, type ConnectOptions, LineConnection } from "../../lib/client/client.ts";
import { openTransport, type Transport } from "../../lib/client/transport.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../lib/client/_defaults.ts";

/** An open connection, and one line about it. */
export interface DescribedConnection {
  /** The connection. */
  readonly connection: LineConnection;
  /** How long connecting took, the addresses at both ends, how TLS was set up. */
  readonly details: string;
}

/**
 * Connects like {@linkcode connect} (no retries) and describes the connection.
 * @param options Where, TLS, the connect timeout, reply limits.
 * @returns The connection and its details.
 * @throws {ConnectError} When the server cannot be reached or its certificate is not accepted.
 * @throws {TimeoutError} When connecting takes longer than `connectTimeoutMs`.
 */
export async function connectDescribed(options: ConnectOptions): Promise<DescribedConnection> {
  const started = performance.now();
  const transport = await openTransport({
    hostname: options.hostname,
    port: options.port,
    path: options.path,
    tls: options.tls,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  });
  const connectMs = performance.now() - started;
  const target = options.path !== undefined ? `unix://${options.path}` : formatAddress({
    transport: "tcp",
    hostname: options.hostname ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
  });
  return {
    connection: new LineConnection(transport, target, options),
    details: describeConnection(transport, options, connectMs),
  };
}

/**
 * One line about an open transport.
 * @param transport The socket (a `Deno.Conn` tells its addresses; `--insecure` TLS does not).
 * @param options How it was opened.
 * @param connectMs How long connecting took.
 * @returns `connected in 0.52 ms to 127.0.0.1:7000 from 127.0.0.1:40312; TLS, certificate verified
 * for localhost`.
 */
export function describeConnection(
  transport: Transport,
  options: ConnectOptions,
  connectMs: number,
): string {
  const parts = [`connected in ${connectMs.toFixed(2)} ms`];
  const conn = transport as Partial<Pick<Deno.Conn, "remoteAddr" | "localAddr">>;
  if (conn.remoteAddr?.transport === "tcp" && conn.localAddr?.transport === "tcp") {
    parts[0] += ` to ${hostPort(conn.remoteAddr.hostname, conn.remoteAddr.port)} from ${
      hostPort(conn.localAddr.hostname, conn.localAddr.port)
    }`;
  } else if (options.path !== undefined) {
    parts[0] += ` to the Unix socket ${options.path}`;
  }
  const tls = options.tls === true ? {} : options.tls || undefined;
  if (tls !== undefined) {
    parts.push(
      tls.insecure
        ? "TLS, certificate NOT verified (--insecure)"
        : `TLS, certificate verified for ${tls.serverName ?? options.hostname ?? DEFAULT_HOST}${
          tls.caCerts?.length ? " (system CAs and --ca)" : ""
        }`,
    );
  }
  return parts.join("; ");
}

/**
 * Connects, with details only when they are wanted (`-v`): the plain path stays {@linkcode connect}.
 * @param options Where, TLS, the connect timeout.
 * @param describe Whether to describe the connection.
 * @returns The connection, and its details when asked for.
 */
export async function connectMaybeDescribed(
  options: ConnectOptions,
  describe: boolean,
): Promise<{ connection: LineConnection; details?: string }> {
  if (describe) return await connectDescribed(options);
  return { connection: await connect(options) };
}

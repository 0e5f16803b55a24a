/**
 * The echo server that `echo-test` talks to: {@linkcode EchoTarget} names it (TCP host and port, or a
 * Unix socket path, and TLS settings), {@linkcode openEchoConnection} connects to it with a time
 * budget ({@linkcode openTransport}: a failure becomes a {@linkcode ConnectError}), and {@linkcode startEmbeddedEcho} starts linesock's own
 * echo server in-process on a free port, for when no target is given.
 *
 * @example Connecting to the embedded echo server
 * ```ts
 * import { openEchoConnection, startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const conn = await openEchoConnection(echo.target, 1000);
 * await conn.write(new TextEncoder().encode("hi\n"));
 * const buffer = new Uint8Array(16);
 * assert.equal(await conn.read(buffer), 3);
 * conn.close();
 * ```
 *
 * @module
 */
import { DEFAULT_HOST, hostPort } from "../../lib/address.ts";
import { echoProtocol } from "../../lib/protocols/echo.ts";
import { serve, type Server } from "../../lib/server/mod.ts";
import {
  type ClientTlsOptions,
  openTransport,
  type Transport,
} from "../../lib/client/transport.ts";

/** Where an echo server listens: TCP (`hostname`, `port`) or a Unix socket (`path`). */
export type EchoTarget =
  | {
    readonly hostname?: string;
    readonly port: number;
    readonly path?: undefined;
    /** Speak TLS to it. */
    readonly tls?: ClientTlsOptions | boolean;
  }
  | { readonly path: string; readonly tls?: undefined };

/**
 * The target as people write it.
 * @param target The target.
 * @returns `127.0.0.1:1991`, `[::1]:1991` or the socket path.
 * @example Describing targets
 * ```ts
 * import { describeEchoTarget } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeEchoTarget({ port: 7 }), "127.0.0.1:7");
 * assert.equal(describeEchoTarget({ path: "/run/echo.sock" }), "/run/echo.sock");
 * ```
 */
export function describeEchoTarget(target: EchoTarget): string {
  if (target.path !== undefined) return target.path;
  return hostPort(target.hostname ?? DEFAULT_HOST, target.port);
}

/**
 * Connects to an echo server (over TLS when the target says so); TCP connections get `TCP_NODELAY`
 * so small writes leave at once.
 * @param target Where.
 * @param timeoutMs Give up after this long.
 * @returns The open connection.
 * @throws {ConnectError} When the server cannot be reached or its certificate is not accepted.
 * @throws {TimeoutError} When connecting takes longer than `timeoutMs`.
 * @example Refused
 * ```ts
 * import { ConnectError } from "../../lib/errors.ts";
 * import { openEchoConnection } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close();
 * await assert.rejects(openEchoConnection({ port }, 1000), ConnectError);
 * ```
 */
export function openEchoConnection(target: EchoTarget, timeoutMs: number): Promise<Transport> {
  return openTransport({ ...target, connectTimeoutMs: timeoutMs });
}

/** linesock's own echo server, running in this process. */
export interface EmbeddedEcho extends AsyncDisposable {
  /** Its address as a target. */
  readonly target: EchoTarget;
  /** The server. */
  readonly server: Server;
}

/**
 * Starts linesock's byte-exact echo server in-process on a free loopback port.
 * @returns The server and its target; `await using` stops it.
 * @example Start and stop
 * ```ts
 * import { startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * assert.ok(echo.target.path === undefined && echo.target.port > 0);
 * ```
 */
export async function startEmbeddedEcho(): Promise<EmbeddedEcho> {
  const server = await serve({ hostname: DEFAULT_HOST, port: 0 }, echoProtocol());
  const { hostname, port } = server.addr as Deno.NetAddr;
  return {
    target: { hostname, port },
    server,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

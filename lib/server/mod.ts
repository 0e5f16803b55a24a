/**
 * The server engine: {@linkcode serve}, listening (TCP, TLS, Unix sockets), accepting and
 * admitting connections, the session of each connection, the echo relay and the PROXY protocol
 * header, and what a protocol sees of a connection ({@linkcode ConnectionContext}).
 *
 * May import: `lib/errors.ts`, `lib/address.ts`, `lib/_node_tls_transport.ts`, and `lib/framing/`.
 * Never `lib/client/`.
 *
 * @example
 * ```ts
 * import { serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * assert.match(server.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
 * ```
 *
 * @module
 */
export * from "./server.ts";
export * from "./unix_socket.ts";
export * from "./proxy_protocol.ts";

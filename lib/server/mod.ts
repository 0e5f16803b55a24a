/**
 * The server engine: {@linkcode serve}, listening (TCP, TLS, Unix sockets), accepting and
 * admitting connections, the session of each connection, the echo relay and the PROXY protocol
 * header, and what a protocol sees of a connection ({@linkcode ConnectionContext}). Its defaults are
 * one table ({@linkcode SERVE_DEFAULTS}), and {@linkcode runLines} runs a protocol without a socket.
 * A server's metrics snapshot ({@linkcode ServerMetrics}) is made here too; `lib/metrics/` serves it.
 *
 * May import: `lib/errors.ts`, `lib/address.ts`, `lib/_disconnect.ts`, `lib/_node_tls_transport.ts`,
 * and `lib/framing/`. Never `lib/client/`, nor the protocols, routes or workers that use it.
 *
 * @example
 * ```ts
 * import { runLines, serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * assert.match(server.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
 * assert.deepEqual((await runLines((line) => line.toUpperCase(), "a\nb\n")).lines, ["A", "B"]);
 * ```
 *
 * @module
 */
export { serve, type ServeOptions, type Server, type ServerStats } from "./serve.ts";
export type { LineHandler, LineProtocol, Reply, ReplyLine, ServerErrorKind } from "./protocol.ts";
export type { ConnectionContext } from "./connection_context.ts";
export {
  runLines,
  type RunLinesInput,
  type RunLinesOptions,
  type RunLinesResult,
} from "./run_lines.ts";
export {
  CLI_SERVE_DEFAULTS,
  type ProtocolDefaults,
  SERVE_DEFAULTS,
  type ServeDefaults,
} from "./defaults.ts";
// The errors the server throws, and their base, so that this entry point documents them whole.
export { LinesockError, type LinesockErrorCode, ListenError } from "../errors.ts";
export * from "./unix_socket.ts";
export * from "./proxy_protocol.ts";
export * from "./metrics.ts";

/**
 * Internal, kept for imports written before the server was split: the public symbols of the former
 * single module, now in `serve.ts`, `protocol.ts`, `connection_context.ts` and `run_lines.ts`.
 * Import from `mod.ts` (or those modules) instead.
 *
 * @module
 */
export { serve, type ServeOptions, type Server, type ServerStats } from "./serve.ts";
export type { LineHandler, LineProtocol, Reply, ReplyLine, ServerErrorKind } from "./protocol.ts";
export type { ConnectionContext } from "./connection_context.ts";

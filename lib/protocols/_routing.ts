/**
 * Internal glue between the ready protocols and user routes: what a route table must offer, and the
 * server-side facts both protocols share (the server's default name, the shutdown refusal).
 *
 * @module
 */
import type { ConnectionContext } from "../server/connection_context.ts";
import type { RouteContext, Routes } from "../routes/routes.ts";

/** The message of a refused SHUTDOWN, in both protocols. */
export const SHUTDOWN_NOT_ALLOWED = "shutdown not allowed (start the server with --allow-shutdown)";

/** The name HELLO answers when none is configured: the host name, or `linesock`. */
export function defaultServerName(): string {
  try {
    return Deno.hostname();
  } catch {
    // No --allow-sys=hostname: a neutral name is better than failing to start.
    return "linesock";
  }
}

/** What routes see of a connection. */
export function routeContext(context: ConnectionContext): RouteContext {
  return {
    peer: context.peer,
    connectionId: context.id,
    lineNumber: context.lineNumber,
    // A program started for a line dies with its connection.
    signal: context.signal,
  };
}

/** Route commands that `help` can list. */
export function routeCommandNames(routes: Routes | undefined): readonly string[] {
  return routes?.commands ?? [];
}

/** Closes this connection and stops the server, once the current reply is queued. */
export function shutDownSoon(context: ConnectionContext): void {
  context.close("shutdown requested");
  context.requestShutdown();
}

/** Truncates text for an error message so that one long bad line cannot make a long reply. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

/**
 * Internal glue between the ready protocols and user routes: what a route table must offer, and the
 * server-side facts both protocols share (the server's default name, the shutdown refusal).
 *
 * @module
 */
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol, ReplyLine } from "../server/protocol.ts";
import type { FarewellKind, RouteContext, Routes } from "../routes/routes.ts";

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

/** What routes see of a connection; `name` is the server's name (`{name}`). */
export function routeContext(context: ConnectionContext, name: string): RouteContext {
  return {
    peer: context.peer,
    connectionId: context.id,
    lineNumber: context.lineNumber,
    name,
    connections: context.connections,
    // A program started for a line dies with its connection.
    signal: context.signal,
  };
}

/**
 * The hooks of a routes file's greeting and farewells, for a protocol: `onConnect` (the greeting,
 * or `greeting` when given: the command line's, which wins), `onEnd` (the close farewell) and
 * `onShutdown`. Only those the file (or `greeting`) needs are there, so a protocol without them
 * pays nothing.
 * @param routes The routes, if any.
 * @param name The server's name.
 * @param greeting A literal greeting that replaces the file's.
 * @returns The hooks to spread into the protocol.
 */
export function greetingAndFarewells(
  routes: Routes | undefined,
  name: string,
  greeting: string | undefined,
): Pick<LineProtocol, "onConnect" | "onEnd" | "onShutdown"> {
  const hooks: Pick<LineProtocol, "onConnect" | "onEnd" | "onShutdown"> = {};
  if (greeting !== undefined) hooks.onConnect = () => greeting;
  else if (routes?.hasGreeting) {
    hooks.onConnect = (context) => routes.greeting(routeContext(context, name));
  }
  if (routes?.hasFarewell("close")) {
    hooks.onEnd = (context) => routes.farewell("close", routeContext(context, name));
  }
  if (routes?.hasFarewell("shutdown")) {
    hooks.onShutdown = (context) => routes.farewell("shutdown", routeContext(context, name));
  }
  return hooks;
}

/**
 * A routes file's farewell, or nothing.
 * @returns The lines (possibly none).
 */
export function farewell(
  routes: Routes | undefined,
  kind: FarewellKind,
  context: ConnectionContext,
  name: string,
): readonly ReplyLine[] {
  return routes?.farewell(kind, routeContext(context, name)) ?? [];
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

/**
 * Internal glue between the ready protocols and user routes: what a route table must offer, and the
 * server-side facts both protocols share (the server's default name, the shutdown refusal).
 *
 * @module
 */
import type { ConnectionContext } from "../server.ts";

// TODO(routes): replace with `import type { RouteAction, RouteContext, Routes } from "../routes.ts"`.
/** What a route sees of a connection. */
export interface RouteContext {
  peer: string;
  connectionId: number;
  lineNumber: number;
}
/** What a matching route does. */
export type RouteAction =
  | { kind: "reply"; lines: string[] }
  | { kind: "close"; lines: string[] }
  | { kind: "shutdown"; lines: string[] }
  | { kind: "run"; lines: AsyncIterable<string> };
/** A route table. */
export interface Routes {
  readonly size: number;
  match(line: string, context: RouteContext): RouteAction | undefined;
  matchCommand(command: string, args: unknown, context: RouteContext): RouteAction | undefined;
}

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
  return { peer: context.peer, connectionId: context.id, lineNumber: context.lineNumber };
}

/** Route commands that `help` can list, when the route table knows them. */
export function routeCommandNames(routes: Routes | undefined): string[] {
  const names = (routes as { commands?: unknown } | undefined)?.commands;
  return Array.isArray(names) ? names.filter((name) => typeof name === "string") : [];
}

/** Stops the server after the current reply is queued (not from inside the handler's call). */
export function shutDownSoon(context: ConnectionContext): void {
  context.close("shutdown requested");
  queueMicrotask(() => void context.server.shutdown());
}

/** Truncates text for an error message so that one long bad line cannot make a long reply. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

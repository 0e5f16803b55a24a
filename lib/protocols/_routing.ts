/**
 * Internal glue between the ready protocols and user routes, shared by the text and chat protocols:
 * the greeting and farewells, how a route's action is carried out ({@linkcode routeActions}), and
 * the server-side facts they share (the server's default name, the shutdown refusal).
 *
 * @module
 */
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol, Reply, ReplyLine, ServerErrorKind } from "../server/protocol.ts";
import type { FarewellKind, RouteAction, RouteContext, Routes } from "../routes/routes.ts";

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

/** Counts a protocol error and phrases it: `ERR <message>`. */
export function fail(context: ConnectionContext, message: string): string {
  context.countError();
  return `ERR ${message}`;
}

/** A program's output lines; its failure becomes one `ERR …` line after what it printed. */
export async function* programLines(
  lines: AsyncIterable<string>,
  context: ConnectionContext,
): AsyncIterable<string> {
  try {
    yield* lines;
  } catch (error) {
    context.countError();
    yield `ERR ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** What a protocol does with a route's action: {@linkcode routeActions}. */
export interface RouteActions {
  /** Does a route's action: its lines, a close, a shutdown (when allowed) or a program's lines. */
  perform(action: RouteAction, context: ConnectionContext): Reply;
  /** Does an action that is done at once (not a program). */
  performNow(
    action: Exclude<RouteAction, { kind: "run" }>,
    context: ConnectionContext,
  ): readonly string[];
  /** Closes the connection after `reply`, followed by the file's close farewell, if any. */
  closing(context: ConnectionContext, reason: string, reply: string): Reply;
  /**
   * What a line that is not UTF-8 gets: the file's `{"undecodable": true}` route, unless an
   * invalid-line reply was given explicitly (it wins), or else the invalid-encoding error.
   */
  undecodable(context: ConnectionContext, invalidReplyGiven: boolean): Reply;
  /**
   * The error line(s) of a text-like protocol (its `formatError`): a non-UTF-8 line gets
   * `invalidReply`; the file's `tooLong` route and its `idle` and `shutdown` farewells answer
   * where the file has them; anything else is `ERR message`.
   */
  errorReply(
    kind: ServerErrorKind,
    message: string,
    context: ConnectionContext | undefined,
    invalidReply: string,
  ): string | readonly string[] | undefined;
}

/**
 * How the text and chat protocols carry out a routes file's actions: a `close` is followed by the
 * file's close farewell, a `shutdown` is refused unless allowed, a program's failure becomes an
 * `ERR` line.
 * @param routes The routes, if any.
 * @param name The server's name (`{name}`).
 * @param allowShutdown Whether a `shutdown` action stops the server.
 * @returns The actions.
 */
export function routeActions(
  routes: Routes | undefined,
  name: string,
  allowShutdown: boolean,
): RouteActions {
  const closeFarewell = routes?.hasFarewell("close") ?? false;
  function performNow(
    action: Exclude<RouteAction, { kind: "run" }>,
    context: ConnectionContext,
  ): readonly string[] {
    switch (action.kind) {
      case "reply":
        return action.lines;
      case "close":
        context.close("closed by route");
        return closeFarewell
          ? [...action.lines, ...farewell(routes, "close", context, name) as string[]]
          : action.lines;
      case "shutdown":
        if (!allowShutdown) return [fail(context, SHUTDOWN_NOT_ALLOWED)];
        shutDownSoon(context);
        return action.lines;
    }
  }
  function perform(action: RouteAction, context: ConnectionContext): Reply {
    return action.kind === "run"
      ? programLines(action.lines, context)
      : performNow(action, context);
  }
  return {
    performNow,
    perform,
    closing(context, reason, reply) {
      context.close(reason);
      return closeFarewell ? [reply, ...farewell(routes, "close", context, name)] : reply;
    },
    undecodable(context, invalidReplyGiven) {
      const action = routes?.hasUndecodable && !invalidReplyGiven
        ? routes.matchUndecodable(routeContext(context, name))
        : undefined;
      if (action !== undefined) return perform(action, context);
      context.sendError("invalid_encoding", "invalid encoding");
      return undefined;
    },
    errorReply(kind, message, context, invalidReply) {
      if (kind === "invalid_encoding") return invalidReply;
      if (routes !== undefined && context !== undefined) {
        if (kind === "line_too_long" && routes.hasTooLong) {
          const action = routes.matchTooLong(routeContext(context, name))!;
          if (action.kind !== "run") return performNow(action, context);
        }
        if (kind === "idle_timeout" && routes.hasFarewell("idle")) {
          return routes.farewell("idle", routeContext(context, name));
        }
        if (kind === "shutting_down" && routes.hasFarewell("shutdown")) {
          return routes.farewell("shutdown", routeContext(context, name));
        }
      }
      return `ERR ${message}`;
    },
  };
}

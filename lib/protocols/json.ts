/**
 * The JSON protocol: one JSON object per line in each direction.
 *
 * A request is `{"command": "name", "args": {...}, "id": any}` (`args` and `id` optional); the
 * response is `{"status": 0, "message": ..., "extra": ..., "id": ...}`, with `id` echoed when given
 * and `extra` only when there is something to add. A non-zero status is an error, and the connection
 * always carries on:
 *
 * | status | meaning                                                            |
 * | ------ | ------------------------------------------------------------------ |
 * | 0      | success                                                            |
 * | 1      | unknown command                                                    |
 * | 2      | malformed request: not UTF-8, not JSON, not an object, no command  |
 * | 3      | invalid arguments                                                  |
 * | 4      | internal or program error; server-side conditions (idle timeout…) |
 * | 5      | not allowed (`shutdown` without permission)                        |
 *
 * Built-in commands: `ping` (→ `"pong"`), `echo` (→ `args.text`), `time` (ISO 8601), `hello` (the
 * server's name), `help` (the command names, as an array) and, when allowed, `shutdown`. Command
 * names are case-insensitive. User routes, when given, are tried before the built-ins; a route's
 * reply is the `message` (one string, or an array when it has several lines).
 *
 * Errors the server itself reports (line too long, idle timeout, busy…) are phrased the same way,
 * with `extra.error` naming the condition: `{"status":2,"message":"line too long (limit 1048576
 * bytes)","extra":{"error":"line_too_long"}}`.
 *
 * @example A JSON server
 * ```ts
 * import { jsonProtocol, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, jsonProtocol({ name: "demo" }));
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode(
 *   '{"command":"ping","id":7}\n{"command":"echo","args":{"text":"hi"}}\n{"command":"nope"}\n[1]\n',
 * ));
 * await conn.closeWrite();
 * const lines = new TextDecoder().decode(await new Response(conn.readable).bytes()).split("\n");
 * assert.deepEqual(JSON.parse(lines[0]!), { status: 0, message: "pong", id: 7 });
 * assert.deepEqual(JSON.parse(lines[1]!), { status: 0, message: "hi" });
 * assert.equal(JSON.parse(lines[2]!).status, 1);
 * assert.equal(JSON.parse(lines[3]!).status, 2);
 * ```
 *
 * @module
 */
import type { ConnectionContext, LineProtocol, Reply, ServerErrorKind } from "../server.ts";
import {
  defaultServerName,
  routeCommandNames,
  routeContext,
  SHUTDOWN_NOT_ALLOWED,
  shutDownSoon,
} from "./_routing.ts";
import { fastPingReply } from "./_json_fast_ping.ts";
import type { RouteAction, Routes } from "../routes.ts";

/** Options of {@linkcode jsonProtocol}. */
export interface JsonProtocolOptions {
  /** What `hello` answers. @default {the host name} */
  name?: string;
  /** Whether `shutdown` stops the server (otherwise status 5). @default {false} */
  allowShutdown?: boolean;
  /** User routes, matched by command before the built-ins. */
  routes?: Routes;
}

/** The statuses of JSON responses. */
export const JsonStatus = {
  /** Success. */
  ok: 0,
  /** Unknown command. */
  unknownCommand: 1,
  /** Malformed request: not UTF-8, not JSON, not an object, or no command. */
  malformed: 2,
  /** Invalid arguments. */
  invalidArguments: 3,
  /** Internal or program error, and server-side conditions such as an idle timeout. */
  internal: 4,
  /** Not allowed. */
  notAllowed: 5,
} as const;

/** The built-in command names, as `help` lists them (without `shutdown`, which needs allowing). */
export const JSON_COMMANDS: readonly string[] = ["ping", "echo", "time", "hello", "help"];

const EXAMPLE = 'like {"command": "ping"}';
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Creates the JSON protocol.
 * @param options The server's name, shutdown permission and routes.
 * @returns A protocol for {@linkcode serve}.
 */
export function jsonProtocol(options: JsonProtocolOptions = {}): LineProtocol {
  const name = options.name ?? defaultServerName();
  const allowShutdown = options.allowShutdown ?? false;
  const routes = options.routes !== undefined && options.routes.size > 0
    ? options.routes
    : undefined;
  const commands = [...JSON_COMMANDS];
  if (allowShutdown) commands.push("shutdown");
  for (const command of routeCommandNames(routes)) {
    if (!commands.includes(command)) commands.push(command);
  }

  function builtIn(command: string, args: Record<string, unknown>, respond: Respond): Reply {
    switch (command.toLowerCase()) {
      case "ping":
        return respond(JsonStatus.ok, "pong");
      case "echo":
        if (!Object.hasOwn(args, "text")) {
          return respond(
            JsonStatus.invalidArguments,
            'echo needs "args": {"text": ...}, like {"command": "echo", "args": {"text": "hi"}}',
          );
        }
        return respond(JsonStatus.ok, args.text);
      case "time":
        return respond(JsonStatus.ok, new Date().toISOString());
      case "hello":
        return respond(JsonStatus.ok, name);
      case "help":
        return respond(JsonStatus.ok, commands);
      case "shutdown":
        if (allowShutdown) return respond(JsonStatus.ok, "shutting down", undefined, shutDownSoon);
        return respond(JsonStatus.notAllowed, SHUTDOWN_NOT_ALLOWED);
      default:
        return respond(
          JsonStatus.unknownCommand,
          `unknown command: ${JSON.stringify(command.slice(0, 64))} (send {"command": "help"} ` +
            `for the list)`,
        );
    }
  }

  function perform(action: RouteAction, respond: Respond): Reply | Promise<Reply> {
    switch (action.kind) {
      case "reply":
        return respond(JsonStatus.ok, linesMessage(action.lines));
      case "close":
        return respond(
          JsonStatus.ok,
          linesMessage(action.lines),
          undefined,
          (context) => context.close("closed by route"),
        );
      case "shutdown":
        if (!allowShutdown) return respond(JsonStatus.notAllowed, SHUTDOWN_NOT_ALLOWED);
        return respond(JsonStatus.ok, linesMessage(action.lines), undefined, shutDownSoon);
      case "run":
        return Array.fromAsync(action.lines).then(
          (lines) => respond(JsonStatus.ok, linesMessage(lines)),
          (error) =>
            respond(JsonStatus.internal, error instanceof Error ? error.message : String(error)),
        );
    }
  }

  return {
    onLine(line, context) {
      // A plain ping (the common health check, with or without an id) needs no parsing.
      if (routes === undefined) {
        const pong = fastPingReply(line);
        if (pong !== undefined) return pong;
      }
      return handle(line, context, routes, builtIn, perform);
    },
    formatError(kind: ServerErrorKind, message: string) {
      const status =
        kind === "line_too_long" || kind === "invalid_encoding" || kind === "invalid_proxy_header"
          ? JsonStatus.malformed
          : JsonStatus.internal;
      return JSON.stringify({ status, message, extra: { error: kind } });
    },
  };
}

/** Builds and sends the response to one request; `after` runs once the response is queued. */
type Respond = (
  status: number,
  message: unknown,
  extra?: unknown,
  after?: (context: ConnectionContext) => void,
) => string;

function handle(
  line: Uint8Array,
  context: ConnectionContext,
  routes: Routes | undefined,
  builtIn: (command: string, args: Record<string, unknown>, respond: Respond) => Reply,
  perform: (action: RouteAction, respond: Respond) => Reply | Promise<Reply>,
): Reply | Promise<Reply> {
  let hasId = false;
  let id: unknown;
  const respond: Respond = (status, message, extra, after) => {
    if (status !== JsonStatus.ok) context.countError();
    const body: Record<string, unknown> = { status, message: message ?? null };
    if (extra !== undefined) body.extra = extra;
    if (hasId) body.id = id;
    after?.(context);
    return JSON.stringify(body);
  };
  let text: string;
  try {
    text = strictDecoder.decode(line);
  } catch {
    return respond(JsonStatus.malformed, "invalid encoding: the line is not valid UTF-8");
  }
  if (text.trim() === "") {
    return respond(JsonStatus.malformed, `empty line: send one JSON object per line, ${EXAMPLE}`);
  }
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch (error) {
    return respond(
      JsonStatus.malformed,
      `malformed JSON (${(error as Error).message}): send one JSON object per line, ${EXAMPLE}`,
    );
  }
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    return respond(JsonStatus.malformed, `the request must be a JSON object, ${EXAMPLE}`);
  }
  const fields = request as Record<string, unknown>;
  if (Object.hasOwn(fields, "id")) {
    hasId = true;
    id = fields.id;
  }
  const command = fields.command;
  if (typeof command !== "string" || command === "") {
    return respond(
      JsonStatus.malformed,
      `the request needs "command" (a non-empty string), ${EXAMPLE}`,
    );
  }
  const args = fields.args ?? {};
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return respond(JsonStatus.invalidArguments, '"args" must be a JSON object when given');
  }
  const record = args as Record<string, unknown>;
  if (routes !== undefined) {
    const action = routes.matchCommand(command, record, routeContext(context));
    if (action !== undefined) return perform(action, respond);
  }
  return builtIn(command, record, respond);
}

function linesMessage(lines: readonly string[]): string | readonly string[] {
  return lines.length === 1 ? lines[0]! : lines;
}

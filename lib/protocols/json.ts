/**
 * The JSON protocol: one JSON object per line in each direction.
 *
 * A request is `{"command": "name", "args": {...}, "id": any}` (`args` and `id` optional). Every
 * response, errors and the server's own farewells included, is
 * `{"status": 0, "message": ..., "extra": ..., "id": ...}`: `status`, `message` and `extra` always
 * (`extra` is `null` unless the command sets it, as a route's `"extra"` does), and `id` when the
 * request had one. A non-zero status is an error, and the connection always carries on:
 *
 * | status | meaning                                                                     |
 * | ------ | --------------------------------------------------------------------------- |
 * | 0      | success                                                                     |
 * | 1      | unknown command                                                             |
 * | 2      | malformed request: not UTF-8, not JSON, too deep, not an object, no command |
 * | 3      | invalid arguments                                                           |
 * | 4      | internal or program error; server-side conditions (idle timeout…)           |
 * | 5      | not allowed (`shutdown` without permission)                                 |
 *
 * Built-in commands: `ping` (→ `"pong"`), `echo` (→ `args.text`), `time` (ISO 8601), `hello` (the
 * server's name), `help` (the command names, as an array) and, when allowed, `shutdown`. Command
 * names are case-insensitive (in ASCII letters only). User routes, when given, are tried before the
 * built-ins (which a routes file may turn off with `"builtins": false`), and the file's fallback
 * after them; a route's reply is the `message` (one string, or an array when it has several lines).
 * A routes file's greeting and farewells are sent as the file writes them.
 * A request whose arrays and objects nest deeper than {@linkcode JSON_MAX_DEPTH} (64) levels is
 * refused with status 2 before it is parsed.
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
 * assert.deepEqual(JSON.parse(lines[0]!), { status: 0, message: "pong", extra: null, id: 7 });
 * assert.deepEqual(JSON.parse(lines[1]!), { status: 0, message: "hi", extra: null });
 * assert.equal(JSON.parse(lines[2]!).status, 1);
 * assert.equal(JSON.parse(lines[3]!).status, 2);
 * ```
 *
 * @module
 */
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol, Reply, ServerErrorKind } from "../server/protocol.ts";
import {
  defaultServerName,
  greetingAndFarewells,
  routeContext,
  SHUTDOWN_NOT_ALLOWED,
  shutDownSoon,
} from "./_routing.ts";
import { fastPingReply } from "./_json_fast_ping.ts";
import type { RouteAction, RouteContext, Routes } from "../routes/routes.ts";

/** Options of {@linkcode jsonProtocol}. */
export interface JsonProtocolOptions {
  /** What `hello` answers (and `{name}`). @default {the routes file's "name", or the host name} */
  name?: string;
  /**
   * Whether `shutdown` (and a route's `"shutdown": true`) stops the server (otherwise status 5).
   * @default {the routes file's "allowShutdown", or false}
   */
  allowShutdown?: boolean;
  /** User routes, matched by command before the built-ins. */
  routes?: Routes;
  /** Whether the built-in commands answer. @default {the routes file's "builtins", or true} */
  builtins?: boolean;
  /** A line sent first on each connection, instead of the routes file's greeting. */
  greeting?: string;
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

/**
 * How deeply arrays and objects may nest in a request (the request object itself is level 1).
 * Deeper requests are refused with status 2 before they are parsed.
 */
export const JSON_MAX_DEPTH = 64;

const EXAMPLE = 'like {"command": "ping"}';
/** What {@linkcode jsonProtocol}'s built-in commands answer to a command that is none of them. */
const NOT_BUILT_IN = Symbol("not built in");
/** A built-in command name can only be printable ASCII. */
const ASCII_NAME = /^[\x20-\x7e]*$/;
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Creates the JSON protocol.
 * @param options The server's name, shutdown permission and routes.
 * @returns A protocol for {@linkcode serve}.
 */
export function jsonProtocol(options: JsonProtocolOptions = {}): LineProtocol {
  const given = options.routes;
  const settings = given?.settings;
  const name = options.name ?? settings?.name ?? defaultServerName();
  const allowShutdown = options.allowShutdown ?? settings?.allowShutdown ?? false;
  const builtins = options.builtins ?? settings?.builtins ?? true;
  // A file with nothing for the json protocol is no file: the fast ping stays.
  const routes = given !== undefined &&
      (given.commandRouteCount > 0 || given.hasFallback || !builtins || given.hasGreeting ||
        given.hasFarewell("close") || given.hasFarewell("idle") || given.hasFarewell("shutdown"))
    ? given
    : undefined;
  const commands = builtins ? [...JSON_COMMANDS] : [];
  if (builtins && allowShutdown) commands.push("shutdown");
  for (const command of routes?.commands ?? []) {
    if (!commands.includes(command)) commands.push(command);
  }
  const context = (connection: ConnectionContext): RouteContext => routeContext(connection, name);
  const closeFarewell = routes?.hasFarewell("close") ?? false;

  function builtIn(
    command: string,
    args: Record<string, unknown>,
    respond: Respond,
  ): Reply | typeof NOT_BUILT_IN {
    // ASCII letters only, as in the text protocol (toLowerCase alone maps the Kelvin sign to "k").
    const lower = command.toLowerCase();
    switch (lower === command || ASCII_NAME.test(command) ? lower : undefined) {
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
        return NOT_BUILT_IN;
    }
  }

  /** Routes, then the built-in commands, then the fallback. */
  function dispatch(
    command: string,
    args: Record<string, unknown>,
    respond: Respond,
    connection: ConnectionContext,
  ): Reply | Promise<Reply> {
    if (routes !== undefined) {
      const action = routes.matchCommand(command, args, context(connection));
      if (action !== undefined) return perform(action, respond, connection);
    }
    if (builtins) {
      const reply = builtIn(command, args, respond);
      if (reply !== NOT_BUILT_IN) return reply;
    }
    const fallback = routes?.fallbackCommand(command, args, context(connection));
    if (fallback !== undefined) return perform(fallback, respond, connection);
    return respond(
      JsonStatus.unknownCommand,
      `unknown command: ${JSON.stringify(command.slice(0, 64))}` +
        (builtins ? ` (send {"command": "help"} for the list)` : ""),
    );
  }

  function perform(
    action: RouteAction,
    respond: Respond,
    connection: ConnectionContext,
  ): Reply | Promise<Reply> {
    // The route's "extra" goes with its successful responses; errors keep extra null.
    const extra = action.extra;
    switch (action.kind) {
      case "reply":
        return respond(JsonStatus.ok, linesMessage(action.lines), extra);
      case "close": {
        const response = respond(
          JsonStatus.ok,
          linesMessage(action.lines),
          extra,
          (context) => context.close("closed by route"),
        );
        return closeFarewell
          ? [response, ...routes!.farewell("close", context(connection))!]
          : response;
      }
      case "shutdown":
        if (!allowShutdown) return respond(JsonStatus.notAllowed, SHUTDOWN_NOT_ALLOWED);
        return respond(JsonStatus.ok, linesMessage(action.lines), extra, shutDownSoon);
      case "run":
        return Array.fromAsync(action.lines).then(
          (lines) => respond(JsonStatus.ok, linesMessage(lines), extra),
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
      return handle(line, context, dispatch);
    },
    formatError(kind: ServerErrorKind, message: string, connection?: ConnectionContext) {
      // The routes file's farewells are its own lines, as it wrote them.
      if (routes !== undefined && connection !== undefined) {
        if (kind === "idle_timeout" && routes.hasFarewell("idle")) {
          return routes.farewell("idle", context(connection));
        }
        if (kind === "shutting_down" && routes.hasFarewell("shutdown")) {
          return routes.farewell("shutdown", context(connection));
        }
      }
      const status =
        kind === "line_too_long" || kind === "invalid_encoding" || kind === "invalid_proxy_header"
          ? JsonStatus.malformed
          : JsonStatus.internal;
      return JSON.stringify({ status, message, extra: { error: kind } });
    },
    ...greetingAndFarewells(routes, name, options.greeting),
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
  dispatch: (
    command: string,
    args: Record<string, unknown>,
    respond: Respond,
    context: ConnectionContext,
  ) => Reply | Promise<Reply>,
): Reply | Promise<Reply> {
  let hasId = false;
  let id: unknown;
  const respond: Respond = (status, message, extra, after) => {
    if (status !== JsonStatus.ok) context.countError();
    const body: Record<string, unknown> = {
      status,
      message: message ?? null,
      extra: extra ?? null,
    };
    if (hasId) body.id = id;
    after?.(context);
    return JSON.stringify(body);
  };
  // A deep document is refused before it is decoded or parsed: parsing it would cost memory in
  // proportion to its depth (1 MiB of "[" is a million nested arrays).
  if (line.length > JSON_MAX_DEPTH && nestsDeeperThan(line, JSON_MAX_DEPTH)) {
    return respond(
      JsonStatus.malformed,
      `nesting deeper than ${JSON_MAX_DEPTH} levels (arrays and objects inside each other): ` +
        `the request was not parsed`,
    );
  }
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
  return dispatch(command, args as Record<string, unknown>, respond, context);
}

/**
 * Whether arrays and objects nest deeper than `max` in `line`, counting the brackets outside strings
 * and stopping at the first one too deep. Multi-byte UTF-8 sequences contain no ASCII bytes, so
 * scanning bytes sees the same structure as parsing text.
 */
function nestsDeeperThan(line: Uint8Array, max: number): boolean {
  let depth = 0;
  for (let index = 0; index < line.length; index++) {
    const byte = line[index]!;
    if (byte === QUOTE) {
      // Jump to the string's end: the next quote that no backslash escapes, found natively.
      index = closingQuote(line, index);
      if (index === -1) return false; // An unterminated string: nothing nests after it.
    } else if (byte === OPEN_BRACKET || byte === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (byte === CLOSE_BRACKET || byte === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/**
 * The index of the quote that ends the string opened at `open`, or -1. A quote is escaped when an
 * odd number of backslashes precede it (each `\` escapes exactly the next character). Short strings
 * (keys, small values) are scanned in place; past 32 bytes the quotes are found natively, and every
 * run of backslashes before one is counted once, so the scan stays linear.
 */
function closingQuote(line: Uint8Array, open: number): number {
  const limit = Math.min(line.length, open + 33);
  let at = open + 1;
  for (; at < limit; at++) {
    const byte = line[at];
    if (byte === BACKSLASH) at++;
    else if (byte === QUOTE) return at;
  }
  for (at--;;) {
    at = line.indexOf(QUOTE, at + 1);
    if (at === -1) return -1;
    let backslashes = 0;
    while (line[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function linesMessage(lines: readonly string[]): string | readonly string[] {
  return lines.length === 1 ? lines[0]! : lines;
}

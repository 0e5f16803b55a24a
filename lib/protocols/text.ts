/**
 * The text protocol: case-insensitive commands, one reply line per line, and a routes file's
 * protocol when given one.
 *
 * | line                            | reply                                                        |
 * | ------------------------------- | ------------------------------------------------------------ |
 * | `PING` (`ping`)                 | `PONG` (`pong`)                                              |
 * | `HELLO`                         | the server's name                                            |
 * | `TIME`                          | the time, ISO 8601 (`2026-01-31T12:00:00.000Z`)              |
 * | `ECHO <text>`                   | `<text>`                                                     |
 * | `HELP`                          | `commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]` |
 * | `QUIT`, `CLOSE`, `DISCONNECT`   | `BYE`, then the connection closes                            |
 * | `SHUTDOWN`                      | `BYE shutting down` and the server stops, if allowed         |
 * | `[t]<text>`                     | `<text>`                                                     |
 * | `[d]`                           | `Done!`, then the connection closes                          |
 * | empty line                      | `ERR empty line`                                             |
 * | anything else                   | `ERR unknown command: <word>`                                |
 * | invalid UTF-8                   | `ERR invalid encoding` (or the configured reply)             |
 *
 * Spaces and tabs around the command word are skipped (`"  PING"` and `"PING\t"` get `PONG`; a line
 * of blanks only is an empty line), and words after a command other than `ECHO` are ignored
 * (`PING now` gets `PONG`). `ECHO`'s text is everything after the one space or tab that follows it,
 * as sent (`"ECHO  a  b"` gets `" a  b"`). Command names are matched in ASCII letters only:
 * `ſHUTDOWN` (with U+017F, which upper-cases to `S`) is an unknown command. `[d]` is a command of
 * its own only alone on its line (`[d]x` is an unknown command). `PING` and `ECHO` are answered from
 * the line's bytes without decoding or allocating, so a pipelined `PING` load runs at the speed of
 * the framing.
 *
 * With routes (a routes file, docs/routes.md): the routes are tried first and see the line as sent;
 * then the built-in commands, unless the file says `"builtins": false`; then the file's fallback.
 * The file's greeting, farewells (on close, idle timeout, shutdown) and its routes for a line that
 * is not UTF-8 or too long apply too. `HELP` lists exactly the commands usable: the built-in ones
 * (with `SHUTDOWN` when allowed) and those of the text routes.
 *
 * @example A text server
 * ```ts
 * import { serve, textProtocol } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, textProtocol({ name: "demo" }));
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new TextEncoder().encode("PING\nping\nHELLO\nECHO a b\n[t]x\nNOPE\n[d]\n"));
 * const reply = new TextDecoder().decode(await new Response(conn.readable).bytes());
 * assert.equal(reply, "PONG\npong\ndemo\na b\nx\nERR unknown command: NOPE\nDone!\n");
 * ```
 *
 * @module
 */
import { decodeLine } from "../framing/line_decoder.ts";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol, Reply, ServerErrorKind } from "../server/protocol.ts";
import {
  clip,
  defaultServerName,
  fail,
  greetingAndFarewells,
  routeActions,
  routeContext,
  SHUTDOWN_NOT_ALLOWED,
  shutDownSoon,
} from "./_routing.ts";
import type { Routes } from "../routes/routes.ts";

/** Options of {@linkcode textProtocol}. */
export interface TextProtocolOptions {
  /** What `HELLO` answers (and `{name}`). @default {the routes file's "name", or the host name} */
  name?: string;
  /**
   * Whether `SHUTDOWN` (and a route's `"shutdown": true`) stops the server; otherwise it is refused.
   * @default {the routes file's "allowShutdown", or false}
   */
  allowShutdown?: boolean;
  /**
   * The reply to a line that is not valid UTF-8 (it wins over the routes file's
   * `{"undecodable": true}` route).
   * @default {"ERR invalid encoding"}
   */
  invalidReply?: string;
  /** User routes, tried before the built-in commands. */
  routes?: Routes;
  /** Whether the built-in commands answer. @default {the routes file's "builtins", or true} */
  builtins?: boolean;
  /** A line sent first on each connection, instead of the routes file's greeting. */
  greeting?: string;
}

/** The built-in command names, as `HELP` lists them (without `SHUTDOWN`, which needs allowing). */
export const TEXT_COMMANDS: readonly string[] = [
  "PING",
  "HELLO",
  "TIME",
  "ECHO",
  "HELP",
  "QUIT",
  "CLOSE",
  "DISCONNECT",
  "[t]",
  "[d]",
];

const encoder = new TextEncoder();
const PONG = encoder.encode("PONG");
const PONG_LOWER = encoder.encode("pong");
const SPACE = 0x20;
const TAB = 0x09;
/** What {@linkcode textProtocol}'s built-in commands answer to a line that is none of them. */
const NOT_BUILT_IN = Symbol("not built in");

/**
 * Creates the text protocol.
 * @param options The server's name, shutdown permission, invalid-encoding reply and routes.
 * @returns A protocol for {@linkcode serve}.
 */
export function textProtocol(options: TextProtocolOptions = {}): LineProtocol {
  const given = options.routes;
  const settings = given?.settings;
  const name = options.name ?? settings?.name ?? defaultServerName();
  const allowShutdown = options.allowShutdown ?? settings?.allowShutdown ?? false;
  const invalidReply = options.invalidReply ?? "ERR invalid encoding";
  const builtins = options.builtins ?? settings?.builtins ?? true;
  // A file with nothing for the text protocol is no file: the fast path stays.
  const routes = given !== undefined &&
      (given.lineRouteCount > 0 || given.hasFallback || !builtins || given.hasGreeting ||
        given.hasFarewell("close") || given.hasFarewell("idle") || given.hasFarewell("shutdown"))
    ? given
    : undefined;
  const textRoutes = routes === undefined
    ? 0
    : routes.lineRouteCount - (routes.hasUndecodable ? 1 : 0) - (routes.hasTooLong ? 1 : 0);
  // PING and ECHO from the bytes: only where no route could answer them first.
  const fastPath = builtins && textRoutes === 0;
  const commands = builtins ? [...TEXT_COMMANDS] : [];
  if (builtins && allowShutdown) commands.splice(commands.indexOf("[t]"), 0, "SHUTDOWN");
  for (const command of routes?.textCommands ?? []) {
    if (!commands.includes(command)) commands.push(command);
  }
  const help = `commands: ${commands.join(" ")}`;
  const { perform, closing, errorReply, undecodable } = routeActions(routes, name, allowShutdown);

  /** Answers PING and ECHO straight from the bytes; `false` means "take the general path". */
  function answerFast(line: Uint8Array): Reply | false {
    const length = line.length;
    if (length === 4 && isWord(line, 0x70, 0x69, 0x6e, 0x67)) {
      return line[0] === 0x70 && line[1] === 0x69 && line[2] === 0x6e && line[3] === 0x67
        ? PONG_LOWER
        : PONG;
    }
    if (length >= 5 && line[4] === SPACE && isWord(line, 0x65, 0x63, 0x68, 0x6f)) {
      const text = line.subarray(5);
      // Echo the bytes as they are when they are surely valid UTF-8.
      if (isAscii(text)) return text;
    }
    return false;
  }

  function answer(text: string, context: ConnectionContext): Reply {
    if (textRoutes > 0) {
      const action = routes!.match(text, routeContext(context, name));
      if (action !== undefined) return perform(action, context);
    }
    if (builtins) {
      const reply = builtIn(text, context);
      if (reply !== NOT_BUILT_IN) return reply;
    }
    const fallback = routes?.fallback(text, routeContext(context, name));
    if (fallback !== undefined) return perform(fallback, context);
    const word = commandWord(text);
    return fail(context, word === "" ? "empty line" : `unknown command: ${clip(word)}`);
  }

  /** The built-in commands' answer, or NOT_BUILT_IN for a line that is none of them. */
  function builtIn(text: string, context: ConnectionContext): Reply | typeof NOT_BUILT_IN {
    // Spaces and tabs before the command are skipped; the command word ends at the next one.
    let start = 0;
    while (start < text.length && isBlank(text.charCodeAt(start))) start++;
    if (text.length - start >= 3 && text[start] === "[" && text[start + 2] === "]") {
      const tag = text[start + 1];
      if (tag === "t" || tag === "T") return text.slice(start + 3);
      // [d] alone on its line (blanks around it aside): "[d]x" is no command.
      if ((tag === "d" || tag === "D") && isBlankTail(text, start + 3)) {
        return closing(context, "client sent [d]", "Done!");
      }
    }
    let end = start;
    let ascii = true;
    for (; end < text.length; end++) {
      const code = text.charCodeAt(end);
      if (code === SPACE || code === TAB) break;
      if (code >= 0x80) ascii = false;
    }
    const word = text.slice(start, end);
    // ASCII letters only: toUpperCase alone would turn "ſhutdown" (long s) into SHUTDOWN, "pıng"
    // (dotless i) into PING. A word with anything else in it is never a command.
    switch (ascii ? word.toUpperCase() : undefined) {
      case "PING":
        return word === "ping" ? "pong" : "PONG";
      case "ECHO":
        // The text is everything after the one separator, exactly: further spaces are part of it.
        return end === text.length ? "" : text.slice(end + 1);
      case "HELLO":
        return name;
      case "TIME":
        return new Date().toISOString();
      case "HELP":
        return help;
      case "QUIT":
      case "CLOSE":
      case "DISCONNECT":
        return closing(context, `client sent ${word.toUpperCase()}`, "BYE");
      case "SHUTDOWN":
        if (!allowShutdown) return fail(context, SHUTDOWN_NOT_ALLOWED);
        shutDownSoon(context);
        return "BYE shutting down";
      case "":
        return fail(context, "empty line");
      default:
        return NOT_BUILT_IN;
    }
  }

  return {
    onLine(line, context) {
      if (fastPath) {
        const fast = answerFast(line);
        if (fast !== false) return fast;
      }
      let text: string;
      try {
        text = decodeLine(line, context.lineNumber);
      } catch {
        return undecodable(context, options.invalidReply !== undefined);
      }
      return answer(text, context);
    },
    formatError(kind: ServerErrorKind, message: string, context?: ConnectionContext) {
      return errorReply(kind, message, context, invalidReply);
    },
    ...greetingAndFarewells(routes, name, options.greeting),
  };
}

/** The command word of a line: blanks before it skipped, up to the next blank. */
function commandWord(text: string): string {
  return /^[ \t]*([^ \t]*)/.exec(text)![1]!;
}

/** Whether `line` starts with the 4-letter word `a b c d` in any letter case. */
function isWord(line: Uint8Array, a: number, b: number, c: number, d: number): boolean {
  // Setting bit 0x20 lower-cases an ASCII letter; for letters no other byte maps onto it.
  return (line[0]! | 0x20) === a && (line[1]! | 0x20) === b && (line[2]! | 0x20) === c &&
    (line[3]! | 0x20) === d;
}

/** Space or tab: what separates and surrounds command words. */
function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

/** Whether `text` from `start` on is only spaces and tabs. */
function isBlankTail(text: string, start: number): boolean {
  for (let index = start; index < text.length; index++) {
    if (!isBlank(text.charCodeAt(index))) return false;
  }
  return true;
}

function isAscii(bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index]! >= 0x80) return false;
  }
  return true;
}

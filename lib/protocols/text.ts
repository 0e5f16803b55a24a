/**
 * The text protocol: case-insensitive commands, one reply line per line.
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
 * | `[d]`                           | `Done`, then the connection closes                           |
 * | empty line                      | `ERR empty line`                                             |
 * | anything else                   | `ERR unknown command: <word>`                                |
 * | invalid UTF-8                   | `ERR invalid encoding` (or the configured reply)             |
 *
 * Spaces and tabs around the command word are skipped (`"  PING"` and `"PING\t"` get `PONG`; a line
 * of blanks only is an empty line), and words after a command other than `ECHO` are ignored
 * (`PING now` gets `PONG`). `ECHO`'s text is everything after the one space or tab that follows it,
 * as sent (`"ECHO  a  b"` gets `" a  b"`). Command names are matched in ASCII letters only:
 * `ſHUTDOWN` (with U+017F, which upper-cases to `S`) is an unknown command. User routes, when given,
 * are tried before the built-ins, and see the line as sent. `PING` and `ECHO` are answered from the
 * line's bytes without decoding or allocating, so a pipelined `PING` load runs at the speed of the
 * framing.
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
 * assert.equal(reply, "PONG\npong\ndemo\na b\nx\nERR unknown command: NOPE\nDone\n");
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
  routeCommandNames,
  routeContext,
  SHUTDOWN_NOT_ALLOWED,
  shutDownSoon,
} from "./_routing.ts";
import type { RouteAction, Routes } from "../routes/routes.ts";

/** Options of {@linkcode textProtocol}. */
export interface TextProtocolOptions {
  /** What `HELLO` answers. @default {the host name} */
  name?: string;
  /** Whether `SHUTDOWN` stops the server (otherwise it is refused). @default {false} */
  allowShutdown?: boolean;
  /** The reply to a line that is not valid UTF-8. @default {"ERR invalid encoding"} */
  invalidReply?: string;
  /** User routes, tried before the built-in commands. */
  routes?: Routes;
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

/**
 * Creates the text protocol.
 * @param options The server's name, shutdown permission, invalid-encoding reply and routes.
 * @returns A protocol for {@linkcode serve}.
 */
export function textProtocol(options: TextProtocolOptions = {}): LineProtocol {
  const name = options.name ?? defaultServerName();
  const allowShutdown = options.allowShutdown ?? false;
  const invalidReply = options.invalidReply ?? "ERR invalid encoding";
  const routes = options.routes !== undefined && options.routes.size > 0
    ? options.routes
    : undefined;
  const builtIns = [...TEXT_COMMANDS];
  if (allowShutdown) builtIns.splice(builtIns.indexOf("[t]"), 0, "SHUTDOWN");
  const commands = [...builtIns];
  for (const command of routeCommandNames(routes)) {
    if (!commands.includes(command)) commands.push(command);
  }
  const help = `commands: ${commands.join(" ")}`;

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
    if (routes !== undefined) {
      const action = routes.match(text, routeContext(context));
      if (action !== undefined) return perform(action, context);
    }
    // Spaces and tabs before the command are skipped; the command word ends at the next one.
    let start = 0;
    while (start < text.length && isBlank(text.charCodeAt(start))) start++;
    if (text.length - start >= 3 && text[start] === "[" && text[start + 2] === "]") {
      const tag = text[start + 1];
      if (tag === "t" || tag === "T") return text.slice(start + 3);
      if (tag === "d" || tag === "D") {
        context.close("client sent [d]");
        return "Done";
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
        context.close(`client sent ${word.toUpperCase()}`);
        return "BYE";
      case "SHUTDOWN":
        if (!allowShutdown) return fail(context, SHUTDOWN_NOT_ALLOWED);
        shutDownSoon(context);
        return "BYE shutting down";
      case "":
        return fail(context, "empty line");
      default:
        return fail(context, `unknown command: ${clip(word)}`);
    }
  }

  function perform(action: RouteAction, context: ConnectionContext): Reply {
    switch (action.kind) {
      case "reply":
        return action.lines;
      case "close":
        context.close("closed by route");
        return action.lines;
      case "shutdown":
        if (!allowShutdown) return fail(context, SHUTDOWN_NOT_ALLOWED);
        shutDownSoon(context);
        return action.lines;
      case "run":
        return programLines(action.lines, context);
    }
  }

  return {
    onLine(line, context) {
      if (routes === undefined) {
        const fast = answerFast(line);
        if (fast !== false) return fast;
      }
      let text: string;
      try {
        text = decodeLine(line, context.lineNumber);
      } catch {
        context.sendError("invalid_encoding", "invalid encoding");
        return undefined;
      }
      return answer(text, context);
    },
    formatError(kind: ServerErrorKind, message: string) {
      return kind === "invalid_encoding" ? invalidReply : `ERR ${message}`;
    },
  };
}

/** A program's output lines; its failure becomes one `ERR …` line after what it printed. */
async function* programLines(
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

function fail(context: ConnectionContext, message: string): string {
  context.countError();
  return `ERR ${message}`;
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

function isAscii(bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index]! >= 0x80) return false;
  }
  return true;
}

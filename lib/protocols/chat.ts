/**
 * The chat protocol (`serve --protocol chat`): every line a client sends reaches the other clients
 * in its room, prefixed with the sender's name, and with a {@linkcode ChatBus} the rooms span
 * instances. With `raw: true` it is a byte relay in the manner of `ncat --broker`: each line goes
 * to the others exactly as sent, with no names, no commands and no notices.
 *
 * | line from a client   | what happens                                                          |
 * | -------------------- | --------------------------------------------------------------------- |
 * | `hello`              | the others in the room get `<alice> hello`                            |
 * | `//text`             | the others get `<alice> /text` (a line that starts with `/`)          |
 * | `/nick NAME`         | `* you are now NAME`; the room gets `* alice is now known as NAME`    |
 * | `/join ROOM`         | `* you joined ROOM`; the old room hears `* alice left OLD`, the new one `* alice joined ROOM` |
 * | `/who`               | `* members of ROOM: alice, bob` (every instance that answers in time) |
 * | `/rooms`             | `* rooms: lobby (3), ops (1)`                                         |
 * | `/quit`              | `* bye`, then the connection closes; the room gets `* alice left ROOM` |
 * | `/help`              | `* commands: /nick NAME, /join ROOM, /who, /rooms, /quit, /help`      |
 * | `HELP`               | `commands: /nick /join /who /rooms /quit /help`, the probe of linesock's clients |
 * | `/other`             | `ERR unknown command: /other (try /help)`, to that client only        |
 * | empty line           | nothing                                                               |
 * | over-long line       | `ERR line too long (limit N bytes)`, to that client only              |
 * | invalid UTF-8        | `ERR invalid encoding` (or the configured reply), to that client only |
 *
 * A client starts in room `lobby` as `guestN` and gets `* welcome guestN: you are in lobby (/help
 * for commands)`. Names are labels: two clients may take the same one. User routes, when given,
 * are tried first: a line a route answers is answered to its sender, not said in the room. The rest
 * of a routes file applies as in the text protocol: its greeting goes to the connecting client (before
 * the welcome), its farewells to that client (the close farewell after `/quit` too), its fallback
 * answers a `/command` that is not the chat's, and `"builtins": false` turns the chat's commands off
 * (lines are still said).
 *
 * A line that starts with `<` is a member's; any other line is the server's (`* ` notices, `ERR `
 * errors, and the answer to `HELP`). What a member says reaches the others with its control
 * characters shown escaped (C0 but TAB, DEL and C1: `ESC` as `\x1b`, a `\r` inside the line as
 * `\x0d`), so that it cannot drive their terminals nor write over its `<name>`; `raw: true` relays
 * bytes as they are. A slow reader never holds the others up: see the queue
 * policy in lib/chat/member.ts. A client that sends more than `rate` lines a second is throttled:
 * its input is read more slowly, and the others are not affected.
 *
 * @example Two clients in one room
 * ```ts
 * import { chatProtocol, connect, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using chat = chatProtocol();
 * await using server = await serve({ port: 0 }, chat);
 * const port = (server.addr as Deno.NetAddr).port;
 * await using alice = await connect({ port });
 * assert.match((await alice.readLine())!, /^\* welcome guest\d+: you are in lobby/);
 * await using bob = await connect({ port });
 * assert.match((await bob.readLine())!, /^\* welcome guest\d+/);
 * assert.match((await alice.readLine())!, /^\* guest\d+ joined lobby$/);
 * await alice.send("/nick alice");
 * assert.equal(await alice.readLine(), "* you are now alice");
 * assert.match((await bob.readLine())!, /^\* guest\d+ is now known as alice$/);
 * await alice.send("hi bob");
 * assert.equal(await bob.readLine(), "<alice> hi bob");
 * ```
 *
 * @module
 */
import { decodeLine } from "../framing/line_decoder.ts";
import { escapeControlBytes } from "../_control_escape.ts";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { LineProtocol, Reply, ServerErrorKind } from "../server/protocol.ts";
import type { Routes } from "../routes/routes.ts";
import {
  clip,
  defaultServerName,
  fail,
  greetingAndFarewells,
  routeActions,
  routeContext,
} from "./_routing.ts";
import type { ChatMember } from "../chat/member.ts";
import { type ChatStats, RoomHub } from "../chat/room_hub.ts";
import { checkName, checkRoom, DEFAULT_ROOM } from "../chat/names.ts";
import { TokenBucket } from "../chat/_token_bucket.ts";
import { type ChatBus, type ChatBusOptions, connectChatBus } from "../chat/bus.ts";

export {
  type BusHandlers,
  type ChatBus,
  type ChatBusOptions,
  checkBusPrefix,
  connectChatBus,
} from "../chat/bus.ts";
export { checkName, checkRoom, DEFAULT_ROOM } from "../chat/names.ts";
export type { ChatStats } from "../chat/room_hub.ts";

/** Options of {@linkcode chatProtocol}. */
export interface ChatProtocolOptions {
  /**
   * A byte relay (`ncat --broker`): lines go to the others as sent (`\r`, NUL and invalid UTF-8
   * included), without names, commands, notices or routes. @default {false}
   */
  raw?: boolean;
  /** The room clients start in. @default {"lobby"} */
  room?: string;
  /**
   * Lines a second one client may send (bursts of as many); beyond it, its input is read more
   * slowly. 0 or `Infinity`: no limit. @default {200 (raw: no limit)}
   */
  rate?: number;
  /** Each client's queue of lines not yet taken by its socket, in bytes. @default {1048576} */
  maxQueueBytes?: number;
  /** Lines a client may lose before it is disconnected as too slow. @default {1000} */
  maxDroppedLines?: number;
  /** How long a sender waits for a receiver whose queue is over half full (ms). @default {1000} */
  patienceMs?: number;
  /** How long `/who` and `/rooms` wait for other instances, in ms. @default {500} */
  gatherMs?: number;
  /** Rooms shared with other instances (see {@linkcode connectChatBus}); closed with the protocol. */
  bus?: ChatBus;
  /** User routes, tried before the chat (not with `raw`). */
  routes?: Routes;
  /** The server's name, for routes (`{name}`). @default {the routes file's "name", or the host name} */
  name?: string;
  /**
   * Whether a route's `shutdown` action may stop the server.
   * @default {the routes file's "allowShutdown", or false}
   */
  allowShutdown?: boolean;
  /** The reply to a line that is not UTF-8. @default {"ERR invalid encoding"} */
  invalidReply?: string;
  /** A line sent first to each client that connects, instead of the routes file's greeting. */
  greeting?: string;
}

/** The chat protocol: a {@linkcode LineProtocol} that owns its rooms (and its bus). */
export interface ChatProtocol extends LineProtocol, AsyncDisposable {
  /** What the rooms counted. */
  readonly stats: Readonly<ChatStats>;
  /** Leaves the bus, if any (after the server stopped). */
  close(): Promise<void>;
}

/**
 * The chat protocol described by plain data (`ProtocolConfig.chat`, what `serve --protocol chat`
 * and each worker of `serveWorkers` build it from).
 */
export interface ChatConfig {
  /** The byte relay (`--raw`). @default {false} */
  raw?: boolean;
  /** The room clients start in. @default {"lobby"} */
  room?: string;
  /** Lines a second one client may send; 0: no limit. @default {200 (raw: no limit)} */
  rate?: number;
  /** Each client's queue, in bytes. @default {1048576} */
  maxQueueBytes?: number;
  /** Rooms shared through NATS (without `raw`, which the protocol's own setting gives). */
  bus?: Omit<ChatBusOptions, "raw">;
}

/**
 * Builds the chat protocol from plain data, connecting to its bus first, if any.
 * @param config The chat's options.
 * @param common Routes, shutdown permission and the invalid-encoding reply.
 * @returns The protocol (close it after the server, to leave the bus).
 * @throws {ConnectError} When the bus cannot be reached.
 */
export async function chatFromConfig(
  config: ChatConfig,
  common: Pick<
    ChatProtocolOptions,
    "routes" | "allowShutdown" | "invalidReply" | "name" | "greeting"
  > = {},
): Promise<ChatProtocol> {
  const raw = config.raw ?? false;
  const bus = config.bus === undefined ? undefined : await connectChatBus({ ...config.bus, raw });
  try {
    return chatProtocol({
      raw,
      ...pick(config, "room", "maxQueueBytes"),
      ...(config.rate !== undefined ? { rate: config.rate === 0 ? Infinity : config.rate } : {}),
      ...(bus !== undefined ? { bus } : {}),
      ...(common.routes !== undefined ? { routes: common.routes } : {}),
      ...pick(common, "allowShutdown", "invalidReply", "name", "greeting"),
    });
  } catch (error) {
    await bus?.close();
    throw error;
  }
}

/** The meta-commands, as `/help` lists them. */
export const CHAT_COMMANDS: readonly string[] = [
  "/nick NAME",
  "/join ROOM",
  "/who",
  "/rooms",
  "/quit",
  "/help",
];

const encoder = new TextEncoder();
const SLASH = 0x2f;
const DEFAULT_RATE = 200;

/**
 * Creates the chat protocol.
 * @param options Raw relay or chat, limits, the bus, routes.
 * @returns A protocol for `serve` (close it after the server, to leave the bus).
 * @throws {TypeError} When the room is not a valid name, or routes are given with `raw`.
 */
export function chatProtocol(options: ChatProtocolOptions = {}): ChatProtocol {
  const raw = options.raw ?? false;
  const startRoom = options.room ?? DEFAULT_ROOM;
  const roomProblem = checkRoom(startRoom);
  if (roomProblem !== undefined) throw new TypeError(roomProblem);
  if (raw && (options.routes !== undefined || options.greeting !== undefined)) {
    throw new TypeError("routes and greetings do not apply to the raw relay");
  }
  const rate = options.rate ?? (raw ? Infinity : DEFAULT_RATE);
  const file = options.routes;
  const settings = file?.settings;
  const allowShutdown = options.allowShutdown ?? settings?.allowShutdown ?? false;
  const name = options.name ?? settings?.name ?? defaultServerName();
  const invalidReply = options.invalidReply ?? "ERR invalid encoding";
  // The file's "builtins": false turns the chat's commands off (its lines are still said).
  const builtins = settings?.builtins ?? true;
  // Routes for lines (the slow path of a line only with them).
  const routes = file !== undefined && file.lineRouteCount > 0 ? file : undefined;
  const { perform, closing, errorReply, undecodable } = routeActions(file, name, allowShutdown);
  const { onConnect: greet, ...farewells } = greetingAndFarewells(file, name, options.greeting);
  const bus = options.bus;
  // With a bus, guests on different instances get different names.
  const guestSuffix = bus === undefined ? "" : `-${bus.instanceId.slice(0, 4)}`;
  const help = `* commands: ${CHAT_COMMANDS.join(", ")}`;
  // The answer to `HELP`, the probe linesock's clients send (the repl completes these).
  const probeAnswer = `commands: ${
    CHAT_COMMANDS.map((command) => command.split(" ")[0]).join(" ")
  }`;

  const hub = new RoomHub({
    raw,
    ...pick(options, "maxQueueBytes", "maxDroppedLines", "patienceMs", "gatherMs"),
    ...(bus !== undefined ? { bus } : {}),
    ...(raw ? {} : {
      farewell: (member: ChatMember, reason: string | undefined) =>
        member.room === undefined ? undefined : encoder.encode(
          `* ${member.name} left ${member.room}${reason === undefined ? "" : ` (${reason})`}`,
        ),
      onBusChange: (connected: boolean) =>
        hub.notifyAll(
          connected
            ? "* the bus is back: the other instances hear this room again"
            : "* the bus is down: until it is back, only this instance's members hear you",
        ),
    }),
  });
  const members = new Map<number, ChatMember>();

  function announce(member: ChatMember, text: string): void {
    hub.broadcast(member, encoder.encode(text));
  }

  async function join(member: ChatMember, room: string): Promise<void> {
    const old = member.room;
    if (old !== undefined) {
      announce(member, `* ${member.name} left ${old}`);
      hub.exit(member);
    }
    await hub.enter(member, room);
    if (member.gone) return;
    member.tell(`* you joined ${room}`);
    announce(member, `* ${member.name} joined ${room}`);
  }

  /**
   * Says `body` in the member's room after its name. Its control characters (C0 but TAB, DEL, C1)
   * are shown escaped (`\x1b`), as `ncat --chat` filters them: a member's line must not drive the
   * others' terminals, nor, with a `\r`, write over its own `<name>` or fake a `* ` notice.
   */
  function say(member: ChatMember, raw: Uint8Array): Promise<void> | undefined {
    const body = escapeControlBytes(raw);
    const prefix = member.prefix;
    const line = new Uint8Array(prefix.length + body.length);
    line.set(prefix);
    line.set(body, prefix.length);
    return hub.broadcast(member, line);
  }

  function meta(
    text: string,
    member: ChatMember,
    context: ConnectionContext,
  ): Reply | Promise<Reply> {
    const match = /^\/(\S*)[ \t]*(.*)$/s.exec(text)!;
    const command = match[1]!.toLowerCase();
    const argument = match[2]!.trim();
    switch (command) {
      case "nick": {
        if (argument === "") return fail(context, "usage: /nick NAME");
        const problem = checkName(argument);
        if (problem !== undefined) return fail(context, problem);
        if (argument === member.name) return `* you are ${argument}`;
        const old = member.name;
        member.name = argument;
        announce(member, `* ${old} is now known as ${argument}`);
        return `* you are now ${argument}`;
      }
      case "join": {
        if (argument === "") return fail(context, "usage: /join ROOM");
        const problem = checkRoom(argument);
        if (problem !== undefined) return fail(context, problem);
        if (argument === member.room) return `* you are already in ${argument}`;
        return join(member, argument);
      }
      case "who": {
        const room = member.room;
        if (room === undefined) return "* you are in no room";
        return hub.who(room).then((names) => `* members of ${room}: ${names.join(", ")}`);
      }
      case "rooms":
        return hub.roomCounts().then((rooms) =>
          `* rooms: ${rooms.map(([room, count]) => `${room} (${count})`).join(", ")}`
        );
      case "quit":
        return closing(context, "client sent /quit", "* bye");
      case "help":
        return help;
      default:
        return unknownCommand(text, command, context);
    }
  }

  /** A `/command` that is none of the chat's: the file's fallback answers it, if any. */
  function unknownCommand(text: string, command: string, context: ConnectionContext): Reply {
    const fallback = file?.fallback(text, routeContext(context, name));
    if (fallback !== undefined) return perform(fallback, context);
    return fail(context, `unknown command: /${clip(command)} (try /help)`);
  }

  function chatLine(
    bytes: Uint8Array,
    member: ChatMember,
    context: ConnectionContext,
  ): Reply | Promise<Reply> {
    if (bytes.length === 0) return undefined;
    // Plain ASCII chat, the common case, needs no decoding.
    if (routes === undefined && bytes[0] !== SLASH && !isHelp(bytes) && isAscii(bytes)) {
      return say(member, bytes);
    }
    let text: string;
    try {
      text = decodeLine(bytes, context.lineNumber);
    } catch {
      return undecodable(context, options.invalidReply !== undefined);
    }
    if (routes !== undefined) {
      const action = routes.match(text, routeContext(context, name));
      if (action !== undefined) return perform(action, context);
    }
    if (bytes[0] === SLASH) {
      if (bytes[1] === SLASH) return say(member, bytes.subarray(1));
      if (!builtins) return unknownCommand(text, /^\/(\S*)/.exec(text)![1]!, context);
      return meta(text, member, context);
    }
    if (builtins && isHelp(bytes)) return probeAnswer;
    return say(member, bytes);
  }

  return {
    stripCR: !raw,
    stats: hub.stats,
    onConnect(context) {
      const guest = raw ? "-" : `guest${context.id}${guestSuffix}`;
      const member = hub.add(context, guest);
      if (Number.isFinite(rate) && rate > 0) member.bucket = new TokenBucket(rate);
      members.set(context.id, member);
      context.signal.addEventListener("abort", () => {
        members.delete(context.id);
        hub.remove(member);
      }, { once: true });
      if (raw) return hub.enter(member, startRoom);
      // The greeting (the routes file's, or --greeting) goes to this client only, first.
      if (greet !== undefined) { for (const line of replyLines(greet(context))) member.tell(line); }
      return hub.enter(member, startRoom).then(() => {
        if (member.gone) return;
        member.tell(`* welcome ${member.name}: you are in ${startRoom} (/help for commands)`);
        announce(member, `* ${member.name} joined ${startRoom}`);
      });
    },
    onLine(bytes, context) {
      const member = members.get(context.id);
      if (member === undefined || member.gone) return undefined;
      const waitMs = member.bucket?.take() ?? 0;
      const result = raw ? hub.broadcast(member, bytes) : chatLine(bytes, member, context);
      return waitMs > 0 ? throttled(result, waitMs, context.signal) : result;
    },
    formatError(kind: ServerErrorKind, message: string, context?: ConnectionContext) {
      return errorReply(kind, message, context, invalidReply);
    },
    ...farewells,
    metrics() {
      return {
        chat: {
          ...hub.stats,
          ...(bus !== undefined ? { busConnected: bus.connected ? 1 : 0 } : {}),
        },
      };
    },
    close() {
      return hub.close();
    },
    [Symbol.asyncDispose]() {
      return hub.close();
    },
  };
}

/** The reply, once the throttle's pause is over too (or the connection closed). */
async function throttled(
  result: Reply | Promise<Reply>,
  waitMs: number,
  signal: AbortSignal,
): Promise<Reply> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const pause = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
    onAbort = resolve;
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const [reply] = await Promise.all([result, pause]);
    return reply;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
  }
}

/** The lines of a greeting (a string, or lines; never a promise or bytes here). */
function replyLines(reply: unknown): string[] {
  if (typeof reply === "string") return [reply];
  return Array.isArray(reply) ? reply.filter((line) => typeof line === "string") : [];
}

/** `HELP`, exactly: the probe of linesock's clients. */
function isHelp(bytes: Uint8Array): boolean {
  return bytes.length === 4 && bytes[0] === 0x48 && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x50;
}

function isAscii(bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index]! >= 0x80) return false;
  }
  return true;
}

/** The options among `keys` that are set. */
function pick<T extends object, K extends keyof T>(options: T, ...keys: K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (options[key] !== undefined) picked[key] = options[key];
  return picked;
}

/**
 * {@linkcode ChatBus}: how the instances of a chat server share their rooms, and
 * {@linkcode connectChatBus}, which connects one through NATS. Each room is a subject
 * (`PREFIX.room.ROOM`, or `PREFIX.raw.ROOM` for the raw relay); an instance subscribes to a room's
 * subject while it has members there, and publishes what its members say. The NATS client is
 * loaded by `connectChatBus` only, so a server without a bus never loads it.
 *
 * When the connection to NATS is lost, the bus says so (`down`), stops publishing (the rooms are
 * then local to this instance), reconnects with a growing pause (a quarter of a second at first,
 * half the time it has been down after that, at most 5 s) and says when it is back (`up`).
 *
 * @example Connecting a bus (needs a running nats-server)
 * ```ts ignore
 * import { chatProtocol, connectChatBus } from "@linesock/linesock/protocols";
 * import { serve } from "@linesock/linesock/server";
 *
 * const bus = await connectChatBus({ url: "nats://127.0.0.1:4222", prefix: "demo" });
 * await using chat = chatProtocol({ bus });
 * await using server = await serve({ port: 0 }, chat);
 * ```
 *
 * @module
 */

/** What a bus tells the rooms of its instance. */
export interface BusHandlers {
  /** A message another instance published in `room` (one this instance subscribed to). */
  message(room: string, payload: Uint8Array): void;
  /** Another instance asks; the answer (if any) goes back to it. */
  question(question: Uint8Array): Uint8Array | undefined;
  /** The connection to the bus was lost: rooms are local until `up`. */
  down(): void;
  /** The connection is back and the subscriptions are in place again. */
  up(): void;
}

/** The instances' shared rooms, as one instance sees them. */
export interface ChatBus extends AsyncDisposable {
  /** This instance's id, unique among the instances (messages carry it). */
  readonly instanceId: string;
  /** Where the bus is, for messages (without credentials). */
  readonly url: string;
  /** Whether the bus is connected now. */
  readonly connected: boolean;
  /** Receives the bus's events (one receiver per bus). */
  attach(handlers: BusHandlers): void;
  /** Publishes to a room's subject; nothing while disconnected. */
  publish(room: string, payload: Uint8Array): void;
  /**
   * Subscribes to a room's subject.
   * @returns A promise that settles once the bus has the subscription (at once while
   * disconnected: it is made when the connection is back).
   */
  subscribe(room: string): Promise<void>;
  /** Stops receiving a room's messages. */
  unsubscribe(room: string): void;
  /**
   * Asks the other instances.
   * @returns Their answers, as many as came within `waitMs` (none while disconnected).
   */
  ask(question: Uint8Array, waitMs: number): Promise<Uint8Array[]>;
  /** Leaves the bus (publications are sent first). */
  close(): Promise<void>;
}

/** Options of {@linkcode connectChatBus}. */
export interface ChatBusOptions {
  /**
   * The NATS server: `nats://HOST:PORT`, or `tls://HOST:PORT` to require TLS; credentials may be
   * given as `nats://USER:PASSWORD@HOST:PORT` or `nats://TOKEN@HOST:PORT`.
   */
  url: string;
  /** The subject prefix: instances with the same prefix share rooms. @default {"linesock"} */
  prefix?: string;
  /** A NATS credentials file (a user JWT and its NKey seed). */
  credsPath?: string;
  /** PEM file of the CAs that sign the NATS server's certificate (implies TLS). */
  caPath?: string;
  /** PEM client certificate, for servers that verify clients (implies TLS; needs `keyPath`). */
  certPath?: string;
  /** The PEM private key of `certPath`. */
  keyPath?: string;
  /** Whether this is a raw relay's bus (its rooms are apart from the chat's). @default {false} */
  raw?: boolean;
  /** How long to wait for the first connection, in ms. @default {5000} */
  connectTimeoutMs?: number;
}

/** The subject prefix when none is given. */
export const DEFAULT_BUS_PREFIX = "linesock";

/**
 * Checks a subject prefix: dot-separated tokens of printable ASCII without wildcards.
 * @returns Why it is not valid, or `undefined` when it is.
 */
export function checkBusPrefix(prefix: string): string | undefined {
  return /^[!-~]+$/.test(prefix) && /^[^.*>]+(?:\.[^.*>]+)*$/.test(prefix)
    ? undefined
    : `invalid subject prefix: ${JSON.stringify(prefix)} (tokens separated by dots, no spaces or ` +
      "wildcards)";
}

/** Where a bus URL points, and its credentials. */
export interface BusTarget {
  /** `host:port` for the client. */
  server: string;
  /** The URL without credentials, for messages. */
  display: string;
  /** Whether TLS is required (`tls://`). */
  tls: boolean;
  /** The user name, with `pass`. */
  user?: string;
  /** The password of `user`. */
  pass?: string;
  /** A token (`nats://TOKEN@HOST`). */
  token?: string;
}

/**
 * Parses `nats://[USER[:PASSWORD]@]HOST[:PORT]` or `tls://…` (port 4222 by default).
 * @param text The URL.
 * @returns The server, and the credentials the URL holds.
 * @throws {TypeError} When it is not such a URL.
 */
export function parseBusUrl(text: string): BusTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`invalid bus URL: ${text} (expected nats://HOST:PORT)`);
  }
  if (url.protocol !== "nats:" && url.protocol !== "tls:") {
    throw new TypeError(`invalid bus URL: ${text} (expected nats://HOST:PORT or tls://HOST:PORT)`);
  }
  if (url.hostname === "" || (url.pathname !== "" && url.pathname !== "/") || url.search !== "") {
    throw new TypeError(`invalid bus URL: ${text} (expected nats://HOST:PORT)`);
  }
  const port = url.port === "" ? 4222 : Number(url.port);
  const server = `${url.hostname}:${port}`;
  const target: BusTarget = {
    server,
    display: `${url.protocol}//${server}`,
    tls: url.protocol === "tls:",
  };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (user !== "" && url.password === "") target.token = user;
  else if (user !== "") Object.assign(target, { user, pass });
  return target;
}

/**
 * Connects to a NATS server as one instance of a chat server (the NATS client loads now).
 * @param options Where, the subject prefix, credentials and TLS.
 * @returns The connected bus.
 * @throws {ConnectError} When the server cannot be reached or refuses the credentials.
 */
export async function connectChatBus(options: ChatBusOptions): Promise<ChatBus> {
  const { connectNatsBus } = await import("./_nats_bus.ts");
  return await connectNatsBus(options);
}

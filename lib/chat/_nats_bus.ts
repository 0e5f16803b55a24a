/**
 * Internal: the {@linkcode ChatBus} on a NATS connection (`@nats-io/transport-node`). Loaded only
 * by `connectChatBus`, so that nothing else pays for the NATS client's start-up.
 *
 * The connection is made with `noEcho` (the server never hands this instance its own messages),
 * reconnects for ever with a pause that grows with the time it has been down, and pings every
 * 20 s so that a server that vanished without closing is noticed within a minute.
 *
 * @module
 */
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { getLogger } from "@logtape/logtape";
import { ConnectError } from "../errors.ts";
import {
  type BusHandlers,
  type ChatBus,
  type ChatBusOptions,
  checkBusPrefix,
  DEFAULT_BUS_PREFIX,
  parseBusUrl,
} from "./bus.ts";

const logger = getLogger(["linesock", "chat"]);

/** The first pause before reconnecting, and the longest. */
const RECONNECT_FIRST_MS = 250;
const RECONNECT_LAST_MS = 5000;
/** How long closing waits for the last publications to be sent. */
const CLOSE_WAIT_MS = 2000;

/**
 * Connects to NATS.
 * @throws {ConnectError} When the server cannot be reached or refuses the connection.
 * @throws {TypeError} When the URL or the prefix is not valid.
 */
export async function connectNatsBus(options: ChatBusOptions): Promise<ChatBus> {
  const prefix = options.prefix ?? DEFAULT_BUS_PREFIX;
  const problem = checkBusPrefix(prefix);
  if (problem !== undefined) throw new TypeError(problem);
  const target = parseBusUrl(options.url);
  const instanceId = newInstanceId();
  const tlsWanted = target.tls || options.caPath !== undefined || options.certPath !== undefined;
  const state = { downSince: undefined as number | undefined };
  let connection: NatsConnection;
  try {
    connection = await connect({
      servers: target.server,
      name: `linesock ${instanceId}`,
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => {
        // Called before each attempt (the first connection's too): the pause grows with the time
        // the connection has been down (a quarter of a second at first, at most 5 s).
        const down = state.downSince === undefined ? 0 : Date.now() - state.downSince;
        return Math.min(RECONNECT_LAST_MS, Math.max(RECONNECT_FIRST_MS, down / 2));
      },
      reconnectJitter: 100,
      pingInterval: 20_000,
      maxPingOut: 3,
      timeout: options.connectTimeoutMs ?? 5000,
      ...(target.user !== undefined ? { user: target.user, pass: target.pass ?? "" } : {}),
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(options.credsPath !== undefined
        ? { authenticator: credsAuthenticator(await Deno.readFile(options.credsPath)) }
        : {}),
      ...(tlsWanted
        ? {
          tls: {
            ...(options.caPath !== undefined ? { caFile: options.caPath } : {}),
            ...(options.certPath !== undefined ? { certFile: options.certPath } : {}),
            ...(options.keyPath !== undefined ? { keyFile: options.keyPath } : {}),
          },
        }
        : {}),
    });
  } catch (error) {
    throw new ConnectError(`the bus ${target.display}`, describeFailure(error), { cause: error });
  }
  const space = options.raw ? "raw" : "room";
  return new NatsBus(connection, instanceId, target.display, `${prefix}.${space}`, state);
}

/** One instance's place on the bus. */
class NatsBus implements ChatBus {
  readonly instanceId: string;
  readonly url: string;
  readonly #connection: NatsConnection;
  /** `PREFIX.room` (or `PREFIX.raw`): rooms are `<base>.ROOM`, questions `<base>-ask`. */
  readonly #base: string;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #state: { downSince: number | undefined };
  #handlers: BusHandlers | undefined;
  #connected = true;
  #closing: Promise<void> | undefined;

  constructor(
    connection: NatsConnection,
    instanceId: string,
    url: string,
    base: string,
    state: { downSince: number | undefined },
  ) {
    this.#connection = connection;
    this.instanceId = instanceId;
    this.url = url;
    this.#base = base;
    this.#state = state;
    logger.info("Chat bus {url}: connected as instance {instance} (subjects {base}.ROOM)", {
      url,
      instance: instanceId,
      base,
    });
    connection.subscribe(`${base}-ask`, {
      callback: (error, message) => {
        if (error !== null || message.reply === undefined) return;
        const answer = this.#handlers?.question(message.data);
        if (answer !== undefined && this.#connected) message.respond(answer);
      },
    });
    void this.#watch();
  }

  get connected(): boolean {
    return this.#connected;
  }

  attach(handlers: BusHandlers): void {
    if (this.#handlers !== undefined) throw new Error("this bus already serves rooms");
    this.#handlers = handlers;
  }

  publish(room: string, payload: Uint8Array): void {
    if (!this.#connected) return;
    try {
      this.#connection.publish(`${this.#base}.${room}`, payload);
    } catch (error) {
      // Closed or disconnected meanwhile: the status watcher says so.
      logger.debug("Chat bus: publish failed: {error}", { error });
    }
  }

  async subscribe(room: string): Promise<void> {
    if (this.#subscriptions.has(room) || this.#closing !== undefined) return;
    const subscription = this.#connection.subscribe(`${this.#base}.${room}`, {
      callback: (error, message) => {
        if (error === null) this.#handlers?.message(room, message.data);
      },
    });
    this.#subscriptions.set(room, subscription);
    // Once the server has answered a ping sent after the SUB, it delivers the room's messages.
    if (this.#connected) await this.#connection.flush().catch(() => {});
  }

  unsubscribe(room: string): void {
    const subscription = this.#subscriptions.get(room);
    if (subscription === undefined) return;
    this.#subscriptions.delete(room);
    try {
      subscription.unsubscribe();
    } catch {
      // Closed already.
    }
  }

  async ask(question: Uint8Array, waitMs: number): Promise<Uint8Array[]> {
    if (!this.#connected) return [];
    const answers: Uint8Array[] = [];
    try {
      const replies = await this.#connection.requestMany(`${this.#base}-ask`, question, {
        strategy: "timer",
        maxWait: waitMs,
      });
      for await (const reply of replies) {
        if (reply.data.length > 0) answers.push(reply.data);
      }
    } catch (error) {
      // No other instance (no responders), or the connection went away meanwhile.
      logger.debug("Chat bus: question ended: {error}", { error });
    }
    return answers;
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#connected = false;
      const closed = this.#connection.close().catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        closed,
        new Promise((resolve) => timer = setTimeout(resolve, CLOSE_WAIT_MS)),
      ]);
      clearTimeout(timer);
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Follows the connection's state: down, back (subscriptions in place again). */
  async #watch(): Promise<void> {
    for await (const status of this.#connection.status()) {
      if (this.#closing !== undefined) return;
      if (status.type === "disconnect" || status.type === "staleConnection") {
        this.#state.downSince ??= Date.now();
        if (!this.#connected) continue;
        this.#connected = false;
        logger.warning(
          "Chat bus {url}: connection lost; rooms reach this instance's members only until it " +
            "is back (reconnecting)",
          { url: this.url },
        );
        this.#handlers?.down();
      } else if (status.type === "reconnect") {
        // The client has sent the subscriptions again; once the server answers a ping, they hold.
        await this.#connection.flush().catch(() => {});
        if (this.#closing !== undefined || this.#connection.isClosed()) return;
        const downMs = Date.now() - (this.#state.downSince ?? Date.now());
        this.#state.downSince = undefined;
        if (this.#connected) continue;
        this.#connected = true;
        logger.info("Chat bus {url}: reconnected after {seconds} s; rooms span instances again", {
          url: this.url,
          seconds: (downMs / 1000).toFixed(1),
        });
        this.#handlers?.up();
      }
    }
  }
}

/** 8 random bytes in hex: unique among the instances of a bus. */
function newInstanceId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The reason of a failed first connection, in a few words. */
function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/ECONNREFUSED|connection refused/i.test(message)) return "connection refused";
  if (/ENOTFOUND|getaddrinfo/i.test(message)) return "no such host";
  if (/timeout/i.test(message)) return "timed out";
  if (/authori[sz]ation|authentication/i.test(message)) return `not authorized (${message})`;
  return message;
}

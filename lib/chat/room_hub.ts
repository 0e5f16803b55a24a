/**
 * {@linkcode RoomHub}: the rooms of one chat server: who is in which room, a line's way to the
 * other members of its room (through each member's bounded queue, see member.ts), and, with a
 * {@linkcode ChatBus}, to the members on the other instances.
 *
 * With a bus, the hub subscribes to a room's subject while it has members there (the first member
 * waits until the subscription holds, so that it misses nothing said after it joined) and
 * publishes each line once, tagged with this instance, the member and the member's counter.
 * Receivers drop what they saw already, so that each line reaches each member once, and in the
 * order it was said. While the bus is down, rooms are local: lines reach the members of this
 * instance, and are not kept for the others.
 *
 * @example Two members, one room
 * ```ts
 * import { chatProtocol } from "@linesock/linesock/protocols";
 * import { serve } from "@linesock/linesock/server";
 * import { connect } from "@linesock/linesock/client";
 * import assert from "node:assert/strict";
 *
 * await using chat = chatProtocol();
 * await using server = await serve({ port: 0 }, chat);
 * const port = (server.addr as Deno.NetAddr).port;
 * await using alice = await connect({ port });
 * await using bob = await connect({ port });
 * await alice.join("lobby", { name: "alice" });
 * await bob.join("lobby", { name: "bob" });
 * await alice.send("hello");
 * assert.equal(await bob.readLine(5000), "<alice> hello");
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { ChatMetrics } from "../server/metrics.ts";
import { decodeBusMessage, encodeBusMessage } from "./_bus_message.ts";
import type { ChatBus } from "./bus.ts";
import { ChatMember, type QueuePolicy } from "./member.ts";

const logger = getLogger(["linesock", "chat"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
/** Remote senders whose counters are kept (the oldest are forgotten beyond it). */
const MAX_REMOTE_SENDERS = 100_000;

/** Options of {@linkcode RoomHub}. */
export interface RoomHubOptions {
  /** The raw relay: no notices, and no lost line (a full queue disconnects). @default {false} */
  raw?: boolean;
  /** Each member's queue of lines not yet taken by its socket, in bytes. @default {1048576} */
  maxQueueBytes?: number;
  /** Lines a member may lose before it is disconnected (raw: 0). @default {1000} */
  maxDroppedLines?: number;
  /** How long a sender waits for a member whose queue is over half full, in ms. @default {1000} */
  patienceMs?: number;
  /** How long `/who` and `/rooms` wait for the other instances' answers, in ms. @default {500} */
  gatherMs?: number;
  /** Rooms shared with other instances. */
  bus?: ChatBus;
  /**
   * The line a member's room gets when it leaves for good (its connection closed; `reason` is
   * `"too slow"` when it was disconnected for reading too slowly), if any.
   */
  farewell?: (member: ChatMember, reason: string | undefined) => Uint8Array | undefined;
  /** Called when the bus goes down (`false`) and comes back (`true`). */
  onBusChange?: (connected: boolean) => void;
}

/**
 * What a hub counted: the chat part of the server's metrics ({@linkcode ChatMetrics}) without the
 * bus gauge.
 */
export type ChatStats = Omit<ChatMetrics, "busConnected">;

/** One room, as this instance knows it. */
interface Room {
  readonly members: Set<ChatMember>;
  /** Settles once the bus subscription holds. */
  readonly ready: Promise<void>;
}

/** The rooms of one server (see the module documentation). */
export class RoomHub implements AsyncDisposable {
  /** The counters. */
  readonly stats: ChatStats = {
    delivered: 0,
    dropped: 0,
    tooSlow: 0,
    published: 0,
    received: 0,
    duplicates: 0,
  };
  readonly raw: boolean;
  readonly #policy: QueuePolicy;
  readonly #patienceMs: number;
  readonly #gatherMs: number;
  readonly #bus: ChatBus | undefined;
  readonly #rooms = new Map<string, Room>();
  readonly #members = new Set<ChatMember>();
  /** The last counter seen of each remote member (`instance member`). */
  readonly #lastSeq = new Map<string, number>();
  readonly #onBusChange: ((connected: boolean) => void) | undefined;
  readonly #farewell: RoomHubOptions["farewell"];

  /** @param options Limits, and the bus, if any. */
  constructor(options: RoomHubOptions = {}) {
    this.raw = options.raw ?? false;
    this.#policy = {
      maxQueueBytes: options.maxQueueBytes ?? 1024 * 1024,
      maxDroppedLines: this.raw ? 0 : options.maxDroppedLines ?? 1000,
      notices: !this.raw,
      stats: this.stats,
      tooSlow: (member) => this.remove(member, "too slow"),
    };
    this.#patienceMs = options.patienceMs ?? 1000;
    this.#gatherMs = options.gatherMs ?? 500;
    this.#bus = options.bus;
    this.#onBusChange = options.onBusChange;
    this.#farewell = options.farewell;
    this.#bus?.attach({
      message: (room, payload) => this.#received(room, payload),
      question: (question) => this.#answer(question),
      down: () => this.#onBusChange?.(false),
      up: () => this.#onBusChange?.(true),
    });
  }

  /** The bus, if the rooms span instances. */
  get bus(): ChatBus | undefined {
    return this.#bus;
  }

  /** Every member of this instance. */
  get members(): ReadonlySet<ChatMember> {
    return this.#members;
  }

  /**
   * A new member, in no room yet.
   * @param context Its connection.
   * @param name Its name.
   */
  add(context: ConnectionContext, name: string): ChatMember {
    const member = new ChatMember(context, name, this.#policy);
    this.#members.add(member);
    return member;
  }

  /**
   * Puts a member in a room (it must be in none): once the room's bus subscription holds, so that
   * it gets everything said in the room from then on.
   */
  async enter(member: ChatMember, room: string): Promise<void> {
    let entry = this.#rooms.get(room);
    if (entry === undefined) {
      entry = { members: new Set(), ready: this.#bus?.subscribe(room) ?? Promise.resolve() };
      this.#rooms.set(room, entry);
    }
    await entry.ready;
    if (member.gone) return;
    // The room may have emptied (and its subscription ended) while this member waited.
    const current = this.#rooms.get(room);
    if (current !== entry) return await this.enter(member, room);
    entry.members.add(member);
    member.room = room;
  }

  /** Takes a member out of its room (ending the room's subscription if it was the last one). */
  exit(member: ChatMember): void {
    const room = member.room;
    if (room === undefined) return;
    member.room = undefined;
    const entry = this.#rooms.get(room);
    if (entry === undefined) return;
    entry.members.delete(member);
    if (entry.members.size === 0) {
      this.#rooms.delete(room);
      this.#bus?.unsubscribe(room);
    }
  }

  /**
   * A member is gone for good: its room gets its farewell, and the other instances forget its
   * counter.
   * @param member The member.
   * @param reason Why, for the farewell (`"too slow"`, or `undefined`: its connection closed).
   */
  remove(member: ChatMember, reason?: string): void {
    if (!this.#members.delete(member)) return;
    const farewell = this.#farewell?.(member, reason);
    if (farewell !== undefined) this.broadcast(member, farewell);
    const room = member.room;
    member.gone = true;
    this.exit(member);
    const bus = this.#bus;
    if (room !== undefined && bus !== undefined && bus.connected) {
      bus.publish(room, encodeBusMessage("Q", bus.instanceId, member.id, ++member.seq, EMPTY));
    }
  }

  /**
   * Sends a line to the other members of the sender's room, here and on the other instances.
   * @param sender Who says it.
   * @param line The line as its receivers get it (without `\n`; copied before this returns).
   * @returns A promise when the sender should wait before its next line: some receiver's queue is
   * over half full (see member.ts), else `undefined`.
   */
  broadcast(sender: ChatMember, line: Uint8Array): Promise<void> | undefined {
    const room = sender.room;
    if (room === undefined) return undefined;
    let backedUp: ChatMember[] | undefined;
    const members = this.#rooms.get(room)?.members;
    if (members !== undefined) {
      for (const member of members) {
        if (member !== sender && member.deliver(line)) (backedUp ??= []).push(member);
      }
    }
    const bus = this.#bus;
    if (bus !== undefined && bus.connected) {
      bus.publish(room, encodeBusMessage("M", bus.instanceId, sender.id, ++sender.seq, line));
      this.stats.published++;
    }
    return backedUp === undefined ? undefined : this.#waitFor(backedUp);
  }

  /**
   * Sends a line to every member of this instance (notices about the bus).
   * @param line The line.
   */
  notifyAll(line: string): void {
    const bytes = encoder.encode(line);
    for (const member of this.#members) member.deliver(bytes);
  }

  /**
   * The names in a room: this instance's, and those the other instances answer within the gather
   * time.
   * @returns The names, sorted.
   */
  async who(room: string): Promise<string[]> {
    const names = this.#localNames(room);
    for (const answer of await this.#ask({ who: room })) {
      if (Array.isArray(answer.names)) {
        for (const name of answer.names) if (typeof name === "string") names.push(name);
      }
    }
    return names.sort();
  }

  /**
   * The rooms and how many members each has, here and on the instances that answer in time.
   * @returns Room names and counts, by name.
   */
  async roomCounts(): Promise<[string, number][]> {
    const counts = this.#localCounts();
    for (const answer of await this.#ask({ rooms: true })) {
      const rooms = answer.rooms;
      if (typeof rooms !== "object" || rooms === null) continue;
      for (const [room, count] of Object.entries(rooms)) {
        if (typeof count === "number") counts.set(room, (counts.get(room) ?? 0) + count);
      }
    }
    return [...counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  }

  /** Leaves the bus, if any. */
  async close(): Promise<void> {
    await this.#bus?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Waits until these members took their queues, or the patience ran out (they lag, then). */
  async #waitFor(members: ChatMember[]): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#patienceMs);
    });
    const taken = Promise.all(members.map((member) => member.flushed.catch(() => {})));
    const tooLate = await Promise.race([taken.then(() => false), late]);
    clearTimeout(timer);
    if (!tooLate) return;
    const half = this.#policy.maxQueueBytes / 2;
    for (const member of members) {
      if (member.context.queuedBytes > half) member.markLagging();
    }
  }

  /** A message from another instance. */
  #received(room: string, payload: Uint8Array): void {
    const message = decodeBusMessage(payload);
    if (message === undefined || message.instance === this.#bus?.instanceId) return;
    this.stats.received++;
    const key = `${message.instance} ${message.member}`;
    if (message.kind === "Q") {
      this.#lastSeq.delete(key);
      return;
    }
    const last = this.#lastSeq.get(key);
    if (last !== undefined && message.seq <= last) {
      this.stats.duplicates++;
      return;
    }
    if (last === undefined && this.#lastSeq.size >= MAX_REMOTE_SENDERS) {
      this.#lastSeq.delete(this.#lastSeq.keys().next().value!);
    }
    this.#lastSeq.set(key, message.seq);
    const members = this.#rooms.get(room)?.members;
    if (members === undefined) return;
    for (const member of members) member.deliver(message.line);
  }

  /** Another instance's question: who is in a room here, or which rooms are here. */
  #answer(question: Uint8Array): Uint8Array | undefined {
    let asked: { who?: unknown; rooms?: unknown };
    try {
      asked = JSON.parse(decoder.decode(question));
    } catch {
      return undefined;
    }
    if (typeof asked.who === "string") {
      const names = this.#localNames(asked.who);
      return names.length === 0 ? undefined : encoder.encode(JSON.stringify({ names }));
    }
    if (asked.rooms === true) {
      const counts = this.#localCounts();
      return counts.size === 0
        ? undefined
        : encoder.encode(JSON.stringify({ rooms: Object.fromEntries(counts) }));
    }
    return undefined;
  }

  /** Asks the other instances, if there is a bus. */
  async #ask(question: object): Promise<Record<string, unknown>[]> {
    const bus = this.#bus;
    if (bus === undefined) return [];
    const answers = await bus.ask(encoder.encode(JSON.stringify(question)), this.#gatherMs);
    const parsed: Record<string, unknown>[] = [];
    for (const answer of answers) {
      try {
        const value = JSON.parse(decoder.decode(answer));
        if (typeof value === "object" && value !== null) parsed.push(value);
      } catch {
        logger.debug("Chat bus: an answer that is not JSON was ignored");
      }
    }
    return parsed;
  }

  #localNames(room: string): string[] {
    const members = this.#rooms.get(room)?.members;
    return members === undefined ? [] : [...members].map((member) => member.name);
  }

  #localCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [room, entry] of this.#rooms) counts.set(room, entry.members.size);
    return counts;
  }
}

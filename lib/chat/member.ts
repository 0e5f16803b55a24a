/**
 * {@linkcode ChatMember}: one connection of a chat server, and the queue policy of the lines on
 * their way to it, so that a slow reader never holds the others up:
 *
 * 1. Each member has a bounded queue (`maxQueueBytes`: the lines sent to it that its socket has not
 *    taken yet).
 * 2. A sender whose line leaves a member's queue more than half full waits (its input is read no
 *    further) until that member has taken its queue, for at most `patienceMs`. A member that took
 *    longer is *lagging*: senders stop waiting for it until its queue is empty again.
 * 3. A line that does not fit in a member's queue is dropped for that member alone. Once its
 *    queue is empty again it gets one notice, `* 12 lines dropped: you read too slowly` (chat
 *    only).
 * 4. A member that loses more than `maxDroppedLines` lines before its queue empties is
 *    disconnected: it leaves its room, gets nothing more, and its connection is aborted (what it
 *    had not read is dropped, `ERR too slow: …` with it unless it reads first). The raw relay allows no lost line (the stream would be corrupt):
 *    its first overflow disconnects.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { TokenBucket } from "./_token_bucket.ts";

const logger = getLogger(["linesock", "chat"]);
const encoder = new TextEncoder();

/** The limits of {@linkcode ChatMember.deliver}, and what it reports to. */
export interface QueuePolicy {
  /** A member's queue, in bytes. */
  readonly maxQueueBytes: number;
  /** Lines a member may lose before it is disconnected (0: none). */
  readonly maxDroppedLines: number;
  /** Whether members get notices (`* …` lines): not in the raw relay. */
  readonly notices: boolean;
  /** Counters. */
  readonly stats: { delivered: number; dropped: number; tooSlow: number };
  /** A member lost too many lines: take it out of its room (called once). */
  tooSlow(member: ChatMember): void;
}

/** A chat client: its name, its room, and the lines on their way to it. */
export class ChatMember {
  /** Its number on this server (its connection's id). */
  readonly id: number;
  /** Its connection. */
  readonly context: ConnectionContext;
  /** The room it is in (`undefined` between rooms and once gone). */
  room: string | undefined;
  /** Messages it published on the bus: the receivers' order and duplicate check. */
  seq = 0;
  /** Its input throttle, if it has one. */
  bucket: TokenBucket | undefined;
  /** Lines it lost since its queue was last empty. */
  dropped = 0;
  /** It kept a sender waiting past the patience: senders do not wait for it until it caught up. */
  lagging = false;
  /** It left (its connection closed, or it was disconnected): nothing more is sent to it. */
  gone = false;
  readonly #policy: QueuePolicy;
  #name = "";
  #prefix: Uint8Array = new Uint8Array(0);
  /** The last flush of the lines sent to it (settles when its queue is empty). */
  #flushed: Promise<void> | undefined;
  /** Waiting for its queue to empty, to end a lagging or dropping episode. */
  #watching = false;

  /**
   * @param context Its connection.
   * @param name Its name.
   * @param policy The queue limits, shared by the members of a server.
   */
  constructor(context: ConnectionContext, name: string, policy: QueuePolicy) {
    this.id = context.id;
    this.context = context;
    this.#policy = policy;
    this.name = name;
  }

  /** Its name. */
  get name(): string {
    return this.#name;
  }

  set name(name: string) {
    this.#name = name;
    this.#prefix = encoder.encode(`<${name}> `);
  }

  /** `<name> ` as bytes: what its lines start with. */
  get prefix(): Uint8Array {
    return this.#prefix;
  }

  /** Settles when its queue is empty (rejects once its connection is gone). */
  get flushed(): Promise<void> {
    return this.#flushed ?? Promise.resolve();
  }

  /**
   * Queues a line for it, or drops it when its queue is full (see the module documentation).
   * @param line The line, without its `\n` (copied).
   * @returns Whether a sender should wait for it: the line left its queue over half full, and it
   * is not lagging.
   */
  deliver(line: Uint8Array): boolean {
    if (this.gone) return false;
    const policy = this.#policy;
    const queued = this.context.queuedBytes + line.length + 1;
    if (queued > policy.maxQueueBytes) {
      this.#drop();
      return false;
    }
    let sent: Promise<void>;
    try {
      sent = this.context.send(line);
    } catch {
      return false;
    }
    if (sent !== this.#flushed) {
      this.#flushed = sent;
      // A failed write ends the connection, which its own read loop reports.
      sent.catch(() => {});
    }
    policy.stats.delivered++;
    return !this.lagging && queued > policy.maxQueueBytes / 2;
  }

  /** Sends it a line of its own (a notice, a reply), outside the queue limit. */
  tell(line: string): void {
    if (this.gone) return;
    const sent = this.context.send(line);
    if (sent !== this.#flushed) {
      this.#flushed = sent;
      sent.catch(() => {});
    }
  }

  /** It kept a sender waiting too long: senders stop waiting for it until its queue is empty. */
  markLagging(): void {
    if (this.gone || this.lagging) return;
    this.lagging = true;
    logger.debug("Chat member {name} (connection {id}) is lagging: senders no longer wait for it", {
      name: this.#name,
      id: this.id,
    });
    this.#watchQueue();
  }

  #drop(): void {
    const policy = this.#policy;
    this.dropped++;
    policy.stats.dropped++;
    if (this.dropped > policy.maxDroppedLines) {
      this.gone = true;
      policy.stats.tooSlow++;
      logger.warning(
        "Chat member {name} (connection {id} from {peer}) is disconnected: it reads too slowly " +
          "({dropped} lines lost)",
        { name: this.#name, id: this.id, peer: this.context.peer, dropped: this.dropped },
      );
      policy.tooSlow(this);
      if (policy.notices) {
        this.context.send(
          `ERR too slow: ${this.dropped} lines dropped; disconnecting`,
        ).catch(() => {});
      }
      this.context.countError();
      // Its queue is full: a graceful close would wait for it to read; end it now.
      this.context.abort("too slow");
      return;
    }
    if (this.dropped === 1) {
      logger.warning(
        "Chat member {name} (connection {id} from {peer}) reads too slowly: its queue is full, " +
          "lines for it are dropped",
        { name: this.#name, id: this.id, peer: this.context.peer },
      );
      this.#watchQueue();
    }
  }

  /** Once its queue is empty: no longer lagging, and told what it lost. */
  #watchQueue(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.flushed.then(() => {
      this.#watching = false;
      if (this.gone) return;
      this.lagging = false;
      const dropped = this.dropped;
      if (dropped === 0) return;
      this.dropped = 0;
      logger.info("Chat member {name} (connection {id}) caught up after losing {dropped} lines", {
        name: this.#name,
        id: this.id,
        dropped,
      });
      if (this.#policy.notices) {
        this.tell(`* ${dropped} line${dropped === 1 ? "" : "s"} dropped: you read too slowly`);
      }
    }, () => {});
  }
}

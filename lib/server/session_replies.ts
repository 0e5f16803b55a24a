/**
 * Internal: how a session runs its protocol on a line and queues what it answers. A synchronous
 * reply is queued at once (the fast path: no promise per line); an asynchronous one becomes the
 * session's pending reply, and the lines behind it wait, unframed, until it settles, so that
 * replies keep the order of their lines. While a reply is pending, the session reads ahead a little
 * to notice a client that goes away.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { WATCH_BYTES } from "./defaults.ts";
import type { ConnectionContext } from "./connection_context.ts";
import { isPromiseLike, type LineProtocol, type Reply, type ReplyLine } from "./protocol.ts";
import type { Session } from "./session.ts";
import type { SessionOutput } from "./session_io.ts";
import { Phase } from "./session_phase.ts";
import { describeEnd } from "./_socket_errors.ts";

const logger = getLogger(["linesock", "server"]);

/** A session's replies in the making. */
export class SessionReplies {
  /** A line handler's reply that has not settled yet; later lines wait behind it. */
  pending: Promise<void> | undefined;
  /**
   * The read made while a reply is pending, to notice a client that goes away meanwhile (its
   * program is then stopped): it settles with what it read, and the read loop takes that as its
   * next chunk.
   */
  watch: Promise<Uint8Array | null> | undefined;
  /** Bytes the watch reads brought. */
  watchedBytes = 0;
  readonly #session: Session;
  // Kept at hand for the per-line path.
  readonly #protocol: LineProtocol;
  readonly #context: ConnectionContext;
  readonly #output: SessionOutput;

  constructor(session: Session) {
    this.#session = session;
    this.#protocol = session.host.protocol;
    this.#context = session.context;
    this.#output = session.output;
  }

  /** Handles one line, synchronously when the protocol answers synchronously. */
  handle(bytes: Uint8Array): void {
    let result: Reply | Promise<Reply>;
    try {
      result = this.#protocol.onLine(bytes, this.#context);
    } catch (error) {
      this.#handlerFailed(error);
      return;
    }
    const pending = this.emit(result);
    if (pending) this.pending = pending;
  }

  /** Queues a reply; returns a promise only when the reply is asynchronous. */
  emit(result: Reply | Promise<Reply>): Promise<void> | undefined {
    if (result === undefined || result === null) return undefined;
    if (typeof result === "string" || result instanceof Uint8Array) {
      this.#output.enqueue(result);
      return undefined;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (settled) => this.emit(settled),
        (error) => this.#handlerFailed(error),
      );
    }
    if (Symbol.iterator in result) {
      const output = this.#output;
      for (const line of result) output.enqueue(line);
      return undefined;
    }
    return this.#emitStream(result);
  }

  /** Waits for the pending asynchronous reply (not beyond the connection's end). */
  async settle(): Promise<void> {
    if (this.pending !== undefined) {
      this.#watchPeer();
      // A reply that never settles must not keep a destroyed connection (and shutdown) waiting.
      await Promise.race([this.pending, this.#session.whenClosed]);
    }
    this.pending = undefined;
  }

  /** The watch read, if one was made, for the read loop (which reads on from there). */
  takeWatch(): Promise<Uint8Array | null> | undefined {
    const watch = this.watch;
    this.watch = undefined;
    return watch;
  }

  async #emitStream(lines: AsyncIterable<ReplyLine>): Promise<void> {
    const session = this.#session;
    const output = this.#output;
    try {
      for await (const line of lines) {
        output.enqueue(line);
        output.startFlush();
        if (output.queuedBytes > session.host.highWater) await session.flushWithTimeout();
      }
    } catch (error) {
      this.#handlerFailed(error);
    }
  }

  #handlerFailed(error: unknown): void {
    const session = this.#session;
    logger.error("Handler failed on connection {id} from {peer}: {error}", {
      id: session.id,
      peer: session.peer,
      error,
    });
    session.sendError("internal", "internal error");
  }

  /**
   * While a reply is pending (a program runs, or waits for a slot), reads ahead a little, so that a
   * client that resets meanwhile is noticed: the connection is destroyed and its signal stops the
   * work. What the read brings is kept, in order, as the next chunk. A FIN is not a departure: a
   * half-closed client may still read its replies.
   */
  #watchPeer(): void {
    const session = this.#session;
    const phase = session.phase();
    if (
      this.watch !== undefined || session.inputEnded || phase === Phase.Lingering ||
      phase === Phase.Closed
    ) {
      return;
    }
    const buffer = new Uint8Array(WATCH_BYTES);
    this.watch = session.conn.read(buffer).then((count) => {
      if (count === null) return null;
      this.watchedBytes += count;
      return buffer.subarray(0, count);
    }, (error) => {
      if (session.phase() !== Phase.Closed) {
        logger.info("Connection {id} from {peer}: {reason} while its reply was pending", {
          id: session.id,
          peer: session.peer,
          reason: describeEnd(error),
        });
        session.destroy(describeEnd(error));
      }
      return null;
    });
  }
}

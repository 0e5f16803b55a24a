/**
 * Internal: a session's write path. Replies are queued in a {@linkcode LineWriter} (the lines ready
 * together leave in one write); a byte relay's chunk may instead be written straight from the read
 * buffer it was read into (no copy), and queued replies then wait for that write, to keep the byte
 * order. Every write is timed, for the write and idle timeouts.
 *
 * @module
 */
import { type ByteWriter, LineWriter } from "../framing/line_writer.ts";
import type { ReplyLine } from "./protocol.ts";

/** What the server needs of an accepted connection (a `Deno.Conn`, or TLS over one). */
export type SocketConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close" | "remoteAddr">;

/** The replies of one connection on their way to its socket. */
export class SessionOutput implements ByteWriter {
  /** The first write that failed; the read loop throws it. */
  error: unknown = undefined;
  /** Lines sent (queued replies, and a relay's lines). */
  linesOut = 0;
  /**
   * Told of each reply line queued and each relay chunk sent; set only by a session that traces
   * (session_trace.ts), so that a session that does not pays one check per reply.
   */
  onTrace: ((line: ReplyLine) => void) | undefined = undefined;
  /** The same, for the bytes a relay sends as they are. */
  onTraceRaw: ((bytes: Uint8Array) => void) | undefined = undefined;
  readonly #conn: Pick<Deno.Conn, "write">;
  readonly #writer: LineWriter;
  /** When a write to the socket last started or made progress. */
  #lastWriteAt = 0;
  /** Writes to the socket started and not settled yet. */
  #writesInFlight = 0;
  /** Relay mode: the chunk being handed to the protocol, which may be written without a copy. */
  #lendable: Uint8Array | undefined;
  /** Relay mode: the last write made straight from a read buffer, until it settles. */
  #direct: Promise<void> | undefined;
  #directBytes = 0;

  constructor(conn: Pick<Deno.Conn, "write">) {
    this.#conn = conn;
    // This object is the writer's sink: no closure per connection.
    this.#writer = new LineWriter(this);
  }

  /** Bytes queued and not yet taken by the socket. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  /** Bytes written so far, queued and direct. */
  get bytesWritten(): number {
    return this.#writer.bytesWritten + this.#directBytes;
  }

  /** The direct write in flight, if any: its read buffer must not be read into until it settles. */
  get direct(): Promise<void> | undefined {
    return this.#direct;
  }

  /** When a write last started or made progress (0: never). */
  get lastWriteAt(): number {
    return this.#lastWriteAt;
  }

  /** Whether a write to the socket is under way. */
  get writing(): boolean {
    return this.#writesInFlight > 0;
  }

  /** How long a write to the socket has been stuck at `now` (0 when none is under way). */
  stalledMs(now: number): number {
    return this.#writesInFlight > 0 ? now - this.#lastWriteAt : 0;
  }

  /** Queues one reply line. */
  enqueue(line: ReplyLine): void {
    this.#writer.enqueue(line);
    this.linesOut++;
    if (this.onTrace !== undefined) this.onTrace(line);
  }

  /**
   * Queues bytes as they are; the chunk lent to the protocol goes straight to the socket when
   * nothing is queued before it.
   */
  sendRaw(bytes: Uint8Array): void {
    if (this.onTraceRaw !== undefined) this.onTraceRaw(bytes);
    if (bytes === this.#lendable && this.#writer.pendingBytes === 0 && !this.#writer.flushing) {
      this.#lendable = undefined;
      this.#writeDirect(bytes);
      return;
    }
    this.#writer.enqueueBytes(bytes);
  }

  /** Relay mode: the chunk `sendRaw` may write without a copy, until {@linkcode unlend}. */
  lend(chunk: Uint8Array): void {
    this.#lendable = chunk;
  }

  /** Relay mode: the protocol's call is over; its chunk is no longer lent. */
  unlend(): void {
    this.#lendable = undefined;
  }

  /** Writes to the socket, for the reply writer (its sink). */
  write(bytes: Uint8Array): Promise<number> {
    const conn = this.#conn;
    // Queued replies leave after a relay's direct write still in flight, to keep the byte order.
    return this.#tracked(
      this.#direct === undefined ? conn.write(bytes) : this.#direct.then(() => conn.write(bytes)),
    );
  }

  /** Starts writing what is queued without waiting; a failure is kept for the read loop. */
  startFlush(): void {
    if (this.#writer.pendingBytes === 0 || this.#writer.flushing) return;
    this.#writer.flush().catch((error) => this.error ??= error);
  }

  /** Writes what is queued. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Waits until queued replies and direct writes have all been handed to the socket. */
  async flushAll(): Promise<void> {
    for (;;) {
      if (this.#direct !== undefined) await this.#direct;
      if (this.#writer.pendingBytes > 0 || this.#writer.flushing) await this.#writer.flush();
      else if (this.#direct === undefined) return;
    }
  }

  /** Gives back the reply buffers of a quiet connection. */
  shrink(): void {
    this.#writer.shrink();
  }

  /** Notes a write's start and end, for the write timeout. */
  #tracked(written: Promise<number>): Promise<number> {
    this.#writesInFlight++;
    this.#lastWriteAt = performance.now();
    return written.then((count) => {
      this.#writesInFlight--;
      this.#lastWriteAt = performance.now();
      return count;
    }, (error) => {
      this.#writesInFlight--;
      throw error;
    });
  }

  /**
   * Writes a chunk straight from the read buffer it is in, after the previous direct write; the
   * relay reads into that buffer again only once this write has settled.
   */
  #writeDirect(bytes: Uint8Array): void {
    const previous = this.#direct;
    const conn = this.#conn;
    const write = async () => {
      if (previous !== undefined) await previous;
      for (let offset = 0; offset < bytes.length;) {
        offset += await this.#tracked(conn.write(bytes.subarray(offset)));
      }
      this.#directBytes += bytes.length;
    };
    const done: Promise<void> = write().catch((error) => {
      this.error ??= error;
    }).finally(() => {
      if (this.#direct === done) this.#direct = undefined;
    });
    this.#direct = done;
  }
}

/**
 * {@linkcode LineWriter}: batches outgoing lines so that the lines ready at the same moment leave in
 * one `write` (one syscall per burst, not per line), while every write is still awaited, so a peer that
 * reads slowly holds the writer back instead of making it buffer without bound.
 *
 * @example Several lines, one write
 * ```ts
 * import { LineWriter } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const writes: string[] = [];
 * const sink = {
 *   write(bytes: Uint8Array) {
 *     writes.push(new TextDecoder().decode(bytes));
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const writer = new LineWriter(sink);
 * writer.enqueue("PONG");
 * writer.enqueue(new TextEncoder().encode("Done"));
 * await writer.flush();
 * assert.deepEqual(writes, ["PONG\nDone\n"]);
 * ```
 *
 * @module
 */

/** Something bytes can be written to, like a `Deno.Conn`. */
export interface ByteWriter {
  /** Writes some of `bytes`; resolves to how many were written. */
  write(bytes: Uint8Array): Promise<number>;
}

const encoder = new TextEncoder();
const LF = 0x0a;
/** Small: an idle connection keeps the buffer of its last short reply. Busy ones grow it by doubling. */
const MIN_CAPACITY = 64;
/** A shared empty buffer: never written to, since any enqueue first grows it. */
const EMPTY = new Uint8Array(0);
/** Strings up to this length reserve room for their worst-case UTF-8 size in one step. */
const SHORT_STRING = 16 * 1024;

/** Batches lines into few writes. See the module documentation. */
export class LineWriter {
  readonly #sink: ByteWriter;
  #buffer = EMPTY;
  #spare = EMPTY;
  #length = 0;
  #flushing: Promise<void> | undefined;
  #written = 0;
  /** Bytes of the buffer being written that the sink has not taken yet. */
  #inFlight = 0;

  /**
   * Creates the instance.
   * @param sink Where bytes go (a `Deno.Conn` or anything with `write`).
   */
  constructor(sink: ByteWriter) {
    this.#sink = sink;
  }

  /**
   * Bytes queued and not yet handed to the sink, not counting the buffer being written now (see
   * {@linkcode LineWriter.queuedBytes}).
   */
  get pendingBytes(): number {
    return this.#length;
  }

  /**
   * All bytes not yet taken by the sink: queued ones and the rest of the write in progress. Pause
   * producing when this grows too large.
   */
  get queuedBytes(): number {
    return this.#length + this.#inFlight;
  }

  /** The size of the buffers held for queueing (memory, not content), in bytes. */
  get capacityBytes(): number {
    return this.#buffer.length + this.#spare.length;
  }

  /** Total bytes written to the sink so far. */
  get bytesWritten(): number {
    return this.#written;
  }

  /** Whether a flush is in progress. */
  get flushing(): boolean {
    return this.#flushing !== undefined;
  }

  /**
   * Queues one line and its `\n`.
   * @param line Text (encoded as UTF-8) or bytes, without the terminator.
   */
  enqueue(line: string | Uint8Array): void {
    if (typeof line === "string") {
      if (line.length <= SHORT_STRING) {
        this.#reserve(line.length * 3 + 1);
        this.#length += encoder.encodeInto(line, this.#buffer.subarray(this.#length)).written;
      } else {
        this.#enqueueLong(line);
      }
    } else {
      this.#reserve(line.length + 1);
      this.#buffer.set(line, this.#length);
      this.#length += line.length;
    }
    this.#buffer[this.#length++] = LF;
  }

  /**
   * A long string: room for its length first (enough when it is ASCII), then for the worst case of
   * what did not fit, so a 1 MiB reply does not reserve 3 MiB.
   */
  #enqueueLong(line: string): void {
    this.#reserve(line.length + 1);
    let { read, written } = encoder.encodeInto(line, this.#buffer.subarray(this.#length));
    this.#length += written;
    if (read < line.length) {
      const rest = line.slice(read);
      this.#reserve(rest.length * 3 + 1);
      ({ written } = encoder.encodeInto(rest, this.#buffer.subarray(this.#length)));
      this.#length += written;
    }
  }

  /**
   * Releases the buffers that hold nothing. Buffers are kept across flushes, so that a busy
   * connection reuses them instead of making garbage; call this when the producer goes quiet.
   */
  shrink(): void {
    if (this.#length === 0) this.#buffer = EMPTY;
    this.#spare = EMPTY;
  }

  /**
   * Queues bytes as they are, with no terminator added (byte relays).
   * @param bytes The bytes.
   */
  enqueueBytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /**
   * Writes everything queued, including what is queued while this flush runs.
   * @returns A promise that settles when the queue is empty, or rejects with the sink's error.
   */
  flush(): Promise<void> {
    if (this.#length === 0 && this.#flushing === undefined) return Promise.resolve();
    this.#flushing ??= this.#drain();
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#length > 0) {
        const current = this.#buffer;
        const length = this.#length;
        // Later enqueues go to the spare buffer while this one is being written.
        this.#buffer = this.#spare;
        this.#length = 0;
        let offset = 0;
        this.#inFlight = length;
        while (offset < length) {
          offset += await this.#write(current.subarray(offset, length));
          this.#inFlight = length - offset;
        }
        this.#written += length;
        if (this.#length === 0) {
          // Nothing came meanwhile: the next lines go to the buffer that was big enough.
          this.#spare = this.#buffer;
          this.#buffer = current;
        } else {
          this.#spare = current;
        }
      }
    } finally {
      this.#inFlight = 0;
      this.#flushing = undefined;
    }
  }

  /**
   * Calls the sink. A synchronous throw becomes a rejection, so that {@linkcode LineWriter.flush}
   * has stored the drain before the drain's `finally` clears it (else `flushing` stays stuck).
   */
  #write(bytes: Uint8Array): Promise<number> {
    try {
      return this.#sink.write(bytes);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2, MIN_CAPACITY));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
}

/**
 * Internal: a reader for byte relays (the echo protocol) that alternates between two adaptive
 * buffers, so that a chunk can be written back straight from the buffer it was read into (no copy)
 * while the next chunk is read into the other one.
 *
 * A chunk handed to a write is "held" with the write's promise; the buffer is read into again only
 * after that promise settles. That bounds a relay to two buffers in flight and is its backpressure:
 * a peer that does not read stops the relay from reading.
 *
 * @module
 */
import type { ByteReader } from "./connection_reader.ts";
import { ReadBufferSizing } from "./_read_buffer.ts";

/** Reads chunks into two alternating buffers. See the module documentation. */
export class RelayReader {
  readonly #source: ByteReader;
  /** One policy for both buffers (they take turns, so they see the same reads). */
  readonly #sizing: ReadBufferSizing;
  readonly #buffers: Uint8Array[];
  readonly #held: (Promise<void> | undefined)[] = [undefined, undefined];
  #next = 0;
  #bytesRead = 0;

  /**
   * Creates the instance.
   * @param source The connection.
   * @param minBytes The starting (and smallest) size of each buffer.
   * @param maxBytes The largest size of each buffer.
   */
  constructor(source: ByteReader, minBytes: number, maxBytes: number) {
    this.#source = source;
    this.#sizing = new ReadBufferSizing(minBytes, maxBytes);
    // The second buffer is made on first use: most connections never pipeline.
    this.#buffers = [new Uint8Array(minBytes), new Uint8Array(0)];
  }

  /** Total bytes read so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /**
   * Reads the next chunk, after the write that still uses the buffer (if any) has settled.
   * @returns A view of the bytes read, valid until it is released; `null` at end of input.
   */
  async read(): Promise<Uint8Array | null> {
    const index = this.#next;
    const held = this.#held[index];
    if (held !== undefined) {
      await held;
      this.#held[index] = undefined;
    }
    let buffer = this.#buffers[index]!;
    if (buffer.length === 0) buffer = this.#buffers[index] = new Uint8Array(this.#sizing.min);
    const count = await this.#source.read(buffer);
    if (count === null) return null;
    this.#bytesRead += count;
    this.#next = 1 - index;
    const size = this.#sizing.next(buffer.length, count);
    // The old buffer may still be held by a write: a new one replaces it for the next read.
    if (size !== buffer.length) this.#buffers[index] = new Uint8Array(size);
    return buffer.subarray(0, count);
  }

  /**
   * Keeps the buffer of the chunk read last from being read into until `done` settles.
   * @param done The write of that chunk; its rejection is the writer's to report, not ours.
   */
  hold(done: Promise<void>): void {
    this.#held[1 - this.#next] = done;
  }
}

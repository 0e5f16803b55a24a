/**
 * {@linkcode ConnectionReader}: reads a connection with `conn.read()` into its own adaptive buffer.
 *
 * It does not consume `conn.readable`: in Deno, reading that stream to its end closes the whole
 * socket, so a reply written after the peer's half-close would fail. With `read()`, end of input is
 * just `null`, and the connection stays open for writing until it is closed.
 *
 * The buffer starts small (idle connections cost little) and doubles while reads fill it, up to
 * `maxBufferBytes`; it shrinks back after a run of small reads.
 *
 * @example Reading until the peer half-closes, then replying
 * ```ts
 * import { ConnectionReader } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ port: listener.addr.port });
 * const server = await listener.accept();
 * await client.write(new TextEncoder().encode("hello"));
 * await client.closeWrite();
 *
 * const reader = new ConnectionReader(server);
 * let received = "";
 * for (let chunk; (chunk = await reader.read()) !== null;) received += new TextDecoder().decode(chunk);
 * await server.write(new TextEncoder().encode("bye")); // still possible after the peer's FIN
 * server.close();
 * assert.equal(received, "hello");
 * const reply = new Uint8Array(8);
 * assert.equal(await client.read(reply), 3);
 * client.close();
 * ```
 *
 * @module
 */
import { MAX_READ_BUFFER_BYTES, ReadBufferSizing } from "./_read_buffer.ts";

/** Something bytes can be read from, like a `Deno.Conn`. */
export interface ByteReader {
  /** Reads into `buffer`; resolves to the count read, or `null` at end of input. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Options of {@linkcode ConnectionReader}. */
export interface ConnectionReaderOptions {
  /**
   * The starting (and smallest) buffer size in bytes.
   * @default {4096}
   */
  minBufferBytes?: number;
  /**
   * The largest buffer size in bytes.
   * @default {262144}
   */
  maxBufferBytes?: number;
}

/** Reads chunks from a connection into a reused buffer. See the module documentation. */
export class ConnectionReader {
  readonly #source: ByteReader;
  readonly #sizing: ReadBufferSizing;
  #buffer: Uint8Array;
  #bytesRead = 0;

  /**
   * Creates the instance.
   * @param source The connection.
   * @param options Buffer sizes.
   */
  constructor(source: ByteReader, options: ConnectionReaderOptions = {}) {
    this.#source = source;
    this.#sizing = new ReadBufferSizing(
      options.minBufferBytes ?? 4096,
      options.maxBufferBytes ?? MAX_READ_BUFFER_BYTES,
    );
    this.#buffer = new Uint8Array(this.#sizing.min);
  }

  /** Total bytes read so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /**
   * Reads the next chunk.
   * @returns A view of the bytes read, valid until the next call; `null` at end of input.
   */
  async read(): Promise<Uint8Array | null> {
    const buffer = this.#buffer;
    const count = await this.#source.read(buffer);
    if (count === null) return null;
    this.#bytesRead += count;
    const size = this.#sizing.next(buffer.length, count);
    if (size !== buffer.length) this.#buffer = new Uint8Array(size);
    return buffer.subarray(0, count);
  }
}

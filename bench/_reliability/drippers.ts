/**
 * Slow clients: connections that send a line one byte at a time. {@linkcode openDrippers} opens them;
 * each {@linkcode Drippers.step} sends every dripper's next byte, so a test can interleave drips with
 * its own requests without timers, and {@linkcode Drippers.dripEvery} drives them by a clock (the
 * stress script: one byte per second each, spread evenly over the second).
 *
 * @module
 */

/** The line each dripper sends, byte by byte, over and over. */
export const DRIP_LINE = new TextEncoder().encode("PING\n");

/** A set of dripping connections. */
export class Drippers {
  readonly #conns: Deno.Conn[];
  #position = 0;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #replyBytes = 0;
  #reading: Promise<void>[];
  /** Drips that failed (the server closed or reset the connection). */
  failures = 0;

  constructor(conns: Deno.Conn[]) {
    this.#conns = conns;
    this.#reading = conns.map((conn) => this.#drainReplies(conn));
  }

  /** How many drippers. */
  get count(): number {
    return this.#conns.length;
  }

  /** Reply bytes received from the server so far, all drippers. */
  get replyBytes(): number {
    return this.#replyBytes;
  }

  async #drainReplies(conn: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(1024);
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) this.#replyBytes += n;
    } catch {
      // Closed by us or reset: the reader just stops.
    }
  }

  /** Sends the next byte of {@linkcode DRIP_LINE} on every connection. */
  async step(): Promise<void> {
    const byte = DRIP_LINE.subarray(this.#position, this.#position + 1);
    this.#position = (this.#position + 1) % DRIP_LINE.length;
    await Promise.all(this.#conns.map((conn) => this.#drip(conn, byte)));
  }

  async #drip(conn: Deno.Conn, byte: Uint8Array): Promise<void> {
    try {
      await conn.write(byte);
    } catch {
      this.failures++;
    }
  }

  /**
   * Drips one byte every `periodMs` on each connection, the connections' phases spread evenly over
   * the period, until {@linkcode Drippers.close}.
   */
  dripEvery(periodMs: number): void {
    this.#conns.forEach((conn, index) => {
      let position = 0;
      const tick = () => {
        const byte = DRIP_LINE.subarray(position, position + 1);
        position = (position + 1) % DRIP_LINE.length;
        void this.#drip(conn, byte);
        this.#timers[index] = setTimeout(tick, periodMs);
      };
      this.#timers[index] = setTimeout(tick, (periodMs * index) / this.#conns.length);
    });
  }

  /** Stops dripping and closes every connection. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.all(this.#reading);
  }
}

/** Opens `count` dripping connections to 127.0.0.1:`port` (a few at a time). */
export async function openDrippers(port: number, count: number): Promise<Drippers> {
  const conns: Deno.Conn[] = [];
  try {
    while (conns.length < count) {
      const batch = Math.min(50, count - conns.length);
      conns.push(
        ...await Promise.all(
          Array.from({ length: batch }, () => Deno.connect({ hostname: "127.0.0.1", port })),
        ),
      );
    }
  } catch (error) {
    for (const conn of conns) conn.close();
    throw error;
  }
  return new Drippers(conns);
}

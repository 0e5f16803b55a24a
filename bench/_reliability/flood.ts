/**
 * The flood scenario: one client sends a stream of bytes with no newline at all while a second client
 * keeps making PING round trips. The text and json protocols must answer the flood with one
 * line-too-long error and keep their memory bounded; echo has no line limit and streams every byte
 * back, which the flooding client reads and counts while it sends.
 *
 * @module
 */
import { peakRssBytes } from "./process_probe.ts";

/** The protocols of `linesock serve`. */
export type Protocol = "echo" | "text" | "json";

/** Options of {@linkcode runFlood}. */
export interface FloodOptions {
  /** The server's TCP port on 127.0.0.1. */
  port: number;
  /** The server's pid, for its peak memory. */
  pid: number;
  /** What the server speaks. */
  protocol: Protocol;
  /** Bytes to send without a newline. */
  bytes: number;
  /** One PING round trip must complete after each this many bytes. @default {8 MiB} */
  pingEveryBytes?: number;
  /** Give up after this long. @default {600000} */
  timeoutMs?: number;
}

/** What a flood measured. */
export interface FloodResult {
  /** Bytes sent on the flooding connection. */
  sentBytes: number;
  /** Bytes that came back on it (echo: everything; other protocols: the error line). */
  receivedBytes: number;
  /** Received bytes that were not the flood's own byte (echo only). */
  foreignBytes: number;
  /** The reply lines on the flooding connection (text and json). */
  replies: string[];
  /** PING round trips answered correctly while the flood was in progress. */
  pings: number;
  /** The server's peak resident memory before and after, in bytes. */
  peakRssBefore: number;
  /** The server's peak resident memory after the flood, in bytes. */
  peakRssAfter: number;
  /** How long the flood took, in ms. */
  durationMs: number;
}

/** The ping request and its answer, per protocol. */
export const PING: Record<Protocol, { request: string; reply: string }> = {
  echo: { request: "PING", reply: "PING" },
  text: { request: "PING", reply: "PONG" },
  json: { request: '{"command":"ping"}', reply: '{"status":0,"message":"pong","extra":null}' },
};

const FLOOD_BYTE = 0x78; // "x"
const CHUNK_BYTES = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Floods a server with `bytes` bytes that contain no newline, then half-closes and reads to the end.
 * @returns What was sent, received and answered.
 */
export async function runFlood(options: FloodOptions): Promise<FloodResult> {
  const pingEvery = options.pingEveryBytes ?? 8 * CHUNK_BYTES;
  const deadline = performance.now() + (options.timeoutMs ?? 600_000);
  const peakRssBefore = await peakRssBytes(options.pid);
  const pinger = await Pinger.open(options.port, options.protocol);
  const flood = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
  const started = performance.now();
  try {
    let receivedBytes = 0;
    let foreignBytes = 0;
    const received: Uint8Array[] = [];
    const reading = (async () => {
      const buffer = new Uint8Array(256 * 1024);
      for (let n; (n = await flood.read(buffer)) !== null;) {
        receivedBytes += n;
        if (options.protocol === "echo") {
          for (let index = 0; index < n; index++) if (buffer[index] !== FLOOD_BYTE) foreignBytes++;
        } else if (receivedBytes <= 64 * 1024) {
          received.push(buffer.slice(0, n));
        }
      }
    })();
    // Awaited below; a failure before then must not become an unhandled rejection.
    reading.catch(() => {});
    const chunk = new Uint8Array(CHUNK_BYTES).fill(FLOOD_BYTE);
    let sentBytes = 0;
    let nextPing = 0;
    while (sentBytes < options.bytes) {
      if (performance.now() > deadline) throw new Error(`flood timed out after ${sentBytes} bytes`);
      if (sentBytes >= nextPing) {
        await pinger.roundTrip();
        nextPing += pingEvery;
      }
      const piece = chunk.subarray(0, Math.min(chunk.length, options.bytes - sentBytes));
      for (let offset = 0; offset < piece.length;) {
        offset += await flood.write(piece.subarray(offset));
      }
      sentBytes += piece.length;
    }
    // One more round trip while the over-long line is still open on the flooding connection.
    await pinger.roundTrip();
    await flood.closeWrite();
    await withDeadline(reading, deadline, "the end of the flooding connection");
    const durationMs = performance.now() - started;
    const text = decoder.decode(concat(received));
    const replies = text === "" ? [] : text.replace(/\n$/, "").split("\n");
    return {
      sentBytes,
      receivedBytes,
      foreignBytes,
      replies: options.protocol === "echo" ? [] : replies,
      pings: pinger.answered,
      peakRssBefore,
      peakRssAfter: await peakRssBytes(options.pid),
      durationMs,
    };
  } finally {
    flood.close();
    pinger.close();
  }
}

/** A second client that makes one PING round trip at a time and checks every answer. */
export class Pinger {
  readonly #conn: Deno.Conn;
  readonly #request: Uint8Array;
  readonly #reply: string;
  readonly #buffer = new Uint8Array(4096);
  answered = 0;

  private constructor(conn: Deno.Conn, protocol: Protocol) {
    this.#conn = conn;
    this.#request = encoder.encode(`${PING[protocol].request}\n`);
    this.#reply = `${PING[protocol].reply}\n`;
  }

  /** Connects a pinger. */
  static async open(port: number, protocol: Protocol): Promise<Pinger> {
    return new Pinger(await Deno.connect({ hostname: "127.0.0.1", port }), protocol);
  }

  /** Sends one PING and waits (at most `ms`) for its exact answer. */
  async roundTrip(ms = 10_000): Promise<void> {
    await this.#conn.write(this.#request);
    let length = 0;
    const reading = (async () => {
      while (!this.#buffer.subarray(0, length).includes(0x0a)) {
        const n = await this.#conn.read(this.#buffer.subarray(length));
        if (n === null) throw new Error("the server closed the pinging connection");
        length += n;
      }
    })();
    reading.catch(() => {});
    await withDeadline(reading, performance.now() + ms, "a PING answer during the flood");
    const reply = decoder.decode(this.#buffer.subarray(0, length));
    if (reply !== this.#reply) throw new Error(`PING answered ${JSON.stringify(reply)}`);
    this.answered++;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Waits for `promise` until `deadline` (a performance.now() time). */
export async function withDeadline<T>(
  promise: Promise<T>,
  deadline: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Timed out waiting for ${what}`)),
          Math.max(0, deadline - performance.now()),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

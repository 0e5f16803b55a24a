/**
 * A raw test client for line servers: writes bytes, reads reply lines one at a time or everything up
 * to the server's close, every wait bounded. It uses `Deno.connect` and `conn.read()` directly, so
 * tests see exactly the bytes the server sent.
 *
 * @module
 */
import { within } from "./timeouts.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where to connect: a listener address, or a port on 127.0.0.1. */
export type Target = Deno.Addr | number;

/** One raw connection to a server under test. */
export class LineSession implements AsyncDisposable {
  readonly conn: Deno.Conn;
  #pending = new Uint8Array(0);
  #ended = false;
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Connects to `target`. */
  static async open(target: Target): Promise<LineSession> {
    if (typeof target === "number") {
      return new LineSession(await Deno.connect({ hostname: "127.0.0.1", port: target }));
    }
    if (target.transport === "unix") {
      return new LineSession(await Deno.connect({ transport: "unix", path: target.path }));
    }
    if (target.transport !== "tcp") throw new Error(`cannot connect to ${target.transport}`);
    return new LineSession(await Deno.connect({ hostname: target.hostname, port: target.port }));
  }

  /** This end's address as a server sees it, `HOST:PORT` (a TCP connection only). */
  get peer(): string {
    const { hostname, port } = this.conn.localAddr as Deno.NetAddr;
    return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  }

  /** Writes text (UTF-8) or bytes, all of it. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.conn.write(bytes.subarray(offset));
    }
  }

  /** Half-closes: the server sees end of input. */
  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  /** Reads one more chunk into the pending bytes; false at end of input. */
  async #fill(ms: number): Promise<boolean> {
    if (this.#ended) return false;
    const buffer = new Uint8Array(64 * 1024);
    let count: number | null;
    try {
      count = await within(this.conn.read(buffer), ms, "a reply from the server");
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) count = null;
      else throw error;
    }
    if (count === null) {
      this.#ended = true;
      return false;
    }
    const joined = new Uint8Array(this.#pending.length + count);
    joined.set(this.#pending);
    joined.set(buffer.subarray(0, count), this.#pending.length);
    this.#pending = joined;
    return true;
  }

  /** The next line as bytes (without `\n`), or `null` once the server closed. */
  async readLineBytes(ms = 10_000): Promise<Uint8Array | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const newline = this.#pending.indexOf(0x0a);
      if (newline !== -1) {
        const line = this.#pending.slice(0, newline);
        this.#pending = this.#pending.slice(newline + 1);
        return line;
      }
      if (!(await this.#fill(Math.max(1, deadline - Date.now())))) {
        if (this.#pending.length === 0) return null;
        const rest = this.#pending;
        this.#pending = new Uint8Array(0);
        return rest;
      }
    }
  }

  /** The next line as text, or `null` once the server closed. */
  async readLine(ms = 10_000): Promise<string | null> {
    const line = await this.readLineBytes(ms);
    return line === null ? null : decoder.decode(line);
  }

  /** The next `count` lines; fails if the server closes first. */
  async readLines(count: number, ms = 10_000): Promise<string[]> {
    const lines: string[] = [];
    while (lines.length < count) {
      const line = await this.readLine(ms);
      if (line === null) throw new Error(`server closed after ${lines.length} of ${count} lines`);
      lines.push(line);
    }
    return lines;
  }

  /** Everything up to the server's close, as bytes. */
  async readAllBytes(ms = 10_000): Promise<Uint8Array> {
    const deadline = Date.now() + ms;
    while (await this.#fill(Math.max(1, deadline - Date.now()))) {
      // Keep reading until the server closes.
    }
    const all = this.#pending;
    this.#pending = new Uint8Array(0);
    return all;
  }

  /** Everything up to the server's close, as lines (a final line without `\n` included). */
  async readAll(ms = 10_000): Promise<string[]> {
    const text = decoder.decode(await this.readAllBytes(ms));
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines;
  }

  /** Sends `lines` (each with `\n`), half-closes, and returns every reply line. */
  async exchange(lines: string[], ms = 10_000): Promise<string[]> {
    await this.write(lines.map((line) => `${line}\n`).join(""));
    await this.closeWrite();
    return await this.readAll(ms);
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Connects, sends `lines`, half-closes and returns all replies. */
export async function exchange(target: Target, lines: string[], ms = 10_000): Promise<string[]> {
  await using session = await LineSession.open(target);
  return await session.exchange(lines, ms);
}

/**
 * {@linkcode runLines}: runs a protocol (or a handler) over one connection without a socket, as a
 * client that sends some input and then half-closes (`nc -N`) would see it: the real session engine
 * frames the input (split into chunks anywhere), runs the protocol, keeps its replies in order, and
 * closes; the result is every byte written back, whether the connection closed before the input
 * ran out, and whether the protocol asked for the server's shutdown.
 *
 * For protocol tests and experiments; the socket's own behaviour (timeouts, backpressure, slots,
 * TLS, the PROXY header) needs {@linkcode serve}.
 *
 * @example A protocol's replies, without a socket
 * ```ts
 * import { runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const result = await runLines((line) => line === "bye" ? undefined : `you said ${line}`, [
 *   "hel",
 *   "lo\nbye\nwor",
 *   "ld", // a last line without \n is answered when the input ends
 * ]);
 * assert.deepEqual(result.lines, ["you said hello", "you said world"]);
 * assert.equal(result.closed, false);
 * assert.equal(result.stats.linesIn, 3);
 * ```
 *
 * @example A close, and the options of serve that apply to one connection
 * ```ts
 * import { runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const result = await runLines((line) => line, "one\ntwo\nthree\n", {
 *   greeting: "hi",
 *   closeAfterLines: 2,
 * });
 * assert.equal(new TextDecoder().decode(result.bytes), "hi\none\ntwo\n");
 * assert.equal(result.closed, true);
 * assert.equal(result.reason, "closed after 2 lines");
 * ```
 *
 * @module
 */
import type { LineFramerOptions } from "../framing/line_framer.ts";
import { type LineHandler, type LineProtocol, protocolOf } from "./protocol.ts";
import type { ServeOptions, ServerStats } from "./serve.ts";
import { Session, type SessionHost, sessionSettings } from "./session.ts";
import type { SocketConn } from "./session_io.ts";
import { runSession } from "./session_loop.ts";
import { emptyStats } from "./_stats.ts";

/** The input of {@linkcode runLines}: text (UTF-8), bytes, or the chunks in which they arrive. */
export type RunLinesInput = string | Uint8Array | Iterable<string | Uint8Array>;

/** Options of {@linkcode runLines}: the options of {@linkcode serve} that apply to one connection. */
export interface RunLinesOptions extends
  Pick<
    ServeOptions,
    "maxLineBytes" | "closeAfterLines" | "greeting" | "writeBufferBytes" | "invalidReply"
  > {
  /** The connection's id. @default {1} */
  id?: number;
  /**
   * The peer's address.
   * @default {{ transport: "tcp", hostname: "127.0.0.1", port: 50000 }}
   */
  remoteAddr?: Deno.Addr;
}

/** What {@linkcode runLines} saw. */
export interface RunLinesResult {
  /** Every byte the connection sent back, in order. */
  bytes: Uint8Array;
  /**
   * `bytes` as UTF-8 text (invalid sequences replaced by U+FFFD) cut at each `\n`; a last line
   * without `\n` is included.
   */
  lines: string[];
  /**
   * Whether the connection closed before the input ran out: a command such as `QUIT`, a
   * `close()`, the line budget (`closeAfterLines`). `false` when it ended because the input did.
   */
  closed: boolean;
  /** Why the connection closed, as the server logs it (`closed by client` when the input ended). */
  reason: string;
  /** Whether the protocol asked for the server's shutdown (`requestShutdown()`). */
  shutdownRequested: boolean;
  /** The connection's counters: lines and bytes each way, and errors reported. */
  stats: ServerStats;
}

const encoder = new TextEncoder();

/**
 * Runs a protocol over one in-memory connection: sends `input`, half-closes, and collects what comes
 * back until the connection closes.
 * @param protocol A function of text lines, or a byte-level {@linkcode LineProtocol}.
 * @param input What the client sends: text, bytes, or chunks of either (each arrives as one read,
 *   or several when it is larger than the server's read buffer).
 * @param options Options of {@linkcode serve} that apply to one connection, and who the peer is.
 * @returns What the connection sent back and how it ended.
 *
 * @example A protocol that asks for the server's shutdown
 * ```ts
 * import { type LineProtocol, runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const stopper: LineProtocol = {
 *   onLine(line, context) {
 *     context.requestShutdown();
 *     context.close("stop");
 *     return line.length === 0 ? "empty" : "stopping";
 *   },
 * };
 * const result = await runLines(stopper, "now\nnever read\n");
 * assert.deepEqual(result.lines, ["stopping"]);
 * assert.equal(result.shutdownRequested, true);
 * assert.equal(result.reason, "stop");
 * ```
 */
export async function runLines(
  protocol: LineHandler | LineProtocol,
  input: RunLinesInput,
  options: RunLinesOptions = {},
): Promise<RunLinesResult> {
  const chunks = typeof input === "string" || input instanceof Uint8Array ? [input] : [...input];
  const conn = new MemoryConn(
    chunks.map((chunk) => typeof chunk === "string" ? encoder.encode(chunk) : chunk),
    options.remoteAddr ?? { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  );
  const host = new SingleSessionHost(protocolOf(protocol, options.invalidReply), options);
  const session = new Session(host, conn, options.id ?? 1);
  host.session = session;
  host.stats.connections = 1;
  await runSession(session);
  const bytes = conn.written();
  const text = new TextDecoder().decode(bytes);
  const lines = text === "" ? [] : text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return {
    bytes,
    lines,
    closed: !session.inputEnded,
    reason: session.closeReason ?? "closed by client",
    shutdownRequested: host.shutdownRequested,
    stats: host.stats,
  };
}

/** The server of one connection, as its session sees it. */
class SingleSessionHost implements SessionHost {
  readonly protocol: LineProtocol;
  readonly options: ServeOptions;
  readonly stats: ServerStats = emptyStats();
  readonly highWater: number;
  readonly closeAfter: number;
  readonly framerOptions: LineFramerOptions;
  session: Session | undefined;
  shutdownRequested = false;

  constructor(protocol: LineProtocol, options: RunLinesOptions) {
    this.protocol = protocol;
    this.options = options;
    ({
      highWater: this.highWater,
      closeAfter: this.closeAfter,
      framerOptions: this.framerOptions,
    } = sessionSettings(protocol, options));
  }

  claimAddress(): undefined {
    return undefined;
  }

  ended(): void {}

  requestShutdown(): void {
    this.shutdownRequested = true;
    // As a server's shutdown would: the connection finishes what it received, then closes.
    queueMicrotask(() => this.session?.drain());
  }
}

/** A connection in memory: reads deliver the input's chunks, then its end; writes are kept. */
class MemoryConn implements SocketConn {
  readonly remoteAddr: Deno.Addr;
  readonly #input: Uint8Array[];
  #offset = 0;
  readonly #output: Uint8Array[] = [];
  #writeClosed = false;
  #closed = false;

  constructor(input: Uint8Array[], remoteAddr: Deno.Addr) {
    this.#input = input.filter((chunk) => chunk.length > 0);
    this.remoteAddr = remoteAddr;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    const chunk = this.#input[0];
    if (chunk === undefined) return Promise.resolve(null);
    const count = Math.min(buffer.length, chunk.length - this.#offset);
    buffer.set(chunk.subarray(this.#offset, this.#offset + count));
    this.#offset += count;
    if (this.#offset === chunk.length) {
      this.#input.shift();
      this.#offset = 0;
    }
    return Promise.resolve(count);
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    if (this.#writeClosed) return Promise.reject(new Deno.errors.BrokenPipe("write after FIN"));
    this.#output.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }

  closeWrite(): Promise<void> {
    this.#writeClosed = true;
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
  }

  /** Everything written, joined. */
  written(): Uint8Array {
    const length = this.#output.reduce((sum, chunk) => sum + chunk.length, 0);
    const joined = new Uint8Array(length);
    let offset = 0;
    for (const chunk of this.#output) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    return joined;
  }
}

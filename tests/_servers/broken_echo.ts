/**
 * Deliberately broken echo servers, each with one realistic bug, to prove that the echo conformance
 * suite and the load generator can fail. They are written from scratch on `Deno.listen` (not on
 * linesock's server) so that linesock's own code cannot hide a bug.
 *
 * @module
 */

/** The bugs on offer. */
export type BrokenEchoKind =
  /** Echoes every byte except `\r`. */
  | "drops-cr"
  /** Echoes complete lines; a final line without `\n` is dropped at half-close. */
  | "loses-unterminated-final-line"
  /** Echoes lines, cutting each one longer than 4096 bytes (without `\n`) to 4096. */
  | "truncates-long-lines"
  /** Echoes bytes, but when one read holds two or more `\n`, the first is dropped (two lines merged). */
  | "merges-two-lines"
  /** Echoes each line only after a delay (`delayMs`), one line after another. */
  | "delays-replies"
  /** Echoes every byte, but flips the lowest bit of the byte at stream offsets 1000, 1000+65536, … */
  | "corrupts-bytes";

/** A running broken server. */
export interface BrokenEcho extends AsyncDisposable {
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
}

const LF = 0x0a;
const TRUNCATE_AT = 4096;
const CORRUPT_FIRST = 1000;
const CORRUPT_EVERY = 65536;

/**
 * Starts a broken echo server on a free loopback port.
 * @param kind Which bug.
 * @param options `delayMs` for `delays-replies` (default 100).
 * @returns The server; `await using` stops it and closes every connection.
 */
export function startBrokenEcho(
  kind: BrokenEchoKind,
  options: { delayMs?: number } = {},
): BrokenEcho {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stopping = new AbortController();
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const handler = handle(kind, conn, stopping.signal, options.delayMs ?? 100)
          .catch(() => {})
          .finally(() => {
            conns.delete(conn);
            handlers.delete(handler);
            try {
              conn.close();
            } catch {
              // Closed already.
            }
          });
        handlers.add(handler);
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      stopping.abort();
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      await Promise.allSettled([...handlers]);
    },
  };
}

async function handle(
  kind: BrokenEchoKind,
  conn: Deno.Conn,
  signal: AbortSignal,
  delayMs: number,
): Promise<void> {
  switch (kind) {
    case "drops-cr":
      return await relay(conn, (chunk) => chunk.filter((byte) => byte !== 0x0d));
    case "corrupts-bytes": {
      let offset = 0;
      return await relay(conn, (chunk) => {
        const out = chunk.slice();
        for (let i = 0; i < out.length; i++) {
          const at = offset + i;
          if (at >= CORRUPT_FIRST && (at - CORRUPT_FIRST) % CORRUPT_EVERY === 0) out[i]! ^= 1;
        }
        offset += out.length;
        return out;
      });
    }
    case "loses-unterminated-final-line":
      return await lines(conn, {
        line: (line) => [line],
        end: () => undefined,
      });
    case "truncates-long-lines":
      return await lines(conn, {
        line: (line) => [line.length > TRUNCATE_AT ? line.subarray(0, TRUNCATE_AT) : line],
        end: (rest) => rest,
      });
    case "merges-two-lines":
      return await relay(conn, (chunk) => {
        const first = chunk.indexOf(LF);
        if (first === -1 || chunk.indexOf(LF, first + 1) === -1) return chunk;
        const out = new Uint8Array(chunk.length - 1);
        out.set(chunk.subarray(0, first));
        out.set(chunk.subarray(first + 1), first);
        return out;
      });
    case "delays-replies":
      return await lines(conn, {
        line: (line) => [line],
        end: (rest) => rest,
        before: () => delay(delayMs, signal),
      });
  }
}

/** A byte relay that passes each chunk through `change`. */
async function relay(conn: Deno.Conn, change: (chunk: Uint8Array) => Uint8Array): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (let count; (count = await conn.read(buffer)) !== null;) {
    await writeAll(conn, change(buffer.subarray(0, count)));
  }
}

interface LineRules {
  /** The lines (without `\n`) to send for one received line. */
  line(line: Uint8Array): Uint8Array[];
  /** Raw bytes to send at end of input, given the unterminated rest (if any). */
  end(rest: Uint8Array | undefined): Uint8Array | undefined;
  /** Waited for before each line's reply. */
  before?(): Promise<void>;
}

/** A line echo that frames lines itself and applies `rules`. */
async function lines(conn: Deno.Conn, rules: LineRules): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let partial: Uint8Array[] = [];
  for (let count; (count = await conn.read(buffer)) !== null;) {
    const chunk = buffer.subarray(0, count);
    let start = 0;
    for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, start)) {
      const line = concat([...partial, chunk.subarray(start, at)]);
      partial = [];
      start = at + 1;
      if (rules.before) await rules.before();
      for (const reply of rules.line(line)) await writeAll(conn, concat([reply, LF_BYTES]));
    }
    if (start < chunk.length) partial.push(chunk.slice(start));
  }
  const last = rules.end(partial.length > 0 ? concat(partial) : undefined);
  if (last && last.length > 0) await writeAll(conn, last);
}

const LF_BYTES = new Uint8Array([LF]);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const result = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

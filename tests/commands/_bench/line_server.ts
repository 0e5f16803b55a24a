/**
 * A small line server in the test's own process, for the servers `linesock serve` will not be: one
 * that answers wrongly now and then, one that stops answering, one that counts what it received
 * so a test can wait for the load to be running. Written on `Deno.listen`, not on linesock's
 * server, so that linesock's own code cannot hide a bug in the client.
 *
 * @module
 */

/** What the server answers to one line: lines, or `undefined` for nothing (a stall). */
export type Answer = (line: string, index: number) => string[] | undefined;

/** A running test server. */
export interface LineServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Its address as `linesock` takes it. */
  readonly url: string;
  /** Lines received so far, all connections together. */
  readonly received: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Resolves once at least `count` lines have arrived. */
  receivedAtLeast(count: number): Promise<void>;
}

const LF = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Starts a line server on a free loopback port.
 * @param answer What to answer to each line (`index`: the line's number over all connections).
 * @returns The server; `await using` stops it and closes every connection.
 */
export function startLineServer(answer: Answer): LineServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  let received = 0;
  let connections = 0;
  const waiters: { count: number; resolve(): void }[] = [];
  const counted = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (received >= waiters[i]!.count) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const serveOne = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let pending = new Uint8Array(0);
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) return;
      const data = new Uint8Array(pending.length + count);
      data.set(pending);
      data.set(buffer.subarray(0, count), pending.length);
      let start = 0;
      const out: string[] = [];
      for (let at = data.indexOf(LF); at !== -1; at = data.indexOf(LF, start)) {
        const reply = answer(decoder.decode(data.subarray(start, at)), received++);
        if (reply) out.push(...reply);
        start = at + 1;
      }
      pending = data.slice(start);
      counted();
      if (out.length > 0) {
        const bytes = encoder.encode(out.map((line) => line + "\n").join(""));
        for (let written = 0; written < bytes.length;) {
          written += await conn.write(bytes.subarray(written));
        }
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conns.add(conn);
        const handler = serveOne(conn).catch(() => {}).finally(() => {
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
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `tcp://127.0.0.1:${port}`,
    get received() {
      return received;
    },
    get connections() {
      return connections;
    },
    receivedAtLeast(count) {
      if (received >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      await accepting;
      await Promise.all(handlers);
    },
  };
}

/**
 * Internal: the HTTP/1.1 server of the metrics endpoint, just enough of it for `GET` and `HEAD`
 * of a few paths, with the bounds `Deno.serve` does not offer: at most `maxConnections` open at
 * once (one more is closed at once, unanswered), and a request head that has not arrived whole
 * within `requestTimeoutMs` (or is longer than 8 KiB) ends its connection. Each connection
 * carries one request and is closed after its answer (`connection: close`), which scrapers and
 * health checks handle as a matter of course; a request body is never read.
 *
 * @example
 * ```ts
 * import { serveHttp } from "./_http_server.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serveHttp(
 *   { hostname: "127.0.0.1", port: 0, maxConnections: 4, requestTimeoutMs: 5000 },
 *   (method, path) => ({ status: 200, headers: {}, body: `${method} ${path}\n` }),
 * );
 * const response = await fetch(`http://127.0.0.1:${server.addr.port}/x?y`);
 * assert.equal(await response.text(), "GET /x\n");
 * ```
 *
 * @module
 */

/** An answer: its status, its headers (content-length and connection are added), its body. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Answers a request: its method and its path (without the query). */
export type HttpHandler = (method: string, path: string) => HttpAnswer | Promise<HttpAnswer>;

/** Where to listen and the bounds. */
export interface HttpServerOptions {
  readonly hostname: string;
  readonly port: number;
  /** Connections open at once; one more is closed as soon as it is accepted. */
  readonly maxConnections: number;
  /** How long a connection may take to send its request head. */
  readonly requestTimeoutMs: number;
  /** Called with an error a handler threw (the client gets a 500). */
  readonly onError?: (error: unknown) => void;
}

/** A running server. */
export interface HttpServer extends AsyncDisposable {
  readonly addr: Deno.NetAddr;
  /** Open connections now (for tests and logs). */
  readonly connections: number;
  /** Stops accepting, ends connections still sending their request, answers the others. */
  shutdown(): Promise<void>;
}

/** The longest request head read; a longer one gets 431 and the close. */
const MAX_HEAD_BYTES = 8192;
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Listens and serves (see the module documentation).
 * @param options Where to listen and the bounds.
 * @param handler The answer to each request.
 * @returns The server, listening.
 * @throws {Deno.errors.AddrInUse} (and the other errors of `Deno.listen`) When it cannot listen.
 */
export function serveHttp(options: HttpServerOptions, handler: HttpHandler): HttpServer {
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  /** Open connections, and whether each is still reading its request (shutdown ends those). */
  const open = new Map<Deno.Conn, { reading: boolean }>();
  const handlers = new Set<Promise<void>>();

  const handle = async (conn: Deno.Conn, state: { reading: boolean }) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timedOut = new Promise<"timeout">((resolve) =>
        timer = setTimeout(() => resolve("timeout"), options.requestTimeoutMs)
      );
      const head = await Promise.race([readHead(conn), timedOut]);
      clearTimeout(timer);
      state.reading = false;
      if (head === "timeout") return await write(conn, plain(408, "request timeout\n"), false);
      if (head === "too long") return await write(conn, plain(431, "request too large\n"), false);
      if (head === undefined) return; // closed before a whole head
      const request = parseRequestLine(head);
      if (request === undefined) return await write(conn, plain(400, "bad request\n"), false);
      let answer: HttpAnswer;
      try {
        answer = await handler(request.method, request.path);
      } catch (error) {
        options.onError?.(error);
        answer = plain(500, "internal error\n");
      }
      await write(conn, answer, request.method === "HEAD");
    } catch {
      // The client went away (reset, closed): nothing to answer.
    } finally {
      clearTimeout(timer);
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // Closed already (by shutdown).
      }
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener was closed
      }
      if (open.size >= options.maxConnections) {
        conn.close();
        continue;
      }
      const state = { reading: true };
      open.set(conn, state);
      const handling = handle(conn, state);
      handlers.add(handling);
      void handling.finally(() => handlers.delete(handling));
    }
  })();

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      listener.close();
      await accepting;
      for (const [conn, state] of open) {
        if (!state.reading) continue;
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      await Promise.allSettled([...handlers]);
    })();
  return {
    addr: listener.addr as Deno.NetAddr,
    get connections() {
      return open.size;
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/** A plain-text answer. */
export function plain(
  status: number,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): HttpAnswer {
  return {
    status,
    body,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  };
}

/**
 * Reads up to the blank line that ends a request head.
 * @returns The head's text, `undefined` when the connection ended first, `"too long"` past 8 KiB.
 */
async function readHead(conn: Deno.Conn): Promise<string | undefined | "too long"> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let length = 0;
  for (;;) {
    if (length === buffer.length) return "too long";
    const count = await conn.read(buffer.subarray(length));
    if (count === null) return undefined;
    const scanFrom = Math.max(0, length - 3);
    length += count;
    const text = decoder.decode(buffer.subarray(scanFrom, length));
    const end = text.indexOf("\r\n\r\n");
    const bareEnd = text.indexOf("\n\n");
    if (end !== -1 || bareEnd !== -1) return decoder.decode(buffer.subarray(0, length));
  }
}

/** `GET /metrics HTTP/1.1` → its method and path; `undefined` when it is not a request line. */
function parseRequestLine(head: string): { method: string; path: string } | undefined {
  const line = head.slice(0, head.search(/\r?\n/));
  const match = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line);
  if (match === null) return undefined;
  try {
    return { method: match[1]!, path: new URL(match[2]!, "http://localhost").pathname };
  } catch {
    return undefined;
  }
}

async function write(conn: Deno.Conn, answer: HttpAnswer, headOnly: boolean): Promise<void> {
  const body = encoder.encode(answer.body);
  const headers = {
    ...answer.headers,
    "content-length": String(body.length),
    connection: "close",
  };
  const head = `HTTP/1.1 ${answer.status} ${REASONS[answer.status] ?? "Unknown"}\r\n` +
    Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("") + "\r\n";
  const bytes = encoder.encode(head);
  const message = headOnly ? bytes : concat(bytes, body);
  for (let done = 0; done < message.length;) done += await conn.write(message.subarray(done));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

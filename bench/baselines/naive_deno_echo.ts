/**
 * Naive Deno line echo server — a benchmark baseline.
 *
 * This is the "usual recipe" a typical Deno user would write for a line
 * protocol: decode the connection's readable stream with `TextDecoderStream`,
 * split it into lines with a small string-splitting `TransformStream`, and
 * write every line back with one awaited `writer.write()` per line. It is
 * meant as a fair, idiomatic comparison point for linesock, not a strawman.
 *
 * Usage:
 *
 *     deno run --allow-net bench/baselines/naive_deno_echo.ts [--port N] [--host H]
 *
 * `--port 0` (the default) picks a free port. The first stdout line is
 * exactly `listening on tcp://HOST:PORT`. Serves until SIGINT/SIGTERM.
 *
 * Known limitation of this recipe (left as-is on purpose, since a typical user
 * hits it too): when the client half-closes (sends FIN, e.g.
 * `printf 'a\nb\n' | socat - TCP:...`), `conn.readable` closes the whole
 * resource at EOF, so echoes still pending after the first line fail with
 * `BadResource` and are dropped. See denoland/deno#22258. Clients that keep
 * their write side open until they have read all echoes are unaffected.
 *
 * @module
 */
import { NaiveLineSplitStream } from "./naive_line_split_stream.ts";

function parseArgs(args: string[]): { host: string; port: number } {
  let host = "127.0.0.1";
  let port = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`missing value for ${arg}`);
      return v;
    };
    if (arg === "--port") port = Number(value());
    else if (arg.startsWith("--port=")) port = Number(arg.slice(7));
    else if (arg === "--host") host = value();
    else if (arg.startsWith("--host=")) host = arg.slice(7);
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid --port: ${port}`);
  }
  return { host, port };
}

async function handle(conn: Deno.TcpConn): Promise<void> {
  const encoder = new TextEncoder();
  const writer = conn.writable.getWriter();
  try {
    const lines = conn.readable
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new NaiveLineSplitStream());
    for await (const line of lines) {
      await writer.write(encoder.encode(line + "\n"));
    }
  } catch {
    // Peer reset or similar: just drop the connection.
  } finally {
    try {
      await writer.close();
    } catch {
      // Already closed.
    }
  }
}

const { host, port } = parseArgs(Deno.args);
const listener = Deno.listen({ hostname: host, port });
const addr = listener.addr as Deno.NetAddr;
console.log(`listening on tcp://${addr.hostname}:${addr.port}`);

const shutdown = () => {
  listener.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);

for await (const conn of listener) {
  handle(conn);
}

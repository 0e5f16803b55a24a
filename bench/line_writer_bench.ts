/**
 * Batched writes: {@linkcode LineWriter} turning a burst of small lines into few writes, against one
 * awaited write per line, into the same sink.
 *
 * Two sinks: an in-memory sink (the cost of the writer itself) and a real loopback TCP connection
 * whose peer reads everything (what a pipelined server pays in syscalls). Each iteration sends 10,000
 * lines of 64 B.
 *
 * Run: `deno bench --allow-all bench/line_writer_bench.ts` (see docs/benchmarks.md).
 *
 * @module
 */
import { type ByteWriter, LineWriter } from "../lib/framing/line_writer.ts";

const LINES = 10_000;
const LINE = "x".repeat(63);
const encoder = new TextEncoder();
const TOTAL_BYTES = LINES * (LINE.length + 1);

/** Counts bytes; resolves at once, like a socket with room in its send buffer. */
class MemorySink implements ByteWriter {
  bytes = 0;
  write(bytes: Uint8Array): Promise<number> {
    this.bytes += bytes.length;
    return Promise.resolve(bytes.length);
  }
}

function expectBytes(actual: number): void {
  if (actual !== TOTAL_BYTES) throw new Error(`wrote ${actual} bytes, expected ${TOTAL_BYTES}`);
}

const memory = "10,000 lines of 64 B into memory";
Deno.bench({
  name: "encode and await one write per line (memory)",
  group: memory,
  baseline: true,
  async fn() {
    const sink = new MemorySink();
    for (let i = 0; i < LINES; i++) await sink.write(encoder.encode(`${LINE}\n`));
    expectBytes(sink.bytes);
  },
});
Deno.bench({
  name: "LineWriter: enqueue all, one flush (memory)",
  group: memory,
  async fn() {
    const sink = new MemorySink();
    const writer = new LineWriter(sink);
    for (let i = 0; i < LINES; i++) writer.enqueue(LINE);
    await writer.flush();
    expectBytes(sink.bytes);
  },
});
Deno.bench({
  name: "LineWriter: flush after every line, not awaited (memory)",
  group: memory,
  async fn() {
    // Replies produced one by one while a write is in flight still leave in batches.
    const sink = new MemorySink();
    const writer = new LineWriter(sink);
    for (let i = 0; i < LINES; i++) {
      writer.enqueue(LINE);
      void writer.flush();
    }
    await writer.flush();
    expectBytes(sink.bytes);
  },
});

// A real loopback connection; the peer drains it continuously.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const server = await listener.accept();
listener.close();
const draining = (async () => {
  const buffer = new Uint8Array(256 * 1024);
  try {
    while (await client.read(buffer) !== null);
  } finally {
    client.close();
  }
})();
// Closing our side ends the peer's read loop with `null`, which then closes the peer.
addEventListener("unload", () => server.close());
draining.catch((error) => console.error("loopback reader failed:", error));

const tcp = "10,000 lines of 64 B over loopback TCP";
Deno.bench({
  name: "encode and await one conn.write per line (TCP)",
  group: tcp,
  baseline: true,
  async fn() {
    for (let i = 0; i < LINES; i++) await server.write(encoder.encode(`${LINE}\n`));
  },
});
Deno.bench({
  name: "LineWriter on the conn: enqueue all, one flush (TCP)",
  group: tcp,
  async fn() {
    const writer = new LineWriter(server);
    for (let i = 0; i < LINES; i++) writer.enqueue(LINE);
    await writer.flush();
    if (writer.bytesWritten !== TOTAL_BYTES) throw new Error(`wrote ${writer.bytesWritten}`);
  },
});
Deno.bench({
  name: "LineWriter on the conn: flush after every line, not awaited (TCP)",
  group: tcp,
  async fn() {
    const writer = new LineWriter(server);
    for (let i = 0; i < LINES; i++) {
      writer.enqueue(LINE);
      void writer.flush();
    }
    await writer.flush();
    if (writer.bytesWritten !== TOTAL_BYTES) throw new Error(`wrote ${writer.bytesWritten}`);
  },
});

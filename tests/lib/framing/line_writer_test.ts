import assert from "node:assert/strict";
import { type ByteWriter, LineWriter } from "../../../lib/framing/line_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sink that records every write; it accepts at most `maxPerWrite` bytes per call. */
class RecordingSink implements ByteWriter {
  readonly writes: string[] = [];
  readonly #maxPerWrite: number;

  constructor(maxPerWrite = Infinity) {
    this.#maxPerWrite = maxPerWrite;
  }

  write(bytes: Uint8Array): Promise<number> {
    const count = Math.min(bytes.length, this.#maxPerWrite);
    this.writes.push(decoder.decode(bytes.subarray(0, count)));
    return Promise.resolve(count);
  }

  get received(): string {
    return this.writes.join("");
  }
}

/** A sink whose writes complete only when the test says so. */
class ManualSink implements ByteWriter {
  readonly writes: string[] = [];
  readonly #pending: { length: number; done: PromiseWithResolvers<number> }[] = [];
  /** Resolves each time a write starts. */
  #started = Promise.withResolvers<void>();

  write(bytes: Uint8Array): Promise<number> {
    this.writes.push(decoder.decode(bytes));
    const done = Promise.withResolvers<number>();
    this.#pending.push({ length: bytes.length, done });
    this.#started.resolve();
    return done.promise;
  }

  /** Completes the oldest write in full. */
  complete(): void {
    const pending = this.#pending.shift();
    assert.ok(pending, "no write in progress");
    pending.done.resolve(pending.length);
  }

  /** Fails the oldest write. */
  fail(error: Error): void {
    const pending = this.#pending.shift();
    assert.ok(pending, "no write in progress");
    pending.done.reject(error);
  }

  /** Waits until a write has started (bounded by the test's own flow: a write must be due). */
  async nextWrite(): Promise<void> {
    await this.#started.promise;
    this.#started = Promise.withResolvers<void>();
  }

  get inProgress(): number {
    return this.#pending.length;
  }
}

/** Reads `conn` with `read()` until the peer's FIN. */
async function readAll(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  const streaming = new TextDecoder();
  for (let count; (count = await conn.read(buffer)) !== null;) {
    text += streaming.decode(buffer.subarray(0, count), { stream: true });
  }
  return text + streaming.decode();
}

Deno.test("LineWriter", async (t) => {
  await t.step("batches the lines enqueued together into one write", async () => {
    const sink = new RecordingSink();
    const writer = new LineWriter(sink);
    for (let i = 0; i < 100; i++) writer.enqueue(`line ${i}`);
    assert.deepEqual(sink.writes, [], "nothing is written before flush");
    assert.equal(writer.pendingBytes, 790);
    await writer.flush();
    assert.equal(sink.writes.length, 1);
    assert.equal(sink.received, Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
    assert.equal(writer.pendingBytes, 0);
    assert.equal(writer.bytesWritten, encoder.encode(sink.received).length);
    assert.equal(writer.flushing, false);
  });

  await t.step("flushing an empty writer writes nothing", async () => {
    const sink = new RecordingSink();
    const writer = new LineWriter(sink);
    await writer.flush();
    assert.deepEqual(sink.writes, []);
    assert.equal(writer.flushing, false);
  });

  await t.step("text is UTF-8, bytes go as they are, enqueueBytes adds no terminator", async () => {
    const bytes: number[] = [];
    const writer = new LineWriter({
      write(chunk) {
        bytes.push(...chunk);
        return Promise.resolve(chunk.length);
      },
    });
    writer.enqueue("é€😀");
    writer.enqueue(Uint8Array.of(0xff, 0x0d));
    writer.enqueue("");
    writer.enqueueBytes(Uint8Array.of(0x61, 0x62));
    writer.enqueueBytes(new Uint8Array(0));
    await writer.flush();
    assert.deepEqual(bytes, [...encoder.encode("é€😀\n"), 0xff, 0x0d, 0x0a, 0x0a, 0x61, 0x62]);
  });

  await t.step("pendingBytes counts encoded bytes, not characters", () => {
    const writer = new LineWriter(new RecordingSink());
    writer.enqueue("😀");
    assert.equal(writer.pendingBytes, 5);
  });

  await t.step("finishes partial writes", async () => {
    const sink = new RecordingSink(3);
    const writer = new LineWriter(sink);
    writer.enqueue("hello");
    writer.enqueue("world");
    await writer.flush();
    assert.deepEqual(sink.writes, ["hel", "lo\n", "wor", "ld\n"]);
    assert.equal(writer.bytesWritten, 12);
  });

  await t.step("keeps order when lines are enqueued during a flush", async () => {
    const sink = new ManualSink();
    const writer = new LineWriter(sink);
    writer.enqueue("a");
    writer.enqueue("b");
    const first = writer.flush();
    await sink.nextWrite();
    assert.ok(writer.flushing);
    assert.equal(writer.pendingBytes, 0);
    writer.enqueue("c");
    writer.enqueue("d");
    assert.equal(writer.pendingBytes, 4);
    // A second flush joins the one in progress, which also writes what came later.
    const second = writer.flush();
    assert.equal(second, first);
    sink.complete();
    await sink.nextWrite();
    assert.deepEqual(sink.writes, ["a\nb\n", "c\nd\n"]);
    writer.enqueue("e");
    sink.complete();
    await sink.nextWrite();
    sink.complete();
    await first;
    assert.deepEqual(sink.writes, ["a\nb\n", "c\nd\n", "e\n"]);
    assert.equal(writer.flushing, false);
    assert.equal(writer.bytesWritten, 10);
  });

  await t.step("a sink that never completes holds the writer back (backpressure)", async () => {
    const sink = new ManualSink();
    const writer = new LineWriter(sink);
    writer.enqueue("first");
    const flushed = writer.flush();
    await sink.nextWrite();
    for (let i = 0; i < 10; i++) writer.enqueue("0123456789");
    // Nothing more is handed to the sink while its write is pending; the queue is visible.
    assert.equal(writer.pendingBytes, 110);
    assert.equal(writer.flushing, true);
    assert.equal(sink.inProgress, 1);
    assert.equal(writer.bytesWritten, 0);
    let settled = false;
    flushed.then(() => settled = true, () => settled = true);
    await Promise.resolve();
    assert.equal(settled, false);
    // End the test cleanly: the sink fails, the flush reports it.
    sink.fail(new Error("peer gone"));
    await assert.rejects(flushed, /peer gone/);
  });

  await t.step("queuedBytes counts the write in progress; pendingBytes does not", async () => {
    const sink = new ManualSink();
    const writer = new LineWriter(sink);
    writer.enqueue("first");
    const flushed = writer.flush();
    await sink.nextWrite();
    writer.enqueue("second");
    assert.equal(writer.pendingBytes, 7);
    assert.equal(writer.queuedBytes, 13);
    sink.complete();
    await sink.nextWrite();
    assert.equal(writer.queuedBytes, 7);
    sink.complete();
    await flushed;
    assert.equal(writer.queuedBytes, 0);
  });

  await t.step("a partial write leaves the rest counted in queuedBytes", async () => {
    let release!: (count: number) => void;
    const writer = new LineWriter({
      write: () => new Promise<number>((resolve) => release = resolve),
    });
    writer.enqueue("0123456789");
    const flushed = writer.flush();
    assert.equal(writer.queuedBytes, 11);
    release(4);
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(writer.queuedBytes, 7);
    release(7);
    await flushed;
    assert.equal(writer.queuedBytes, 0);
  });

  await t.step("a long string reserves about its size, not three times it", async () => {
    const writer = new LineWriter(new RecordingSink());
    const ascii = "a".repeat(1024 * 1024);
    writer.enqueue(ascii);
    assert.equal(writer.pendingBytes, ascii.length + 1);
    assert.ok(writer.capacityBytes < 1.5 * ascii.length, `${writer.capacityBytes} bytes held`);
    // Non-ASCII text that does not fit the first guess still arrives whole and in order.
    const mixed = "x".repeat(40_000) + "é€😀".repeat(10_000);
    const sink = new RecordingSink();
    const other = new LineWriter(sink);
    other.enqueue(mixed);
    other.enqueue("end");
    await other.flush();
    assert.equal(sink.received, `${mixed}\nend\n`);
    assert.equal(other.bytesWritten, encoder.encode(mixed).length + 5);
  });

  await t.step("buffers are kept across flushes and released by shrink()", async () => {
    const writer = new LineWriter(new RecordingSink());
    const line = "z".repeat(200 * 1024);
    writer.enqueue(line);
    await writer.flush();
    const held = writer.capacityBytes;
    assert.ok(held >= line.length, `${held} bytes held after a flush`);
    // A second burst of the same size reuses the buffers.
    writer.enqueue(line);
    await writer.flush();
    assert.equal(writer.capacityBytes, held);
    writer.shrink();
    assert.equal(writer.capacityBytes, 0);
    writer.enqueue("after");
    await writer.flush();
    assert.equal(writer.bytesWritten, 2 * (line.length + 1) + 6);
  });

  await t.step("a failing sink rejects the flush; the writer can flush again", async () => {
    const sink = new ManualSink();
    const writer = new LineWriter(sink);
    writer.enqueue("lost");
    const flushed = writer.flush();
    await sink.nextWrite();
    sink.fail(new Error("broken pipe"));
    await assert.rejects(flushed, /broken pipe/);
    assert.equal(writer.flushing, false);
    writer.enqueue("again");
    const retried = writer.flush();
    await sink.nextWrite();
    sink.complete();
    await retried;
    assert.deepEqual(sink.writes, ["lost\n", "again\n"]);
  });

  await t.step("a sink that throws synchronously rejects the flush, not the writer", async () => {
    let fail = true;
    const writes: string[] = [];
    const writer = new LineWriter({
      write(bytes) {
        if (fail) throw new Error("closed");
        writes.push(decoder.decode(bytes));
        return Promise.resolve(bytes.length);
      },
    });
    writer.enqueue("x");
    await assert.rejects(writer.flush(), /closed/);
    assert.equal(writer.flushing, false);
    fail = false;
    writer.enqueue("y");
    await writer.flush();
    assert.deepEqual(writes, ["y\n"]);
  });

  await t.step("lines larger than the retained buffer are written whole", async () => {
    const sink = new RecordingSink();
    const writer = new LineWriter(sink);
    const big = "x".repeat(200 * 1024);
    writer.enqueue(big);
    await writer.flush();
    writer.enqueue(big);
    writer.enqueue("small");
    await writer.flush();
    writer.enqueue("tail");
    await writer.flush();
    assert.deepEqual(sink.writes, [`${big}\n`, `${big}\nsmall\n`, "tail\n"]);
  });

  await t.step("over a real TCP connection: a burst of lines leaves in few writes", async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    using server = await listener.accept();
    let writes = 0;
    const writer = new LineWriter({
      write(bytes) {
        writes++;
        return server.write(bytes);
      },
    });
    const lineCount = 10_000;
    const expected = Array.from({ length: lineCount }, (_, i) => `reply ${i}\n`).join("");
    const received = readAll(client);
    for (let i = 0; i < lineCount; i++) writer.enqueue(`reply ${i}`);
    await writer.flush();
    await server.closeWrite();
    assert.equal(await received, expected);
    assert.ok(writes < lineCount / 100, `${writes} writes for ${lineCount} lines`);
  });
});

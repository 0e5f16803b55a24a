/**
 * Edges of the framing API that the first mutation run of lib/framing found untested
 * (docs/mutation.md): the framer's `midLine` and its reset by `end()`, its constructor's error, a
 * byte-order mark kept by `decodeLine` on its strict path, and the writer's buffer capacity and
 * `shrink()`.
 */
import assert from "node:assert/strict";
import { LineFramer } from "../../../lib/framing/line_framer.ts";
import { decodeLine } from "../../../lib/framing/line_decoder.ts";
import { LineWriter } from "../../../lib/framing/line_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function framer(maxLineBytes = 8) {
  const lines: string[] = [];
  const tooLong: number[] = [];
  const instance = new LineFramer({ maxLineBytes }, {
    onLine: (bytes) => void lines.push(decoder.decode(bytes)),
    onTooLong: (error) => void tooLong.push(error.lineNumber),
  });
  return { instance, lines, tooLong };
}

Deno.test("LineFramer edges", async (t) => {
  await t.step("midLine: true from a line's first byte to its \\n, and while skipping one", () => {
    const { instance, lines, tooLong } = framer(4);
    assert.equal(instance.midLine, false);
    instance.push(encoder.encode("ab"));
    assert.equal(instance.midLine, true);
    instance.push(encoder.encode("\n"));
    assert.equal(instance.midLine, false);
    // Over the limit: nothing is held, yet the line has begun (it is being skipped).
    instance.push(encoder.encode("toolong"));
    assert.equal(instance.bufferedBytes, 0);
    assert.equal(instance.midLine, true);
    instance.push(encoder.encode("still\nok\n"));
    assert.equal(instance.midLine, false);
    assert.deepEqual(lines, ["ab", "ok"]);
    assert.deepEqual(tooLong, [2]);
  });

  await t.step("end() resets: a line skipped as too long does not swallow the next input", () => {
    const { instance, lines } = framer(4);
    instance.push(encoder.encode("far too long"));
    instance.end();
    assert.equal(instance.midLine, false);
    instance.push(encoder.encode("next\n"));
    assert.deepEqual(lines, ["next"]);
  });

  await t.step("a negative limit is refused with a message that names it", () => {
    assert.throws(
      () => new LineFramer({ maxLineBytes: -1 }, { onLine: () => {} }),
      { name: "RangeError", message: "maxLineBytes must be >= 0, got -1" },
    );
  });
});

Deno.test("decodeLine keeps a byte-order mark, also when it decides strictly", () => {
  // A genuine U+FFFD sends the line to the strict decoder, which must not eat the BOM either.
  const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0xef, 0xbf, 0xbd]);
  assert.equal(decodeLine(bytes), "\uFEFFa\uFFFD");
  assert.equal(decodeLine(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), "\uFEFFa");
});

Deno.test("LineWriter: capacityBytes is both buffers; shrink() keeps the one holding bytes", async () => {
  const writer = new LineWriter({ write: (bytes: Uint8Array) => Promise.resolve(bytes.length) });
  assert.equal(writer.capacityBytes, 0);
  writer.enqueue("x".repeat(1000));
  await writer.flush();
  // A second burst while the first is written: afterwards both buffers are kept for reuse.
  writer.enqueue("y".repeat(10));
  const flushing = writer.flush();
  writer.enqueue("z".repeat(5000));
  await flushing;
  await writer.flush();
  writer.enqueue("w"); // queued, not flushed: its buffer must survive shrink()
  const before = writer.capacityBytes;
  assert.ok(before >= 5001 + 1001, `capacity ${before}`);
  writer.shrink();
  const after = writer.capacityBytes;
  assert.ok(after > 0 && after < before, `shrink: ${before} -> ${after}`);
  assert.equal(writer.queuedBytes, 2);
  await writer.flush();
  writer.shrink();
  assert.equal(writer.capacityBytes, 0);
});

Deno.test("LineWriter: long lines arrive whole, however they are encoded", async (t) => {
  /** A sink that keeps every byte. */
  function keepingSink() {
    const chunks: Uint8Array[] = [];
    return {
      write(bytes: Uint8Array) {
        chunks.push(bytes.slice());
        return Promise.resolve(bytes.length);
      },
      text: () => decoder.decode(new Uint8Array(chunks.flatMap((chunk) => [...chunk]))),
    };
  }

  await t.step("bytes larger than any starting buffer, as the first line", async () => {
    const sink = keepingSink();
    const writer = new LineWriter(sink);
    writer.enqueue(new Uint8Array(300_000).fill(0x61));
    await writer.flush();
    assert.equal(sink.text(), "a".repeat(300_000) + "\n");
  });

  await t.step("a long string of 3-byte characters (more than its length in bytes)", async () => {
    const sink = keepingSink();
    const writer = new LineWriter(sink);
    const line = "€".repeat(20_000) + "end";
    writer.enqueue(line);
    writer.enqueue("after");
    await writer.flush();
    assert.equal(sink.text(), `${line}\nafter\n`);
  });

  await t.step("a short string of 3-byte characters that just fills the buffer", async () => {
    // 4 + 1 bytes queued in a 64-byte buffer, then 20 × 3 bytes + \n: exactly the worst case.
    const sink = keepingSink();
    const writer = new LineWriter(sink);
    writer.enqueue("aaaa");
    writer.enqueue("€".repeat(20));
    await writer.flush();
    assert.equal(sink.text(), `aaaa\n${"€".repeat(20)}\n`);
  });

  await t.step("flush() during a write with nothing new queued waits for that write", async () => {
    let release!: () => void;
    const writer = new LineWriter({
      write: (bytes: Uint8Array) =>
        new Promise<number>((resolve) => release = () => resolve(bytes.length)),
    });
    writer.enqueue("one");
    const first = writer.flush();
    let secondDone = false;
    const second = writer.flush().then(() => secondDone = true);
    await Promise.resolve();
    assert.equal(secondDone, false, "the second flush resolved while the write was in flight");
    release();
    await Promise.all([first, second]);
    assert.equal(writer.queuedBytes, 0);
  });
});

/**
 * The framing folder's internals that only the server reaches otherwise (written after the first
 * mutation run of lib/framing, docs/mutation.md): counting `\n` four bytes at a time against a
 * byte-by-byte count at every alignment, where the Nth line ends, the read-buffer sizing policy
 * (grow, cap, shrink after a run of small reads, floor), and the relay reader's two alternating
 * buffers and their holds.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  countNewlines,
  countNewlinesScalar,
  endOfLine,
} from "../../../lib/framing/_count_newlines.ts";
import { MAX_READ_BUFFER_BYTES, ReadBufferSizing } from "../../../lib/framing/_read_buffer.ts";
import { RelayReader } from "../../../lib/framing/_relay_reader.ts";

const naiveCount = (bytes: Uint8Array) => bytes.reduce((n, byte) => n + (byte === 0x0a ? 1 : 0), 0);

function naiveEnd(bytes: Uint8Array, n: number): number {
  let seen = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a && ++seen === n) return i + 1;
  }
  return -1;
}

/**
 * countNewlines hands chunks of 64 bytes and more to WebAssembly: the JavaScript count is checked on
 * its own too (it is what runs where WebAssembly SIMD is missing).
 */
const COUNTERS = [
  ["countNewlines", countNewlines],
  ["countNewlinesScalar", countNewlinesScalar],
] as const;

Deno.test("countNewlines and endOfLine", async (t) => {
  for (const [name, count] of COUNTERS) {
    await t.step(`${name} equals a byte-by-byte count at every offset and length`, () => {
      // Bytes near \n (0x0a), 0x8a and 0x0b catch a wrong bit trick; offsets 0-7 every alignment.
      const byte = fc.constantFrom(0x0a, 0x0a, 0x0b, 0x8a, 0x00, 0xff, 0x7f, 0x2a);
      fc.assert(
        fc.property(
          fc.array(byte, { maxLength: 300, size: "max" }),
          fc.nat(7),
          fc.nat(7),
          (values, from, cut) => {
            const whole = Uint8Array.from(values);
            const view = whole.subarray(
              Math.min(from, whole.length),
              Math.max(from, whole.length - cut),
            );
            assert.equal(count(view), naiveCount(view));
          },
        ),
        { numRuns: 2000 },
      );
    });

    await t.step(`${name}: all \\n, none, and the words past an unaligned start`, () => {
      const buffer = new Uint8Array(40).fill(0x0a);
      for (let offset = 0; offset < 4; offset++) {
        assert.equal(count(buffer.subarray(offset)), 40 - offset);
        assert.equal(count(new Uint8Array(40).subarray(offset)), 0);
      }
      assert.equal(count(new Uint8Array(0)), 0);
    });

    await t.step(`${name}: blocks of words longer than a lane can count (255 \\n each)`, () => {
      // The per-byte counts are summed every 255 words: 256 words of \n in one block would carry.
      for (const words of [254, 255, 256, 511, 1000]) {
        const buffer = new Uint8Array(words * 4 + 4).fill(0x0a);
        for (let offset = 0; offset < 4; offset++) {
          const view = buffer.subarray(offset, offset + words * 4);
          assert.equal(count(view), words * 4, `${words} words at offset ${offset}`);
        }
      }
      const sparse = new Uint8Array(256 * 1024);
      for (let at = 100; at < sparse.length; at += 4097) sparse[at] = 0x0a;
      assert.equal(count(sparse), naiveCount(sparse));
    });
  }

  await t.step("endOfLine is just past the Nth \\n, or -1 when there are fewer", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0x0a, 0x61), { maxLength: 32 }),
        fc.integer({ min: 1, max: 12 }),
        (values, n) => {
          const bytes = Uint8Array.from(values);
          assert.equal(endOfLine(bytes, n), naiveEnd(bytes, n));
        },
      ),
      { numRuns: 1000 },
    );
    const text = new TextEncoder().encode("a\nbb\nccc\n");
    assert.deepEqual([1, 2, 3, 4].map((n) => endOfLine(text, n)), [2, 5, 9, -1]);
  });
});

Deno.test("ReadBufferSizing", async (t) => {
  await t.step("the default maximum is 256 KiB", () => {
    assert.equal(MAX_READ_BUFFER_BYTES, 256 * 1024);
  });

  await t.step("doubles while reads fill it, up to the maximum, never past it", () => {
    const sizing = new ReadBufferSizing(256, 3000);
    assert.equal(sizing.next(256, 256), 512);
    assert.equal(sizing.next(512, 512), 1024);
    assert.equal(sizing.next(2048, 2048), 3000);
    assert.equal(sizing.next(3000, 3000), 3000);
    // A read that does not fill it keeps it.
    assert.equal(sizing.next(512, 511), 512);
  });

  await t.step("halves after 16 small reads in a row, not before, down to the minimum", () => {
    const sizing = new ReadBufferSizing(256, 4096);
    for (let i = 1; i < 16; i++) assert.equal(sizing.next(4096, 1023), 4096, `read ${i}`);
    assert.equal(sizing.next(4096, 1023), 2048, "read 16");
    // The run starts over after a shrink.
    for (let i = 1; i < 16; i++) assert.equal(sizing.next(2048, 10), 2048, `again ${i}`);
    assert.equal(sizing.next(2048, 10), 1024);
    // A quarter exactly is not small; a read in between breaks the run.
    for (let i = 0; i < 20; i++) assert.equal(sizing.next(1024, 256), 1024);
    for (let i = 1; i < 10; i++) sizing.next(1024, 1);
    sizing.next(1024, 600);
    for (let i = 1; i < 16; i++) assert.equal(sizing.next(1024, 1), 1024, `after the break ${i}`);
    // The minimum is a floor: small reads never shrink it further.
    const floor = new ReadBufferSizing(256, 4096);
    for (let i = 0; i < 40; i++) assert.equal(floor.next(256, 1), 256);
    const near = new ReadBufferSizing(300, 4096);
    for (let i = 1; i < 16; i++) near.next(400, 1);
    assert.equal(near.next(400, 1), 300);
  });

  await t.step("a maximum below the minimum is raised to it", () => {
    const sizing = new ReadBufferSizing(1024, 10);
    assert.equal(sizing.max, 1024);
    assert.equal(sizing.next(1024, 1024), 1024);
  });
});

/** A source that hands out scripted chunks and records each buffer it was given. */
class ScriptedSource {
  readonly buffers: Uint8Array[] = [];
  constructor(readonly chunks: (Uint8Array | null)[]) {}
  read(buffer: Uint8Array): Promise<number | null> {
    this.buffers.push(buffer);
    const chunk = this.chunks.shift();
    if (chunk === undefined || chunk === null) return Promise.resolve(null);
    buffer.set(chunk.subarray(0, buffer.length));
    return Promise.resolve(Math.min(chunk.length, buffer.length));
  }
}

Deno.test("RelayReader", async (t) => {
  await t.step("alternates two buffers, counts the bytes, and ends with null", async () => {
    const source = new ScriptedSource([Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5)]);
    const reader = new RelayReader(source, 8, 64);
    assert.deepEqual(await reader.read(), Uint8Array.of(1, 2));
    assert.deepEqual(await reader.read(), Uint8Array.of(3));
    assert.deepEqual(await reader.read(), Uint8Array.of(4, 5));
    assert.equal(reader.bytesRead, 5);
    assert.equal(await reader.read(), null);
    assert.equal(reader.bytesRead, 5);
    // Two buffers taking turns: the first and the third read share one, the second another.
    assert.equal(source.buffers[0]!.buffer, source.buffers[2]!.buffer);
    assert.notEqual(source.buffers[0]!.buffer, source.buffers[1]!.buffer);
    assert.equal(source.buffers[0]!.length, 8);
    assert.equal(source.buffers[1]!.length, 8);
  });

  await t.step("a held buffer is not read into until its write settles", async () => {
    const source = new ScriptedSource([
      Uint8Array.of(1),
      Uint8Array.of(2),
      Uint8Array.of(3),
    ]);
    const reader = new RelayReader(source, 4, 4);
    const first = await reader.read();
    const write = Promise.withResolvers<void>();
    reader.hold(write.promise);
    assert.deepEqual(await reader.read(), Uint8Array.of(2)); // the other buffer: no wait
    let third: Uint8Array | null | undefined;
    const reading = reader.read().then((chunk) => third = chunk);
    // One macrotask turn: every microtask the read could run has run; it must still be waiting.
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(third, undefined, "read into the held buffer before its write settled");
    assert.deepEqual(first, Uint8Array.of(1), "the held chunk was overwritten");
    write.resolve();
    await reading;
    assert.deepEqual(third, Uint8Array.of(3));
  });

  await t.step(
    "a buffer that reads fill grows (doubling), the other keeps its own size",
    async () => {
      const full = (n: number) => new Uint8Array(n).fill(7);
      const source = new ScriptedSource([full(8), full(8), full(16), full(16)]);
      const reader = new RelayReader(source, 8, 64);
      for (let i = 0; i < 4; i++) await reader.read();
      assert.deepEqual(source.buffers.map((buffer) => buffer.length), [8, 8, 16, 16]);
    },
  );
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { LineTooLongError } from "../../../lib/errors.ts";
import { LineFramer, type LineFramerOptions } from "../../../lib/framing/line_framer.ts";
import { LineSplitter, type LineSplitterOptions } from "../../../lib/framing/line_splitter.ts";
import { chunkings, collect, testTransformStream } from "../../_support/transform.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const text = (line: Uint8Array) => latin1.decode(line);

/** Checks `input` under every chunking: these lines come out, these line numbers are too long. */
function expectLines(
  options: LineSplitterOptions,
  input: string | string[],
  outputs: string[],
  tooLong: number[] = [],
): Promise<number> {
  return testTransformStream(
    (report: (lineNumber: number) => void) =>
      new LineSplitter({ ...options, onLineTooLong: (error) => report(error.lineNumber) }),
    input,
    { outputs, reports: tooLong },
    { normalize: text },
  );
}

/** One thing the splitter reported: a line (latin1 text) or the number of an over-long line. */
type SplitEvent = { line: string } | { tooLong: number };

/**
 * The reference: what must come out for `input`, whatever its chunking. An unterminated tail that is
 * already too long beyond the one byte a pending `\r` may use is reported while it arrives, so it is
 * reported even when the final line is not emitted.
 */
function reference(input: Uint8Array, options: Required<LineFramerOptions>): SplitEvent[] {
  const { maxLineBytes: limit, stripCR, emitUnterminated } = options;
  const parts = latin1.decode(input).split("\n");
  const tail = parts.pop()!;
  const events: SplitEvent[] = parts.map((part, i) => {
    const line = stripCR && part.endsWith("\r") ? part.slice(0, -1) : part;
    return line.length > limit ? { tooLong: i + 1 } : { line };
  });
  const last = parts.length + 1;
  if (tail.length > limit + (stripCR ? 1 : 0)) events.push({ tooLong: last });
  else if (tail.length > 0 && emitUnterminated) {
    events.push(tail.length > limit ? { tooLong: last } : { line: tail });
  }
  return events;
}

/** Cuts `input` into chunks of the given sizes (0 gives an empty chunk); the rest is the last one. */
function cut(input: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const size of sizes) {
    chunks.push(input.slice(start, start + size));
    start = Math.min(start + size, input.length);
  }
  chunks.push(input.slice(start));
  return chunks;
}

/** Bytes biased towards the ones that matter to framing (`\n`, `\r`, 0xff, `a`). */
const framingBytes = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(0x0a, 0x0d, 0xff, 0x61) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  ),
  { maxLength: 96, size: "max" },
).map((values) => Uint8Array.from(values));

/** Longer input with few newlines, so lines outgrow the framer's first buffers. */
const longLineBytes = fc.array(
  fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(0x0a, 0x0d) },
    { weight: 200, arbitrary: fc.integer({ min: 0, max: 255 }) },
  ),
  { maxLength: 4000, size: "max" },
).map((values) => Uint8Array.from(values));

const framingOptions = (limits: fc.Arbitrary<number>) =>
  fc.record({
    maxLineBytes: fc.oneof(limits, fc.constant(Infinity)),
    stripCR: fc.boolean(),
    emitUnterminated: fc.boolean(),
  });

/** Checks one input and chunking against the reference, through LineFramer and LineSplitter. */
async function agreesWithReference(
  input: Uint8Array,
  chunkSizes: readonly number[],
  options: Required<LineFramerOptions>,
): Promise<void> {
  const expected = reference(input, options);
  const chunks = cut(input, chunkSizes);

  // LineFramer reports synchronously, so the order of lines and errors is observed directly.
  const direct: SplitEvent[] = [];
  const framer = new LineFramer(options, {
    onLine: (line) => direct.push({ line: text(line) }),
    onTooLong: (error) => direct.push({ tooLong: error.lineNumber }),
  });
  for (const chunk of chunks) framer.push(chunk);
  framer.end();
  assert.deepEqual(direct, expected);

  // The stream delivers lines asynchronously; the line numbers put both back in order.
  const tooLong: number[] = [];
  const splitter = new LineSplitter({
    ...options,
    onLineTooLong: (error) => tooLong.push(error.lineNumber),
  });
  const lines = (await collect(splitter, chunks)).map(text);
  assert.deepEqual(merge(lines, tooLong), expected);
}

/** Merges lines and over-long reports back into input order, using the reports' line numbers. */
function merge(lines: string[], tooLong: number[]): SplitEvent[] {
  const events: SplitEvent[] = [];
  let nextLine = 0;
  for (let lineNumber = 1; nextLine < lines.length || tooLong.length > 0; lineNumber++) {
    if (tooLong[0] === lineNumber) events.push({ tooLong: tooLong.shift()! });
    else if (nextLine < lines.length) events.push({ line: lines[nextLine++]! });
    else break;
  }
  return events;
}

Deno.test("LineSplitter", async (t) => {
  await t.step("the chunking helper covers every interesting cut", () => {
    const names = chunkings(["ab", "c"]).map((c) => c.name);
    assert.deepEqual(names, [
      "as given",
      "as given, with empty chunks between",
      "all in one chunk",
      "one byte at a time",
      "split at 1",
      "split at 2",
    ]);
    const long = chunkings("x".repeat(5000), { maxSplitPoints: 10 });
    const splits = long.filter((c) => c.name.startsWith("split at "));
    assert.equal(splits.length, 10);
    assert.equal(splits[0]!.name, "split at 1");
    assert.equal(splits.at(-1)!.name, "split at 4999");
  });

  await t.step("splits lines, under every chunking", async () => {
    await expectLines({}, ["one\ntwo\n", "three\nfour"], ["one", "two", "three", "four"]);
  });

  await t.step("CRLF split across chunks", async () => {
    await expectLines({}, ["PING\r", "\nPONG\r", "\n"], ["PING", "PONG"]);
  });

  await t.step("stripCR off keeps every \\r", async () => {
    await expectLines({ stripCR: false }, ["a\r", "\nb\r\n"], ["a\r", "b\r"]);
  });

  await t.step("final unterminated line on and off", async () => {
    await expectLines({}, "a\nb\r", ["a", "b\r"]);
    await expectLines({ emitUnterminated: false }, "a\nb\r", ["a"]);
    await expectLines({ emitUnterminated: false }, "a\n", ["a"]);
  });

  await t.step("empty lines", async () => {
    await expectLines({}, "\n\na\n\n", ["", "", "a", ""]);
    await expectLines({}, "", []);
  });

  await t.step("CR-only lines", async () => {
    await expectLines({}, "\r\n\r\n", ["", ""]);
    await expectLines({ stripCR: false }, "\r\n", ["\r"]);
    await expectLines({}, "\r", ["\r"]);
    await expectLines({}, "\r\r\n\r", ["\r", "\r"]);
  });

  await t.step("lines inside a chunk are views of it; lines across chunks are copies", async () => {
    const first = encoder.encode("one\ntwo\nthr");
    const second = encoder.encode("ee\nfo");
    const third = encoder.encode("ur\nfive\n");
    const lines = await collect(new LineSplitter(), [first, second, third]);
    assert.deepEqual(lines.map(text), ["one", "two", "three", "four", "five"]);
    assert.equal(lines[0]!.buffer, first.buffer);
    assert.equal(lines[1]!.buffer, first.buffer);
    assert.equal(lines[4]!.buffer, third.buffer);
    // The copies own their bytes: the framer's reused buffer did not overwrite "three" with "four".
    for (const copy of [lines[2]!, lines[3]!]) {
      for (const chunk of [first, second, third]) assert.notEqual(copy.buffer, chunk.buffer);
    }
    assert.notEqual(lines[2]!.buffer, lines[3]!.buffer);
  });

  await t.step("accepts exactly maxLineBytes", async () => {
    await expectLines({ maxLineBytes: 4 }, "abcd\nabcd\r\nabcd", ["abcd", "abcd", "abcd"]);
  });

  await t.step("maxLineBytes + 1 is too long; the stream goes on with the next line", async () => {
    await expectLines({ maxLineBytes: 4 }, "ok\nabcde\nnext\n", ["ok", "next"], [2]);
    await expectLines({ maxLineBytes: 4 }, "ok\nabcde\r\nnext\n", ["ok", "next"], [2]);
    await expectLines({ maxLineBytes: 4, stripCR: false }, "abcd\r\nnext\n", ["next"], [1]);
    await expectLines({ maxLineBytes: 4 }, "a\nabcdefghijklmnop\nb\nabcde", ["a", "b"], [2, 4]);
  });

  await t.step("LineTooLongError carries the limit and the line number", async () => {
    const errors: LineTooLongError[] = [];
    const splitter = new LineSplitter({ maxLineBytes: 2, onLineTooLong: (e) => errors.push(e) });
    const lines = await collect(splitter, [encoder.encode("a\nb\nccc\nd\n")]);
    assert.deepEqual(lines.map(text), ["a", "b", "d"]);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof LineTooLongError);
    assert.equal(errors[0].limit, 2);
    assert.equal(errors[0].lineNumber, 3);
    assert.equal(errors[0].code, "LINE_TOO_LONG");
  });

  await t.step("without onLineTooLong an over-long line errors the stream", async () => {
    for (const { name, chunks } of chunkings("ok\ntoo long\nnext\n")) {
      await assert.rejects(
        collect(new LineSplitter({ maxLineBytes: 4 }), chunks),
        (error: unknown) => error instanceof LineTooLongError && error.lineNumber === 2,
        name,
      );
    }
  });

  await t.step("bufferedBytes reports the incomplete line", async () => {
    const splitter = new LineSplitter();
    const writer = splitter.writable.getWriter();
    const reader = splitter.readable.getReader();
    const firstLine = reader.read();
    await writer.write(encoder.encode("ab\ncde"));
    assert.equal(text((await firstLine).value!), "ab");
    assert.equal(splitter.bufferedBytes, 3);
    const close = writer.close();
    assert.equal(text((await reader.read()).value!), "cde");
    assert.ok((await reader.read()).done);
    await close;
    assert.equal(splitter.bufferedBytes, 0);
  });

  await t.step("property: any bytes, any chunking, agrees with the reference", async () => {
    await fc.assert(
      fc.asyncProperty(
        framingBytes,
        fc.array(fc.nat({ max: 16 }), { maxLength: 40, size: "max" }),
        framingOptions(fc.integer({ min: 0, max: 16 })),
        agreesWithReference,
      ),
      { numRuns: 5000 },
    );
  });

  await t.step("property: long lines across chunks agree with the reference", async () => {
    await fc.assert(
      fc.asyncProperty(
        longLineBytes,
        fc.array(fc.nat({ max: 1500 }), { maxLength: 8, size: "max" }),
        framingOptions(fc.constantFrom(0, 16, 255, 256, 257, 1000)),
        agreesWithReference,
      ),
      { numRuns: 1500 },
    );
  });

  await t.step("bounded memory: 256 MiB without a newline", async () => {
    const limit = 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(0x78);
    const chunkCount = (256 * 1024 * 1024) / chunk.length;
    const errors: LineTooLongError[] = [];
    const splitter = new LineSplitter({
      maxLineBytes: limit,
      onLineTooLong: (e) => errors.push(e),
    });
    const lines = Array.fromAsync(splitter.readable);
    const writer = splitter.writable.getWriter();
    let maxBuffered = 0;
    for (let i = 0; i < chunkCount; i++) {
      // The same buffer every time: the test itself must not allocate 256 MiB.
      await writer.write(chunk);
      maxBuffered = Math.max(maxBuffered, splitter.bufferedBytes);
      assert.ok(splitter.bufferedBytes <= limit + 1, `after chunk ${i}: ${splitter.bufferedBytes}`);
    }
    await writer.write(encoder.encode("\r\nafter the flood\r\n"));
    await writer.close();
    assert.deepEqual((await lines).map(text), ["after the flood"]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.lineNumber, 1);
    assert.equal(errors[0]!.limit, limit);
    // The splitter really did fill up to its limit before giving up on the line.
    assert.ok(maxBuffered > limit - chunk.length, `max buffered ${maxBuffered}`);
  });
});

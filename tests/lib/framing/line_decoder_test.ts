import assert from "node:assert/strict";
import { InvalidEncodingError } from "../../../lib/errors.ts";
import { decodeLine } from "../../../lib/framing/line_decoder.ts";
import { LineDecoderStream } from "../../../lib/framing/line_decoder_stream.ts";
import { LineSplitter, type LineSplitterOptions } from "../../../lib/framing/line_splitter.ts";
import { chunkings, collect, testTransformStream } from "../../_support/transform.ts";

const encoder = new TextEncoder();

/** A splitter piped into a decoder: bytes in, text lines out. */
function textLines(
  onInvalidLine?: (error: InvalidEncodingError) => void,
  options: LineSplitterOptions = {},
) {
  const splitter = new LineSplitter(options);
  const decoder = new LineDecoderStream(onInvalidLine ? { onInvalidLine } : {});
  return { writable: splitter.writable, readable: splitter.readable.pipeThrough(decoder) };
}

/** Invalid UTF-8 of several kinds, each with why it is invalid. */
const invalid: [string, number[]][] = [
  ["a lone continuation byte", [0x80]],
  ["0xff", [0xff]],
  ["a truncated 2-byte sequence", [0x61, 0xc3]],
  ["a truncated 3-byte sequence", [0xe2, 0x82]],
  ["a truncated 4-byte sequence", [0xf0, 0x9f, 0x98]],
  ["an overlong encoding of NUL", [0xc0, 0x80]],
  ["an overlong 3-byte encoding of '/'", [0xe0, 0x80, 0xaf]],
  ["a UTF-16 surrogate (U+D800)", [0xed, 0xa0, 0x80]],
  ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
];

Deno.test("decodeLine", async (t) => {
  await t.step("decodes ASCII, 2-, 3- and 4-byte characters, and the empty line", () => {
    for (const text of ["", "plain", "é", "€", "😀", "mixed é€😀 text"]) {
      assert.equal(decodeLine(encoder.encode(text)), text);
    }
  });

  await t.step("keeps a byte-order mark as a character instead of dropping it", () => {
    assert.equal(decodeLine(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61)), "\ufeffa");
  });

  await t.step("rejects invalid UTF-8 instead of substituting U+FFFD", () => {
    for (const [why, bytes] of invalid) {
      assert.throws(
        () => decodeLine(Uint8Array.from(bytes), 7),
        (error: unknown) =>
          error instanceof InvalidEncodingError && error.code === "INVALID_ENCODING" &&
          error.lineNumber === 7 && error.message === "Line 7 is not valid UTF-8" &&
          error.bytes.join() === bytes.join(),
        why,
      );
    }
  });

  await t.step("without a line number, the error says so", () => {
    assert.throws(
      () => decodeLine(Uint8Array.of(0xff)),
      (error: unknown) =>
        error instanceof InvalidEncodingError && error.lineNumber === 0 &&
        error.message === "Line is not valid UTF-8",
    );
  });

  await t.step("the error keeps a copy of the bytes, not a view of a reused buffer", () => {
    const buffer = Uint8Array.of(0x61, 0xff, 0x62);
    let caught: unknown;
    try {
      decodeLine(buffer.subarray(1, 2), 1);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof InvalidEncodingError);
    buffer.fill(0);
    assert.deepEqual([...caught.bytes], [0xff]);
  });
});

Deno.test("LineDecoderStream", async (t) => {
  await t.step(
    "multi-byte characters split across chunks at every offset decode correctly",
    async () => {
      const text = "é€😀\naé\r\n€b\n😀";
      const runs = await testTransformStream(() => textLines(), text, ["é€😀", "aé", "€b", "😀"]);
      // One byte at a time and every two-chunk cut, so each character was split in every place.
      assert.equal(runs, 4 + encoder.encode(text).length - 1);
    },
  );

  await t.step(
    "an invalid line is reported with its line number and the stream goes on",
    async () => {
      const input = [
        "ok\n",
        Uint8Array.of(0x62, 0xff, 0x0a),
        "é\n",
        Uint8Array.of(0xc3, 0x0a),
        "end",
      ];
      await testTransformStream(
        (report: (error: { lineNumber: number; bytes: number[] }) => void) =>
          textLines((error) => report({ lineNumber: error.lineNumber, bytes: [...error.bytes] })),
        input,
        {
          outputs: ["ok", "é", "end"],
          reports: [{ lineNumber: 2, bytes: [0x62, 0xff] }, { lineNumber: 4, bytes: [0xc3] }],
        },
      );
    },
  );

  await t.step("without onInvalidLine an invalid line errors the stream", async () => {
    for (const { name, chunks } of chunkings(["ok\n", Uint8Array.of(0xe2, 0x82, 0x0a), "x\n"])) {
      await assert.rejects(
        collect(textLines(), chunks),
        (error: unknown) => error instanceof InvalidEncodingError && error.lineNumber === 2,
        name,
      );
    }
  });

  await t.step("a lone CR is text, and CR-only lines decode to empty strings", async () => {
    await testTransformStream(() => textLines(), "\r\n\r\na\rb\n", ["", "", "a\rb"]);
  });
});

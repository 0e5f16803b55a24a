import assert from "node:assert/strict";
import fc from "fast-check";
import { LineTooLongError } from "../../../lib/errors.ts";
import {
  DEFAULT_MAX_LINE_BYTES,
  LineFramer,
  type LineFramerOptions,
} from "../../../lib/framing/line_framer.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const bytes = (text: string) => encoder.encode(text);

/** One thing the framer reported, in order: a line (as latin1 text) or an over-long line number. */
type FramerEvent = { line: string; lineNumber: number } | { tooLong: number; limit: number };

/** Runs a fresh framer over `chunks` and returns everything it reported, in order. */
function frame(options: LineFramerOptions, chunks: readonly Uint8Array[]): FramerEvent[] {
  const events: FramerEvent[] = [];
  const framer = new LineFramer(options, {
    onLine: (line, lineNumber) => events.push({ line: latin1.decode(line), lineNumber }),
    onTooLong: (error) => events.push({ tooLong: error.lineNumber, limit: error.limit }),
  });
  for (const chunk of chunks) framer.push(chunk);
  framer.end();
  return events;
}

const lines = (events: FramerEvent[]) => events.map((event) => "line" in event ? event.line : null);

Deno.test("LineFramer", async (t) => {
  await t.step("splits lines and numbers them from 1", () => {
    assert.deepEqual(frame({}, [bytes("a\nbb\n\nccc\n")]), [
      { line: "a", lineNumber: 1 },
      { line: "bb", lineNumber: 2 },
      { line: "", lineNumber: 3 },
      { line: "ccc", lineNumber: 4 },
    ]);
  });

  await t.step("joins a CRLF split across chunks and strips the \\r", () => {
    assert.deepEqual(lines(frame({}, [bytes("PING\r"), bytes("\nPONG\r\n")])), ["PING", "PONG"]);
    assert.deepEqual(lines(frame({}, [bytes("\r"), bytes("\n")])), [""]);
  });

  await t.step("keeps \\r when stripCR is off", () => {
    const chunks = [bytes("a\r"), bytes("\nb\r\n\r\n")];
    assert.deepEqual(lines(frame({ stripCR: false }, chunks)), ["a\r", "b\r", "\r"]);
  });

  await t.step("strips only one \\r, and only before \\n", () => {
    assert.deepEqual(lines(frame({}, [bytes("a\r\r\n\rb\n\r")])), ["a\r", "\rb", "\r"]);
  });

  await t.step("CR-only lines", () => {
    assert.deepEqual(lines(frame({}, [bytes("\r\n\r\n")])), ["", ""]);
    assert.deepEqual(lines(frame({ stripCR: false }, [bytes("\r\n\r\n")])), ["\r", "\r"]);
    // A lone \r is not a line terminator.
    assert.deepEqual(lines(frame({}, [bytes("\r"), bytes("\r")])), ["\r\r"]);
    assert.deepEqual(lines(frame({ emitUnterminated: false }, [bytes("\r")])), []);
  });

  await t.step("empty lines and empty chunks", () => {
    assert.deepEqual(lines(frame({}, [bytes("\n\n"), new Uint8Array(0), bytes("\n")])), [
      "",
      "",
      "",
    ]);
    assert.deepEqual(frame({}, []), []);
    assert.deepEqual(frame({}, [new Uint8Array(0)]), []);
  });

  await t.step("emits the final unterminated line only when configured", () => {
    const chunks = () => [bytes("a\nb"), bytes("c")];
    assert.deepEqual(lines(frame({}, chunks())), ["a", "bc"]);
    assert.deepEqual(lines(frame({ emitUnterminated: true }, chunks())), ["a", "bc"]);
    assert.deepEqual(lines(frame({ emitUnterminated: false }, chunks())), ["a"]);
    // A trailing \r without its \n is data, not a terminator.
    assert.deepEqual(lines(frame({}, [bytes("a\r")])), ["a\r"]);
  });

  await t.step(
    "hands out lines inside a chunk as views, lines across chunks from its own buffer",
    () => {
      const first = bytes("one\ntwo\nthr");
      const second = bytes("ee\nfour\n");
      const seen: { text: string; buffer: ArrayBufferLike }[] = [];
      const framer = new LineFramer({}, {
        onLine: (line) => seen.push({ text: latin1.decode(line), buffer: line.buffer }),
      });
      framer.push(first);
      framer.push(second);
      framer.end();
      assert.deepEqual(seen.map((s) => s.text), ["one", "two", "three", "four"]);
      assert.equal(seen[0]!.buffer, first.buffer);
      assert.equal(seen[1]!.buffer, first.buffer);
      assert.notEqual(seen[2]!.buffer, first.buffer);
      assert.notEqual(seen[2]!.buffer, second.buffer);
      assert.equal(seen[3]!.buffer, second.buffer);
    },
  );

  await t.step("bufferedBytes holds only the incomplete line; lineCount counts lines", () => {
    const framer = new LineFramer({}, { onLine: () => {} });
    framer.push(bytes("ab\ncde"));
    assert.equal(framer.bufferedBytes, 3);
    assert.equal(framer.lineCount, 1);
    framer.push(bytes("f\n"));
    assert.equal(framer.bufferedBytes, 0);
    assert.equal(framer.lineCount, 2);
    framer.push(bytes("tail"));
    framer.end();
    assert.equal(framer.bufferedBytes, 0);
    assert.equal(framer.lineCount, 3);
  });

  await t.step("accepts a line of exactly maxLineBytes, in one chunk or across chunks", () => {
    const line = "x".repeat(8);
    assert.deepEqual(lines(frame({ maxLineBytes: 8 }, [bytes(`${line}\n`)])), [line]);
    assert.deepEqual(lines(frame({ maxLineBytes: 8 }, [bytes("xxx"), bytes("xxxxx\n")])), [line]);
    assert.deepEqual(lines(frame({ maxLineBytes: 8 }, [bytes(`${line}\r\n`)])), [line]);
    assert.deepEqual(lines(frame({ maxLineBytes: 8 }, [bytes("xxxxxxxx\r"), bytes("\n")])), [
      line,
    ]);
    assert.deepEqual(lines(frame({ maxLineBytes: 8 }, [bytes(line)])), [line]);
  });

  await t.step("reports maxLineBytes + 1 as too long, with its limit and line number", () => {
    for (const chunks of [[bytes("ok\nxxxxxxxxx\n")], [bytes("ok\nxxxx"), bytes("xxxxx\n")]]) {
      assert.deepEqual(frame({ maxLineBytes: 8 }, [...chunks, bytes("next\n")]), [
        { line: "ok", lineNumber: 1 },
        { tooLong: 2, limit: 8 },
        { line: "next", lineNumber: 3 },
      ]);
    }
    // The final unterminated line is checked too.
    assert.deepEqual(frame({ maxLineBytes: 2 }, [bytes("abc")]), [{ tooLong: 1, limit: 2 }]);
  });

  await t.step("a \\r before \\n does not count against the limit, other \\r do", () => {
    const over = "x".repeat(9);
    for (const chunks of [[bytes(`${over}\r\n`)], [bytes(over), bytes("\r"), bytes("\n")]]) {
      assert.deepEqual(frame({ maxLineBytes: 8 }, chunks), [{ tooLong: 1, limit: 8 }]);
    }
    assert.deepEqual(frame({ maxLineBytes: 8, stripCR: false }, [bytes("xxxxxxxx\r\n")]), [
      { tooLong: 1, limit: 8 },
    ]);
    assert.deepEqual(frame({ maxLineBytes: 8 }, [bytes("xxxxxxx\r\r\n")]), [
      { line: "xxxxxxx\r", lineNumber: 1 },
    ]);
  });

  await t.step("reports an over-long line as soon as it is known, before its \\n", () => {
    const reported: number[] = [];
    const framer = new LineFramer({ maxLineBytes: 4, stripCR: false }, {
      onLine: () => assert.fail("no line expected"),
      onTooLong: (error) => reported.push(error.lineNumber),
    });
    framer.push(bytes("abcd"));
    assert.deepEqual(reported, []);
    framer.push(bytes("e"));
    assert.deepEqual(reported, [1]);
    // The rest of the line is skipped without holding it.
    framer.push(bytes("fghijk"));
    assert.equal(framer.bufferedBytes, 0);
    assert.deepEqual(reported, [1]);
  });

  await t.step("with stripCR, holds at most limit + 1 bytes (a possible \\r)", () => {
    const reported: number[] = [];
    const framer = new LineFramer({ maxLineBytes: 4 }, {
      onLine: () => assert.fail("no line expected"),
      onTooLong: (error) => reported.push(error.lineNumber),
    });
    framer.push(bytes("abcde"));
    assert.equal(framer.bufferedBytes, 5);
    assert.deepEqual(reported, []);
    framer.push(bytes("f"));
    assert.equal(framer.bufferedBytes, 0);
    assert.deepEqual(reported, [1]);
  });

  await t.step("throws LineTooLongError from push without onTooLong", () => {
    const framer = new LineFramer({ maxLineBytes: 3 }, { onLine: () => {} });
    framer.push(bytes("abc\n"));
    assert.throws(
      () => framer.push(bytes("abcd\n")),
      (error: unknown) =>
        error instanceof LineTooLongError && error.lineNumber === 2 && error.limit === 3,
    );
  });

  await t.step("maxLineBytes 0 allows only empty lines; Infinity allows any length", () => {
    assert.deepEqual(frame({ maxLineBytes: 0 }, [bytes("\r\na\n\n")]), [
      { line: "", lineNumber: 1 },
      { tooLong: 2, limit: 0 },
      { line: "", lineNumber: 3 },
    ]);
    const long = "y".repeat(3 * DEFAULT_MAX_LINE_BYTES);
    const chunks = [bytes(long.slice(0, 5)), bytes(long.slice(5)), bytes("\n")];
    const events = frame({ maxLineBytes: Infinity }, chunks);
    assert.equal(events.length, 1);
    assert.equal((events[0] as { line: string }).line.length, long.length);
  });

  await t.step("uses a 1 MiB limit by default", () => {
    assert.equal(DEFAULT_MAX_LINE_BYTES, 1024 * 1024);
    const exact = new Uint8Array(DEFAULT_MAX_LINE_BYTES + 1).fill(0x61);
    exact[DEFAULT_MAX_LINE_BYTES] = 0x0a;
    assert.equal(frame({}, [exact]).length, 1);
    assert.ok("line" in frame({}, [exact])[0]!);
    const over = new Uint8Array(DEFAULT_MAX_LINE_BYTES + 2).fill(0x61);
    over[DEFAULT_MAX_LINE_BYTES + 1] = 0x0a;
    assert.deepEqual(frame({}, [over]), [{ tooLong: 1, limit: DEFAULT_MAX_LINE_BYTES }]);
  });

  await t.step("rejects a negative or NaN limit", () => {
    assert.throws(() => new LineFramer({ maxLineBytes: -1 }, { onLine: () => {} }), RangeError);
    assert.throws(() => new LineFramer({ maxLineBytes: NaN }, { onLine: () => {} }), RangeError);
  });

  await t.step(
    "onLine returning false pauses after that line; push returns the bytes consumed",
    () => {
      const seen: string[] = [];
      const framer = new LineFramer({}, {
        onLine: (line) => {
          seen.push(latin1.decode(line));
          return line.length !== 1;
        },
      });
      const chunk = bytes("aa\nb\ncc\nd\r\ntail");
      assert.equal(framer.push(chunk), 5);
      assert.deepEqual(seen, ["aa", "b"]);
      assert.equal(framer.push(chunk.subarray(5)), 6);
      assert.deepEqual(seen, ["aa", "b", "cc", "d"]);
      // The rest has no newline: held, all consumed.
      assert.equal(framer.push(chunk.subarray(11)), 4);
      assert.equal(framer.bufferedBytes, 4);
      // A line that spans chunks, delivered from the framer's own buffer, can pause too.
      assert.equal(framer.push(bytes("s\nx\nyy\n")), 4);
      assert.deepEqual(seen.slice(-2), ["tails", "x"]);
      assert.equal(framer.push(bytes("q")), 1);
      assert.equal(framer.push(bytes("\nzz\n")), 1);
      assert.deepEqual(seen.at(-1), "q");
    },
  );

  await t.step("pausing anywhere and pushing the rest later frames the same lines", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ maxLength: 40 }).map((chunk) => chunk.map((b) => b % 3 === 0 ? 0x0a : b)),
          {
            maxLength: 12,
          },
        ),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        (chunks, pauses) => {
          const expected = frame({ maxLineBytes: 8 }, chunks);
          const events: FramerEvent[] = [];
          let call = 0;
          const framer = new LineFramer({ maxLineBytes: 8 }, {
            onLine: (line, lineNumber) => {
              events.push({ line: latin1.decode(line), lineNumber });
              return !pauses[call++ % pauses.length];
            },
            onTooLong: (error) => events.push({ tooLong: error.lineNumber, limit: error.limit }),
          });
          for (const chunk of chunks) {
            let rest = chunk;
            for (let round = 0; round <= chunk.length; round++) {
              const consumed = framer.push(rest);
              assert.ok(consumed > 0 || rest.length === 0);
              rest = rest.subarray(consumed);
              if (rest.length === 0) break;
            }
            assert.equal(rest.length, 0);
          }
          framer.end();
          assert.deepEqual(events, expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});

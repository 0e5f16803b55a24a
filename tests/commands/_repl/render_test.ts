import assert from "node:assert/strict";
import { formatDuration, Renderer } from "../../../commands/_repl/render.ts";
import { reconnectDelay } from "../../../commands/_repl/session.ts";

Deno.test("Renderer", async (t) => {
  await t.step("without colour, markers tell sent, received and notices apart", () => {
    const plain = new Renderer({ color: false, timestamps: false, roundTrip: true });
    assert.equal(plain.received(["PONG"], { roundTripMs: 1.234 }), "< PONG (1.23 ms)");
    assert.equal(plain.received(["a", "b"]), "< a\n< b");
    assert.equal(plain.sent('{"command":"x"}'), '> {"command":"x"}');
    assert.equal(plain.notice("connection lost", "warning"), "! connection lost");
    assert.equal(plain.notice("connected"), "* connected");
    assert.equal(plain.prompt("127.0.0.1:1991", ["json"]), "127.0.0.1:1991 json> ");
  });

  await t.step("with colour, no markers; errors are red", () => {
    const color = new Renderer({ color: true, timestamps: false, roundTrip: false });
    assert.equal(color.received(["PONG"], { roundTripMs: 3 }), "\x1b[32mPONG\x1b[0m");
    assert.equal(color.received(["ERR x"], { error: true }), "\x1b[31mERR x\x1b[0m");
  });

  await t.step("server text is shown with its control characters escaped, unless raw", () => {
    const plain = new Renderer({ color: false, timestamps: false, roundTrip: false });
    assert.equal(plain.received(["\x1b]0;pwned\x07 \x1b[2J"]), "< \\x1b]0;pwned\\x07 \\x1b[2J");
    assert.equal(plain.notice("commands: A\u009bB"), "* commands: A\\u009bB");
    assert.equal(plain.sent("x\ry"), "> x\\x0dy");
    const color = new Renderer({ color: true, timestamps: false, roundTrip: false });
    assert.equal(color.received(["\x1b[2J"]), "\x1b[32m\\x1b[2J\x1b[0m");
    const raw = new Renderer({ color: false, timestamps: false, roundTrip: false, raw: true });
    assert.equal(raw.received(["\x1b[2J"]), "< \x1b[2J");
  });

  await t.step("timestamps prefix each line", () => {
    const stamped = new Renderer({ color: false, timestamps: true, roundTrip: false });
    stamped.now = () => new Date(2024, 0, 2, 3, 4, 5, 6);
    assert.equal(stamped.received(["a"]), "03:04:05.006 < a");
  });

  await t.step("durations and reconnect backoff", () => {
    assert.equal(formatDuration(0.5), "0.50 ms");
    assert.equal(formatDuration(42.4), "42 ms");
    assert.equal(formatDuration(1500), "1.50 s");
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map(reconnectDelay), [
      250,
      500,
      1000,
      2000,
      4000,
      5000,
      5000,
      5000,
    ]);
  });
});

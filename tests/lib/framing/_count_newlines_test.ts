import assert from "node:assert/strict";
import fc from "fast-check";
import { countNewlines } from "../../../lib/framing/_count_newlines.ts";

function reference(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) if (byte === 0x0a) count++;
  return count;
}

Deno.test("countNewlines", async (t) => {
  await t.step("counts every \\n, at any offset and length, next to any byte", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(7),
        fc.nat(7),
        fc.constantFrom(0x0a, 0x0b, 0x09, 0x8a, 0x00, 0xff),
        (body, head, tail, filler) => {
          // Many bytes near 0x0a make carries between bytes likely if the word trick were wrong.
          const bytes = body.map((byte) => byte % 3 === 0 ? filler : byte);
          const view = bytes.subarray(
            Math.min(head, bytes.length),
            bytes.length - Math.min(tail, bytes.length - Math.min(head, bytes.length)),
          );
          assert.equal(countNewlines(view), reference(view));
        },
      ),
      { numRuns: 3000 },
    );
  });

  await t.step("a whole chunk of 64 B lines", () => {
    const chunk = new TextEncoder().encode(`${"x".repeat(63)}\n`.repeat(4096));
    assert.equal(countNewlines(chunk), 4096);
    assert.equal(countNewlines(new Uint8Array(0)), 0);
  });
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { countNewlines } from "../../../lib/framing/_count_newlines.ts";
import { simdNewlineCounter } from "../../../lib/framing/_newline_counter_simd.ts";

function reference(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) if (byte === 0x0a) count++;
  return count;
}

Deno.test("countNewlines", async (t) => {
  await t.step("counts every \\n, at any offset and length, next to any byte", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 700, size: "max" }),
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

  await t.step("Deno has WebAssembly SIMD: chunks of 64 bytes and more are counted there", () => {
    // Without it every chunk would fall back to the JavaScript count, correct but slower.
    assert.ok(simdNewlineCounter() !== undefined);
  });

  await t.step("chunks larger than the WebAssembly memory are counted piece by piece", () => {
    const piece = 256 * 1024;
    const chunk = new Uint8Array(2 * piece + 1000);
    for (
      const at of [
        0,
        63,
        64,
        piece - 1,
        piece,
        piece + 15,
        2 * piece - 1,
        2 * piece,
        chunk.length - 1,
      ]
    ) {
      chunk[at] = 0x0a;
    }
    assert.equal(countNewlines(chunk), 9);
    assert.equal(countNewlines(chunk.subarray(1, chunk.length - 1)), 7);
    assert.equal(countNewlines(chunk.subarray(piece)), 5);
    // A chunk after a bigger one: no bytes of the earlier piece are counted again.
    assert.equal(countNewlines(chunk.subarray(0, 100)), 3);
  });

  await t.step("without WebAssembly (--jitless) the JavaScript count takes over", async () => {
    const module = new URL("../../../lib/framing/_count_newlines.ts", import.meta.url).href;
    const script = `import { countNewlines } from "${module}";
      console.log(typeof WebAssembly, countNewlines(new TextEncoder().encode("a\\n".repeat(100))));`;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--v8-flags=--jitless", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout).trim(), "undefined 100");
  });
});

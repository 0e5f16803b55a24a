import assert from "node:assert/strict";
import fc from "fast-check";
import { PeriodicIndex } from "../../../commands/_bench/periodic_index.ts";
import { buildTape, tapeSlice } from "../../../commands/_bench/tape.ts";

/** The reference: walk the items one by one. */
function naive(sizes: number[]) {
  const start = (i: number) => {
    let at = 0;
    for (let k = 0; k < i; k++) at += sizes[k % sizes.length]!;
    return at;
  };
  const endedBy = (x: number) => {
    let count = 0;
    for (let at = sizes[0]!; at <= x; at += sizes[++count % sizes.length]!) { /* count */ }
    return count;
  };
  return { start, endedBy };
}

Deno.test("PeriodicIndex agrees with walking the items, uniform or not", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 0, max: 200 }),
      (sizes, x) => {
        const index = new PeriodicIndex(sizes);
        const reference = naive(sizes);
        assert.equal(index.endedBy(x), reference.endedBy(x));
        const i = x % 50;
        assert.equal(index.start(i), reference.start(i));
        assert.equal(index.size(i), sizes[i % sizes.length]);
        // Item i ends where item i + 1 starts: endedBy counts it from there on.
        assert.equal(index.endedBy(index.start(i + 1)), i + 1);
        assert.equal(index.endedBy(index.start(i + 1) - 1), i);
      },
    ),
  );
});

Deno.test("PeriodicIndex refuses empty periods and empty items", () => {
  assert.throws(() => new PeriodicIndex([]), RangeError);
  assert.throws(() => new PeriodicIndex([3, 0]), RangeError);
});

Deno.test("tape slices are contiguous across the period's end, up to the overhang", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const tape = buildTape([encode("a\n"), encode("bcd\n"), encode("e\n")], 20);
  const text = (from: number, to: number) => new TextDecoder().decode(tapeSlice(tape, from, to));
  assert.equal(text(0, 3), "a\nbcd\ne\n");
  assert.equal(text(2, 6), "e\na\nbcd\ne\n");
  assert.equal(text(301, 303), "bcd\ne\n");
  assert.throws(() => tapeSlice(tape, 0, 30), RangeError);
});

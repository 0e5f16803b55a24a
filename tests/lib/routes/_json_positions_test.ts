import assert from "node:assert/strict";
import fc from "fast-check";
import {
  JsonSyntaxError,
  offsetInString,
  parseJsonWithPositions,
  positionAt,
  toPlainValue,
} from "../../../lib/routes/_json_positions.ts";

function parsesLikeJsonParse(text: string): void {
  let expected: unknown;
  let expectedError = false;
  try {
    expected = JSON.parse(text);
  } catch {
    expectedError = true;
  }
  let actual: unknown;
  try {
    actual = toPlainValue(parseJsonWithPositions(text));
  } catch (error) {
    assert.ok(error instanceof JsonSyntaxError, `unexpected ${error}`);
    // The one deliberate difference: a repeated key is an error here, the last one wins there.
    if (!expectedError) assert.match(error.message, /^duplicate key/, text);
    return;
  }
  assert.equal(expectedError, false, `accepted invalid JSON: ${text}`);
  assert.deepEqual(actual, expected);
}

Deno.test("parseJsonWithPositions", async (t) => {
  await t.step("agrees with JSON.parse on any JSON value, in any layout", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.constantFrom(undefined, 0, 1, 2, "\t", " \r\n "),
        (value, indent) => parsesLikeJsonParse(JSON.stringify(value, null, indent as never)),
      ),
      { numRuns: 300 },
    );
  });

  await t.step("agrees with JSON.parse on arbitrary and damaged text", () => {
    const jsonish = fc.stringMatching(/^[{}[\]:,"\\ \n0-9eE.+\-tfrunlsa\u00e9]{0,30}$/);
    const damaged = fc.tuple(fc.json(), fc.nat(), fc.string({ maxLength: 2 })).map(
      ([json, at, insert]) =>
        json.slice(0, at % (json.length + 1)) + insert + json.slice(at % (json.length + 1)),
    );
    fc.assert(fc.property(fc.oneof(fc.string(), jsonish, damaged), parsesLikeJsonParse), {
      numRuns: 2000,
    });
  });

  await t.step("records where keys and values start", () => {
    const text = '{\n  "a": [1, "x\\ty"],\n  "b": null\n}';
    const root = parseJsonWithPositions(text);
    assert.equal(root.type, "object");
    const [a, b] = root.entries;
    assert.deepEqual(positionAt(text, a!.keyStart), { line: 2, column: 3 });
    assert.deepEqual(positionAt(text, b!.value.start), { line: 3, column: 8 });
    assert.equal(a!.value.type, "array");
    const string = a!.value.items[1]!;
    assert.equal(string.type, "string");
    // "x\ty": the decoded "y" (index 2) sits after the two-character escape.
    assert.equal(
      text.slice(offsetInString(text, string, 2), offsetInString(text, string, 2) + 1),
      "y",
    );
  });

  await t.step("reports syntax errors at the offending character", () => {
    const cases: [string, number, string][] = [
      ['{"a": 1,}', 8, "trailing comma before '}' is not allowed in JSON"],
      ['{"a" 1}', 5, "unexpected \"1\", expected ':' after the key"],
      [
        '{"a": tru}',
        6,
        'unexpected "t", expected a value (object, array, string, number, true, false or null)',
      ],
      ['"abc', 0, "unterminated string"],
      ['"a\\x"', 2, "invalid escape '\\x' in a string"],
      ['"a\nb"', 2, "control character in a string (write \\n, \\t, … instead)"],
      ["[1] 2", 4, 'unexpected "2", expected end of input after the top-level value'],
      [
        "",
        0,
        "unexpected end of input, expected a value (object, array, string, number, true, false or null)",
      ],
      ['{"a": 1, "a": 2}', 9, 'duplicate key "a"'],
      ["[1, /* x */ 2]", 4, "comments are not allowed in JSON"],
    ];
    for (const [text, offset, message] of cases) {
      assert.throws(() => parseJsonWithPositions(text), (error) => {
        assert.ok(error instanceof JsonSyntaxError);
        assert.deepEqual([error.offset, error.message], [offset, message], text);
        return true;
      });
    }
  });

  await t.step("refuses nesting deep enough to threaten the stack", () => {
    assert.throws(() => parseJsonWithPositions("[".repeat(100_000)), /nesting deeper than 512/);
  });
});

Deno.test("positionAt", () => {
  const text = "ab\n\tc😀d\r\nx";
  assert.deepEqual(positionAt(text, 0), { line: 1, column: 1 });
  assert.deepEqual(positionAt(text, 3), { line: 2, column: 1 });
  // Tab counts as one column; the emoji (two UTF-16 units) as one character.
  assert.deepEqual(positionAt(text, text.indexOf("d")), { line: 2, column: 4 });
  assert.deepEqual(positionAt(text, text.indexOf("x")), { line: 3, column: 1 });
});

/**
 * `_tools/mutation_rejudge.ts` plants a Stryker mutant where the report says (lines and columns
 * from 1), so that the verdicts in docs/mutation.md are about the mutants Stryker made.
 */
import assert from "node:assert/strict";
import { plant } from "../_tools/mutation_rejudge.ts";

Deno.test("mutation:rejudge plants a mutant at its report location (lines and columns from 1)", () => {
  const text = "const a = 1;\nif (a === 1) run();\n";
  const planted = plant(text, {
    id: "7",
    mutatorName: "ConditionalExpression",
    replacement: "false",
    status: "Survived",
    location: { start: { line: 2, column: 5 }, end: { line: 2, column: 12 } },
  });
  assert.equal(planted.original, "a === 1");
  assert.equal(planted.text, "const a = 1;\nif (false) run();\n");
});

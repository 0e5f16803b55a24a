import assert from "node:assert/strict";
import { checkReplies, expectedReply, ScriptedRepl } from "./workloads.ts";

Deno.test("fault workloads: the reply checks catch every kind of damage", async (t) => {
  const replies = Array.from({ length: 1000 }, (_, index) => expectedReply(index));

  await t.step("all replies, in order: nothing wrong", () => {
    assert.deepEqual(checkReplies(replies), { answered: 1000, firstWrong: undefined });
    assert.deepEqual(checkReplies(replies.slice(0, 10)), { answered: 10, firstWrong: undefined });
  });

  await t.step("a lost, a repeated, a swapped and a garbled reply are each caught", () => {
    const lost = replies.filter((_, index) => index !== 500);
    const repeated = [...replies.slice(0, 501), ...replies.slice(500)];
    const swapped = [...replies];
    [swapped[10], swapped[11]] = [swapped[11]!, swapped[10]!];
    const garbled = [...replies];
    garbled[700] = garbled[700]!.replace(/.$/, (last) => last === "0" ? "1" : "0");
    for (
      const [name, damaged, at] of [
        ["lost", lost, 500],
        ["repeated", repeated, 501],
        ["swapped", swapped, 10],
        ["garbled", garbled, 700],
      ] as const
    ) {
      assert.match(checkReplies(damaged).firstWrong ?? "", new RegExp(`^reply ${at} `), name);
    }
  });

  await t.step("the scripted repl's replies", () => {
    assert.equal(ScriptedRepl.check(["repl-0", "repl-1"]), undefined);
    assert.match(ScriptedRepl.check(["repl-0", "repl-0"]) ?? "", /reply 1/);
  });
});

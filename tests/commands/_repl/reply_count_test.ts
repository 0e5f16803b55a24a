import assert from "node:assert/strict";
import {
  isUnknownCommandAnswer,
  jsonExpectation,
  textExpectation,
} from "../../../commands/_repl/reply_count.ts";
import { TEXT_COMMANDS } from "../../../lib/protocols/text.ts";

Deno.test("what the repl knows of a line's replies", async (t) => {
  await t.step("every built-in command of the text protocol gets one reply", () => {
    for (const command of [...TEXT_COMMANDS, "SHUTDOWN"]) {
      assert.deepEqual(textExpectation(command), { replies: 1 }, command);
      assert.deepEqual(textExpectation(`  ${command.toLowerCase()}\tnow`), { replies: 1 }, command);
    }
    assert.deepEqual(textExpectation("ECHO a  b"), { replies: 1 });
    assert.deepEqual(textExpectation("[T]text"), { replies: 1 });
    assert.deepEqual(textExpectation(""), { replies: 1 });
    assert.deepEqual(textExpectation(" \t"), { replies: 1 });
  });

  await t.step("anything else is unknown (a route may answer with any number of lines)", () => {
    for (const line of ["swallow", "FROB", "PINGS", "ſHUTDOWN", ":x", '{"command":"ping"}']) {
      assert.equal(textExpectation(line), "unknown", line);
    }
  });

  await t.step("JSON requests by id", () => {
    assert.deepEqual(jsonExpectation(7), { id: 7 });
    assert.deepEqual(jsonExpectation("probe"), { id: "probe" });
    assert.equal(jsonExpectation(undefined), "unknown");
    assert.equal(jsonExpectation(null), "unknown");
  });

  await t.step("the text protocol's answer to an unknown command names its word", () => {
    assert.equal(isUnknownCommandAnswer("  FROB x", "ERR unknown command: FROB"), true);
    assert.equal(isUnknownCommandAnswer("FROB", "ERR unknown command: FROBS"), false);
    assert.equal(isUnknownCommandAnswer("FROB", "ERR busy"), false);
    const json = JSON.stringify({ command: "ping", args: {}, id: 1 });
    assert.equal(isUnknownCommandAnswer(json, `ERR unknown command: ${json}`), true);
    const long = "x".repeat(70);
    assert.equal(
      isUnknownCommandAnswer(long, `ERR unknown command: ${"x".repeat(64)}...`),
      true,
    );
  });
});

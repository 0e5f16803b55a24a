import assert from "node:assert/strict";
import { metaHelp, parseInput, parseToggle } from "../../../commands/_repl/meta_command.ts";

Deno.test("parseInput", async (t) => {
  await t.step("protocol lines are sent as typed, without a secret-marking leading space", () => {
    assert.deepEqual(parseInput("PING"), { kind: "line", text: "PING" });
    assert.deepEqual(parseInput(" AUTH secret"), { kind: "line", text: "AUTH secret" });
    assert.deepEqual(parseInput("ECHO a  b "), { kind: "line", text: "ECHO a  b " });
    assert.deepEqual(parseInput("   "), { kind: "empty" });
  });

  await t.step("meta-commands, aliases and arguments", () => {
    assert.deepEqual(parseInput(":quit"), { kind: "meta", name: ":quit", argument: "" });
    assert.deepEqual(parseInput(":q"), { kind: "meta", name: ":quit", argument: "" });
    assert.deepEqual(parseInput(":EXIT"), { kind: "meta", name: ":quit", argument: "" });
    assert.deepEqual(parseInput(":json on "), { kind: "meta", name: ":json", argument: "on" });
    assert.deepEqual(parseInput(":send /tmp/a b.txt"), {
      kind: "meta",
      name: ":send",
      argument: "/tmp/a b.txt",
    });
  });

  await t.step(":: escapes a protocol line that starts with a colon", () => {
    assert.deepEqual(parseInput("::quit"), { kind: "line", text: ":quit" });
    assert.deepEqual(parseInput(":::x"), { kind: "line", text: "::x" });
  });

  await t.step("an unknown meta-command is reported, never sent", () => {
    const parsed = parseInput(":nope 1");
    assert.equal(parsed.kind, "invalid");
    assert.match((parsed as { message: string }).message, /unknown meta-command :nope/);
  });
});

Deno.test("parseToggle", async (t) => {
  await t.step("on/off words, and empty flips", () => {
    assert.equal(parseToggle("on", false), true);
    assert.equal(parseToggle("OFF", true), false);
    assert.equal(parseToggle("", true), false);
    assert.equal(parseToggle("", false), true);
    assert.equal(parseToggle("maybe", false), undefined);
  });
  await t.step("help lists every meta-command", () => {
    const help = metaHelp().join("\n");
    for (const name of [":help", ":quit", ":reconnect", ":json", ":send", ":time"]) {
      assert.ok(help.includes(name), name);
    }
  });
});

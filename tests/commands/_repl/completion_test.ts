import assert from "node:assert/strict";
import {
  commandsFromHelpReply,
  commandsFromJsonHelp,
  completeLine,
} from "../../../commands/_repl/completion.ts";

Deno.test("completion", async (t) => {
  await t.step("reads the command names of a text HELP reply", () => {
    assert.deepEqual(
      commandsFromHelpReply("commands: PING HELLO TIME ECHO HELP QUIT [t] [d]"),
      ["PING", "HELLO", "TIME", "ECHO", "HELP", "QUIT", "[t]", "[d]"],
    );
    assert.equal(commandsFromHelpReply("PONG"), undefined);
    assert.equal(commandsFromHelpReply("ERR unknown command: HELP"), undefined);
  });

  await t.step("reads a JSON help message (names, or objects with a name)", () => {
    assert.deepEqual(commandsFromJsonHelp(["ping", "add"]), ["ping", "add"]);
    assert.deepEqual(commandsFromJsonHelp([{ name: "a" }, { command: "b" }, 3]), ["a", "b"]);
    assert.deepEqual(commandsFromJsonHelp("nope"), []);
  });

  await t.step("leaves out names with control characters (readline would print them raw)", () => {
    assert.deepEqual(commandsFromHelpReply("commands: PING \x1b]0;x\x07 A\u009bB HELP"), [
      "PING",
      "HELP",
    ]);
    assert.deepEqual(commandsFromJsonHelp(["ping", "\x1b[2J", { name: "a\x7f" }]), ["ping"]);
  });

  const commands = ["PING", "PUSH", "HELP", "HELLO"];
  await t.step("completes the first word, case-sensitively first", () => {
    assert.deepEqual(completeLine("PI", commands), [["PING"], "PI"]);
    assert.deepEqual(completeLine("P", commands), [["PING", "PUSH"], "P"]);
    assert.deepEqual(completeLine("HEL", commands), [["HELLO", "HELP"], "HEL"]);
    assert.deepEqual(completeLine("", commands), [["HELLO", "HELP", "PING", "PUSH"], ""]);
  });

  await t.step("falls back to any case, keeping the case typed", () => {
    assert.deepEqual(completeLine("pi", commands), [["ping"], "pi"]);
    assert.deepEqual(completeLine("Pi", commands), [["PiNG"], "Pi"]);
  });

  await t.step("does not complete arguments", () => {
    assert.deepEqual(completeLine("PING P", commands), [[], "PING P"]);
  });

  await t.step("completes meta-commands after a colon", () => {
    assert.deepEqual(completeLine(":re", commands), [[":reconnect"], ":re"]);
    assert.deepEqual(completeLine(":ti", commands), [[":time", ":timestamps"], ":ti"]);
    assert.deepEqual(completeLine(":json o", commands), [[], ":json o"]);
  });
});

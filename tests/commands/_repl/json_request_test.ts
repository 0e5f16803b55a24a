import assert from "node:assert/strict";
import fc from "fast-check";
import {
  describeJsonResponse,
  encodeJsonRequest,
  JsonInputError,
  parseJsonCommandLine,
  splitWords,
} from "../../../commands/_repl/json_request.ts";

Deno.test("JSON mode input", async (t) => {
  await t.step("a bare command has empty args", () => {
    assert.deepEqual(parseJsonCommandLine("ping"), { command: "ping", args: {} });
  });

  await t.step("values are JSON when they parse, strings otherwise", () => {
    assert.deepEqual(parseJsonCommandLine("add a=1 b=2"), {
      command: "add",
      args: { a: 1, b: 2 },
    });
    assert.deepEqual(
      parseJsonCommandLine(
        'set name="Ada Lovelace" tags=[1, "x y"] on=true none=null word=hello empty= o={"k": 1}',
      ),
      {
        command: "set",
        args: {
          name: "Ada Lovelace",
          tags: [1, "x y"],
          on: true,
          none: null,
          word: "hello",
          empty: "",
          o: { k: 1 },
        },
      },
    );
  });

  await t.step("mistakes are reported, not guessed", () => {
    assert.throws(() => parseJsonCommandLine("add 1"), JsonInputError);
    assert.throws(() => parseJsonCommandLine("add =1"), JsonInputError);
    assert.throws(() => parseJsonCommandLine('say x="unterminated'), /unterminated/);
    assert.throws(() => parseJsonCommandLine("say x=[1, 2"), /unclosed/);
    assert.throws(() => parseJsonCommandLine('say x="a"b'), /invalid JSON value/);
  });

  await t.step("encodes a request with an id; a typed object goes as it is", () => {
    assert.deepEqual(encodeJsonRequest("add a=1", 7), {
      line: '{"command":"add","args":{"a":1},"id":7}',
      id: 7,
    });
    assert.deepEqual(encodeJsonRequest(' {"command":"x","id":"k"}', 1), {
      line: '{"command":"x","id":"k"}',
      id: "k",
    });
    assert.throws(() => encodeJsonRequest("{nope", 1), JsonInputError);
  });

  await t.step("any string value survives quoting and parsing (property)", () => {
    fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), (value, name) => {
      const safeName = name.replace(/[\s="{}[\]\\]/g, "_");
      const parsed = parseJsonCommandLine(`cmd ${safeName}=${JSON.stringify(value)}`);
      assert.deepEqual(parsed.args, { [safeName]: value });
    }));
  });

  await t.step("splitWords keeps brackets and strings together", () => {
    assert.deepEqual(splitWords(' a  b=[1, [2, 3]] c="x \\" y" '), [
      "a",
      "b=[1, [2, 3]]",
      'c="x \\" y"',
    ]);
  });
});

Deno.test("describeJsonResponse", async (t) => {
  await t.step("success shows the message: strings as they are, others pretty-printed", () => {
    assert.deepEqual(describeJsonResponse('{"status":0,"message":"pong","id":1}'), {
      kind: "ok",
      id: 1,
      lines: ["pong"],
    });
    assert.deepEqual(describeJsonResponse('{"status":0,"message":{"sum":3}}').lines, [
      "{",
      '  "sum": 3',
      "}",
    ]);
  });

  await t.step("a non-zero status is an error with its message and extra", () => {
    assert.deepEqual(
      describeJsonResponse('{"status":1,"message":"unknown command: x","extra":{"hint":"help"}}'),
      {
        kind: "error",
        lines: ["error 1: unknown command: x", "extra: {", '  "hint": "help"', "}"],
      },
    );
  });

  await t.step("anything else is shown raw", () => {
    assert.deepEqual(describeJsonResponse("ERR no"), { kind: "raw", lines: ["ERR no"] });
    assert.deepEqual(describeJsonResponse("[1]"), { kind: "raw", lines: ["[1]"] });
  });
});

import assert from "node:assert/strict";
import { fromConversation, workloadFromOptions } from "../../../commands/_bench/sources.ts";
import { parseConversation } from "../../../commands/_test/conversation.ts";
import { UsageError } from "../../../commands/_cli/spec.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("a conversation file: requests, their replies, the greeting", () => {
  const { requests, greeting } = fromConversation(parseConversation(
    "t.conv",
    [
      "< welcome",
      "> GET ${seq}\\t${conn}",
      "< value ${seq}",
      "<re ^ok",
      "> STATS",
      "<any 2",
      "<set a",
      "<set b",
      "timeout 2s",
      "> RAW \\x01",
      '<json {"n": 1}',
    ].join("\n"),
  ));
  assert.deepEqual(greeting.map((check) => check.kind), ["exact"]);
  assert.equal(requests.length, 3);
  const [get, stats, raw] = requests;
  assert.equal(decode(get!.line.render(7, 2)), "GET 7\t2");
  assert.equal(get!.line.fixed, undefined);
  assert.deepEqual(get!.reply.map((check) => check.kind), ["exact", "regex"]);
  const value = get!.reply[0]!;
  assert.ok(value.kind === "exact");
  assert.equal(decode(value.line.render(7, 2)), "value 7");
  assert.deepEqual(stats!.reply.map((check) => check.kind), ["any", "any", "set"]);
  assert.deepEqual([...raw!.line.fixed!], [..."RAW ".split("").map((c) => c.charCodeAt(0)), 1]);
});

Deno.test("a conversation file: what bench cannot repeat is a usage error naming the line", () => {
  const cases: [string, RegExp][] = [
    ["> A\n< a\nclosed\n", /^t\.conv:3: bench repeats requests and their replies; "closed"/],
    ["> A\n< a\nhalfclose\n", /^t\.conv:3: .*"halfclose"/],
    ["> A\n< a\nsilence 1s\n", /^t\.conv:3: .*"silence 1s"/],
    ["> A\nbob> B\n", /^t\.conv:2: bench runs one conversation per connection; "bob"/],
    [">raw A\n< a\n", /^t\.conv:1: >raw sends bytes without a line end/],
    ["> A\n> B\n< b\n", /^t\.conv:1: a request with no expected reply/],
    ["< hello\n", /^t\.conv: no requests/],
    [
      "> ${name}\n< a\n",
      /^t\.conv:1: \$\{name\} was not captured .*\(bench has \$\{seq\} and \$\{conn\}\)/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => fromConversation(parseConversation("t.conv", text)), (error) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("options: one expected reply for all, or one per -m", async () => {
  const all = await workloadFromOptions({ message: ["A", "B"], expectRe: ["^ok"] });
  assert.deepEqual(all.requests.map((request) => request.reply[0]!.kind), ["regex", "regex"]);
  const none = await workloadFromOptions({ message: ["A"], expectLines: 3 });
  assert.deepEqual(none.requests[0]!.reply.map((check) => check.kind), ["any", "any", "any"]);
  const echo = await workloadFromOptions({ echo: true, size: { min: 10, max: 20 } });
  assert.deepEqual(echo.echoSizes, { min: 10, max: 20 });
  const greeted = await workloadFromOptions({ message: ["A"], greetingLines: 2, crlf: true });
  assert.equal(greeted.greeting.length, 2);
  assert.equal(greeted.crlf, true);
  await assert.rejects(workloadFromOptions({ message: ["A"], echo: true, crlf: true }), UsageError);
});

Deno.test("options: request lines from a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/r.txt`, "A\r\nB ${seq}\r\n");
    const plain = await workloadFromOptions({ file: `${dir}/r.txt` });
    assert.deepEqual(plain.requests.map((request) => request.line.source), ["A\r", "B ${seq}\r"]);
    const crlf = await workloadFromOptions({ file: `${dir}/r.txt`, crlf: true });
    assert.deepEqual(crlf.requests.map((request) => request.line.source), ["A", "B ${seq}"]);
    await Deno.writeTextFile(`${dir}/empty.txt`, "");
    await assert.rejects(workloadFromOptions({ file: `${dir}/empty.txt` }), /is empty/);
    await assert.rejects(
      workloadFromOptions({ file: `${dir}/r.txt`, expect: ["a", "b"] }),
      /one --expect for every line of --file/,
    );
    await assert.rejects(workloadFromOptions({ file: `${dir}/missing.txt` }), /cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

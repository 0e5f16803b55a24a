/**
 * Random bytes and random JSON-ish garbage to every protocol of the real CLI server. For each input
 * followed by a half-close, the server's output must be a sequence of complete lines (or, for echo,
 * the exact input), each either the normal reply a reference model predicts or an error (`ERR …` for
 * text, a JSON object with a non-zero status for json), and then the connection closes. The server
 * must still answer PING afterwards.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type RunningServer, startServer } from "../_support/cli.ts";
import { exchange, LineSession } from "../_support/line_session.ts";

const NUM_RUNS = 300;
const NAME = "fuzz";
const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });

/** Inputs: raw bytes, and lines that look like requests with damage in them. */
const garbage: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.array(
    fc.oneof(
      fc.json(),
      fc.string({ unit: "binary" }),
      fc.constantFrom("PING", "ping", "ECHO x", "HELP", "TIME", "HELLO", "[t]a", "", "\r", "ECHO"),
      fc.record({
        command: fc.constantFrom("ping", "echo", "help", "hello", "time", "shutdown", "nope", ""),
        args: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
        id: fc.jsonValue(),
      }, { requiredKeys: [] }).map((request) => JSON.stringify(request)),
      fc.tuple(fc.json(), fc.nat(40), fc.string()).map(([json, at, junk]) =>
        json.slice(0, at) + junk + json.slice(at)
      ),
    ),
    { maxLength: 20 },
  ).chain((lines) =>
    fc.tuple(fc.constant(lines), fc.constantFrom("\n", "\r\n"), fc.boolean()).map(
      ([parts, newline, terminated]) =>
        encoder.encode(parts.join(newline) + (terminated && parts.length > 0 ? newline : "")),
    )
  ),
);

/** The lines a server frames from `input`: split on `\n`, one `\r` stripped, a final unterminated one kept. */
function frame(input: Uint8Array): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let at = input.indexOf(0x0a); at !== -1; at = input.indexOf(0x0a, start)) {
    lines.push(stripCR(input.subarray(start, at)));
    start = at + 1;
  }
  if (start < input.length) lines.push(stripCR(input.subarray(start)));
  return lines;
}

function stripCR(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}

/** What the text protocol answers to one line: an exact reply, a time, or an error; and if it closes. */
function textModel(line: Uint8Array): { reply: string | "error" | "time"; closes: boolean } {
  let text: string;
  try {
    text = strict.decode(line);
  } catch {
    return { reply: "error", closes: false };
  }
  if (text.length >= 3 && text[0] === "[" && text[2] === "]") {
    if (text[1] === "t" || text[1] === "T") return { reply: text.slice(3), closes: false };
    // [d] alone on its line (blanks after it aside); "[d]x" is an unknown command.
    if ((text[1] === "d" || text[1] === "D") && /^[ \t]*$/.test(text.slice(3))) {
      return { reply: "Done!", closes: true };
    }
  }
  const space = text.indexOf(" ");
  const word = space === -1 ? text : text.slice(0, space);
  switch (word.toUpperCase()) {
    case "PING":
      return { reply: word === "ping" ? "pong" : "PONG", closes: false };
    case "ECHO":
      return { reply: space === -1 ? "" : text.slice(space + 1), closes: false };
    case "HELLO":
      return { reply: NAME, closes: false };
    case "TIME":
      return { reply: "time", closes: false };
    case "HELP":
      return {
        reply: "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]",
        closes: false,
      };
    case "QUIT":
    case "CLOSE":
    case "DISCONNECT":
      return { reply: "BYE", closes: true };
    default:
      return { reply: "error", closes: false };
  }
}

/** Splits the output into complete lines; fails if the last one has no `\n`. */
function completeLines(output: Uint8Array): string[] {
  if (output.length === 0) return [];
  assert.equal(output[output.length - 1], 0x0a, "the output ends with a complete line");
  return new TextDecoder().decode(output.subarray(0, -1)).split("\n");
}

function checkText(input: Uint8Array, output: Uint8Array): void {
  const replies = completeLines(output);
  const expected: ReturnType<typeof textModel>[] = [];
  for (const line of frame(input)) {
    const model = textModel(line);
    expected.push(model);
    if (model.closes) break;
  }
  assert.equal(replies.length, expected.length, `replies ${JSON.stringify(replies)}`);
  replies.forEach((reply, index) => {
    const model = expected[index]!;
    if (model.reply === "error") assert.match(reply, /^ERR /);
    else if (model.reply === "time") {
      assert.match(reply, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } else assert.equal(reply, model.reply);
  });
}

function checkJson(input: Uint8Array, output: Uint8Array): void {
  const replies = completeLines(output);
  const lines = frame(input);
  assert.equal(replies.length, lines.length, `replies ${JSON.stringify(replies)}`);
  replies.forEach((reply, index) => {
    const response = JSON.parse(reply);
    assert.equal(typeof response, "object");
    // Issue #19: status, message and extra always, id only when echoed.
    assert.deepEqual(Object.keys(response).filter((key) => key !== "id"), [
      "status",
      "message",
      "extra",
    ]);
    assert.ok(Number.isInteger(response.status) && response.status >= 0 && response.status <= 5);
    if (response.status !== 0) {
      assert.equal(typeof response.message, "string", reply);
      return;
    }
    // A success needs a request that is an object with a known command.
    const request = JSON.parse(strict.decode(lines[index]!));
    assert.ok(["ping", "echo", "time", "hello", "help"].includes(request.command.toLowerCase()));
    if (Object.hasOwn(request, "id")) assert.deepEqual(response.id, request.id);
  });
}

function checkEcho(input: Uint8Array, output: Uint8Array): void {
  assert.deepEqual(output, input);
}

async function send(server: RunningServer, input: Uint8Array): Promise<Uint8Array> {
  await using session = await LineSession.open(server.port);
  await session.write(input);
  await session.closeWrite();
  return await session.readAllBytes();
}

Deno.test("reliability: random bytes and JSON-ish garbage", async (t) => {
  const cases = [
    { protocol: "text", check: checkText, ping: ["PING", "PONG"] },
    {
      protocol: "json",
      check: checkJson,
      ping: ['{"command":"ping"}', '{"status":0,"message":"pong","extra":null}'],
    },
    { protocol: "echo", check: checkEcho, ping: ["PING", "PING"] },
  ] as const;
  for (const { protocol, check, ping } of cases) {
    await t.step(
      `${protocol}: complete replies or errors, then the close; PING still works`,
      async () => {
        await using server = await startServer([
          "--port",
          "0",
          "--protocol",
          protocol,
          "--quiet",
          ...(protocol === "echo" ? [] : ["--name", NAME]),
        ]);
        await fc.assert(
          fc.asyncProperty(garbage, async (input) => {
            check(input, await send(server, input));
            assert.deepEqual(await exchange(server.port, [ping[0]]), [ping[1]]);
          }),
          { numRuns: NUM_RUNS },
        );
        const result = await server.stop("SIGTERM");
        assert.equal(result.code, 0, "the server did not crash");
      },
    );
  }
});

/**
 * `runExchange`'s `escapeControls` (what `linesock send` uses when stdout is a terminal) against a
 * real server that sends hostile bytes; without it, replies stay byte for byte.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "../../../lib/client/client.ts";
import { type ExchangeOptions, runExchange } from "../../../lib/client/conversation.ts";
import { type LineProtocol, serve } from "../../../lib/server/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Replies with `reply(line)` to each line; on end of input sends `tail` without a `\n`. */
async function run(
  reply: (line: string) => Uint8Array,
  options: Omit<ExchangeOptions, "input" | "output"> & { input: string; tail?: Uint8Array },
): Promise<Uint8Array> {
  const protocol: LineProtocol = {
    stripCR: false,
    onLine: (bytes, context) => context.sendRaw(reply(decoder.decode(bytes))),
    ...(options.tail ? { onEnd: (context) => context.sendRaw(options.tail!) } : {}),
  };
  await using server = await serve({ port: 0 }, protocol);
  await using connection = await connect({
    port: (server.addr as Deno.NetAddr).port,
    stripCR: false,
  });
  const printed: Uint8Array[] = [];
  const output = {
    write(bytes: Uint8Array) {
      printed.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
  };
  await runExchange(connection, { ...options, input: [encoder.encode(options.input)], output });
  return new Uint8Array(Buffer.concat(printed));
}

const bytes = (...parts: (string | number[] | Uint8Array)[]) =>
  new Uint8Array(Buffer.concat(
    parts.map((part) => typeof part === "string" ? encoder.encode(part) : new Uint8Array(part)),
  ));

const HOSTILE = bytes("a\x1b]0;pwned\x07\x1b[2J", [0xc2, 0x9b, 0xff], "b\r\n");

Deno.test("runExchange with escapeControls", async (t) => {
  await t.step("off: every byte as received", async () => {
    const printed = await run(() => HOSTILE, { input: "x\n", tail: bytes("\x1b[Ht\r") });
    assert.deepEqual(printed, bytes(HOSTILE, "\x1b[Ht\r"));
  });

  await t.step("on: controls escaped; the \\r of a \\r\\n line end is kept", async () => {
    const printed = await run(() => HOSTILE, {
      input: "x\n",
      tail: bytes("\x1b[Ht\r"),
      escapeControls: true,
    });
    assert.equal(
      decoder.decode(printed),
      "a\\x1b]0;pwned\\x07\\x1b[2J\\u009b\\xffb\r\n" +
        // A final line without \n keeps nothing raw, not even its \r.
        "\\x1b[Ht\\x0d",
    );
  });

  await t.step("on: clean replies are unchanged", async () => {
    const printed = await run((line) => bytes(`got ${line} é\t✓\r\n`), {
      input: "x\ny\n",
      escapeControls: true,
    });
    assert.equal(decoder.decode(printed), "got x é\t✓\r\ngot y é\t✓\r\n");
  });

  await t.step("JSON mode: the message's controls are escaped, its lines kept", async () => {
    const response = JSON.stringify({ status: 0, message: "one\x1b[2J\ntwo\u009b", id: 1 });
    const printed = await run(() => bytes(response, "\n"), {
      input: '{"command":"x"}\n',
      json: true,
      escapeControls: true,
    });
    assert.equal(decoder.decode(printed), "one\\x1b[2J\ntwo\\u009b\n");
    // JSON.stringify leaves C1 characters raw: a pretty-printed message is escaped too.
    const nested = JSON.stringify({ status: 0, message: { k: "\u0085" } });
    const pretty = await run(() => bytes(nested, "\n"), {
      input: '{"command":"x"}\n',
      json: true,
      escapeControls: true,
    });
    assert.equal(decoder.decode(pretty), '{\n  "k": "\\u0085"\n}\n');
  });
});

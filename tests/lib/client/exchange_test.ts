import assert from "node:assert/strict";
import { connect } from "../../../lib/client/client.ts";
import { ConnectionLostError, TimeoutError } from "../../../lib/errors.ts";
import { type ExchangeOptions, runExchange } from "../../../lib/client/conversation.ts";
import { type LineHandler, type LineProtocol, serve } from "../../../lib/server/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs a session against a handler; `holdOpen` keeps the server side open after a half-close. */
async function run(
  handler: LineHandler,
  options: Omit<ExchangeOptions, "input" | "output"> & { input: string[]; holdOpen?: boolean },
) {
  const hold = Promise.withResolvers<void>();
  const protocol: LineProtocol = {
    onLine: (bytes, context) => handler(decoder.decode(bytes), context),
    ...(options.holdOpen ? { onEnd: () => hold.promise } : {}),
  };
  await using server = await serve({ port: 0 }, protocol);
  try {
    await using connection = await connect({
      port: (server.addr as Deno.NetAddr).port,
      stripCR: false,
    });
    let printed = "";
    const output = {
      write(bytes: Uint8Array) {
        printed += decoder.decode(bytes);
        return Promise.resolve(bytes.length);
      },
    };
    const result = await runExchange(connection, {
      ...options,
      input: options.input.map((chunk) => encoder.encode(chunk)),
      output,
    });
    return { result, printed };
  } finally {
    hold.resolve();
  }
}

Deno.test("runExchange", async (t) => {
  await t.step("stream: lines split across chunks, the last one without \\n", async () => {
    const { result, printed } = await run((line) => `<${line}>`, { input: ["a\nb", "c\nd"] });
    assert.equal(printed, "<a>\n<bc>\n<d>\n");
    assert.equal(result.ending, "closed");
    assert.equal(result.linesSent, 3);
    assert.equal(result.replies, 3);
    assert.equal(result.inputComplete, true);
  });

  await t.step("stream: silence ends it when the server stays open", async () => {
    const { result, printed } = await run((line) => line, {
      input: ["x\n"],
      holdOpen: true,
      waitMs: 50,
    });
    assert.equal(printed, "x\n");
    assert.equal(result.ending, "silence");
  });

  await t.step("until: stops at the match without printing what follows", async () => {
    const { result, printed } = await run(() => ["1", "Done", "2"], {
      input: ["go\n"],
      holdOpen: true,
      until: /^Done$/,
      waitMs: 0,
      timeoutMs: 0,
    });
    assert.equal(printed, "1\nDone\n");
    assert.equal(result.ending, "until");
  });

  await t.step("until: TimeoutError, or ConnectionLostError when the server closes", async () => {
    await assert.rejects(
      run((line) => line, { input: ["x\n"], holdOpen: true, until: /never/, timeoutMs: 50 }),
      TimeoutError,
    );
    await assert.rejects(
      run((line) => line, { input: ["x\n"], until: /never/ }),
      ConnectionLostError,
    );
  });

  await t.step("lockstep: N replies per line; ERR replies counted", async () => {
    const { result, printed } = await run((line) => [line, line === "b" ? "ERR b" : "ok"], {
      input: ["a\nb\nc\n"],
      holdOpen: true,
      replies: 2,
    });
    assert.equal(printed, "a\nok\nb\nERR b\nc\nok\n");
    assert.equal(result.ending, "replies");
    assert.equal(result.remoteErrors, 1);
    assert.equal(result.firstRemoteError?.message, "ERR b");
  });

  await t.step("json: messages printed, errors reported, blank lines skipped", async () => {
    const errors: string[] = [];
    const { result, printed } = await run((line) => {
      const request = JSON.parse(line);
      if (request.command === "fail") return JSON.stringify({ status: 3, message: "no" });
      return JSON.stringify({ status: 0, message: request.command === "obj" ? { a: 1 } : "text" });
    }, {
      input: ['{"command":"str"}\n\n  \n{"command":"fail"}\n{"command":"obj"}\n'],
      holdOpen: true,
      json: true,
      onRemoteError: (error) => errors.push(`${error.status} ${error.message}`),
    });
    assert.equal(printed, 'text\n{\n  "a": 1\n}\n');
    assert.deepEqual(errors, ["3 no"]);
    assert.equal(result.linesSent, 3);
    assert.equal(result.remoteErrors, 1);
  });

  await t.step("json --raw prints whole responses", async () => {
    const response = JSON.stringify({ status: 0, message: "m", extra: 1 });
    const { printed } = await run(() => response, {
      input: ['{"command":"x"}\n'],
      holdOpen: true,
      json: true,
      raw: true,
    });
    assert.equal(printed, response + "\n");
  });
});

import assert from "node:assert/strict";
import type { ConnectionContext, LineProtocol } from "../../../lib/server/mod.ts";
import { runLines } from "../../../lib/server/run_lines.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The members of ConnectionContext, as documented in lib/server/connection_context.ts. */
const CONTEXT_MEMBERS = [
  "abort",
  "close",
  "connections",
  "countError",
  "id",
  "lineNumber",
  "peer",
  "queuedBytes",
  "remoteAddr",
  "requestShutdown",
  "send",
  "sendError",
  "sendRaw",
  "signal",
];

Deno.test("runLines", async (t) => {
  await t.step(
    "text, bytes or chunks split anywhere (mid-character too) give the same replies",
    async () => {
      const upper = (line: string) => line.toUpperCase();
      const text = "héllo\r\nwörld\n✓ last";
      const bytes = encoder.encode(text);
      const expected = ["HÉLLO", "WÖRLD", "✓ LAST"];
      assert.deepEqual((await runLines(upper, text)).lines, expected);
      assert.deepEqual((await runLines(upper, bytes)).lines, expected);
      for (let cut = 1; cut < bytes.length; cut++) {
        const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
        assert.deepEqual((await runLines(upper, chunks)).lines, expected, `cut at ${cut}`);
      }
      const oneByteAtATime = [...bytes].map((byte) => new Uint8Array([byte]));
      assert.deepEqual((await runLines(upper, oneByteAtATime)).lines, expected);
      // Chunks larger than the server's read buffer arrive in several reads.
      const long = "x".repeat(300_000);
      assert.deepEqual((await runLines((line) => `${line.length}`, [`${long}\n`, "y\n"])).lines, [
        "300000",
        "1",
      ]);
    },
  );

  await t.step("no input, or only empty chunks: nothing comes back", async () => {
    for (const input of ["", new Uint8Array(0), [], ["", new Uint8Array(0)]]) {
      const result = await runLines((line) => line, input);
      assert.deepEqual(result.bytes, new Uint8Array(0));
      assert.deepEqual(result.lines, []);
      assert.equal(result.closed, false);
      assert.equal(result.reason, "closed by client");
    }
  });

  await t.step("asynchronous replies keep the order of their lines", async () => {
    const result = await runLines(async function* (line) {
      await new Promise((resolve) => setTimeout(resolve, Number(line) % 3));
      yield `a${line}`;
      await Promise.resolve();
      yield `b${line}`;
    }, Array.from({ length: 20 }, (_, index) => `${index}\n`));
    assert.deepEqual(
      result.lines,
      Array.from({ length: 20 }, (_, index) => [`a${index}`, `b${index}`]).flat(),
    );
    const promised = await runLines(
      (line) => line === "none" ? undefined : Promise.resolve([`${line}1`, `${line}2`]),
      "x\nnone\ny\n",
    );
    assert.deepEqual(promised.lines, ["x1", "x2", "y1", "y2"]);
  });

  await t.step("a close ends the connection: later lines are ignored, closed says so", async () => {
    const result = await runLines((line, context) => {
      if (line === "quit") {
        context.close("client said quit");
        return "bye";
      }
      return `ok ${line}`;
    }, ["a\nquit\nb\n", "c\n"]);
    assert.deepEqual(result.lines, ["ok a", "bye"]);
    assert.equal(result.closed, true);
    assert.equal(result.reason, "client said quit");
    assert.equal(result.shutdownRequested, false);
    assert.equal(result.stats.linesIn, 2);
    // Without the close, the connection ends with the input.
    const open = await runLines((line) => line, "a\n");
    assert.equal(open.closed, false);
    assert.equal(open.reason, "closed by client");
  });

  await t.step(
    "requestShutdown is reported, and the connection finishes what it received",
    async () => {
      const result = await runLines((line, context) => {
        if (line === "stop") context.requestShutdown();
        return `ok ${line}`;
      }, "a\nstop\nb\n");
      assert.equal(result.shutdownRequested, true);
      // The lines received with the request are answered, as a server's shutdown does.
      assert.deepEqual(result.lines, ["ok a", "ok stop", "ok b"]);
    },
  );

  await t.step("greeting, closeAfterLines, maxLineBytes and invalidReply apply", async () => {
    const result = await runLines((line) => `<${line}>`, "a\nbbbbbbbbbbbb\n\xff\nc\nd\n", {
      greeting: "welcome",
      maxLineBytes: 8,
      closeAfterLines: 4,
    });
    assert.deepEqual(result.lines, [
      "welcome",
      "<a>",
      "ERR line too long (limit 8 bytes)",
      "<ÿ>",
      "<c>",
    ]);
    assert.equal(result.reason, "closed after 4 lines");
    assert.equal(result.stats.errors, 1);
    const invalid = await runLines((line) => line, new Uint8Array([0xff, 0x0a]), {
      invalidReply: "ERR bad bytes",
    });
    assert.deepEqual(invalid.lines, ["ERR bad bytes"]);
  });

  await t.step("a byte-level protocol: onConnect, onLine, onEnd and formatError", async () => {
    const protocol: LineProtocol = {
      stripCR: false,
      onConnect: () => "hello",
      onLine(line, context) {
        if (line.length === 0) return void context.sendError("internal", "empty");
        return line.slice().reverse();
      },
      onEnd: () => ["end", "bye"],
      formatError: (kind, message) => `! ${kind} ${message}`,
    };
    const result = await runLines(protocol, "abc\r\n\nxyz");
    assert.deepEqual(result.lines, ["hello", "\rcba", "! internal empty", "zyx", "end", "bye"]);
    assert.equal(result.stats.errors, 1);
  });

  await t.step(
    "a handler that throws: ERR internal error, and the connection carries on",
    async () => {
      const result = await runLines((line) => {
        if (line === "boom") throw new Error("boom");
        return line;
      }, "a\nboom\nb\n");
      assert.deepEqual(result.lines, ["a", "ERR internal error", "b"]);
      assert.equal(result.stats.errors, 1);
    },
  );

  await t.step("a byte relay: every byte back, lines counted, the line budget cuts", async () => {
    const sent = new Uint8Array([0x61, 0x0d, 0x0a, 0x00, 0x0a, 0xff, 0xfe, 0x0a, 0x7a]);
    const echoed = await runLines(echoProtocol(), [sent.subarray(0, 4), sent.subarray(4)]);
    assert.deepEqual(echoed.bytes, sent);
    assert.equal(echoed.stats.linesIn, 3);
    assert.equal(echoed.stats.bytesIn, sent.length);
    assert.equal(echoed.stats.bytesOut, sent.length);
    const cut = await runLines(echoProtocol(), "one\ntwo\nthree\n", { closeAfterLines: 2 });
    assert.equal(decoder.decode(cut.bytes), "one\ntwo\n");
    assert.equal(cut.closed, true);
  });

  await t.step("stats: lines and bytes each way", async () => {
    const result = await runLines((line) => [line, line], "ab\ncd\n");
    assert.equal(result.stats.connections, 1);
    assert.equal(result.stats.open, 0);
    assert.equal(result.stats.linesIn, 2);
    assert.equal(result.stats.linesOut, 4);
    assert.equal(result.stats.bytesIn, 6);
    assert.equal(result.stats.bytesOut, 12);
  });

  await t.step(
    "the context: who, which line, its signal; send outside the reply flow",
    async () => {
      const seen: string[] = [];
      let signal: AbortSignal | undefined;
      const result = await runLines(
        (line, context) => {
          signal = context.signal;
          seen.push(`${context.id} ${context.peer} ${context.lineNumber}`);
          assert.equal(typeof context.queuedBytes, "number");
          void context.send(`pushed ${line}`);
          return `reply ${line}`;
        },
        "a\nb\n",
        {
          id: 7,
          remoteAddr: { transport: "tcp", hostname: "::1", port: 4000 },
        },
      );
      assert.deepEqual(seen, ["7 [::1]:4000 1", "7 [::1]:4000 2"]);
      assert.deepEqual(result.lines, ["pushed a", "reply a", "pushed b", "reply b"]);
      assert.equal(signal?.aborted, true, "aborted once the connection closed");
    },
  );

  await t.step("the context is narrow: its documented members, never the engine", async () => {
    const contexts: ConnectionContext[] = [];
    await runLines((_line, context) => void contexts.push(context), "a\nb\n");
    const [context, second] = contexts;
    assert.ok(context !== undefined);
    // One small object per connection, the same for every line.
    assert.equal(second, context);
    const members = new Set<string>([
      ...Object.keys(context),
      ...Object.getOwnPropertyNames(Object.getPrototypeOf(context)),
    ]);
    members.delete("constructor");
    assert.deepEqual([...members].sort(), CONTEXT_MEMBERS);
    for (const engine of ["server", "run", "drain", "destroy", "reject", "onLine", "output"]) {
      assert.equal(engine in context, false, engine);
    }
  });
});

/**
 * The echo protocol through the socket-free harness (runLines), and on a socket where streaming a
 * line of any length is the point.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runLines, serve } from "../../../lib/server/mod.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { LineSession } from "../../_support/line_session.ts";

Deno.test("echoProtocol", async (t) => {
  await t.step("every byte comes back: CR, NUL, invalid UTF-8, final line without LF", async () => {
    const sent = new Uint8Array([0x61, 0x0d, 0x0a, 0x00, 0x0a, 0xff, 0xfe, 0x0a, 0x0d, 0x0a, 0x7a]);
    assert.deepEqual((await runLines(echoProtocol(), sent)).bytes, sent);
    // However the input is cut into chunks.
    for (let cut = 1; cut < sent.length; cut++) {
      const chunks = [sent.subarray(0, cut), sent.subarray(cut)];
      assert.deepEqual((await runLines(echoProtocol(), chunks)).bytes, sent, `cut at ${cut}`);
    }
  });

  await t.step("a line far longer than the line limit streams through", async () => {
    await using server = await serve({ port: 0, maxLineBytes: 1024 }, echoProtocol());
    await using session = await LineSession.open(server.addr);
    const line = new Uint8Array(8 * 1024 * 1024 + 1).fill(0x78);
    line[line.length - 1] = 0x0a;
    const reading = session.readAllBytes(30_000);
    await session.write(line);
    await session.closeWrite();
    const echoed = await reading;
    assert.equal(echoed.length, line.length);
    assert.deepEqual(echoed.subarray(-2), new Uint8Array([0x78, 0x0a]));
  });

  await t.step("closeAfterLines cuts after the Nth line, within a chunk or across", async () => {
    const result = await runLines(echoProtocol(), "one\ntwo\nthree\n", { closeAfterLines: 2 });
    assert.deepEqual(result.lines, ["one", "two"]);
    assert.equal(result.closed, true);
    assert.equal(result.reason, "closed after 2 lines");
    const across = await runLines(echoProtocol(), ["one\ntw", "o\nthree\n"], {
      closeAfterLines: 2,
    });
    assert.deepEqual(across.lines, ["one", "two"]);
  });

  await t.step("counts lines and bytes", async () => {
    const result = await runLines(echoProtocol(), "a\nbc\n");
    assert.deepEqual(result.lines, ["a", "bc"]);
    assert.equal(result.stats.linesIn, 2);
    assert.equal(result.stats.linesOut, 2);
    assert.equal(result.stats.bytesIn, 5);
    assert.equal(result.stats.bytesOut, 5);
  });
});

import assert from "node:assert/strict";
import { serve } from "../../../lib/server/server.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { LineSession } from "../../_util/line_session.ts";

Deno.test("echoProtocol", async (t) => {
  await t.step("every byte comes back: CR, NUL, invalid UTF-8, final line without LF", async () => {
    await using server = await serve({ port: 0 }, echoProtocol());
    await using session = await LineSession.open(server.addr);
    const sent = new Uint8Array([0x61, 0x0d, 0x0a, 0x00, 0x0a, 0xff, 0xfe, 0x0a, 0x0d, 0x0a, 0x7a]);
    await session.write(sent);
    await session.closeWrite();
    assert.deepEqual(await session.readAllBytes(), sent);
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

  await t.step("closeAfterLines cuts after the Nth line", async () => {
    await using server = await serve({ port: 0, closeAfterLines: 2 }, echoProtocol());
    await using session = await LineSession.open(server.addr);
    await session.write("one\ntwo\nthree\n");
    assert.deepEqual(await session.readAll(), ["one", "two"]);
  });

  await t.step("counts lines and bytes", async () => {
    const server = await serve({ port: 0 }, echoProtocol());
    await using session = await LineSession.open(server.addr);
    await session.write("a\nbc\n");
    await session.closeWrite();
    assert.deepEqual(await session.readAll(), ["a", "bc"]);
    await server.shutdown();
    assert.equal(server.stats.linesIn, 2);
    assert.equal(server.stats.bytesIn, 5);
    assert.equal(server.stats.bytesOut, 5);
  });
});

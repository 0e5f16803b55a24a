/**
 * The byte order of a relay's output under back-pressure (lib/server/session_io.ts): a chunk the
 * protocol sends back is written straight from the read buffer (no copy) while lines it queues wait
 * for that write, so full socket buffers (partial writes) must not interleave them. The client sends
 * its first MiB before it reads anything, so the server's writes meet full buffers. Issue #20,
 * docs/mutation.md ("session_io.ts").
 *
 * @module
 */
import assert from "node:assert/strict";
import { type LineProtocol, serve } from "../../../lib/server/mod.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { WAIT_MS, within } from "../../_support/timeouts.ts";

/** What the client sends before it starts reading. */
const READ_AFTER = 1024 * 1024;

Deno.test("a relay's chunks sent back without a copy and the lines it queues after them keep their order under back-pressure", async () => {
  let chunks = 0;
  let unmarked = 0;
  const protocol: LineProtocol = {
    onLine: () => undefined,
    onData(chunk, context) {
      context.sendRaw(chunk);
      unmarked += chunk.length;
      if (++chunks % 3 !== 0) return;
      void context.send(`#${unmarked}#`);
      unmarked = 0;
    },
  };
  await using server = await serve({ port: 0 }, protocol);
  const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
  const line = new TextEncoder().encode(`${"x".repeat(1023)}\n`);
  const total = 16 * 1024 * 1024;
  const started = Promise.withResolvers<void>();
  const writing = (async () => {
    for (let sent = 0; sent < total; sent += line.length) {
      if (sent === READ_AFTER) started.resolve();
      let offset = 0;
      while (offset < line.length) offset += await conn.write(line.subarray(offset));
    }
    await conn.closeWrite();
  })();
  // The client reads nothing until it has sent READ_AFTER bytes: the server's writes meet full
  // socket buffers, and are partial.
  await within(started.promise, WAIT_MS, "the first bytes sent");
  const received: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  let size = 0;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received.push(buffer.slice(0, n));
    size += n;
  }
  await within(writing, WAIT_MS, "the writes");
  conn.close();
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of received) {
    all.set(part, at);
    at += part.length;
  }
  const text = new TextDecoder().decode(all);
  let data = 0;
  let last = 0;
  let markers = 0;
  for (const match of text.matchAll(/#(\d+)#\n/g)) {
    const segment = match.index! - last;
    assert.equal(segment, Number(match[1]), `marker ${markers} at byte ${match.index}`);
    data += segment;
    last = match.index! + match[0].length;
    markers++;
  }
  assert.equal(data + text.length - last, total);
  assert.ok(markers > 0 && chunks > 3, `${chunks} chunks, ${markers} markers`);
});

Deno.test("echo under back-pressure: the bytes come back in order", async () => {
  await using server = await serve({ port: 0 }, echoProtocol());
  const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`${i}`.padStart(15, "0"));
  const input = new TextEncoder().encode(lines.join("\n") + "\n");
  const started = Promise.withResolvers<void>();
  const writing = (async () => {
    for (let offset = 0; offset < input.length;) {
      offset += await conn.write(input.subarray(offset, offset + 65536));
      if (offset >= READ_AFTER) started.resolve();
    }
    await conn.closeWrite();
  })();
  await within(started.promise, WAIT_MS, "the first bytes sent");
  const all = new Uint8Array(input.length + 1);
  let size = 0;
  for (;;) {
    const n = await conn.read(all.subarray(size, Math.min(all.length, size + 4096)));
    if (n === null) break;
    size += n;
  }
  await within(writing, WAIT_MS, "the writes");
  conn.close();
  assert.equal(size, input.length);
  assert.ok(all.subarray(0, size).every((byte, i) => byte === input[i]));
});

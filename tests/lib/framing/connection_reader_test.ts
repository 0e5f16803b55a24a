import assert from "node:assert/strict";
import { ConnectionReader } from "../../../lib/framing/connection_reader.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connected TCP pair on loopback; disposing closes all three resources. */
async function tcpPair() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  return {
    client,
    server,
    [Symbol.dispose]() {
      for (const resource of [client, server, listener]) {
        try {
          resource.close();
        } catch (error) {
          if (!(error instanceof Deno.errors.BadResource)) throw error;
        }
      }
    },
  };
}

/** Reads exactly `count` bytes through `reader` and returns the chunks. */
async function readExactly(reader: ConnectionReader, count: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < count) {
    const chunk = await reader.read();
    assert.ok(chunk, `end of input after ${total} of ${count} bytes`);
    chunks.push(chunk.slice());
    total += chunk.length;
  }
  assert.equal(total, count);
  return chunks;
}

Deno.test("ConnectionReader", async (t) => {
  await t.step("reads until null after the peer's closeWrite, then can still reply", async () => {
    using pair = await tcpPair();
    const { client, server } = pair;
    await client.write(encoder.encode("PING\nPING\n"));
    await client.closeWrite();

    const reader = new ConnectionReader(server);
    let received = "";
    for (let chunk; (chunk = await reader.read()) !== null;) received += decoder.decode(chunk);
    assert.equal(received, "PING\nPING\n");
    assert.equal(reader.bytesRead, 10);
    // End of input stays end of input.
    assert.equal(await reader.read(), null);

    // The socket is still open for writing after the peer's FIN.
    await server.write(encoder.encode("PONG\nPONG\n"));
    await server.closeWrite();
    const replies = new ConnectionReader(client);
    let reply = "";
    for (let chunk; (chunk = await replies.read()) !== null;) reply += decoder.decode(chunk);
    assert.equal(reply, "PONG\nPONG\n");
  });

  await t.step("returns views of its own buffer, valid until the next read", async () => {
    using pair = await tcpPair();
    const reader = new ConnectionReader(pair.server, { minBufferBytes: 64 });
    await pair.client.write(encoder.encode("abc"));
    const first = await reader.read();
    assert.equal(decoder.decode(first!), "abc");
    assert.equal(first!.buffer.byteLength, 64);
    await pair.client.write(encoder.encode("de"));
    const second = await reader.read();
    assert.equal(decoder.decode(second!), "de");
    assert.equal(second!.buffer, first!.buffer, "small reads reuse the buffer");
  });

  await t.step("the buffer grows on full reads and shrinks back after small reads", async () => {
    using pair = await tcpPair();
    const { client, server } = pair;
    const min = 1024;
    const max = 16 * 1024;
    const reader = new ConnectionReader(server, { minBufferBytes: min, maxBufferBytes: max });

    // A burst: reads that fill the buffer make it grow, never beyond max.
    const burst = new Uint8Array(512 * 1024).fill(0x62);
    const sent = client.write(burst).then(async function writeRest(n): Promise<void> {
      if (n < burst.length) return writeRest(n + await client.write(burst.subarray(n)));
    });
    const chunks = await readExactly(reader, burst.length);
    await sent;
    const sizes = chunks.map((chunk) => chunk.length);
    assert.ok(sizes[0]! <= min, `first read ${sizes[0]} fits the initial buffer`);
    assert.ok(Math.max(...sizes) > min, `reads grew beyond ${min}: ${sizes.slice(0, 12)}`);
    assert.ok(Math.max(...sizes) <= max, `no read beyond ${max}`);
    assert.ok(chunks.every((chunk) => chunk.every((byte) => byte === 0x62)));
    assert.equal(reader.bytesRead, burst.length);

    // Ping-pong of one byte at a time: a run of small reads shrinks the buffer step by step.
    const grown = await pingPong(client, reader);
    assert.ok(grown > min, `the buffer had grown (${grown} bytes)`);
    let capacity = grown;
    for (let round = 0; round < 100 && capacity > min; round++) {
      capacity = await pingPong(client, reader);
    }
    assert.equal(capacity, min, "back to the minimum after a run of small reads");

    // The next burst is read in buffer-sized pieces again, starting from the minimum.
    await client.write(new Uint8Array(4 * min));
    const next = await reader.read();
    assert.ok(next && next.length <= min, `read ${next?.length} bytes after shrinking`);
  });

  await t.step("a maximum below the minimum is raised to the minimum", async () => {
    using pair = await tcpPair();
    const reader = new ConnectionReader(pair.server, { minBufferBytes: 2048, maxBufferBytes: 16 });
    await pair.client.write(new Uint8Array(100));
    const chunk = await reader.read();
    assert.equal(chunk?.length, 100);
    assert.equal(chunk?.buffer.byteLength, 2048);
  });
});

/**
 * Sends one byte and reads it back through `reader`; returns the capacity of the buffer it was read
 * into (the returned chunk is a view of the reader's buffer).
 */
async function pingPong(client: Deno.Conn, reader: ConnectionReader): Promise<number> {
  await client.write(Uint8Array.of(0x2e));
  const chunk = await reader.read();
  assert.equal(chunk?.length, 1);
  return chunk.buffer.byteLength;
}

/**
 * The chat does not relay terminal controls between members (as `ncat --chat` filters them): a
 * member's escape sequences (a window title, a screen clear, an 8-bit CSI) and a `\r` that would
 * write over its `<name>` or fake a `* ` notice reach the others escaped. The raw relay stays byte
 * for byte. Real server, real sockets, the bytes as the other member reads them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../../../lib/server/serve.ts";
import { chatProtocol } from "../../../lib/protocols/chat.ts";
import { LineSession } from "../../_support/line_session.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A chat (or raw relay) server with two members: `alice` says, `bob` reads. */
async function twoMembers(raw: boolean) {
  const chat = chatProtocol({ raw });
  const server = await serve({ port: 0 }, chat);
  const port = (server.addr as Deno.NetAddr).port;
  const alice = await LineSession.open(port);
  if (!raw) await alice.readLine(); // its welcome
  const bob = await LineSession.open(port);
  if (!raw) {
    await bob.readLine(); // its welcome
    await alice.readLine(); // `* guestN joined lobby`
    await alice.write("/nick alice\n");
    await alice.readLine(); // `* you are now alice`
    await bob.readLine(); // `* guestN is now known as alice`
  } else {
    // Both are in the room once a line gets through.
    await alice.write("ready\n");
    assert.equal(await bob.readLine(), "ready");
  }
  return {
    alice,
    bob,
    async [Symbol.asyncDispose]() {
      alice.close();
      bob.close();
      await server[Symbol.asyncDispose]();
      await chat.close();
    },
  };
}

Deno.test("chat: a member's control characters reach the others escaped", async (t) => {
  await using members = await twoMembers(false);
  const { alice, bob } = members;

  await t.step("OSC title, screen clear, BEL", async () => {
    await alice.write("hi \x1b]0;pwned\x07 \x1b[2J there\n");
    const line = await bob.readLineBytes();
    assert.equal(decoder.decode(line!), "<alice> hi \\x1b]0;pwned\\x07 \\x1b[2J there");
  });

  await t.step("a \\r inside the line cannot write over the name or fake a notice", async () => {
    await alice.write("x\r* server: everyone must run id\n");
    assert.equal(await bob.readLine(), "<alice> x\\x0d* server: everyone must run id");
  });

  await t.step("C1 (8-bit CSI U+009B) and DEL are escaped; TAB and letters are kept", async () => {
    await alice.write(encoder.encode("\u009b2J\tdé\x7f ✓\n"));
    assert.equal(await bob.readLine(), "<alice> \\u009b2J\tdé\\x7f ✓");
  });

  await t.step("a line that starts with // is escaped too", async () => {
    await alice.write("//\x1b[31mred\n");
    assert.equal(await bob.readLine(), "<alice> /\\x1b[31mred");
  });
});

Deno.test("chat --raw: the relay stays byte for byte", async () => {
  await using members = await twoMembers(true);
  const bytes = encoder.encode("hi \x1b]0;t\x07 \u009b2J\r");
  await members.alice.write(new Uint8Array([...bytes, 0x0a]));
  assert.deepEqual(await members.bob.readLineBytes(), bytes);
});

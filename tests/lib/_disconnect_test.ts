import assert from "node:assert/strict";
import { describeDisconnect, isDisconnect } from "../../lib/_disconnect.ts";

Deno.test("isDisconnect", async (t) => {
  const cases: [Error, string][] = [
    [new Deno.errors.ConnectionReset("x"), "connection reset"],
    [new Deno.errors.ConnectionAborted("x"), "connection aborted"],
    [new Deno.errors.BrokenPipe("x"), "broken pipe"],
    [new Deno.errors.NotConnected("x"), "not connected"],
    [new Deno.errors.UnexpectedEof("x"), "closed without TLS close_notify"],
    [new Deno.errors.BadResource("x"), "connection closed"],
    [new Deno.errors.Interrupted("x"), "connection closed"],
  ];
  for (const [error, words] of cases) {
    await t.step(`${error.name} is a disconnect: ${words}`, () => {
      assert.equal(isDisconnect(error), true);
      assert.equal(describeDisconnect(error), words);
    });
  }
  await t.step("anything else is not, and keeps its message", () => {
    for (
      const error of [
        new Deno.errors.InvalidData("bad record"),
        new Deno.errors.TimedOut("slow"),
        new Deno.errors.ConnectionRefused("refused"),
        new Error("boom"),
      ]
    ) {
      assert.equal(isDisconnect(error), false, error.name);
      assert.equal(describeDisconnect(error), error.message);
    }
    assert.equal(isDisconnect("text"), false);
  });
  await t.step("a real reset is one", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const client = await Deno.connect({ port: (listener.addr as Deno.NetAddr).port });
    const server = await listener.accept();
    listener.close();
    await client.write(new TextEncoder().encode("unread"));
    // Closing with unread input makes the kernel reset the connection.
    await server.read(new Uint8Array(1));
    server.close();
    let caught: unknown;
    try {
      // The reset arrives with the first read (or, at the latest, a write after it).
      for (let round = 0; round < 100 && caught === undefined; round++) {
        if ((await client.read(new Uint8Array(16))) === null) {
          await client.write(new Uint8Array(16));
        }
      }
    } catch (error) {
      caught = error;
    } finally {
      client.close();
    }
    assert.ok(caught !== undefined, "no error after the reset");
    assert.equal(isDisconnect(caught), true, String(caught));
  });
});

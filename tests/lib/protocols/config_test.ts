import assert from "node:assert/strict";
import { protocolFromConfig } from "../../../lib/protocols/config.ts";
import { runLines } from "../../../lib/server/mod.ts";
import { RoutesError } from "../../../lib/routes/routes.ts";

Deno.test("protocolFromConfig", async (t) => {
  await t.step("builds each protocol from plain data", async () => {
    const echo = await protocolFromConfig({ protocol: "echo" });
    assert.deepEqual((await runLines(echo, "a\r\n\xff")).lines, ["a\r", "\xff"]);
    const text = await protocolFromConfig({ protocol: "text", name: "n" });
    assert.deepEqual((await runLines(text, "HELLO\nPING\n")).lines, ["n", "PONG"]);
    const json = await protocolFromConfig({ protocol: "json", name: "j" });
    assert.deepEqual((await runLines(json, '{"command":"hello"}\n')).lines, [
      '{"status":0,"message":"j","extra":null}',
    ]);
  });

  await t.step("allowShutdown and invalidReply", async () => {
    const text = await protocolFromConfig({
      protocol: "text",
      allowShutdown: true,
      invalidReply: "nope",
    });
    const result = await runLines(text, [new Uint8Array([0xff, 0x0a]), "SHUTDOWN\n"]);
    assert.deepEqual(result.lines, ["nope", "BYE shutting down"]);
    assert.equal(result.shutdownRequested, true);
  });

  await t.step("a routes file is loaded, and checked", async () => {
    const path = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(
        path,
        JSON.stringify({ routes: [{ match: { exact: "PING" }, reply: "routed" }] }),
      );
      for (const protocol of ["text", "json"] as const) {
        const built = await protocolFromConfig({ protocol, routesPath: path, maxExec: 1 });
        const line = protocol === "text" ? "PING\n" : '{"command":"ping"}\n';
        const [reply] = (await runLines(built, line)).lines;
        if (protocol === "text") assert.equal(reply, "routed");
        else assert.equal(JSON.parse(reply!).message, "pong");
      }
      await Deno.writeTextFile(path, "{ not json");
      await assert.rejects(protocolFromConfig({ protocol: "text", routesPath: path }), RoutesError);
    } finally {
      await Deno.remove(path);
    }
  });
});

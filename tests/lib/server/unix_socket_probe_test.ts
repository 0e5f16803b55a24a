/**
 * A second server started on a live server's Unix socket is refused without connecting to it, so
 * the first server's statistics count only its real clients (issue #12). Replacing a stale socket
 * is tested in unix_socket_test.ts.
 */
import assert from "node:assert/strict";
import { AddressInUseError, listenUnix, serve } from "../../../lib/server/mod.ts";
import { connect } from "../../../lib/client/mod.ts";

Deno.test("a second listener on a live Unix socket is refused without a probe connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-probe-" });
  const path = `${dir}/live.sock`;
  try {
    await using server = await serve({ path }, (line) => line === "PING" ? "PONG" : "ERR");
    await assert.rejects(listenUnix(path), AddressInUseError);
    // A real client after the refusal: had the refusal connected, that connection would have
    // been accepted first and counted too.
    await using client = await connect({ path });
    assert.deepEqual(await client.request("PING"), ["PONG"]);
    assert.equal(server.stats.connections, 1, "only the real client is counted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

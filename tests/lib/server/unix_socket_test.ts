import assert from "node:assert/strict";
import { AddressInUseError, listenUnix } from "../../../lib/server/unix_socket.ts";
import { ListenError } from "../../../lib/errors.ts";
import { serve } from "../../../lib/server/mod.ts";
import { textProtocol } from "../../../lib/protocols/text.ts";
import { exchange } from "../../_support/line_session.ts";

const mode = async (path: string) => (await Deno.lstat(path)).mode! & 0o777;

Deno.test("listenUnix", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-unix-" });
  try {
    await t.step("creates the socket owner-only and removes it on close", async () => {
      const path = `${dir}/a.sock`;
      const socket = await listenUnix(path);
      assert.equal(await mode(path), 0o600);
      assert.ok((await Deno.lstat(path)).isSocket);
      // No staging directory is left beside it.
      assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["a.sock"]);
      await socket.close();
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    });

    await t.step("takes another mode", async () => {
      const path = `${dir}/b.sock`;
      const socket = await listenUnix(path, { mode: 0o660 });
      assert.equal(await mode(path), 0o660);
      await socket.close();
    });

    await t.step("replaces a stale socket left by a dead server", async () => {
      const path = `${dir}/stale.sock`;
      // A socket file nobody listens on: a listener whose file was kept after it closed.
      const old = Deno.listen({ transport: "unix", path });
      Deno.linkSync(path, `${dir}/keep`);
      old.close();
      Deno.renameSync(`${dir}/keep`, path);
      await assert.rejects(
        Deno.connect({ transport: "unix", path }),
        Deno.errors.ConnectionRefused,
      );
      const socket = await listenUnix(path);
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      await socket.close();
    });

    await t.step("never steals a live server's socket", async () => {
      const path = `${dir}/live.sock`;
      const live = await listenUnix(path);
      await assert.rejects(listenUnix(path), AddressInUseError, "another server is listening");
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      await live.close();
    });

    await t.step(
      "two servers starting on one path at once: one listens, the other fails",
      async () => {
        for (let round = 0; round < 10; round++) {
          const path = `${dir}/race-${round}.sock`;
          const results = await Promise.allSettled([listenUnix(path), listenUnix(path)]);
          const winners = results.filter((result) => result.status === "fulfilled");
          const losers = results.filter((result) => result.status === "rejected");
          try {
            // Without an atomic placement, both "succeed" and the second silently replaces the first.
            assert.equal(winners.length, 1, `round ${round}: ${winners.length} servers listen`);
            assert.ok(losers[0]!.reason instanceof AddressInUseError, String(losers[0]!.reason));
            const conn = await Deno.connect({ transport: "unix", path });
            conn.close();
          } finally {
            for (const winner of winners) await winner.value.close();
          }
        }
      },
    );

    await t.step("a missing directory is a ListenError naming the address", async () => {
      const path = `${dir}/no/such/dir/x.sock`;
      await assert.rejects(
        listenUnix(path),
        ListenError,
        `Cannot listen on unix://${path}: no such directory`,
      );
    });

    await t.step("refuses to replace a file that is not a socket", async () => {
      const path = `${dir}/file`;
      await Deno.writeTextFile(path, "keep me");
      await assert.rejects(listenUnix(path), Deno.errors.AlreadyExists, "not a socket");
      assert.equal(await Deno.readTextFile(path), "keep me");
    });

    await t.step("closing does not remove a socket that a newer server put there", async () => {
      const path = `${dir}/swap.sock`;
      const first = await listenUnix(path);
      await Deno.remove(path);
      const second = await listenUnix(path);
      await first.close();
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      await second.close();
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    });

    await t.step(
      "serve on a Unix socket: owner-only, answers, file gone after shutdown",
      async () => {
        const path = `${dir}/serve.sock`;
        const server = await serve({ path }, textProtocol());
        assert.equal(server.url, `unix://${path}`);
        assert.equal(await mode(path), 0o600);
        assert.deepEqual(await exchange(server.addr, ["PING", "HELLO"]), ["PONG", Deno.hostname()]);
        await server.shutdown();
        await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
      },
    );

    await t.step("serve with socketMode", async () => {
      const path = `${dir}/mode.sock`;
      await using server = await serve({ path, socketMode: 0o666 }, textProtocol());
      assert.equal(await mode(path), 0o666);
      assert.equal(server.addr.transport, "unix");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

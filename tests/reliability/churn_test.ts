import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { exchange } from "../_support/line_session.ts";
import { connectCloseCycles, resetsMidLine } from "../../bench/_reliability/churn.ts";
import { countDescriptors, settleDescriptors } from "../../bench/_reliability/process_probe.ts";

const CYCLES = 2000;
const RESETS = 100;
const RESET_LOG = /\("?connection reset by client"?\)/;
const SUMMARY = /^summary: (\d+) connections?, (\d+) lines? in, (\d+) lines? out/;

Deno.test("reliability: connection churn and resets", async (t) => {
  await t.step(
    `${CYCLES} connect/close cycles and ${RESETS} resets mid-line leak no descriptor`,
    async () => {
      await using server = await startServer(["--port", "0"]);
      const pid = server.process.pid;
      assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
      await server.waitForStderr("closed after");
      const before = await countDescriptors(pid);

      await connectCloseCycles({ port: server.port, cycles: CYCLES, timeoutMs: 60_000 });
      await resetsMidLine({
        port: server.port,
        resets: RESETS,
        request: "PING",
        partial: "ECHO never finish",
        timeoutMs: 60_000,
      });
      const after = await settleDescriptors(pid, before);
      assert.ok(
        after.fds <= before.fds && after.sockets <= before.sockets,
        `descriptors before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
      );
      // Each reset was seen as a reset, not as a polite end of input.
      await server.waitForStderr((text) =>
        (text.match(new RegExp(RESET_LOG, "g"))?.length ?? 0) >= RESETS
      );
      assert.equal(server.stderr().match(new RegExp(RESET_LOG, "g"))?.length, RESETS);
      assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);

      const result = await server.stop("SIGTERM");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      const summary = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
      assert.ok(summary, `no summary in ${server.stdoutLines.at(-1)}`);
      // Every connection was accepted and counted; each reset one answered its full line only.
      assert.equal(Number(summary[1]), 1 + CYCLES + RESETS + 1);
      assert.equal(Number(summary[2]), 1 + RESETS + 1);
      assert.equal(Number(summary[3]), 1 + RESETS + 1);
    },
  );
});

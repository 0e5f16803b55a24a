import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { PING, type Protocol, runFlood } from "../../bench/_reliability/flood.ts";
import { mib } from "../../bench/_reliability/process_probe.ts";

const FLOOD_BYTES = 64 * 1024 * 1024;
/** The bound of docs/reliability.md: the server's peak memory during a flood of any size. */
const PEAK_RSS_BOUND = 160 * 1024 * 1024;

const TOO_LONG: Record<Exclude<Protocol, "echo">, string> = {
  text: "ERR line too long (limit 1048576 bytes)",
  json: JSON.stringify({
    status: 2,
    message: "line too long (limit 1048576 bytes)",
    extra: { error: "line_too_long" },
  }),
};

Deno.test("reliability: a stream with no newline", async (t) => {
  for (const protocol of ["text", "json", "echo"] as const) {
    await t.step(
      `${protocol}: 64 MiB without a newline; bounded memory, others served`,
      async () => {
        await using server = await startServer(["--port", "0", "--protocol", protocol]);
        const result = await runFlood({
          port: server.port,
          pid: server.process.pid,
          protocol,
          bytes: FLOOD_BYTES,
          timeoutMs: 60_000,
        });
        assert.equal(result.sentBytes, FLOOD_BYTES);
        if (protocol === "echo") {
          assert.equal(result.receivedBytes, FLOOD_BYTES, "echo returns every byte");
          assert.equal(result.foreignBytes, 0);
        } else {
          assert.deepEqual(result.replies, [TOO_LONG[protocol]]);
        }
        // One round trip per 8 MiB sent, plus one with the over-long line still open.
        assert.equal(result.pings, FLOOD_BYTES / (8 * 1024 * 1024) + 1);
        assert.ok(
          result.peakRssAfter < PEAK_RSS_BOUND,
          `peak RSS ${mib(result.peakRssAfter)} (before: ${mib(result.peakRssBefore)})`,
        );
        await using session = await LineSession.open(server.port);
        assert.deepEqual(await session.exchange([PING[protocol].request]), [PING[protocol].reply]);
        console.log(
          `${protocol}: peak RSS ${mib(result.peakRssBefore)} -> ${mib(result.peakRssAfter)}, ` +
            `${result.durationMs.toFixed(0)} ms`,
        );
      },
    );
  }
});

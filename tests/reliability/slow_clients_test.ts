import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { exchange } from "../_support/line_session.ts";
import { DRIP_LINE, openDrippers } from "../../bench/_reliability/drippers.ts";

const DRIPPERS = 100;

Deno.test("reliability: slow clients", async (t) => {
  await t.step(
    `${DRIPPERS} clients dripping a line byte by byte do not hold up other clients`,
    async () => {
      await using server = await startServer(["--port", "0", "--quiet"]);
      const drippers = await openDrippers(server.port, DRIPPERS);
      try {
        // Between every two drips, a normal client is answered while all drippers are mid-line.
        for (let byte = 0; byte < DRIP_LINE.length; byte++) {
          await drippers.step();
          assert.deepEqual(await exchange(server.port, ["PING", `ECHO ${byte}`]), [
            "PONG",
            `${byte}`,
          ]);
        }
        assert.equal(drippers.failures, 0);
      } finally {
        await drippers.close();
      }
      // The summary counts each dripper's line, finished by its last byte, as received.
      const result = await server.stop("SIGTERM");
      assert.equal(result.code, 0);
      assert.match(
        server.stdoutLines.at(-1) ?? "",
        new RegExp(
          `^summary: ${DRIPPERS + DRIP_LINE.length} connections, ` +
            `${DRIPPERS + 2 * DRIP_LINE.length} lines in`,
        ),
      );
    },
  );
});

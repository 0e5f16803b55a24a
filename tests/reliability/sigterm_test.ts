import assert from "node:assert/strict";
import { startServer, within } from "../_support/cli.ts";
import { runPipelinedShutdown } from "../../bench/_reliability/pipelined_shutdown.ts";

const SUMMARY =
  /^summary: (\d+) connections?, (\d+) lines? in, (\d+) lines? out, (\d+) bytes? in, (\d+) bytes? out, (\d+) errors?$/;
/** Rounds of the scenario: a lost reply depends on the moment of the signal, so try several. */
const ROUNDS = 3;

Deno.test("reliability: SIGTERM during a pipelined load", async (t) => {
  for (let round = 1; round <= ROUNDS; round++) {
    await t.step(
      `round ${round}: every line received before the signal is answered, then exit 0`,
      async () => {
        await using server = await startServer(["--port", "0", "--quiet"]);
        const connections = 4;
        const result = await runPipelinedShutdown({
          port: server.port,
          connections,
          repliesBeforeSignal: 20_000,
          signal: () => server.process.kill("SIGTERM"),
          timeoutMs: 30_000,
        });
        // The process exits on its own; stop() would send a second signal.
        await within(server.process.status, 15_000, "the server's exit after SIGTERM");
        const exit = await server.stop();
        assert.equal(exit.code, 0, exit.stderr);
        const summary = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
        assert.ok(summary, `no summary in ${JSON.stringify(server.stdoutLines)}`);
        const [connectionCount, linesIn, linesOut] = summary.slice(1, 4).map(Number);
        const figures = `sent ${result.sent}, answered ${result.answered} ` +
          `(${result.answeredBeforeSignal} before the signal), server: ${linesIn} in, ${linesOut} out`;
        assert.equal(connectionCount, connections);
        assert.equal(result.wrong, 0, `answers out of order or garbled; ${figures}`);
        assert.equal(result.cutOff, 0, `a connection ended in the middle of an answer; ${figures}`);
        assert.equal(result.answered, linesOut, `answers received != lines out; ${figures}`);
        assert.equal(linesOut, linesIn, `lines out != lines in; ${figures}`);
      },
    );
  }
});

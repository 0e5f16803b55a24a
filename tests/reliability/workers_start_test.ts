/**
 * `serve --workers 8` starts and answers every time (issue #16: once, on a 16-core machine, it
 * refused every connection until restarted): 20 starts in a row on the same fixed port, each
 * answering 16 connections and stopping with exit 0 before the next starts. On 2 cores the 8
 * workers share them; what is checked is that each start serves, not how fast.
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { unusedPort } from "../_support/ports.ts";

const STARTS = 20;
const WORKERS = 8;
const CONNECTIONS = 16;

Deno.test(`serve --workers ${WORKERS}: ${STARTS} starts in a row on one port, each answering`, async () => {
  const port = unusedPort();
  for (let start = 1; start <= STARTS; start++) {
    const server = await startServer(["--port", String(port), "--workers", String(WORKERS)]);
    const answering = Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, index) => {
        await using session = await LineSession.open(port);
        return (await session.exchange([`PING`, `ECHO ${index}`])).join(" ");
      }),
    );
    // Stopped (and waited for) before the next start, whatever the connections met.
    const answers = await answering.catch((error: unknown) => error);
    const stopped = await server.stop("SIGTERM", 15_000);
    if (answers instanceof Error) throw answers;
    assert.deepEqual(
      answers,
      Array.from({ length: CONNECTIONS }, (_, index) => `PONG ${index}`),
      `start ${start}`,
    );
    assert.equal(stopped.code, 0, `start ${start}: ${stopped.stderr}`);
  }
});

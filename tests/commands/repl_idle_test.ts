/**
 * `linesock repl` against a server that closes idle connections (`--idle-timeout`): after the
 * second close in a row with nothing sent, the repl stops reconnecting, says why once, and
 * reconnects when the user sends a line (which then gets its reply).
 */
import assert from "node:assert/strict";
import { serve } from "../../lib/server/mod.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { ignoredName } from "../_support/tools.ts";

const IDLE_TIMEOUT_MS = 400;
const PARKED = "it closes idle connections; reconnecting when you send a line";

Deno.test({
  name: ignoredName(
    "repl: a server that closes idle connections is not reconnected to forever",
    TMUX_MISSING,
  ),
  ignore: TMUX_MISSING !== undefined,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "linesock-repl-idle-" });
    await using server = await serve(
      { port: 0, idleTimeoutMs: IDLE_TIMEOUT_MS },
      (line) => line === "PING" ? "PONG" : `ERR unknown command: ${line}`,
    );
    const port = (server.addr as Deno.NetAddr).port;
    try {
      await using pty = await startPty(cliCommand("repl", ["--port", String(port)]), {
        columns: 120,
        rows: 40,
        env: ptyEnv(home, { NO_COLOR: "1" }),
      });
      // The first idle close is reconnected to (it may be a restart); the second parks the repl.
      await pty.waitFor((screen) => screen.includes(PARKED), { timeoutMs: 15_000, joined: true });
      const connectionsWhenParked = server.stats.connections;
      assert.equal(connectionsWhenParked, 2, "the first connection and one reconnection");

      // Parked: nothing more happens for several idle timeouts (an absence, so a time window).
      await assert.rejects(
        pty.waitFor((screen) => /reconnected to .*\n[^]*reconnected to/.test(screen), {
          timeoutMs: IDLE_TIMEOUT_MS * 4,
        }),
      );
      assert.equal(server.stats.connections, connectionsWhenParked);

      // A typed line reconnects and is sent.
      await pty.type("PING");
      await pty.press("Enter");
      const screen = await pty.waitFor(/^< PONG/m, { timeoutMs: 10_000, joined: true });
      assert.equal(server.stats.connections, connectionsWhenParked + 1);
      assert.equal(
        screen.split(PARKED).length - 1,
        1,
        `the reason is said once:\n${screen}`,
      );
      await pty.press("C-d");
      assert.equal(await pty.waitForExit(), 0);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

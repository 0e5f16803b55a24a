/**
 * `send` while the server resets the connection mid-input: Linux reports a reset to one system
 * call only, so when the write gets it the read then sees a plain end of input. It must still end
 * as the reset it was (exit 5), not as a close (exit 0). Found by `deno task faults`.
 */
import assert from "node:assert/strict";
import { runCli } from "../_support/cli.ts";

const RESET_SERVER = new URL("../_servers/reset_midstream.py", import.meta.url).pathname;
const ROUNDS = 6;

Deno.test("send: a reset while it is still writing is exit 5, not a normal close", async () => {
  const server = new Deno.Command("python3", {
    args: [RESET_SERVER, "2000"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const input = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = ((await reader.read()).value ?? "").trim();
    reader.releaseLock();
    // Far more than the socket buffers hold: send is still writing when the reset comes.
    await Deno.writeTextFile(input, "x".repeat(1000).concat("\n").repeat(20_000));
    for (let round = 0; round < ROUNDS; round++) {
      const result = await runCli("send", ["-p", port, "-f", input]);
      assert.equal(result.code, 5, `round ${round}: ${result.stderr}`);
      assert.match(result.stderr, /reset/i);
    }
  } finally {
    await Deno.remove(input);
    await server.stdin.close();
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
});

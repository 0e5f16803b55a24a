/**
 * `serve` handles SIGTERM from the moment it prints its address: a script that signals as soon as
 * it reads `listening on …` gets the graceful stop (summary, exit 0), not a death by the signal.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { taskArgs } from "../_support/cli.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ROUNDS = 10;

Deno.test("serve: SIGTERM right after the listening line still stops gracefully", async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...taskArgs("serve"), "--port", "0"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    while (!stdout.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    assert.match(stdout, /^listening on tcp:\/\//);
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assert.equal(status.code, 0, `round ${round}: ${status.signal ?? ""}\n${stderr}`);
    assert.match(stdout, /\nsummary: /, `round ${round}`);
  }
});

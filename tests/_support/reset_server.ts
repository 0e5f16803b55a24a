/**
 * A server that ends every connection with a TCP reset, which Deno cannot make
 * (tests/_support/reset_server.py, run with python3: tests that need it are ignored with
 * {@linkcode PYTHON_MISSING}'s reason where python3 is missing).
 *
 * @module
 */
import { toolMissing } from "./tools.ts";
import { WAIT_MS, within } from "./timeouts.ts";

/** Why a test that needs the reset server is ignored, or `undefined` when python3 is there. */
export const PYTHON_MISSING: string | undefined = toolMissing("python3");

const SCRIPT = new URL("./reset_server.py", import.meta.url).pathname;

/** A running reset server: its port; disposing of it stops it. */
export interface ResetServer extends AsyncDisposable {
  readonly port: number;
}

/**
 * Starts the reset server.
 * @param reply A line it sends after reading the client's first line, before the reset.
 * @returns The server, once it listens.
 */
export async function startResetServer(reply?: string): Promise<ResetServer> {
  const child = new Deno.Command("python3", {
    args: reply === undefined ? [SCRIPT] : [SCRIPT, reply],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await within(reader.read(), WAIT_MS, "reset_server.py's port");
  reader.releaseLock();
  return {
    port: Number((first.value ?? "").trim()),
    async [Symbol.asyncDispose]() {
      await child.stdin.close();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

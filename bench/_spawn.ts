/**
 * Starting servers for the benchmark scripts: `linesock serve` with the flags `deno task serve` runs
 * with, and a process
 * that is ready once its first stdout line names its port (`listening on tcp://127.0.0.1:PORT`).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { taskFlags } from "../_tools/task_flags.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * The arguments of `deno` that run `linesock serve --protocol PROTOCOL --port 0 EXTRA…` with the
 * `serve` task's flags: the server runs as users run it.
 */
export function serveArgs(protocol: string, extra: readonly string[] = []): string[] {
  return [
    "run",
    ...taskFlags("serve"),
    "main.ts",
    "serve",
    "--protocol",
    protocol,
    "--port",
    "0",
    ...extra,
  ];
}

/** A started process and the port its first line named. */
export interface ListeningProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /**
   * Stops it with `signal` and waits for its exit; with `killAfterMs`, SIGKILL if it is still
   * running then.
   */
  stop(signal: Deno.Signal, killAfterMs?: number): Promise<void>;
}

/**
 * Spawns `command` in the repository root and waits for its first stdout line.
 * @param command The program.
 * @param commandArgs Its arguments.
 * @returns The process and the port at the end of its first line.
 */
export async function spawnListening(
  command: string,
  commandArgs: string[],
): Promise<ListeningProcess> {
  const child = new Deno.Command(command, {
    args: commandArgs,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${command} ${commandArgs.join(" ")} exited before listening`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const port = Number(/:(\d+)\s*$/m.exec(text.split("\n")[0]!)?.[1]);
  return {
    child,
    port,
    async stop(signal, killAfterMs) {
      const send = (which: Deno.Signal) => {
        try {
          child.kill(which);
        } catch {
          // Gone already.
        }
      };
      send(signal);
      const timer = killAfterMs === undefined
        ? undefined
        : setTimeout(() => send("SIGKILL"), killAfterMs);
      await child.status;
      clearTimeout(timer);
    },
  };
}

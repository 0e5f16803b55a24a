/**
 * Start-up time: `linesock send PING` as a whole process (start to exit, against a running server,
 * with the `send` task's flags) against `deno run` of an empty script; runs alternate and the median
 * of each is kept. Used by `bench/server_load.ts`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Median wall times in ms. */
export interface StartupResult {
  /** `deno run` of an empty script. */
  emptyMs: number;
  /** `linesock send PING`. */
  sendMs: number;
  /** Runs of each. */
  runs: number;
}

function taskFlags(task: "send"): string[] {
  const entry = denoJson.tasks[task] as string | { command: string };
  const words = (typeof entry === "string" ? entry : entry.command).trim().split(/\s+/);
  return words.slice(2, words.indexOf("main.ts"));
}

async function timeRun(args: string[]): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - started;
  if (!output.success) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return elapsed;
}

const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;

/**
 * Measures both, alternating, `runs` times each.
 * @returns The medians.
 */
export async function measureStartup(port: number, runs = 15): Promise<StartupResult> {
  // Inside the project, so that both runs find and read the same deno.json.
  const empty = await Deno.makeTempFile({ dir: ROOT, prefix: ".startup-empty-", suffix: ".ts" });
  try {
    const emptyTimes: number[] = [];
    const sendTimes: number[] = [];
    const send = ["run", ...taskFlags("send"), "main.ts", "send", "--port", String(port), "PING"];
    // One unmeasured run each fills Deno's caches.
    await timeRun(["run", empty]);
    await timeRun(send);
    for (let run = 0; run < runs; run++) {
      emptyTimes.push(await timeRun(["run", empty]));
      sendTimes.push(await timeRun(send));
    }
    return { emptyMs: median(emptyTimes), sendMs: median(sendTimes), runs };
  } finally {
    await Deno.remove(empty);
  }
}

/**
 * Start-up time: `linesock send PING` as a whole process (start to exit, against a running server)
 * against `deno run` of an empty script, in its two forms: the installed `linesock` (the bundled
 * build that `deno task install` installs, built fresh here, run with the install task's flags) and
 * `deno task send` (main.ts from the sources, with the send task's flags). Runs alternate and the
 * median of each is kept. Used by `bench/server_load.ts`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { taskFlags } from "../_tools/task_flags.ts";
import { build } from "../_tools/build.ts";
import { launcherArgs } from "../_tools/install.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Median wall times in ms. */
export interface StartupResult {
  /** `deno run` of an empty script. */
  emptyMs: number;
  /** `linesock send PING`: the installed, bundled build. */
  installedMs: number;
  /** `deno task send PING`: main.ts from the sources. */
  sendMs: number;
  /** Runs of each. */
  runs: number;
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
  const dist = await Deno.makeTempDir({ prefix: "linesock-startup-build-" });
  try {
    await build(dist);
    const target = ["send", "--port", String(port), "PING"];
    const commands = {
      empty: ["run", empty],
      installed: launcherArgs(dist, target),
      send: ["run", ...taskFlags("send"), "main.ts", ...target],
    };
    const times = { empty: [] as number[], installed: [] as number[], send: [] as number[] };
    // One unmeasured run each fills Deno's caches.
    for (const args of Object.values(commands)) await timeRun(args);
    for (let run = 0; run < runs; run++) {
      for (const [name, args] of Object.entries(commands)) {
        times[name as keyof typeof times].push(await timeRun(args));
      }
    }
    return {
      emptyMs: median(times.empty),
      installedMs: median(times.installed),
      sendMs: median(times.send),
      runs,
    };
  } finally {
    await Deno.remove(empty);
    await Deno.remove(dist, { recursive: true });
  }
}

/**
 * The Deno flags of a deno.json task that runs main.ts (`deno run FLAGS… main.ts …`): its
 * permissions and unstable APIs, so that benchmarks and the installed command run linesock as the
 * task does.
 *
 * @example
 * ```ts
 * import { taskFlags } from "./task_flags.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(taskFlags("serve").includes("--allow-net"));
 * assert.ok(!taskFlags("send").includes("main.ts"));
 * ```
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * The flags between `deno run` and `main.ts` in a task.
 * @param task A task of deno.json that runs main.ts.
 * @returns Its flags.
 * @throws When the task is missing or does not run main.ts.
 */
export function taskFlags(task: string): string[] {
  const entry = (denoJson.tasks as Record<string, string | { command: string }>)[task];
  const command = typeof entry === "string" ? entry : entry?.command;
  const words = command?.trim().split(/\s+/) ?? [];
  const main = words.indexOf("main.ts");
  if (words[0] !== "deno" || words[1] !== "run" || main === -1) {
    throw new Error(`deno.json's task ${task} does not run main.ts: ${command}`);
  }
  return words.slice(2, main);
}

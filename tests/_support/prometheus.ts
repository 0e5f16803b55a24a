/**
 * Reading Prometheus text in tests: one sample's value, and `promtool check metrics` (Prometheus'
 * own linter; `.ci/run` installs it) on a scrape.
 *
 * @module
 */
import { toolMissing } from "./tools.ts";

/** Why `promtool` cannot run here, or `undefined`. */
export const PROMTOOL_MISSING: string | undefined = toolMissing("promtool", ["--version"]);

/** The value of one sample (`name` or `name{labels}`) in Prometheus text. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((line) => line.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** `promtool check metrics` on `text`: its exit status and what it said. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

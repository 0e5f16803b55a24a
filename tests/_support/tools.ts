/**
 * Is a tool a test needs installed here? One probe and one skip-reason format for every tool
 * (`openssl`, `tmux`, `haproxy`, `prlimit`, `python3`, `bash`, `man`, …): a test that needs one is
 * `ignore`d where it is missing, and its name says why, as `… (ignored: tmux is not installed)`.
 *
 * Usage: `name: ignoredName("the repl on a terminal", TMUX_MISSING), ignore: TMUX_MISSING !== undefined`
 * with `const TMUX_MISSING = toolMissing("tmux", ["-V"])`.
 *
 * @module
 */

const decoder = new TextDecoder();
const probed = new Map<string, string | undefined>();

/**
 * Why `tool` cannot be used here, or `undefined` when `tool args…` runs and succeeds. The reason is
 * `TOOL is not installed` or `TOOL ARGS failed (exit N: first line of its stderr)`.
 * @param tool The program, found on PATH.
 * @param args Arguments of a harmless run (default `--version`).
 * @returns The reason, or `undefined`.
 */
export function toolMissing(tool: string, args: string[] = ["--version"]): string | undefined {
  const key = [tool, ...args].join(" ");
  if (probed.has(key)) return probed.get(key);
  let reason: string | undefined;
  try {
    const { success, code, stderr } = new Deno.Command(tool, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!success) {
      const first = decoder.decode(stderr).trim().split("\n")[0] ?? "";
      reason = `${key} failed (exit ${code}${first ? `: ${first}` : ""})`;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    reason = `${tool} is not installed`;
  }
  probed.set(key, reason);
  return reason;
}

/** Whether `tool args…` runs here (see {@linkcode toolMissing}). */
export function hasTool(tool: string, args: string[] = ["--version"]): boolean {
  return toolMissing(tool, args) === undefined;
}

/**
 * A test's name, with the reason it is ignored where there is one: `NAME (ignored: REASON)`.
 * @param name The test's name.
 * @param reason What {@linkcode toolMissing} said (or any reason), `undefined` to run.
 * @returns The name to register.
 */
export function ignoredName(name: string, reason: string | undefined): string {
  return reason === undefined ? name : `${name} (ignored: ${reason})`;
}

/**
 * Whether to colour output: on a terminal unless `NO_COLOR` is set (https://no-color.org); never on
 * a pipe or file unless `FORCE_COLOR` or `CLICOLOR_FORCE` asks for it (and `NO_COLOR` does not
 * forbid it).
 *
 * @module
 */

/**
 * Decides colour from the output and the environment.
 * @param isTerminal Whether the output is a terminal.
 * @param env Reads an environment variable (the process's by default).
 * @returns `true` for colour.
 */
export function colorWanted(
  isTerminal: boolean,
  env: (name: string) => string | undefined = readEnv,
): boolean {
  if ((env("NO_COLOR") ?? "") !== "") return false;
  const forced = ["FORCE_COLOR", "CLICOLOR_FORCE"].some((name) => {
    const value = env(name);
    return value !== undefined && value !== "" && value !== "0" && value !== "false";
  });
  return forced || isTerminal;
}

function readEnv(name: string): string | undefined {
  // Asking without the permission could prompt on a terminal: a variable we may not read is unset.
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}

/**
 * `linesock completions bash|zsh|fish`: prints the shell's completion script, generated from the
 * subcommands' definitions.
 *
 * @module
 */
import { type CommandSpec, type Parsed, UsageError } from "./_cli/spec.ts";
import { SHELLS } from "./_cli/completions.ts";

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock completions`. */
export const spec: CommandSpec = {
  name: "completions",
  summary: "Print the shell completion script for bash, zsh or fish",
  args: [{ name: "SHELL", help: "bash, zsh or fish", complete: SHELLS }],
  options: [],
  examples: [
    ["source <(linesock completions bash)", "bash: completion now (add it to ~/.bashrc)"],
    ["source <(linesock completions zsh)", "zsh: the same (add it to ~/.zshrc)"],
    [
      "linesock completions fish > ~/.config/fish/completions/linesock.fish",
      "fish: installed for good",
    ],
  ],
};

/**
 * Prints the script.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const shell = parsed.args[0];
  if (shell === undefined || !(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`completions: name a shell: ${SHELLS.join(", ")}`);
  }
  const [{ allSpecs }, { completionScript }] = await Promise.all([
    import("../main.ts"),
    import("./_cli/completions.ts"),
  ]);
  const script = completionScript(shell as typeof SHELLS[number], await allSpecs());
  await Deno.stdout.write(new TextEncoder().encode(script));
  return 0;
}

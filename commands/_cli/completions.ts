/**
 * Shell completions for bash, zsh and fish, generated from the subcommands' definitions
 * (`linesock completions SHELL`): subcommands, their options (hidden ones left out), the values
 * an option takes (its choices, or files and directories), and file names for arguments that are
 * files.
 *
 * @module
 */
import { type CommandSpec, COMMON_OPTIONS, type Completion, type OptionSpec } from "./spec.ts";

/** The shells completions are made for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** One of {@linkcode SHELLS}. */
export type Shell = typeof SHELLS[number];

function visible(spec: CommandSpec): OptionSpec[] {
  return [...spec.options, ...COMMON_OPTIONS].filter((option) => !option.hidden);
}

function completionOf(option: OptionSpec): Completion | undefined {
  return option.choices ?? option.complete;
}

/**
 * The completion script for `shell`.
 * @param shell Which shell.
 * @param specs Every subcommand.
 * @returns A script to `source` (bash, zsh) or to put in fish's completions directory.
 */
export function completionScript(shell: Shell, specs: readonly CommandSpec[]): string {
  switch (shell) {
    case "bash":
      return bash(specs);
    case "zsh":
      return zsh(specs);
    case "fish":
      return fish(specs);
  }
}

function bashWords(completion: Completion | undefined): string {
  if (completion === undefined || completion === "none") return `COMPREPLY=()`;
  if (completion === "file") return `COMPREPLY=($(compgen -f -- "$cur"))`;
  if (completion === "directory") return `COMPREPLY=($(compgen -d -- "$cur"))`;
  return `COMPREPLY=($(compgen -W "${completion.join(" ")}" -- "$cur"))`;
}

function bash(specs: readonly CommandSpec[]): string {
  const names = specs.map((spec) => spec.name).join(" ");
  const cases = specs.map((spec) => {
    const options = visible(spec);
    const flags = options.flatMap((option) => [
      `--${option.long}`,
      ...(option.short ? [`-${option.short}`] : []),
      ...(option.negatable ? [`--no-${option.long}`] : []),
    ]);
    const valueCases = options.filter((option) => option.value !== undefined).map((option) => {
      const patterns = [`--${option.long}`, ...(option.short ? [`-${option.short}`] : [])];
      return `        ${patterns.join("|")}) ${bashWords(completionOf(option))}; return ;;`;
    });
    const argument = spec.args[0]?.complete;
    return [
      `    ${spec.name})`,
      `      case "$prev" in`,
      ...valueCases,
      `      esac`,
      `      if [[ "$cur" == -* ]]; then`,
      `        COMPREPLY=($(compgen -W "${flags.join(" ")}" -- "$cur"))`,
      `      else`,
      `        ${bashWords(argument)}`,
      `      fi`,
      `      ;;`,
    ].join("\n");
  });
  return `# bash completion for linesock: source <(linesock completions bash)
_linesock() {
  local cur prev sub
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${names} help --help --version" -- "$cur"))
    return
  fi
  sub="\${COMP_WORDS[1]}"
  case "$sub" in
${cases.join("\n")}
    help) COMPREPLY=($(compgen -W "${names}" -- "$cur")) ;;
  esac
}
complete -o default -F _linesock linesock
`;
}

function zshEscape(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/'/g, "'\\''").replace(/[[\]:]/g, "\\$&");
}

function zshAction(completion: Completion | undefined): string {
  if (completion === undefined || completion === "none") return "";
  if (completion === "file") return "_files";
  if (completion === "directory") return "_files -/";
  return `(${completion.join(" ")})`;
}

function zsh(specs: readonly CommandSpec[]): string {
  const functions = specs.map((spec) => {
    const lines = visible(spec).map((option) => {
      const help = zshEscape(option.help);
      const value = option.value
        ? `:${option.value.toLowerCase()}:${zshAction(completionOf(option))}`
        : "";
      const repeat = option.count || option.multiple ? "*" : "";
      const names = option.short
        ? `'${repeat}'{-${option.short},--${option.long}}'[${help}]${value}'`
        : `'${repeat}--${option.long}[${help}]${value}'`;
      return `    ${names}`;
    });
    const argument = spec.args[0];
    if (argument) {
      lines.push(`    '*:${argument.name.toLowerCase()}:${zshAction(argument.complete)}'`);
    }
    return `_linesock_${spec.name.replace(/-/g, "_")}() {\n  _arguments -s \\\n${
      lines.join(" \\\n")
    }\n}`;
  });
  const described = specs.map((spec) => `    '${spec.name}:${zshEscape(spec.summary)}'`);
  return `#compdef linesock
# zsh completion for linesock: source <(linesock completions zsh), or save as _linesock in $fpath
${functions.join("\n\n")}

_linesock() {
  local -a commands
  commands=(
${described.join("\n")}
    'help:show help for a command'
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  local sub=\${words[2]}
  shift words
  (( CURRENT-- ))
  case $sub in
${specs.map((spec) => `    ${spec.name}) _linesock_${spec.name.replace(/-/g, "_")} ;;`).join("\n")}
    help) _describe 'command' commands ;;
  esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _linesock "$@"
else
  compdef _linesock linesock
fi
`;
}

function fishEscape(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
}

function fish(specs: readonly CommandSpec[]): string {
  const names = specs.map((spec) => spec.name).join(" ");
  const lines = [
    "# fish completion for linesock: linesock completions fish > ~/.config/fish/completions/linesock.fish",
    "complete -c linesock -f",
    ...specs.map((spec) =>
      `complete -c linesock -n 'not __fish_seen_subcommand_from ${names} help' -a ${spec.name} -d '${
        fishEscape(spec.summary)
      }'`
    ),
    `complete -c linesock -n 'not __fish_seen_subcommand_from ${names} help' -a help -d 'show help for a command'`,
    `complete -c linesock -n '__fish_seen_subcommand_from help' -a '${names}'`,
  ];
  for (const spec of specs) {
    const when = `-n '__fish_seen_subcommand_from ${spec.name}'`;
    for (const option of visible(spec)) {
      const completion = completionOf(option);
      const value = option.value === undefined
        ? ""
        : completion === "file" || completion === "directory"
        ? " -r -F"
        : Array.isArray(completion)
        ? ` -x -a '${(completion as readonly string[]).join(" ")}'`
        : " -x";
      const short = option.short ? ` -s ${option.short}` : "";
      lines.push(
        `complete -c linesock ${when}${short} -l ${option.long}${value} -d '${
          fishEscape(option.help)
        }'`,
      );
    }
    if (spec.args[0]?.complete === "file") lines.push(`complete -c linesock ${when} -F`);
  }
  return lines.join("\n") + "\n";
}

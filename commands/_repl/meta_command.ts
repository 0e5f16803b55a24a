/**
 * Meta-commands of the repl: lines starting with `:` talk to the repl itself, never to the server.
 * A line starting with `::` sends the rest with one `:` removed, so every protocol line stays
 * reachable.
 *
 * @module
 */

/** A meta-command the repl knows, with its usage and one line of help. */
export interface MetaCommandInfo {
  /** The name with its prefix, e.g. `:json`. */
  readonly name: string;
  /** How it is called, e.g. `:json on|off`. */
  readonly usage: string;
  /** What it does. */
  readonly help: string;
}

/** Every meta-command, in the order `:help` lists them. */
export const META_COMMANDS: readonly MetaCommandInfo[] = [
  { name: ":help", usage: ":help", help: "show this help" },
  { name: ":quit", usage: ":quit", help: "leave (also :exit, Ctrl-D)" },
  { name: ":reconnect", usage: ":reconnect", help: "close the connection and connect again" },
  {
    name: ":json",
    usage: ":json on|off",
    help: 'JSON mode: `add a=1 b=2` sends {"command":"add","args":{"a":1,"b":2}}',
  },
  { name: ":send", usage: ":send FILE", help: "send every line of FILE" },
  { name: ":time", usage: ":time on|off", help: "show each reply's round-trip time" },
  { name: ":timestamps", usage: ":timestamps on|off", help: "prefix shown lines with the time" },
  { name: ":history", usage: ":history [TEXT]", help: "list history entries (containing TEXT)" },
  { name: ":commands", usage: ":commands", help: "list the command names Tab completes" },
];

const ALIASES: Record<string, string> = { ":q": ":quit", ":exit": ":quit", ":h": ":help" };

/** What a typed line means. */
export type ParsedInput =
  | { kind: "empty" }
  | { kind: "line"; text: string }
  | { kind: "meta"; name: string; argument: string }
  | { kind: "invalid"; message: string };

/**
 * Classifies a typed line.
 * @param line The line as typed.
 * @returns A protocol line to send, a meta-command with its argument, or why it is invalid.
 */
export function parseInput(line: string): ParsedInput {
  if (line.trim() === "") return { kind: "empty" };
  // A leading space only marks the line secret (kept out of history); it is not sent.
  const text = line.replace(/^\s+/, "");
  if (text.startsWith("::")) return { kind: "line", text: text.slice(1) };
  if (!text.startsWith(":")) return { kind: "line", text };
  const match = /^(:\S*)\s*(.*)$/.exec(text.trimEnd())!;
  const typed = match[1]!.toLowerCase();
  const name = ALIASES[typed] ?? typed;
  if (!META_COMMANDS.some((command) => command.name === name)) {
    return {
      kind: "invalid",
      message: `unknown meta-command ${match[1]} (:help lists them; start a line with :: to send ` +
        `a line beginning with :)`,
    };
  }
  return { kind: "meta", name, argument: match[2]! };
}

/**
 * Parses the `on|off` argument of a toggle; empty flips the current value.
 * @param argument The text after the meta-command.
 * @param current The current value.
 * @returns The new value, or `undefined` when the argument is neither.
 */
export function parseToggle(argument: string, current: boolean): boolean | undefined {
  const word = argument.trim().toLowerCase();
  if (word === "") return !current;
  if (["on", "true", "yes", "1"].includes(word)) return true;
  if (["off", "false", "no", "0"].includes(word)) return false;
  return undefined;
}

/**
 * The text of `:help`.
 * @returns Lines to print.
 */
export function metaHelp(): string[] {
  const width = Math.max(...META_COMMANDS.map((command) => command.usage.length));
  return [
    ...META_COMMANDS.map((command) => `${command.usage.padEnd(width)}  ${command.help}`),
    `${"::TEXT".padEnd(width)}  send :TEXT (a line that starts with a colon)`,
    `${" TEXT".padEnd(width)}  a leading space keeps the line out of history`,
    "Keys: Up/Down history (type a prefix first to search), Tab completes, Ctrl-C clears the line " +
    "(twice on an empty line quits), Ctrl-D quits.",
  ];
}

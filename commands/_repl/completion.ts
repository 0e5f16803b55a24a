/**
 * Tab completion of the repl: meta-commands after `:`, otherwise the first word against the command
 * names known so far (the repl's built-ins plus what the server's `HELP` listed). A name holding a
 * control character is left out: readline would print it raw when it lists the candidates, and
 * nobody can type it anyway.
 *
 * @module
 */
import { hasControls } from "../../lib/client/_terminal_escape.ts";
import { META_COMMANDS } from "./meta_command.ts";

/**
 * The command names in a text `HELP` reply (`commands: PING HELLO …`).
 * @param line A reply line.
 * @returns The names, or `undefined` when the line is not a `commands:` listing.
 */
export function commandsFromHelpReply(line: string): string[] | undefined {
  const match = /^commands:\s*(.*)$/i.exec(line.trim());
  if (!match) return undefined;
  return match[1]!.split(/\s+/).filter((word) => word !== "" && !hasControls(word));
}

/**
 * The command names in a JSON `help` response's `message` (an array of names, or of objects with a
 * `name`/`command` field).
 * @param message The response's message.
 * @returns The names (empty when the message has none).
 */
export function commandsFromJsonHelp(message: unknown): string[] {
  if (!Array.isArray(message)) return [];
  const names: string[] = [];
  for (const item of message) {
    if (typeof item === "string") names.push(item);
    else if (typeof item === "object" && item !== null) {
      const name = (item as { name?: unknown; command?: unknown }).name ??
        (item as { command?: unknown }).command;
      if (typeof name === "string") names.push(name);
    }
  }
  return names.filter((name) => !hasControls(name));
}

/**
 * Completes the first word of a line (what `node:readline`'s `completer` returns).
 * Matching is case-sensitive first; when nothing matches, it is case-insensitive and the candidates
 * keep the case the user typed (`pi` → `ping` for a server that lists `PING`).
 * @param line The line left of the cursor.
 * @param commands The known command names.
 * @returns The candidates and the text they replace.
 */
export function completeLine(line: string, commands: readonly string[]): [string[], string] {
  if (/^\s*:/.test(line)) {
    const word = line.trimStart();
    if (/\s/.test(word)) return [[], line];
    const names = META_COMMANDS.map((command) => command.name);
    return [names.filter((name) => name.startsWith(word.toLowerCase())), word];
  }
  // Only the command name is completed; arguments are free text.
  if (/\S\s/.test(line)) return [[], line];
  const word = line.trimStart();
  const unique = [...new Set(commands)];
  const exact = unique.filter((name) => name.startsWith(word));
  if (exact.length > 0 || word === "") return [exact.sort(), word];
  const lower = word.toLowerCase();
  const typedLower = word === lower;
  const loose = unique
    .filter((name) => name.toLowerCase().startsWith(lower))
    .map((name) =>
      word +
      (typedLower ? name.slice(word.length).toLowerCase() : name.slice(word.length).toUpperCase())
    );
  return [[...new Set(loose)].sort(), word];
}

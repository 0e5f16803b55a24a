/**
 * JSON-protocol arguments from `name=value` words, shared by `send --json` and the repl's JSON mode.
 * A value is JSON when it parses, the text itself otherwise.
 *
 * @module
 */

/** How `name=value` words are read. */
export interface ArgsFromPairsOptions {
  /**
   * Refuse a value that looks like JSON (starts with `"`, `[` or `{`) but does not parse, instead of
   * sending it as text (the repl: a typo there is better caught than sent).
   */
  strictJson?: boolean;
  /** The error for a word that is not `name=value`. */
  badPair: (word: string) => Error;
  /** The error for a value refused by `strictJson`. */
  badValue?: (text: string) => Error;
}

/**
 * Reads `name=value` words into an arguments object.
 * @param words The words after the command.
 * @param options Strictness and errors.
 * @param base Arguments to start from (later words override them).
 * @returns The arguments.
 */
export function argsFromPairs(
  words: readonly string[],
  options: ArgsFromPairsOptions,
  base: Record<string, unknown> = {},
): Record<string, unknown> {
  const args: Record<string, unknown> = { ...base };
  for (const word of words) {
    const equals = word.indexOf("=");
    if (equals <= 0) throw options.badPair(word);
    args[word.slice(0, equals)] = parseArgValue(word.slice(equals + 1), options);
  }
  return args;
}

/**
 * Reads one argument value: JSON when it parses, the text itself otherwise.
 * @param text The text after `=`.
 * @param options Strictness and its error.
 * @returns The value.
 */
export function parseArgValue(
  text: string,
  options: Pick<ArgsFromPairsOptions, "strictJson" | "badValue"> = {},
): unknown {
  try {
    return JSON.parse(text);
  } catch {
    if (options.strictJson && /^["[{]/.test(text)) {
      throw options.badValue?.(text) ?? new SyntaxError(`invalid JSON value: ${text}`);
    }
    return text;
  }
}

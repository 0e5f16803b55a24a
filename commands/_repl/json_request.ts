/**
 * JSON mode of the repl: turns what people type (`add a=1 b=2`, `greet name="Ada Lovelace"`) into
 * JSON-protocol request lines, and responses into text worth reading.
 *
 * Each value is read as JSON when it is valid JSON (`1`, `true`, `null`, `"quoted text"`, `[1, 2]`,
 * `{"k": 1}`), and as a plain string otherwise. A line that already starts with `{` is sent as typed.
 *
 * @module
 */
import { argsFromPairs, parseArgValue } from "../_json_args.ts";
import { type JsonResponse, parseJsonResponse } from "../../lib/client/client.ts";
import { RemoteError } from "../../lib/errors.ts";

/** A request as typed, before it gets its id. */
export interface TypedJsonRequest {
  /** The command name. */
  command: string;
  /** Arguments by name. */
  args: Record<string, unknown>;
}

/** Why a typed line is not a request. */
export class JsonInputError extends Error {
  /** @param message What is wrong, for people. */
  constructor(message: string) {
    super(message);
    this.name = "JsonInputError";
  }
}

/**
 * Splits a line into words at whitespace that is outside double-quoted strings and outside
 * brackets or braces, so `a=[1, 2] b="x y"` is two words.
 * @param line The typed line.
 * @returns The words.
 * @throws {JsonInputError} On an unterminated string or unbalanced brackets.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let depth = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (inString) {
      word += char;
      if (char === "\\" && i + 1 < line.length) word += line[++i];
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === "[" || char === "{") depth++;
    else if (char === "]" || char === "}") {
      if (--depth < 0) throw new JsonInputError(`unbalanced ${char} in: ${line}`);
    } else if (/\s/.test(char) && depth === 0) {
      if (word) words.push(word);
      word = "";
      continue;
    }
    word += char;
  }
  if (inString) throw new JsonInputError(`unterminated string in: ${line}`);
  if (depth !== 0) throw new JsonInputError(`unclosed [ or { in: ${line}`);
  if (word) words.push(word);
  return words;
}

/** The repl's rules for `name=value`: a value that looks like JSON must be valid JSON. */
const REPL_PAIRS = {
  strictJson: true,
  badPair: (word: string) =>
    new JsonInputError(`expected name=value, got ${word} (quote values with spaces: x="a b")`),
  badValue: (text: string) => new JsonInputError(`invalid JSON value: ${text}`),
};

/**
 * Reads one argument value: JSON when it parses, the text itself otherwise.
 * @param text The text after `=`.
 * @returns The value.
 * @throws {JsonInputError} For text that looks like JSON but is not.
 */
export function parseValue(text: string): unknown {
  return parseArgValue(text, REPL_PAIRS);
}

/**
 * Parses `command name=value …`.
 * @param line The typed line.
 * @returns The command and its arguments.
 * @throws {JsonInputError} When a word after the command is not `name=value`.
 */
export function parseJsonCommandLine(line: string): TypedJsonRequest {
  const [command, ...rest] = splitWords(line.trim());
  if (command === undefined) throw new JsonInputError("empty command");
  if (/[="{[]/.test(command)) {
    throw new JsonInputError(`expected a command name first, got ${command}`);
  }
  return { command, args: argsFromPairs(rest, REPL_PAIRS) };
}

/**
 * Builds the request line for a typed line.
 * @param line The typed line: `command name=value …`, or a JSON object sent as it is.
 * @param id The request id to add (so the reply can be matched and timed).
 * @returns The line to send, and the id it carries (`undefined` for a raw object without one).
 * @throws {JsonInputError} When the line cannot be turned into a request.
 */
export function encodeJsonRequest(line: string, id: number): { line: string; id: unknown } {
  const trimmed = line.trim();
  if (trimmed.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new JsonInputError(`invalid JSON: ${(error as Error).message}`);
    }
    const hasId = typeof value === "object" && value !== null && "id" in value;
    return { line: trimmed, id: hasId ? (value as { id: unknown }).id : undefined };
  }
  const request = parseJsonCommandLine(trimmed);
  return { line: JSON.stringify({ command: request.command, args: request.args, id }), id };
}

/** A response line shown to people. */
export interface DescribedResponse {
  /** `ok`, `error` (non-zero status) or `raw` (not a JSON response). */
  kind: "ok" | "error" | "raw";
  /** The request id, when there is one. */
  id?: unknown;
  /** Lines to print. */
  lines: string[];
}

/**
 * Turns a response line into readable lines: the message of a success (a string as it is,
 * anything else pretty-printed), `error N: message` for a non-zero status, the `extra` field
 * when it is not null; a line that is not a JSON response comes back unchanged. The line is parsed
 * by the client's one parser ({@linkcode parseJsonResponse}).
 * @param line The response line.
 * @returns What to show.
 */
export function describeJsonResponse(line: string): DescribedResponse {
  let response: JsonResponse;
  try {
    response = parseJsonResponse(line);
  } catch (error) {
    if (error instanceof RemoteError) return { kind: "raw", lines: [line] };
    throw error;
  }
  return describeResponse(response);
}

/**
 * Readable lines for a parsed response (see {@linkcode describeJsonResponse}).
 * @param response The response.
 * @returns What to show.
 */
export function describeResponse(response: JsonResponse): DescribedResponse {
  const show = (data: unknown) =>
    typeof data === "string" ? data.split("\n") : JSON.stringify(data, null, 2).split("\n");
  const lines = response.status === 0 ? show(response.message ?? null) : [
    `error ${response.status}: ${
      typeof response.message === "string" ? response.message : JSON.stringify(response.message)
    }`,
  ];
  // Every response has extra; it is shown when a command set it (null means none).
  if (response.extra !== undefined && response.extra !== null) {
    lines.push(...show(response.extra).map((l, i) => i === 0 ? `extra: ${l}` : l));
  }
  return {
    kind: response.status === 0 ? "ok" : "error",
    ...("id" in response ? { id: response.id } : {}),
    lines,
  };
}

/**
 * The conversation file format of `linesock test` (docs/test.md): plain text, one step a line,
 * readable in a diff.
 *
 * ```text
 * # a comment
 * < WELCOME                     the greeting: expect this line exactly
 * > PING                        send a line
 * < PONG                        expect a line exactly
 * <re ^PO+NG$                   expect a line matching a regular expression
 * <json {"status": 0}           expect a JSON object with (at least) these fields
 * <any 2                        expect two lines, whatever they say
 * <set a                        lines in a row of <set: expected in any order
 * <set b
 * silence 200ms                 expect no line for this long
 * >raw AB\x00                   send bytes as they are, no newline
 * halfclose                     send our FIN (the server may still answer)
 * closed                        expect the server to close
 * pause 100ms                   wait before the next step
 * timeout 2s                    the time each expectation may take from here on
 * <re ^ID (?<id>\d+)$           named groups are captured...
 * > GET ${id}                   ...and used later
 * alice> JOIN                   several named connections in one file
 * bob< alice joined
 * bob: closed
 * ```
 *
 * In lines, `\r`, `\t`, `\0`, `\xHH`, `\\` and `\$` are escapes; `${name}` is a captured value.
 *
 * @module
 */

/** One step of a conversation. */
export type Step =
  | { kind: "send"; text: string; newline: boolean }
  | { kind: "expect"; text: string }
  | { kind: "regex"; pattern: RegExp; source: string }
  | { kind: "json"; subset: unknown; source: string }
  | { kind: "any"; count: number }
  | { kind: "set"; lines: string[] }
  | { kind: "silence"; ms: number }
  | { kind: "halfclose" }
  | { kind: "closed" }
  | { kind: "pause"; ms: number }
  | { kind: "timeout"; ms: number };

/** A step with where it was written and on which connection. */
export interface PlacedStep {
  /** The connection's name (`main` unless the line names one). */
  readonly connection: string;
  /** The 1-based line in the file. */
  readonly line: number;
  /** The line as written (for reports). */
  readonly source: string;
  /** What to do. */
  readonly step: Step;
}

/** A parsed conversation file. */
export interface Conversation {
  /** Its path (for reports). */
  readonly path: string;
  /** Its steps, in order. */
  readonly steps: readonly PlacedStep[];
}

/** A malformed conversation file (exit status 2): `file:line: what was expected there`. */
export class ConversationSyntaxError extends Error {
  /**
   * @param path The file.
   * @param line The 1-based line.
   * @param message What is wrong and what was expected.
   */
  constructor(path: string, line: number, message: string) {
    super(`${path}:${line}: ${message}`);
    this.name = "ConversationSyntaxError";
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/;

function duration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000 }[match[2] ?? "s"] ?? 1000);
}

/** `NAME>`, `NAME<…` or `NAME: keyword`: the connection a line talks on. */
const NAMED = /^([A-Za-z][\w-]*)(?=[<>]|:\s)/;

/**
 * Parses a conversation file's text.
 * @param path The file's name (for messages).
 * @param text Its contents.
 * @returns The conversation.
 * @throws {ConversationSyntaxError} On the first line that is not a step.
 */
export function parseConversation(path: string, text: string): Conversation {
  const steps: PlacedStep[] = [];
  const lines = text.split("\n");
  let set: string[] | undefined;
  for (const [index, raw] of lines.entries()) {
    const lineNumber = index + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.trimStart().startsWith("#")) {
      set = undefined;
      continue;
    }
    const fail = (message: string) => new ConversationSyntaxError(path, lineNumber, message);
    let connection = "main";
    let rest = line;
    const named = NAMED.exec(line);
    if (named) {
      connection = named[1]!;
      rest = line.slice(connection.length).replace(/^:\s+/, "");
    }
    const step = parseStep(rest, fail);
    if (step.kind === "set") {
      const previous = steps.at(-1);
      if (
        set !== undefined && previous?.connection === connection && previous.step.kind === "set"
      ) {
        set.push(...step.lines);
        continue;
      }
      set = step.lines;
    } else {
      set = undefined;
    }
    steps.push({ connection, line: lineNumber, source: line, step });
  }
  if (steps.length === 0) throw new ConversationSyntaxError(path, 1, "no steps (expected > or <)");
  return { path, steps };
}

function parseStep(text: string, fail: (message: string) => Error): Step {
  if (text.startsWith("> ") || text === ">") {
    return { kind: "send", text: text.slice(2), newline: true };
  }
  if (text.startsWith(">raw ")) return { kind: "send", text: text.slice(5), newline: false };
  if (text.startsWith("< ") || text === "<") return { kind: "expect", text: text.slice(2) };
  if (text.startsWith("<re ")) {
    const source = text.slice(4);
    try {
      return { kind: "regex", pattern: new RegExp(source, "v"), source };
    } catch (error) {
      throw fail(`bad regular expression: ${(error as Error).message}`);
    }
  }
  if (text.startsWith("<json ")) {
    const source = text.slice(6);
    try {
      return { kind: "json", subset: JSON.parse(source), source };
    } catch (error) {
      throw fail(`bad JSON after <json: ${(error as Error).message}`);
    }
  }
  if (text === "<any" || text.startsWith("<any ")) {
    const count = text === "<any" ? 1 : Number(text.slice(5).trim());
    if (!(Number.isInteger(count) && count >= 1)) throw fail("expected <any or <any N (N ≥ 1)");
    return { kind: "any", count };
  }
  if (text.startsWith("<set ")) return { kind: "set", lines: [text.slice(5)] };
  const [keyword, ...args] = text.trim().split(/\s+/);
  const argument = args.join(" ");
  switch (keyword) {
    case "silence":
    case "pause":
    case "timeout": {
      const ms = duration(argument);
      if (ms === undefined) throw fail(`expected ${keyword} DURATION (such as 500ms or 2s)`);
      return { kind: keyword, ms };
    }
    case "halfclose":
    case "closed":
      if (argument !== "") throw fail(`${keyword} takes nothing after it`);
      return { kind: keyword };
  }
  throw fail(
    `expected a step: "> LINE", "< LINE", "<re", "<json", "<any", "<set", ">raw", silence, ` +
      `pause, timeout, halfclose or closed; got ${JSON.stringify(text)}`,
  );
}

/**
 * Turns a line of the file into bytes: escapes, and `${name}` replaced by captured values.
 * @param text The line as written.
 * @param captures Values captured so far.
 * @returns The bytes.
 * @throws {Error} For an unknown `${name}` or a bad escape.
 */
export function expand(text: string, captures: ReadonlyMap<string, string>): Uint8Array {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let at = 0; at < text.length; at++) {
    const char = text[at]!;
    if (char === "$" && text[at + 1] === "{") {
      const end = text.indexOf("}", at);
      const name = end === -1 ? "" : text.slice(at + 2, end);
      const value = captures.get(name);
      if (value === undefined) {
        throw new Error(
          `\${${name}} was not captured (captured: ${[...captures.keys()].join(", ") || "none"})`,
        );
      }
      bytes.push(...encoder.encode(value));
      at = end;
    } else if (char === "\\") {
      const next = text[++at];
      if (next === "r") bytes.push(0x0d);
      else if (next === "t") bytes.push(0x09);
      else if (next === "0") bytes.push(0x00);
      else if (next === "\\" || next === "$") bytes.push(next.charCodeAt(0));
      else if (next === "x" && /^[0-9a-fA-F]{2}$/.test(text.slice(at + 1, at + 3))) {
        bytes.push(parseInt(text.slice(at + 1, at + 3), 16));
        at += 2;
      } else throw new Error(`bad escape \\${next ?? ""} (\\r \\t \\0 \\xHH \\\\ \\$)`);
    } else {
      bytes.push(...encoder.encode(char));
    }
  }
  return new Uint8Array(bytes);
}

/**
 * Whether `value` has every field of `subset` (recursively; arrays element by element).
 * @param value A parsed JSON value.
 * @param subset What it must contain.
 * @returns `true` when it does.
 */
export function jsonContains(value: unknown, subset: unknown): boolean {
  if (subset === null || typeof subset !== "object") return Object.is(value, subset);
  if (Array.isArray(subset)) {
    return Array.isArray(value) && subset.length === value.length &&
      subset.every((item, index) => jsonContains(value[index], item));
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  return Object.entries(subset).every(([key, item]) =>
    Object.hasOwn(value, key) && jsonContains((value as Record<string, unknown>)[key], item)
  );
}

/**
 * Writes bytes as a conversation file line shows them: escapes for `\`, `$`, control characters
 * and bytes that are not UTF-8, so that {@linkcode expand} gives the same bytes back.
 * @param bytes A line without its `\n`.
 * @returns The text to put after `> ` or `< `.
 */
export function escapeBytes(bytes: Uint8Array): string {
  let text: string | undefined;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8: every byte on its own, those above ASCII as \xHH.
  }
  const hex = (code: number) => `\\x${code.toString(16).padStart(2, "0")}`;
  const one = (char: string): string => {
    const code = char.codePointAt(0)!;
    if (char === "\\") return "\\\\";
    if (char === "$") return "\\$";
    if (char === "\r") return "\\r";
    if (char === "\t") return "\\t";
    if (code === 0) return "\\0";
    if (code < 0x20 || code === 0x7f) return hex(code);
    return char;
  };
  if (text !== undefined) return [...text].map(one).join("");
  return [...bytes].map((byte) => byte < 0x80 ? one(String.fromCharCode(byte)) : hex(byte)).join(
    "",
  );
}

/**
 * A small strict JSON parser that keeps where every value and key starts in the source text, so that
 * configuration errors can name a line and a column. It accepts exactly what `JSON.parse` accepts,
 * except that a repeated key in one object is an error (in a hand-written file it is a mistake).
 *
 * Internal: used by the route loader; not part of the public API.
 *
 * @module
 */

/** A parsed JSON value with its source position (`start` is the offset of its first character). */
export type JsonNode =
  | { type: "object"; start: number; entries: JsonEntry[] }
  | { type: "array"; start: number; items: JsonNode[] }
  | { type: "string"; start: number; value: string }
  | { type: "number"; start: number; value: number }
  | { type: "boolean"; start: number; value: boolean }
  | { type: "null"; start: number };

/** One `"key": value` member of an object node. */
export interface JsonEntry {
  key: string;
  /** Offset of the key's opening quote. */
  keyStart: number;
  value: JsonNode;
}

/** The text is not valid JSON; `offset` is where the problem was found. */
export class JsonSyntaxError extends Error {
  /** The 0-based UTF-16 offset of the problem in the text. */
  readonly offset: number;

  /**
   * Creates the instance.
   * @param message What is wrong.
   * @param offset Where, as an offset into the text.
   */
  constructor(message: string, offset: number) {
    super(message);
    this.name = "JsonSyntaxError";
    this.offset = offset;
  }
}

/** A 1-based line and column (columns count characters, a tab is one). */
export interface TextPosition {
  line: number;
  column: number;
}

// Deep enough for any configuration file, shallow enough that recursion cannot overflow the stack.
const MAX_DEPTH = 512;

const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Parses JSON text, keeping positions.
 * @param text The JSON text.
 * @returns The root node.
 * @throws {JsonSyntaxError} When the text is not valid JSON or repeats a key.
 */
export function parseJsonWithPositions(text: string): JsonNode {
  return new Parser(text).parseDocument();
}

/**
 * Turns a node back into a plain value, as `JSON.parse` would have built it.
 * @param node A parsed node.
 * @returns The plain value.
 */
export function toPlainValue(node: JsonNode): unknown {
  switch (node.type) {
    case "object": {
      const object: Record<string, unknown> = {};
      // defineProperty, like JSON.parse, so that a "__proto__" key stays an ordinary property.
      for (const entry of node.entries) {
        Object.defineProperty(object, entry.key, {
          value: toPlainValue(entry.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return object;
    }
    case "array":
      return node.items.map(toPlainValue);
    case "null":
      return null;
    default:
      return node.value;
  }
}

/**
 * Converts an offset into a 1-based line and column.
 * @param text The source text.
 * @param offset A 0-based UTF-16 offset into it.
 * @returns The line and column; columns count code points.
 */
export function positionAt(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let at = text.indexOf("\n"); at !== -1 && at < end; at = text.indexOf("\n", at + 1)) {
    line++;
    lineStart = at + 1;
  }
  let column = 1;
  for (let at = lineStart; at < end; at++) {
    const code = text.charCodeAt(at);
    // The second half of a surrogate pair is the same character.
    if (code < 0xdc00 || code > 0xdfff || at === lineStart) column++;
  }
  return { line, column };
}

/**
 * Finds where the decoded character at `index` of a string node sits in the source text, looking
 * through escape sequences, so that an error inside a string can point at the exact character.
 * @param text The source text.
 * @param node A string node parsed from that text.
 * @param index A 0-based index into `node.value` (may equal its length).
 * @returns The source offset of that character.
 */
export function offsetInString(
  text: string,
  node: { start: number; value: string },
  index: number,
): number {
  let source = node.start + 1;
  for (let decoded = 0; decoded < index && decoded < node.value.length; decoded++) {
    if (text[source] === "\\") source += text[source + 1] === "u" ? 6 : 2;
    else source++;
  }
  return source;
}

class Parser {
  readonly #text: string;
  #at = 0;
  #depth = 0;

  constructor(text: string) {
    this.#text = text;
  }

  parseDocument(): JsonNode {
    this.#skipSpace();
    const node = this.#parseValue();
    this.#skipSpace();
    if (this.#at < this.#text.length) {
      throw this.#unexpected("end of input after the top-level value");
    }
    return node;
  }

  #parseValue(): JsonNode {
    const start = this.#at;
    const char = this.#text[start];
    switch (char) {
      case "{":
        return this.#nested(() => this.#parseObject());
      case "[":
        return this.#nested(() => this.#parseArray());
      case '"':
        return { type: "string", start, value: this.#parseString() };
      case "t":
        return this.#literal("true", { type: "boolean", start, value: true });
      case "f":
        return this.#literal("false", { type: "boolean", start, value: false });
      case "n":
        return this.#literal("null", { type: "null", start });
    }
    NUMBER.lastIndex = start;
    const number = NUMBER.exec(this.#text);
    if (number) {
      this.#at = start + number[0].length;
      return { type: "number", start, value: Number(number[0]) };
    }
    throw this.#unexpected("a value (object, array, string, number, true, false or null)");
  }

  #nested(parse: () => JsonNode): JsonNode {
    if (++this.#depth > MAX_DEPTH) {
      throw new JsonSyntaxError(`nesting deeper than ${MAX_DEPTH} levels`, this.#at);
    }
    const node = parse();
    this.#depth--;
    return node;
  }

  #parseObject(): JsonNode {
    const start = this.#at++;
    const entries: JsonEntry[] = [];
    const seen = new Set<string>();
    this.#skipSpace();
    if (this.#text[this.#at] === "}") {
      this.#at++;
      return { type: "object", start, entries };
    }
    for (;;) {
      this.#skipSpace();
      if (this.#text[this.#at] !== '"') {
        if (this.#text[this.#at] === "}" && entries.length > 0) {
          throw new JsonSyntaxError("trailing comma before '}' is not allowed in JSON", this.#at);
        }
        throw this.#unexpected("a key in double quotes");
      }
      const keyStart = this.#at;
      const key = this.#parseString();
      if (seen.has(key)) {
        throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)}`, keyStart);
      }
      seen.add(key);
      this.#skipSpace();
      if (this.#text[this.#at] !== ":") throw this.#unexpected("':' after the key");
      this.#at++;
      this.#skipSpace();
      entries.push({ key, keyStart, value: this.#parseValue() });
      this.#skipSpace();
      const next = this.#text[this.#at];
      this.#at++;
      if (next === "}") return { type: "object", start, entries };
      if (next !== ",") {
        this.#at--;
        throw this.#unexpected("',' or '}'");
      }
    }
  }

  #parseArray(): JsonNode {
    const start = this.#at++;
    const items: JsonNode[] = [];
    this.#skipSpace();
    if (this.#text[this.#at] === "]") {
      this.#at++;
      return { type: "array", start, items };
    }
    for (;;) {
      this.#skipSpace();
      if (this.#text[this.#at] === "]" && items.length > 0) {
        throw new JsonSyntaxError("trailing comma before ']' is not allowed in JSON", this.#at);
      }
      items.push(this.#parseValue());
      this.#skipSpace();
      const next = this.#text[this.#at];
      this.#at++;
      if (next === "]") return { type: "array", start, items };
      if (next !== ",") {
        this.#at--;
        throw this.#unexpected("',' or ']'");
      }
    }
  }

  #parseString(): string {
    const text = this.#text;
    let at = this.#at + 1;
    let value = "";
    let runStart = at;
    for (;;) {
      if (at >= text.length) {
        throw new JsonSyntaxError("unterminated string", this.#at);
      }
      const code = text.charCodeAt(at);
      if (code === 0x22) break;
      if (code < 0x20) {
        throw new JsonSyntaxError(
          "control character in a string (write \\n, \\t, … instead)",
          at,
        );
      }
      if (code !== 0x5c) {
        at++;
        continue;
      }
      value += text.slice(runStart, at);
      const escape = text[at + 1];
      if (escape === "u") {
        const hex = text.slice(at + 2, at + 6);
        if (!HEX4.test(hex)) {
          throw new JsonSyntaxError("invalid \\u escape (want 4 hex digits)", at);
        }
        value += String.fromCharCode(parseInt(hex, 16));
        at += 6;
      } else if (escape !== undefined && escape in ESCAPES) {
        value += ESCAPES[escape];
        at += 2;
      } else {
        throw new JsonSyntaxError(`invalid escape '\\${escape ?? ""}' in a string`, at);
      }
      runStart = at;
    }
    value += text.slice(runStart, at);
    this.#at = at + 1;
    return value;
  }

  #literal(word: string, node: JsonNode): JsonNode {
    if (!this.#text.startsWith(word, this.#at)) {
      throw this.#unexpected("a value (object, array, string, number, true, false or null)");
    }
    this.#at += word.length;
    return node;
  }

  #skipSpace(): void {
    const text = this.#text;
    for (;;) {
      const char = text[this.#at];
      if (char === " " || char === "\t" || char === "\n" || char === "\r") {
        this.#at++;
      } else {
        return;
      }
    }
  }

  #unexpected(expected: string): JsonSyntaxError {
    const text = this.#text;
    if (this.#at >= text.length) {
      return new JsonSyntaxError(`unexpected end of input, expected ${expected}`, this.#at);
    }
    if (text.startsWith("//", this.#at) || text.startsWith("/*", this.#at)) {
      return new JsonSyntaxError(
        "comments are not allowed in JSON",
        this.#at,
      );
    }
    const char = String.fromCodePoint(text.codePointAt(this.#at)!);
    return new JsonSyntaxError(
      `unexpected ${JSON.stringify(char)}, expected ${expected}`,
      this.#at,
    );
  }
}

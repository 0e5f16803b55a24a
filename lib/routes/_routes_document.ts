/**
 * Internal: a routes file read and checked against its JSON Schema (`routes.schema.json`, published
 * as docs/routes.schema.json). The text is JSONC (comments and trailing commas allowed) read by
 * `jsonc-parser`, which keeps where every value starts; the schema is checked by
 * `@cfworker/json-schema`, and its first meaningful error becomes one positioned line:
 * `routes.jsonc:4:34: routes[1].replly: unknown key (did you mean "reply"?); expected one of …`.
 * The loader's own checks (regular expressions, templates, programs) report through
 * {@linkcode RoutesDocument.fail} the same way.
 *
 * @module
 */
import { findNodeAtLocation, type Node, type ParseError, parseTree } from "jsonc-parser";
import { type OutputUnit, type Schema, Validator } from "@cfworker/json-schema";
import { closestMatch } from "leven";
import schemaJson from "./routes.schema.json" with { type: "json" };
import { RoutesError } from "./routes_error.ts";

/** Where a value is: keys and array indexes from the root. */
export type JsonPath = readonly (string | number)[];

/** A JSON Schema node, as this module reads it. */
type SchemaNode = {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  required?: string[];
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
  errorMessage?: string;
  minimum?: number;
  minItems?: number;
};

const SCHEMA = schemaJson as SchemaNode;
let validator: Validator | undefined;

/** A checked routes document: its plain value, and where each part of it is in the text. */
export class RoutesDocument {
  /** The file name used in messages. */
  readonly file: string;
  /** The document as plain data (it passed the schema). */
  readonly value: Record<string, unknown>;
  readonly #text: string;
  readonly #root: Node;

  private constructor(file: string, text: string, root: Node, value: Record<string, unknown>) {
    this.file = file;
    this.#text = text;
    this.#root = root;
    this.value = value;
  }

  /**
   * Reads JSONC text and checks it against the schema.
   * @param text The file's text.
   * @param file The file name for messages.
   * @returns The document.
   * @throws {RoutesError} On a syntax error, a repeated key, or a value the schema refuses.
   */
  static parse(text: string, file: string): RoutesDocument {
    const errors: ParseError[] = [];
    const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
    const first = errors[0];
    if (first !== undefined || root === undefined) {
      const offset = first?.offset ?? 0;
      throw positioned(text, file, offset, "", `invalid JSON: ${syntaxProblem(text, first)}`);
    }
    const repeated = repeatedKey(root);
    if (repeated !== undefined) {
      throw positioned(
        text,
        file,
        repeated.offset,
        "",
        `invalid JSON: duplicate key ${JSON.stringify(repeated.value)}`,
      );
    }
    // A plain copy: jsonc-parser builds objects without a prototype.
    const value = JSON.parse(JSON.stringify(nodeValue(root)));
    validator ??= new Validator(SCHEMA as Schema, "7", false);
    const result = validator.validate(value);
    const document = new RoutesDocument(file, text, root, value);
    if (!result.valid) document.#explain(result.errors);
    return document;
  }

  /**
   * Throws the error for a value, at the value (or at its key).
   * @param path Where the value is.
   * @param reason What is wrong.
   * @param options `key`: point at the key instead; `index`: point at this character of a string
   *   value (as decoded).
   */
  fail(path: JsonPath, reason: string, options: { key?: boolean; index?: number } = {}): never {
    throw positioned(this.#text, this.file, this.offsetOf(path, options), formatPath(path), reason);
  }

  /**
   * The message of a warning about a value (or its key), positioned as an error's.
   * @param path Where the value is.
   * @param reason What is wrong.
   * @param options As for {@linkcode fail}.
   * @returns `FILE:LINE:COLUMN: PATH: REASON`.
   */
  warning(path: JsonPath, reason: string, options: { key?: boolean; index?: number } = {}): string {
    return positioned(this.#text, this.file, this.offsetOf(path, options), formatPath(path), reason)
      .message;
  }

  /**
   * The offset of a value (or its key, or a character in it) in the text.
   * @param path Where the value is.
   * @param options As for {@linkcode fail}.
   * @returns A UTF-16 offset.
   */
  offsetOf(path: JsonPath, options: { key?: boolean; index?: number } = {}): number {
    const node = findNodeAtLocation(this.#root, [...path]);
    if (node === undefined) return this.#root.offset;
    if (options.key) return node.parent?.children?.[0]?.offset ?? node.offset;
    if (options.index !== undefined && node.type === "string") {
      return offsetInString(this.#text, node.offset, options.index);
    }
    return node.offset;
  }

  /** Turns the schema's errors into the one positioned message that helps most. */
  #explain(errors: readonly OutputUnit[]): never {
    const best = pickError(errors);
    const path = parsePointer(best.instanceLocation, this.value);
    const schema = schemaAt(best.keywordLocation);
    const value = valueAt(this.value, path);
    switch (best.keyword) {
      case "additionalProperties": {
        const allowed = Object.keys(schema.properties ?? {});
        const unknown = keysInOrder(findNodeAtLocation(this.#root, [...path]))
          .find((key) => !allowed.includes(key)) ?? "";
        const listed = allowed.filter((key) => key !== "$schema");
        const hint = nearest(unknown, listed);
        this.fail(
          [...path, unknown],
          `unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; expected one of ${
            listed.map(quote).join(", ")
          }`,
          { key: true },
        );
        break;
      }
      case "required": {
        const missing = (schema.required ?? []).find((key) => !Object.hasOwn(value as object, key));
        this.fail(path, `missing key ${quote(missing ?? "")}`);
        break;
      }
      case "oneOf":
      case "anyOf": {
        const branches = (schema.oneOf ?? schema.anyOf ?? []).map(resolve);
        const kinds = branches.every((branch) => branch.required?.length === 1)
          ? branches.map((branch) => branch.required![0]!)
          : undefined;
        if (kinds !== undefined) {
          const present = keysInOrder(findNodeAtLocation(this.#root, [...path]))
            .filter((key) => kinds.includes(key));
          if (present.length > 1) {
            this.fail(
              [...path, present[1]!],
              `a match has exactly one kind, and this one already has ${quote(present[0]!)}`,
              { key: true },
            );
          }
          this.fail(path, `expected one of ${kinds.map(quote).join(", ")}`);
        }
        this.fail(path, `${expectation(schema, branches)}, got ${describeValue(value)}`);
        break;
      }
      case "enum":
      case "const": {
        const allowed = schema.enum ?? [schema.const];
        this.fail(
          path,
          `expected ${allowed.length === 1 ? "" : "one of "}${
            allowed.map((item) => JSON.stringify(item)).join(", ")
          }, got ${describeValue(value)}`,
        );
        break;
      }
      case "minimum":
        this.fail(path, `expected at least ${schema.minimum}, got ${describeValue(value)}`);
        break;
      default:
        this.fail(path, `${expectation(schema)}, got ${describeValue(value)}`);
    }
  }
}

/** The error worth showing: the deepest; at one depth, unknown keys, then alternatives. */
function pickError(errors: readonly OutputUnit[]): OutputUnit {
  const meaningful = errors.filter((error) =>
    !["properties", "items", "$ref", "false", "allOf", "additionalItems"].includes(error.keyword)
  );
  const rank = (error: OutputUnit) =>
    error.keyword === "additionalProperties" ? 0 : error.keyword === "oneOf" ? 1 : 2;
  const depth = (error: OutputUnit) => error.instanceLocation.split("/").length;
  let best = meaningful[0] ?? errors[0]!;
  for (const error of meaningful) {
    if (
      depth(error) > depth(best) || (depth(error) === depth(best) && rank(error) < rank(best))
    ) {
      best = error;
    }
  }
  return best;
}

/** The schema node that holds the keyword at `keywordLocation` (following `$ref`s). */
function schemaAt(keywordLocation: string): SchemaNode {
  const tokens = keywordLocation.replace(/^#\/?/, "").split("/").filter((token) => token !== "")
    .map(decodeToken);
  tokens.pop(); // The keyword itself.
  let node = SCHEMA;
  for (const token of tokens) {
    // A property's own message wins over its definition's (it says more about that place).
    node = token === "$ref" ? resolve(node) : (node as Record<string, SchemaNode>)[token]!;
  }
  return node;
}

/** A node with its `$ref` followed (definitions of this schema only). */
function resolve(node: SchemaNode): SchemaNode {
  let current = node;
  while (current.$ref !== undefined) {
    const tokens = current.$ref.replace(/^#\//, "").split("/").map(decodeToken);
    let target: unknown = SCHEMA;
    for (const token of tokens) target = (target as Record<string, unknown>)[token];
    current = {
      ...(target as SchemaNode),
      ...(current.errorMessage ? { errorMessage: current.errorMessage } : {}),
    };
  }
  return current;
}

/** What a schema expects, in words: `expected a string or an array of strings`. */
function expectation(schema: SchemaNode, branches?: readonly SchemaNode[]): string {
  if (schema.errorMessage !== undefined) return schema.errorMessage;
  if (branches !== undefined) return `expected ${branches.map(describeSchema).join(" or ")}`;
  return `expected ${describeSchema(schema)}`;
}

function describeSchema(node: SchemaNode): string {
  const schema = resolve(node);
  if (schema.enum) return schema.enum.map((item) => JSON.stringify(item)).join(" or ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string":
      return "a string";
    case "boolean":
      return "true or false";
    case "integer":
      return "a whole number";
    case "number":
      return "a number";
    case "object":
      return "an object";
    case "array": {
      const items = schema.items ? resolve(schema.items) : undefined;
      return items?.type === "string" ? "an array of strings" : "an array";
    }
    default:
      return "a value";
  }
}

/** A value, in words: `the string "yes"`, `the number 4`, `an empty array`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : "an array";
  switch (typeof value) {
    case "object":
      return "an object";
    case "string":
      return `the string ${JSON.stringify(value)}`;
    case "number":
      return `the number ${value}`;
    case "boolean":
      return String(value);
    default:
      return String(value);
  }
}

/** `routes[1].match.regex` from `["routes", 1, "match", "regex"]`. */
export function formatPath(path: JsonPath): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? part : `.${part}`;
  }
  return text;
}

/** The allowed key closest to a mistyped one, when it is close enough to be a typo. */
export function nearest(key: string, allowed: readonly string[]): string | undefined {
  const lower = allowed.map((candidate) => candidate.toLowerCase());
  const found = closestMatch(key.toLowerCase(), lower, {
    maxDistance: Math.max(1, Math.floor(key.length / 3)),
  });
  return found === undefined ? undefined : allowed[lower.indexOf(found)];
}

function quote(text: string): string {
  return `"${text}"`;
}

function decodeToken(token: string): string {
  return decodeURIComponent(token).replaceAll("~1", "/").replaceAll("~0", "~");
}

/** A JSON pointer (`#/routes/0/match`) as a path; array indexes become numbers. */
function parsePointer(pointer: string, root: unknown): JsonPath {
  const tokens = pointer.replace(/^#\/?/, "").split("/").filter((token) => token !== "")
    .map(decodeToken);
  const path: (string | number)[] = [];
  let value = root;
  for (const token of tokens) {
    const part = Array.isArray(value) ? Number(token) : token;
    path.push(part);
    value = (value as Record<string | number, unknown> | undefined)?.[part];
  }
  return path;
}

function valueAt(root: unknown, path: JsonPath): unknown {
  let value = root;
  for (const part of path) value = (value as Record<string | number, unknown> | undefined)?.[part];
  return value;
}

/** An object node's keys, in file order. */
function keysInOrder(node: Node | undefined): string[] {
  if (node?.type !== "object") return [];
  return (node.children ?? []).map((property) => String(property.children?.[0]?.value));
}

/** The plain value of a node (what jsonc-parser's getNodeValue does, without its import). */
function nodeValue(node: Node): unknown {
  switch (node.type) {
    case "object": {
      const object: Record<string, unknown> = {};
      for (const property of node.children ?? []) {
        const [key, value] = property.children ?? [];
        if (key !== undefined && value !== undefined) object[String(key.value)] = nodeValue(value);
      }
      return object;
    }
    case "array":
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value;
  }
}

/** The second occurrence of a key repeated in one object, anywhere in the tree. */
function repeatedKey(node: Node): Node | undefined {
  if (node.type === "object") {
    const seen = new Set<unknown>();
    for (const property of node.children ?? []) {
      const key = property.children?.[0];
      if (key === undefined) continue;
      if (seen.has(key.value)) return key;
      seen.add(key.value);
    }
  }
  for (const child of node.children ?? []) {
    const found = repeatedKey(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

const SYNTAX_PROBLEMS: Record<number, string> = {
  1: "unexpected character",
  2: "invalid number",
  3: "expected a key in double quotes",
  4: "expected a value (object, array, string, number, true, false or null)",
  5: "expected ':' after the key",
  6: "expected ',' between items",
  7: "expected '}' to close the object",
  8: "expected ']' to close the array",
  9: "unexpected text after the end of the document",
  10: "unterminated comment",
  11: "unterminated comment",
  12: "unterminated string",
  13: "unterminated number",
  14: "invalid \\u escape",
  15: "invalid escape character in a string",
  16: "invalid character in a string (control characters must be escaped)",
};

function syntaxProblem(text: string, error: ParseError | undefined): string {
  if (error === undefined) return "the file is empty";
  const problem = SYNTAX_PROBLEMS[error.error] ?? "syntax error";
  // An unexpected symbol: say which (a single quote is the usual one).
  if (error.error === 1 || error.error === 4) {
    const found = text.slice(error.offset, error.offset + Math.max(1, error.length));
    if (found.trim() !== "" && error.offset < text.length) {
      return `unexpected ${JSON.stringify(found.slice(0, 20))}, ${
        error.error === 4 ? problem : "expected a value"
      }`;
    }
    if (error.offset >= text.length) return `unexpected end of the file, ${problem}`;
  }
  return problem;
}

/** The offset in the text of character `index` of the string token starting at `start`. */
function offsetInString(text: string, start: number, index: number): number {
  let at = start + 1; // After the opening quote.
  for (let decoded = 0; decoded < index && at < text.length; decoded++) {
    if (text[at] === "\\") at += text[at + 1] === "u" ? 6 : 2;
    else at += 1;
  }
  return at;
}

function positioned(
  text: string,
  file: string,
  offset: number,
  path: string,
  reason: string,
): RoutesError {
  // Lines and columns count characters (code points), as editors show them.
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  const line = before.split("\n").length;
  const column = [...before.slice(lineStart)].length + 1;
  return new RoutesError(file, line, column, path, reason);
}

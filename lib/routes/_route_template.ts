/**
 * Reply templates of routes: text with `{placeholder}` fields, checked once when the routes load and
 * rendered for each matching line. `{{` and `}}` stand for literal braces.
 *
 * Internal: used by the route loader; not part of the public API.
 *
 * @module
 */

/** Built-in placeholders; which of them a template may use depends on where it is. */
export type FieldName =
  | "line"
  | "rest"
  | "peer"
  | "id"
  | "lineNumber"
  | "command"
  | "args"
  | "host"
  | "name"
  | "time"
  | "connections";

/** The fields every template has: the server's and the connection's. */
export const CONNECTION_FIELDS: readonly FieldName[] = [
  "peer",
  "id",
  "host",
  "name",
  "time",
  "connections",
];

/** One `{…}` in a template. */
export type Placeholder =
  | { kind: "group"; index: number }
  | { kind: "named"; name: string }
  | { kind: "field"; name: FieldName }
  | { kind: "arg"; path: string[] };

/** A checked template: literal text and placeholders, in order. */
export type Template = readonly (string | Placeholder)[];

/** What a template may refer to. */
export interface TemplateScope {
  /**
   * Numbered groups `{1}`…`{groupCount}` exist, and `{0}` (the whole match) does unless this is -1
   * (a greeting, a farewell: nothing was matched).
   */
  groupCount: number;
  /** Named capture groups of the route's regular expression. */
  namedGroups: ReadonlySet<string>;
  /** Built-in fields available. */
  fields: ReadonlySet<FieldName>;
  /** Whether `{args.key}` may be used (JSON command routes). */
  args: boolean;
}

/** The values a template is rendered with. */
export interface TemplateValues {
  /** `[whole match, group 1, …]`; unmatched groups are `undefined`. */
  groups: readonly (string | undefined)[];
  /** Named groups, when the regular expression has any. */
  named: Readonly<Record<string, string | undefined>> | undefined;
  line: string;
  rest: string;
  peer: string;
  id: number;
  lineNumber: number;
  command: string;
  args: Readonly<Record<string, unknown>>;
  /** The machine's host name. */
  host: string;
  /** The server's name (`--name`). */
  name: string;
  /** Connections open on the server. */
  connections: number;
}

/** A template is malformed or names a placeholder that its route does not provide. */
export class TemplateError extends Error {
  /** The 0-based index in the template text where the problem starts. */
  readonly index: number;

  /**
   * Creates the instance.
   * @param message What is wrong.
   * @param index Where, in the template text.
   */
  constructor(message: string, index: number) {
    super(message);
    this.name = "TemplateError";
    this.index = index;
  }
}

/** Every field a template may name, in the order they are listed in messages. */
export const FIELD_NAMES: readonly FieldName[] = [
  "line",
  "rest",
  "peer",
  "id",
  "lineNumber",
  "command",
  "args",
  "host",
  "name",
  "time",
  "connections",
];

/**
 * Checks a template against its scope.
 * @param source The template text.
 * @param scope What the template may refer to.
 * @returns The compiled template.
 * @throws {TemplateError} On a lone brace or an unknown placeholder.
 */
export function compileTemplate(source: string, scope: TemplateScope): Template {
  const parts: (string | Placeholder)[] = [];
  let literal = "";
  let at = 0;
  while (at < source.length) {
    const char = source[at]!;
    if (char === "}") {
      if (source[at + 1] !== "}") {
        throw new TemplateError("lone '}' (write '}}' for a literal brace)", at);
      }
      literal += "}";
      at += 2;
      continue;
    }
    if (char !== "{") {
      literal += char;
      at++;
      continue;
    }
    if (source[at + 1] === "{") {
      literal += "{";
      at += 2;
      continue;
    }
    const close = source.indexOf("}", at + 1);
    const nextOpen = source.indexOf("{", at + 1);
    if (close === -1 || (nextOpen !== -1 && nextOpen < close)) {
      throw new TemplateError("'{' without its '}' (write '{{' for a literal brace)", at);
    }
    if (literal) parts.push(literal);
    literal = "";
    parts.push(resolvePlaceholder(source.slice(at + 1, close), scope, at));
    at = close + 1;
  }
  if (literal) parts.push(literal);
  return parts;
}

/**
 * Renders a compiled template.
 * @param template The compiled template.
 * @param values The match's values.
 * @returns The text.
 */
export function renderTemplate(template: Template, values: TemplateValues): string {
  let text = "";
  for (const part of template) {
    text += typeof part === "string" ? part : renderPlaceholder(part, values);
  }
  return text;
}

/**
 * Renders a program's stdin template, where each substituted value must stay on its line: a value
 * (a request's argument, a capture) holding `\n` or `\r` would hand the program lines the route
 * did not write (`{"a": "1\nrm x"}` into `"{args.a} {args.b}"`), so the request is refused. Line
 * breaks written in the template itself are the route's and are kept.
 * @param template The compiled stdin template.
 * @param values The match's values.
 * @returns The text, or `undefined` when a substituted value holds a line break.
 */
export function renderStdinTemplate(
  template: Template,
  values: TemplateValues,
): string | undefined {
  let text = "";
  for (const part of template) {
    if (typeof part === "string") {
      text += part;
      continue;
    }
    const value = renderPlaceholder(part, values);
    if (value.includes("\n") || value.includes("\r")) return undefined;
    text += value;
  }
  return text;
}

/**
 * Lists the placeholders a scope allows, for error messages.
 * @param scope The scope.
 * @returns For example `{0}, {1}, {line}, {peer}`.
 */
export function describeScope(scope: TemplateScope): string {
  const names: string[] = [];
  for (let index = 0; index <= scope.groupCount; index++) names.push(`{${index}}`);
  for (const name of scope.namedGroups) names.push(`{${name}}`);
  for (const name of FIELD_NAMES) if (scope.fields.has(name)) names.push(`{${name}}`);
  if (scope.args) names.push("{args.KEY}");
  return names.join(", ");
}

function resolvePlaceholder(name: string, scope: TemplateScope, at: number): Placeholder {
  if (/^\d+$/.test(name)) {
    const index = Number(name);
    if (index > scope.groupCount) {
      const groups = scope.groupCount === 1
        ? "the match has 1 capture group"
        : scope.groupCount === -1
        ? "nothing is matched here"
        : `the match has ${scope.groupCount} capture groups`;
      throw new TemplateError(
        `unknown placeholder {${name}}: ${groups}; available here: ${describeScope(scope)}`,
        at,
      );
    }
    return { kind: "group", index };
  }
  if (name.startsWith("args.") && scope.args) {
    const path = name.slice("args.".length).split(".");
    if (path.some((key) => key === "")) {
      throw new TemplateError(`bad placeholder {${name}}: empty key in the path`, at);
    }
    return { kind: "arg", path };
  }
  if (scope.namedGroups.has(name)) return { kind: "named", name };
  if ((FIELD_NAMES as readonly string[]).includes(name) && scope.fields.has(name as FieldName)) {
    return { kind: "field", name: name as FieldName };
  }
  throw new TemplateError(
    `unknown placeholder {${name}}; available here: ${describeScope(scope)}`,
    at,
  );
}

function renderPlaceholder(placeholder: Placeholder, values: TemplateValues): string {
  switch (placeholder.kind) {
    case "group":
      return values.groups[placeholder.index] ?? "";
    case "named":
      return values.named?.[placeholder.name] ?? "";
    case "arg":
      return renderArg(values.args, placeholder.path);
    case "field":
      switch (placeholder.name) {
        case "id":
          return String(values.id);
        case "lineNumber":
          return String(values.lineNumber);
        case "connections":
          return String(values.connections);
        case "time":
          return new Date().toISOString();
        case "args":
          return JSON.stringify(values.args);
        default:
          return values[placeholder.name];
      }
  }
}

/** A missing argument renders as nothing; a non-string one as its JSON text. */
function renderArg(args: Readonly<Record<string, unknown>>, path: readonly string[]): string {
  let value: unknown = args;
  for (const key of path) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) return "";
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? "";
}

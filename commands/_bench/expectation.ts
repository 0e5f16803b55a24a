/**
 * What a reply to a request must be, line by line: exactly a line, the request itself (an echo), a
 * line matching a regular expression, a JSON object containing given fields, any line, or lines in
 * any order (a set). A request's reply is a list of such checks, one per line (a set spans as many
 * lines as it has), so "N lines, whatever they say" is N `any` checks.
 *
 * {@linkcode checkLine} judges one received line; the load engine uses it where replies are not
 * fixed bytes (regular expressions, JSON, placeholders), and to say what was wrong in any case.
 *
 * @example Checking lines
 * ```ts
 * import { checkLine, type LineCheck } from "./expectation.ts";
 * import { LineTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * const context = { request: bytes('{"command":"ping","id":3}'), seq: 3, conn: 1 };
 * const json: LineCheck = { kind: "json", source: '{"status":0,"id":${seq}}' };
 * assert.equal(checkLine(json, bytes('{"status":0,"message":"pong","id":3}'), context), undefined);
 * assert.equal(
 *   checkLine(json, bytes('{"status":0,"id":4}'), context),
 *   'JSON containing {"status":0,"id":3}',
 * );
 * const exact: LineCheck = { kind: "exact", line: LineTemplate.fromText("PONG") };
 * assert.equal(checkLine(exact, bytes("PONG"), context), undefined);
 * assert.equal(checkLine(exact, bytes("PANG"), context), '"PONG"');
 * ```
 *
 * @module
 */
import { jsonContains } from "../_test/conversation.ts";
import { type LineTemplate, substitute } from "./template.ts";
import { hasPlaceholders } from "./template.ts";
import { escapeControls } from "../../lib/_control_escape.ts";

/** One line of an expected reply. */
export type LineCheck =
  | { readonly kind: "exact"; readonly line: LineTemplate }
  | { readonly kind: "echo" }
  | { readonly kind: "regex"; readonly source: string; readonly flags?: string }
  | { readonly kind: "json"; readonly source: string }
  | { readonly kind: "any" }
  | { readonly kind: "set"; readonly lines: readonly LineTemplate[] };

/** One request: the line sent and the checks of its reply. */
export interface RequestSpec {
  /** The line, without its line ending. */
  readonly line: LineTemplate;
  /** Its reply, line by line (at least one check). */
  readonly reply: readonly LineCheck[];
}

/** What a line is checked against: the request it answers. */
export interface CheckContext {
  /** The request's bytes, without its line ending (for `echo`). */
  readonly request: Uint8Array;
  /** The request's number on its connection (`${seq}`). */
  readonly seq: number;
  /** The connection's number (`${conn}`). */
  readonly conn: number;
}

const decoder = new TextDecoder();
const compiled = new Map<string, RegExp>();
const parsed = new Map<string, unknown>();

/**
 * How many lines a reply has.
 * @param reply Its checks.
 * @returns The line count (a set counts its lines).
 */
export function replyLines(reply: readonly LineCheck[]): number {
  return reply.reduce((sum, check) => sum + (check.kind === "set" ? check.lines.length : 1), 0);
}

/**
 * Whether a check is met by fixed bytes known in advance (exact without placeholders, or an echo of
 * a fixed request): what lets replies be verified a whole chunk at a time.
 * @param check The check.
 * @returns `true` for exact fixed lines and echoes.
 */
export function isFixed(check: LineCheck): boolean {
  return (check.kind === "exact" && check.line.fixed !== undefined) || check.kind === "echo";
}

/**
 * Compiles a regular expression once (the same source is compiled once per run).
 * @param source The expression.
 * @param flags Its flags.
 * @returns The expression.
 * @throws {SyntaxError} When it is not valid.
 */
export function regexOf(source: string, flags = ""): RegExp {
  const key = `${flags}/${source}`;
  let pattern = compiled.get(key);
  if (pattern === undefined) {
    pattern = new RegExp(source, flags);
    if (compiled.size > 1024) compiled.clear();
    compiled.set(key, pattern);
  }
  return pattern;
}

function subsetOf(source: string): unknown {
  let subset = parsed.get(source);
  if (subset === undefined) {
    subset = JSON.parse(source);
    if (parsed.size > 1024) parsed.clear();
    parsed.set(source, subset);
  }
  return subset;
}

/**
 * Checks one received line (without its line ending) against one check. A set is checked as "one of
 * its lines"; the caller removes the line it matched.
 * @param check The check.
 * @param line The line's bytes.
 * @param context The request it answers.
 * @returns `undefined` when the line is right; otherwise what was expected, in a few words.
 */
export function checkLine(
  check: LineCheck,
  line: Uint8Array,
  context: CheckContext,
): string | undefined {
  switch (check.kind) {
    case "any":
      return undefined;
    case "exact": {
      const expected = check.line.render(context.seq, context.conn);
      return sameBytes(line, expected) ? undefined : show(decoder.decode(expected));
    }
    case "echo":
      return sameBytes(line, context.request)
        ? undefined
        : `the line sent, ${show(decoder.decode(context.request))}`;
    case "regex": {
      const source = hasPlaceholders(check.source)
        ? substitute(check.source, context.seq, context.conn)
        : check.source;
      let pattern: RegExp;
      try {
        pattern = regexOf(source, check.flags);
      } catch {
        return `a line matching /${source}/ (which is not a valid regular expression)`;
      }
      return pattern.test(decoder.decode(line)) ? undefined : `a line matching /${source}/`;
    }
    case "json": {
      const source = hasPlaceholders(check.source)
        ? substitute(check.source, context.seq, context.conn)
        : check.source;
      const wanted = `JSON containing ${source}`;
      let subset: unknown;
      try {
        subset = subsetOf(source);
      } catch {
        return `${wanted} (which is not valid JSON)`;
      }
      try {
        return jsonContains(JSON.parse(decoder.decode(line)), subset) ? undefined : wanted;
      } catch {
        return wanted;
      }
    }
    case "set": {
      const text = decoder.decode(line);
      const options = check.lines.map((item) =>
        decoder.decode(item.render(context.seq, context.conn))
      );
      return options.includes(text) ? undefined : `one of ${options.map(show).join(", ")}`;
    }
  }
}

/**
 * A check in a few words, for the settings line of a report.
 * @param reply A request's checks.
 * @returns `"PONG"`, `/^PO+NG$/`, `JSON containing {…}`, `any line`, `3 lines`, `the line sent`.
 */
export function describeReply(reply: readonly LineCheck[]): string {
  if (reply.every((check) => check.kind === "any")) {
    return reply.length === 1 ? "any line" : `any ${reply.length} lines`;
  }
  return reply.map((check) => {
    switch (check.kind) {
      case "any":
        return "any line";
      case "exact":
        return show(check.line.source);
      case "echo":
        return "the line sent";
      case "regex":
        return `/${check.source}/`;
      case "json":
        return `JSON containing ${check.source}`;
      case "set":
        return `{${check.lines.map((line) => show(line.source)).join(", ")}} in any order`;
    }
  }).join(" + ");
}

/**
 * A line as shown in a message: quoted and escaped, cut at 80 characters. JSON quoting escapes C0
 * controls but leaves DEL and C1 (U+009B, an 8-bit CSI) as they are: those are escaped too, since
 * a reply comes from an untrusted server and must not drive the terminal.
 * @param text The line.
 * @returns It, quoted.
 */
export function show(text: string): string {
  const cut = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return escapeControls(JSON.stringify(cut));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

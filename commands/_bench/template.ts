/**
 * Request and reply lines with placeholders: `${seq}` is the request's number on its connection
 * (1, 2, …) and `${conn}` the connection's (1, 2, …), so that a JSON request can carry an id and its
 * reply be checked for the same id. A line without placeholders is one fixed byte string, which is
 * what lets the load engine send and verify from pre-built tapes.
 *
 * @example A request with an id
 * ```ts
 * import { LineTemplate, substitute } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const request = LineTemplate.fromText('{"command":"ping","id":${seq}}');
 * assert.equal(request.fixed, undefined);
 * assert.equal(new TextDecoder().decode(request.render(7, 1)), '{"command":"ping","id":7}');
 * assert.equal(substitute('{"id":${seq},"c":${conn}}', 7, 2), '{"id":7,"c":2}');
 * assert.deepEqual(LineTemplate.fromText("PING").fixed, new TextEncoder().encode("PING"));
 * ```
 *
 * @module
 */

/** What a placeholder stands for. */
export type Placeholder = "seq" | "conn";

/** A piece of a template: bytes as they are, or a placeholder. */
export type TemplatePart = Uint8Array | Placeholder;

const PLACEHOLDER = /\$\{(seq|conn)\}/g;
const encoder = new TextEncoder();

/**
 * Whether a text has `${seq}` or `${conn}` in it.
 * @param text The text.
 * @returns `true` when it has a placeholder.
 */
export function hasPlaceholders(text: string): boolean {
  PLACEHOLDER.lastIndex = 0;
  return PLACEHOLDER.test(text);
}

/**
 * Replaces `${seq}` and `${conn}` in a text.
 * @param text The text.
 * @param seq The request's number on its connection.
 * @param conn The connection's number.
 * @returns The text with the numbers in.
 */
export function substitute(text: string, seq: number, conn: number): string {
  return text.replace(PLACEHOLDER, (_, name: string) => String(name === "seq" ? seq : conn));
}

/** A line (without its `\n`) with placeholders. */
export class LineTemplate {
  /** Its pieces. */
  readonly parts: readonly TemplatePart[];
  /** The bytes when it has no placeholder. */
  readonly fixed: Uint8Array | undefined;
  /** The line as written, for messages. */
  readonly source: string;

  /**
   * @param parts Bytes and placeholders.
   * @param source The line as written.
   */
  constructor(parts: readonly TemplatePart[], source: string) {
    this.parts = parts;
    this.source = source;
    const placeholders = parts.some((part) => typeof part === "string");
    this.fixed = placeholders ? undefined : concat(parts as Uint8Array[]);
  }

  /**
   * A template from text as given on the command line: `${seq}` and `${conn}` are placeholders,
   * everything else is sent as written.
   * @param text The line.
   * @returns The template.
   */
  static fromText(text: string): LineTemplate {
    const parts: TemplatePart[] = [];
    let at = 0;
    for (const match of text.matchAll(PLACEHOLDER)) {
      if (match.index > at) parts.push(encoder.encode(text.slice(at, match.index)));
      parts.push(match[1] as Placeholder);
      at = match.index + match[0].length;
    }
    if (at < text.length || parts.length === 0) parts.push(encoder.encode(text.slice(at)));
    return new LineTemplate(parts, text);
  }

  /**
   * A template from bytes in which the placeholders were written as marker byte strings (how a
   * conversation file's escapes and placeholders are read together).
   * @param bytes The line's bytes.
   * @param markers The marker of each placeholder.
   * @param source The line as written.
   * @returns The template.
   */
  static fromMarkedBytes(
    bytes: Uint8Array,
    markers: Readonly<Record<Placeholder, Uint8Array>>,
    source: string,
  ): LineTemplate {
    const parts: TemplatePart[] = [];
    let literalStart = 0;
    outer: for (let at = 0; at < bytes.length;) {
      for (const name of ["seq", "conn"] as const) {
        const marker = markers[name];
        if (startsWithAt(bytes, marker, at)) {
          if (at > literalStart) parts.push(bytes.slice(literalStart, at));
          parts.push(name);
          at += marker.length;
          literalStart = at;
          continue outer;
        }
      }
      at++;
    }
    if (literalStart < bytes.length || parts.length === 0) parts.push(bytes.slice(literalStart));
    return new LineTemplate(parts, source);
  }

  /**
   * The line for one request.
   * @param seq The request's number on its connection.
   * @param conn The connection's number.
   * @returns Its bytes (the fixed bytes themselves when there is no placeholder).
   */
  render(seq: number, conn: number): Uint8Array {
    if (this.fixed) return this.fixed;
    return concat(
      this.parts.map((part) =>
        typeof part !== "string" ? part : encoder.encode(String(part === "seq" ? seq : conn))
      ),
    );
  }
}

function startsWithAt(bytes: Uint8Array, prefix: Uint8Array, at: number): boolean {
  if (prefix.length === 0 || at + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * {@linkcode RoutesError}: a routes file that cannot be read or is invalid, with where and why. Kept
 * apart from the loader so that catching it does not load the loader's parsers.
 *
 * @example A positioned message
 * ```ts
 * import { RoutesError } from "@linesock/linesock/routes";
 * import assert from "node:assert/strict";
 *
 * const error = new RoutesError("r.jsonc", 3, 7, "routes[0].reply", "expected a string");
 * assert.equal(error.message, "r.jsonc:3:7: routes[0].reply: expected a string");
 * assert.equal(error.code, "INVALID_ROUTES");
 * ```
 *
 * @module
 */
import { LinesockError } from "../errors.ts";

/** The routes file is unreadable or invalid. The message is one line, ready for the user. */
export class RoutesError extends LinesockError {
  /** The file, as given (`routes.json`), or `routes` for text without a name. */
  readonly file: string;
  /** The 1-based line of the problem (0 when the file could not be read). */
  readonly line: number;
  /** The 1-based column of the problem (0 when the file could not be read). */
  readonly column: number;
  /** The path of the offending value, e.g. `routes[2].match.regex` (empty for syntax errors). */
  readonly path: string;
  /** What is wrong and what was expected. */
  readonly reason: string;

  /**
   * Creates the instance.
   * @param file The file name.
   * @param line The 1-based line, or 0.
   * @param column The 1-based column, or 0.
   * @param path The path of the value, or `""`.
   * @param reason What is wrong.
   * @param options Standard error options (`cause`).
   */
  constructor(
    file: string,
    line: number,
    column: number,
    path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    const where = line > 0 ? `${file}:${line}:${column}` : file;
    super("INVALID_ROUTES", `${where}: ${path ? `${path}: ` : ""}${reason}`, options);
    this.file = file;
    this.line = line;
    this.column = column;
    this.path = path;
    this.reason = reason;
  }
}

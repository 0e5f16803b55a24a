/**
 * Internal: the regular expressions of routes, run by RE2JS (a port of RE2), whose matching time is
 * linear in the line's length whatever the pattern: a pattern such as `(a+)+$` cannot make a long
 * line hang the server, as it would with a backtracking engine. JavaScript's escapes (`\u00e9`,
 * `\cA`, `[^]`) and named groups `(?<name>…)` are translated; what RE2 cannot do in linear time
 * (backreferences, lookahead, lookbehind) is refused when the file loads.
 *
 * @module
 */
import { RE2JS } from "re2js";

/** The flags a route's regex may have. */
export const REGEX_FLAGS = "imsu";

/** A compiled route regex: what `RegExp.exec` would give, found in linear time. */
export interface RouteRegex {
  /** Numbered groups (not counting the whole match). */
  readonly groupCount: number;
  /** Names of the named groups. */
  readonly groupNames: readonly string[];
  /**
   * Searches `subject`.
   * @returns The match (`[whole, group 1, …]` with `index` and `groups`), or `null`.
   */
  exec(subject: string): RegExpExecArray | null;
}

/** A pattern RE2 refuses; `index` is where in the pattern (as written), when known. */
export class RouteRegexError extends Error {
  /** The 0-based index in the pattern where the problem is. */
  readonly index: number;

  /**
   * Creates the instance.
   * @param message What is wrong.
   * @param index Where.
   */
  constructor(message: string, index: number) {
    super(message);
    this.name = "RouteRegexError";
    this.index = index;
  }
}

/**
 * Compiles a route's pattern.
 * @param pattern The pattern, in JavaScript or RE2 syntax.
 * @param flags Some of `imsu` (checked by the caller).
 * @returns The compiled regex.
 * @throws {RouteRegexError} When RE2 refuses it.
 */
export function compileRouteRegex(pattern: string, flags: string): RouteRegex {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(
      RE2JS.translateRegExp(pattern),
      (flags.includes("i") ? RE2JS.CASE_INSENSITIVE : 0) |
        (flags.includes("m") ? RE2JS.MULTILINE : 0) |
        (flags.includes("s") ? RE2JS.DOTALL : 0),
    );
  } catch (error) {
    throw explain(pattern, error);
  }
  // RE2JS's translation turns `\k<name>` into the literal text `k<name>`: refuse it here.
  const backreference = namedBackreferenceAt(pattern);
  if (backreference !== -1) throw new RouteRegexError(NO_BACKREFERENCES, backreference);
  const names = compiled.namedGroups();
  return {
    groupCount: compiled.groupCount(),
    groupNames: Object.keys(names),
    exec: (subject) => compiled.exec(subject) as RegExpExecArray | null,
  };
}

const NO_BACKREFERENCES =
  "backreferences are not supported (matching runs in linear time, without backtracking)";

/** Where the first `\k<` (a named backreference) is, not counting an escaped backslash; or -1. */
function namedBackreferenceAt(pattern: string): number {
  for (let at = pattern.indexOf("\\"); at !== -1; at = pattern.indexOf("\\", at + 2)) {
    if (pattern.startsWith("k<", at + 1)) return at;
  }
  return -1;
}

/** RE2's complaint in words, at the place in the pattern it concerns. */
function explain(pattern: string, error: unknown): RouteRegexError {
  const { error: problem, input } = error as { error?: string; input?: string };
  if (typeof problem !== "string") {
    return new RouteRegexError(error instanceof Error ? error.message : String(error), 0);
  }
  const found = typeof input === "string" && input !== "" ? pattern.indexOf(input) : -1;
  const index = found === -1 ? 0 : found;
  const fragment = typeof input === "string" && input !== "" ? ` \`${input}\`` : "";
  const rest = pattern.slice(index);
  if (
    /^\(\?[=!]|^\(\?<[=!]/.test(rest) ||
    problem === "invalid named capture" && /^\(\?<[=!]/.test(rest)
  ) {
    return new RouteRegexError(
      "lookahead and lookbehind are not supported (matching runs in linear time, without " +
        "backtracking)",
      index,
    );
  }
  if (/^\\[1-9k]/.test(rest)) return new RouteRegexError(NO_BACKREFERENCES, index);
  return new RouteRegexError(`${problem}${fragment}`, index);
}

/**
 * User routes for `linesock serve`: an ordered table of rules, loaded from a JSON file, that match a
 * text line (exact text, prefix or regular expression) or a JSON command (exact name or regular
 * expression) and say what to do: reply with template lines, run a program, close the connection or
 * shut the server down. The first matching rule wins.
 *
 * The file is checked completely when it loads; every mistake is reported as a
 * {@linkcode RoutesError} naming the file, line, column and path of the offending value, and what
 * was expected: `routes.json:12:5: routes[2].match.regex: invalid regular expression: …`.
 *
 * The file format is described in `docs/routes.md`.
 *
 * @example Matching lines
 * ```ts
 * import { Routes } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const routes = Routes.parse(`{ "routes": [
 *   { "match": { "exact": "status" }, "reply": "OK all good" },
 *   { "match": { "regex": "^add (?<a>\\\\d+) (?<b>\\\\d+)$" }, "reply": ["{a}+{b}", "from {peer}"] },
 *   { "match": { "prefix": "bye" }, "reply": "ACK bye{rest}", "close": true }
 * ]}`);
 * const context = { peer: "127.0.0.1:5000", connectionId: 1, lineNumber: 1 };
 * assert.deepEqual(routes.match("status", context), { kind: "reply", lines: ["OK all good"] });
 * assert.deepEqual(routes.match("add 1 2", context), {
 *   kind: "reply",
 *   lines: ["1+2", "from 127.0.0.1:5000"],
 * });
 * assert.deepEqual(routes.match("bye!", context), { kind: "close", lines: ["ACK bye!"] });
 * assert.equal(routes.match("something else", context), undefined);
 * ```
 *
 * @module
 */
import { editDistance } from "../_edit_distance.ts";
import { LinesockError } from "../errors.ts";
import {
  type JsonEntry,
  type JsonNode,
  JsonSyntaxError,
  offsetInString,
  parseJsonWithPositions,
  positionAt,
  toPlainValue,
} from "./_json_positions.ts";
import {
  compileTemplate,
  FIELD_NAMES,
  type FieldName,
  renderTemplate,
  type Template,
  TemplateError,
  type TemplateScope,
  type TemplateValues,
} from "./_route_template.ts";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_PROGRAM_ENV,
  DEFAULT_PROGRAM_TIMEOUT_MS,
  ExecLimiter,
  runProgram,
  unreadableEnv,
} from "./program_runner.ts";

/** What a route sees of the connection a line came from. */
export interface RouteContext {
  /** The peer, as the server names it (`127.0.0.1:50432`, `unix`): the `{peer}` placeholder. */
  peer: string;
  /** The connection's number: the `{id}` placeholder. */
  connectionId: number;
  /** The line's number on its connection (1-based): the `{lineNumber}` placeholder. */
  lineNumber: number;
  /**
   * Aborting it (e.g. when the connection closes) kills a program started for this line with its
   * process group, or takes it out of the line waiting for a program slot before it starts.
   */
  signal?: AbortSignal;
}

/**
 * What the server should do for a line that matched a route. `extra`, present when a command
 * route has an `"extra"` key, is the value the JSON protocol puts in its successful response.
 */
export type RouteAction =
  /** Send these lines (already rendered from their templates; possibly none). */
  | { kind: "reply"; lines: string[]; extra?: unknown }
  /** Send these lines (possibly none), then close this connection. */
  | { kind: "close"; lines: string[]; extra?: unknown }
  /** Send these lines, then shut the server down (the caller checks that shutdown is allowed). */
  | { kind: "shutdown"; lines: string[]; extra?: unknown }
  /**
   * Send a program's stdout lines as they arrive. The program starts when the iteration starts;
   * the iteration throws a `ProgramError` (timeout, failure, output limit, …) whose message suits
   * an `ERR` reply.
   */
  | { kind: "run"; lines: AsyncIterable<string>; extra?: unknown };

/** Options of {@linkcode Routes.parse} and {@linkcode Routes.load}. */
export interface RoutesOptions {
  /**
   * Limits programs running at once, across all connections (`--max-exec`).
   * @default {a limiter of its own with 16 slots}
   */
  limiter?: ExecLimiter;
  /**
   * A program's timeout when its route sets none, in milliseconds.
   * @default {5000}
   */
  defaultTimeoutMs?: number;
  /**
   * A program's stdout limit when its route sets none, in bytes.
   * @default {1048576}
   */
  defaultMaxOutputBytes?: number;
  /**
   * Names of the server's environment variables that every program gets, in addition to
   * `DEFAULT_PROGRAM_ENV` and the file's `"programEnv"` (`serve --exec-env`). A name that is not
   * set is not passed; neither is one the server may not read: check with `unreadableEnv` first.
   * @default {[]}
   */
  programEnv?: readonly string[];
}

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

type MatchKind = "exact" | "prefix" | "regex" | "command" | "commandRegex";
const MATCH_KINDS: readonly MatchKind[] = ["exact", "prefix", "regex", "command", "commandRegex"];
const ALLOWED_FLAGS = "imsuv";

interface Matched {
  groups: (string | undefined)[];
  named: Record<string, string | undefined> | undefined;
  rest: string;
}

type CompiledAction =
  | { kind: "reply" | "close" | "shutdown"; lines: Template[] }
  | {
    kind: "run";
    argv: string[];
    stdin: Template;
    timeoutMs: number;
    maxOutputBytes: number;
    inheritEnv: string[];
    env: Record<string, string> | undefined;
    cwd: string | undefined;
  };

interface CompiledRoute {
  test(subject: string): Matched | undefined;
  action: CompiledAction;
  /** The JSON response's `extra` (command routes only); `undefined` when the route has none. */
  extra?: unknown;
}

/**
 * A checked route table. Create it with {@linkcode Routes.load} or {@linkcode Routes.parse}.
 *
 * @example Running a program for a line (the line reaches it on stdin only)
 * ```ts
 * import { Routes } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const routes = Routes.parse(JSON.stringify({
 *   routes: [{ match: { prefix: "upper " }, run: { argv: ["tr", "a-z", "A-Z"], stdin: "{rest}" } }],
 * }));
 * const action = routes.match("upper hi; `x`", { peer: "unix", connectionId: 1, lineNumber: 1 });
 * assert.equal(action?.kind, "run");
 * assert.deepEqual(await Array.fromAsync(action.lines), ["HI; `X`"]);
 * ```
 */
export class Routes {
  /** Where the routes came from (the file name given). */
  readonly source: string;
  readonly #lineRoutes: CompiledRoute[];
  readonly #commandRoutes: CompiledRoute[];
  readonly #commands: string[];
  readonly #limiter: ExecLimiter;

  private constructor(
    source: string,
    lineRoutes: CompiledRoute[],
    commandRoutes: CompiledRoute[],
    commands: string[],
    limiter: ExecLimiter,
  ) {
    this.source = source;
    this.#lineRoutes = lineRoutes;
    this.#commandRoutes = commandRoutes;
    this.#commands = commands;
    this.#limiter = limiter;
  }

  /**
   * Checks and compiles a routes document.
   * @param jsonText The JSON text of the routes file.
   * @param source The file name used in error messages.
   * @param options Program limits.
   * @returns The route table.
   * @throws {RoutesError} On any mistake, with its line and column.
   */
  static parse(jsonText: string, source = "routes", options: RoutesOptions = {}): Routes {
    const checker: Checker = new Checker(jsonText, source, options);
    let root: JsonNode;
    try {
      root = parseJsonWithPositions(jsonText);
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      checker.fail(error.offset, "", `invalid JSON: ${error.message}`);
    }
    const lineRoutes: CompiledRoute[] = [];
    const commandRoutes: CompiledRoute[] = [];
    const commands: string[] = [];
    for (const route of checker.routes(root)) {
      if (route.onCommands) {
        commandRoutes.push(route.compiled);
        if (route.commandName !== undefined && !commands.includes(route.commandName)) {
          commands.push(route.commandName);
        }
      } else {
        lineRoutes.push(route.compiled);
      }
    }
    return new Routes(
      source,
      lineRoutes,
      commandRoutes,
      commands,
      options.limiter ?? new ExecLimiter(),
    );
  }

  /**
   * Reads, checks and compiles a routes file.
   * @param path The file.
   * @param options Program limits.
   * @returns The route table.
   * @throws {RoutesError} When the file cannot be read or has a mistake.
   */
  static async load(path: string, options: RoutesOptions = {}): Promise<Routes> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new RoutesError(path, 0, 0, "", `cannot read the routes file: ${describe(error)}`, {
        cause: error,
      });
    }
    return Routes.parse(text, path, options);
  }

  /** The number of routes. */
  get size(): number {
    return this.#lineRoutes.length + this.#commandRoutes.length;
  }

  /** The number of routes that match text lines. */
  get lineRouteCount(): number {
    return this.#lineRoutes.length;
  }

  /** The number of routes that match JSON commands. */
  get commandRouteCount(): number {
    return this.#commandRoutes.length;
  }

  /** The command names matched exactly by command routes, in file order (for `help`). */
  get commands(): readonly string[] {
    return this.#commands;
  }

  /** The limiter that programs of these routes share. */
  get limiter(): ExecLimiter {
    return this.#limiter;
  }

  /**
   * Finds the first route that matches a text line and renders its action.
   * @param line The line, without its terminator.
   * @param context The connection's facts.
   * @returns The action, or `undefined` when no route matches.
   */
  match(line: string, context: RouteContext): RouteAction | undefined {
    for (const route of this.#lineRoutes) {
      const matched = route.test(line);
      if (matched) {
        return this.#act(route.action, {
          ...matched,
          line,
          command: "",
          args: {},
          peer: context.peer,
          id: context.connectionId,
          lineNumber: context.lineNumber,
        }, context.signal);
      }
    }
    return undefined;
  }

  /**
   * Finds the first route that matches a JSON command and renders its action.
   * @param command The command's name.
   * @param args The command's arguments (an object; anything else counts as no arguments).
   * @param context The connection's facts.
   * @returns The action, or `undefined` when no route matches.
   */
  matchCommand(command: string, args: unknown, context: RouteContext): RouteAction | undefined {
    for (const route of this.#commandRoutes) {
      const matched = route.test(command);
      if (matched) {
        const argsObject = args !== null && typeof args === "object" && !Array.isArray(args)
          ? args as Record<string, unknown>
          : {};
        const action = this.#act(route.action, {
          ...matched,
          line: "",
          command,
          args: argsObject,
          peer: context.peer,
          id: context.connectionId,
          lineNumber: context.lineNumber,
        }, context.signal);
        return route.extra === undefined ? action : { ...action, extra: route.extra };
      }
    }
    return undefined;
  }

  #act(action: CompiledAction, values: TemplateValues, signal?: AbortSignal): RouteAction {
    if (action.kind !== "run") {
      return {
        kind: action.kind,
        lines: action.lines.map((template) => renderTemplate(template, values)),
      };
    }
    return {
      kind: "run",
      lines: runProgram({
        argv: action.argv,
        stdin: renderTemplate(action.stdin, values),
        timeoutMs: action.timeoutMs,
        maxOutputBytes: action.maxOutputBytes,
        inheritEnv: action.inheritEnv,
        limiter: this.#limiter,
        ...(action.env ? { env: action.env } : {}),
        ...(action.cwd !== undefined ? { cwd: action.cwd } : {}),
        ...(signal ? { signal } : {}),
      }),
    };
  }
}

interface CheckedRoute {
  compiled: CompiledRoute;
  onCommands: boolean;
  commandName: string | undefined;
}

/** Walks the parsed document, checking each value where it stands. */
class Checker {
  readonly #text: string;
  readonly #file: string;
  readonly #options: RoutesOptions;
  /** What every program inherits: the default, the option and the file's `"programEnv"`. */
  #programEnv: string[];

  constructor(text: string, file: string, options: RoutesOptions) {
    this.#text = text;
    this.#file = file;
    this.#options = options;
    this.#programEnv = [...DEFAULT_PROGRAM_ENV, ...options.programEnv ?? []];
  }

  fail(offset: number, path: string, reason: string): never {
    const { line, column } = positionAt(this.#text, offset);
    throw new RoutesError(this.#file, line, column, path, reason);
  }

  *routes(root: JsonNode): Generator<CheckedRoute> {
    if (root.type !== "object") {
      this.fail(root.start, "", `expected an object like {"routes": [...]}, got ${kindOf(root)}`);
    }
    const members = this.#members(root, "", ["routes", "programEnv", "comment"]);
    this.#comment(members.get("comment"), "comment");
    const programEnv = members.get("programEnv");
    if (programEnv) {
      this.#programEnv = union(this.#programEnv, this.#envNames(programEnv.value, "programEnv"));
    }
    const list = members.get("routes");
    if (!list) this.fail(root.start, "", 'missing key "routes" (an array of routes)');
    if (list.value.type !== "array") {
      this.fail(
        list.value.start,
        "routes",
        `expected an array of routes, got ${kindOf(list.value)}`,
      );
    }
    for (const [index, node] of list.value.items.entries()) {
      yield this.#route(node, `routes[${index}]`);
    }
  }

  #route(node: JsonNode, path: string): CheckedRoute {
    if (node.type !== "object") {
      this.fail(node.start, path, `expected a route object, got ${kindOf(node)}`);
    }
    // "extra" belongs to JSON responses: only command rules may have it.
    const forCommands = matchesCommands(node);
    const extraEntry = node.entries.find((entry) => entry.key === "extra");
    if (extraEntry && !forCommands) {
      this.fail(
        extraEntry.keyStart,
        `${path}.extra`,
        '"extra" is only for command rules ("command" or "commandRegex"): it is a field of the ' +
          "json protocol's responses",
      );
    }
    const members = this.#members(node, path, [
      "match",
      "reply",
      "close",
      "shutdown",
      "run",
      "comment",
      ...(forCommands ? ["extra"] : []),
    ]);
    this.#comment(members.get("comment"), `${path}.comment`);
    const match = members.get("match");
    if (!match) this.fail(node.start, path, 'missing key "match"');
    const matcher = this.#matcher(match.value, `${path}.match`);
    const action = this.#action(node, members, path, matcher.scope);
    const extra = extraEntry ? toPlainValue(extraEntry.value) : undefined;
    return {
      compiled: { test: matcher.test, action, ...(extra !== undefined ? { extra } : {}) },
      onCommands: matcher.onCommands,
      commandName: matcher.commandName,
    };
  }

  #matcher(node: JsonNode, path: string): {
    test: (subject: string) => Matched | undefined;
    scope: TemplateScope;
    onCommands: boolean;
    commandName: string | undefined;
  } {
    if (node.type !== "object") {
      this.fail(
        node.start,
        path,
        `expected an object such as {"exact": "status"}, got ${kindOf(node)}`,
      );
    }
    const members = this.#members(node, path, [...MATCH_KINDS, "ignoreCase", "flags"]);
    let kind: MatchKind | undefined;
    for (const entry of node.entries) {
      if (!(MATCH_KINDS as readonly string[]).includes(entry.key)) continue;
      if (kind !== undefined) {
        this.fail(
          entry.keyStart,
          `${path}.${entry.key}`,
          `a match has exactly one kind, and this one already has "${kind}"`,
        );
      }
      kind = entry.key as MatchKind;
    }
    if (kind === undefined) {
      this.fail(node.start, path, `expected one of ${MATCH_KINDS.map(quote).join(", ")}`);
    }
    const patternEntry = members.get(kind)!;
    const pattern = this.#string(patternEntry.value, `${path}.${kind}`);
    const onCommands = kind === "command" || kind === "commandRegex";
    const fields = new Set<FieldName>(["peer", "id", "lineNumber"]);
    if (onCommands) {
      fields.add("command");
      fields.add("args");
    } else {
      fields.add("line");
      if (kind !== "exact") fields.add("rest");
    }
    const scope: TemplateScope = {
      groupCount: 0,
      namedGroups: new Set(),
      fields,
      args: onCommands,
    };

    const ignoreCaseEntry = members.get("ignoreCase");
    const flagsEntry = members.get("flags");
    if (kind === "regex" || kind === "commandRegex") {
      if (ignoreCaseEntry) {
        this.fail(
          ignoreCaseEntry.keyStart,
          `${path}.ignoreCase`,
          `not used with "${kind}": add "i" to "flags" instead`,
        );
      }
      const flags = flagsEntry ? this.#flags(flagsEntry.value, `${path}.flags`) : "";
      const regex = this.#regex(patternEntry.value, pattern, flags, `${path}.${kind}`, scope);
      return {
        test(subject) {
          const found = regex.exec(subject);
          if (!found) return undefined;
          return {
            groups: [...found],
            named: found.groups,
            rest: subject.slice(found.index + found[0].length),
          };
        },
        scope,
        onCommands,
        commandName: undefined,
      };
    }
    if (flagsEntry) {
      this.fail(
        flagsEntry.keyStart,
        `${path}.flags`,
        `only used with "regex" or "commandRegex" (for "${kind}" use "ignoreCase": true)`,
      );
    }
    const ignoreCase = ignoreCaseEntry
      ? this.#boolean(ignoreCaseEntry.value, `${path}.ignoreCase`)
      : false;
    const wanted = ignoreCase ? pattern.toLowerCase() : pattern;
    const fold = ignoreCase ? (text: string) => text.toLowerCase() : (text: string) => text;
    if (kind === "prefix") {
      return {
        test(subject) {
          const head = subject.slice(0, pattern.length);
          if (fold(head) !== wanted) return undefined;
          return { groups: [head], named: undefined, rest: subject.slice(pattern.length) };
        },
        scope,
        onCommands,
        commandName: undefined,
      };
    }
    return {
      test(subject) {
        return fold(subject) === wanted
          ? { groups: [subject], named: undefined, rest: "" }
          : undefined;
      },
      scope,
      onCommands,
      commandName: kind === "command" ? pattern : undefined,
    };
  }

  #flags(node: JsonNode, path: string): string {
    const flags = this.#string(node, path);
    for (const [index, flag] of [...flags].entries()) {
      if (!ALLOWED_FLAGS.includes(flag)) {
        this.fail(
          offsetInString(this.#text, node as { start: number; value: string }, index),
          path,
          `unsupported flag ${JSON.stringify(flag)}; allowed: ${[...ALLOWED_FLAGS].join(", ")}`,
        );
      }
      if (flags.indexOf(flag) !== index) {
        this.fail(
          offsetInString(this.#text, node as { start: number; value: string }, index),
          path,
          `flag ${JSON.stringify(flag)} is repeated`,
        );
      }
    }
    if (flags.includes("u") && flags.includes("v")) {
      this.fail(node.start, path, 'flags "u" and "v" cannot be combined');
    }
    return flags;
  }

  /** Compiles the regular expression and records its groups in the template scope. */
  #regex(
    node: JsonNode,
    pattern: string,
    flags: string,
    path: string,
    scope: TemplateScope,
  ): RegExp {
    let regex: RegExp;
    let probe: RegExpExecArray;
    try {
      regex = new RegExp(pattern, flags);
      // An empty alternative always matches, which reveals how many groups there are, and their names.
      probe = new RegExp(`(?:${pattern})|`, flags).exec("")!;
    } catch (error) {
      this.fail(node.start, path, `invalid regular expression: ${regexProblem(error)}`);
    }
    scope.groupCount = probe.length - 1;
    const named = new Set(Object.keys(probe.groups ?? {}));
    for (const name of named) {
      if ((FIELD_NAMES as readonly string[]).includes(name)) {
        this.fail(
          node.start,
          path,
          `the group name "${name}" hides the placeholder {${name}}; rename the group`,
        );
      }
    }
    scope.namedGroups = named;
    return regex;
  }

  #action(
    node: JsonNode & { type: "object" },
    members: Map<string, JsonEntry>,
    path: string,
    scope: TemplateScope,
  ): CompiledAction {
    const reply = members.get("reply");
    const run = members.get("run");
    const closeEntry = members.get("close");
    const shutdownEntry = members.get("shutdown");
    const close = closeEntry ? this.#boolean(closeEntry.value, `${path}.close`) : false;
    const shutdown = shutdownEntry ? this.#boolean(shutdownEntry.value, `${path}.shutdown`) : false;
    if (close && shutdown) {
      const later = closeEntry!.keyStart > shutdownEntry!.keyStart ? closeEntry! : shutdownEntry!;
      this.fail(
        later.keyStart,
        `${path}.${later.key}`,
        '"close" and "shutdown" cannot both be set (a shutdown closes every connection)',
      );
    }
    if (run) {
      for (
        const other of [reply, close ? closeEntry : undefined, shutdown ? shutdownEntry : undefined]
      ) {
        if (!other) continue;
        const later = other.keyStart > run.keyStart ? other : run;
        const earlier = later === run ? other : run;
        this.fail(
          later.keyStart,
          `${path}.${later.key}`,
          `"${later.key}" cannot be combined with "${earlier.key}" in one route ` +
            `(a program's output is the reply; use a second route to close or shut down)`,
        );
      }
      return this.#run(run.value, `${path}.run`, scope);
    }
    if (!reply && !close && !shutdown) {
      this.fail(
        node.start,
        path,
        'expected an action: "reply", "run", "close": true or "shutdown": true',
      );
    }
    const lines = reply ? this.#replyLines(reply.value, `${path}.reply`, scope) : [];
    return { kind: shutdown ? "shutdown" : close ? "close" : "reply", lines };
  }

  #replyLines(node: JsonNode, path: string, scope: TemplateScope): Template[] {
    if (node.type === "string") return [this.#replyLine(node, path, scope)];
    if (node.type !== "array") {
      this.fail(node.start, path, `expected a string or an array of strings, got ${kindOf(node)}`);
    }
    return node.items.map((item, index) => {
      const itemPath = `${path}[${index}]`;
      if (item.type !== "string") {
        this.fail(item.start, itemPath, `expected a string, got ${kindOf(item)}`);
      }
      return this.#replyLine(item, itemPath, scope);
    });
  }

  #replyLine(
    node: { type: "string"; start: number; value: string },
    path: string,
    scope: TemplateScope,
  ): Template {
    const lineBreak = node.value.search(/[\r\n]/);
    if (lineBreak !== -1) {
      this.fail(
        offsetInString(this.#text, node, lineBreak),
        path,
        "a reply line cannot contain a line break; give several lines as an array",
      );
    }
    return this.#template(node, path, scope);
  }

  #template(
    node: { type: "string"; start: number; value: string },
    path: string,
    scope: TemplateScope,
  ): Template {
    try {
      return compileTemplate(node.value, scope);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      this.fail(offsetInString(this.#text, node, error.index), path, error.message);
    }
  }

  #run(node: JsonNode, path: string, scope: TemplateScope): CompiledAction {
    if (node.type !== "object") {
      this.fail(
        node.start,
        path,
        `expected an object such as {"argv": ["wc", "-c"]}, got ${kindOf(node)}`,
      );
    }
    const members = this.#members(node, path, [
      "argv",
      "stdin",
      "timeout",
      "maxOutput",
      "inheritEnv",
      "env",
      "cwd",
    ]);
    const argvEntry = members.get("argv");
    if (!argvEntry) {
      this.fail(node.start, path, 'missing key "argv" (the program and its arguments)');
    }
    const argv = this.#argv(argvEntry.value, `${path}.argv`, scope);
    const stdinEntry = members.get("stdin");
    let stdin: Template;
    if (stdinEntry) {
      const stdinPath = `${path}.stdin`;
      this.#string(stdinEntry.value, stdinPath);
      stdin = this.#template(
        stdinEntry.value as { type: "string"; start: number; value: string },
        stdinPath,
        scope,
      );
    } else {
      stdin = compileTemplate(scope.args ? "{args}" : "{line}", scope);
    }
    const timeoutEntry = members.get("timeout");
    const timeoutMs = timeoutEntry
      ? this.#duration(timeoutEntry.value, `${path}.timeout`)
      : this.#options.defaultTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
    const maxOutputEntry = members.get("maxOutput");
    const maxOutputBytes = maxOutputEntry
      ? this.#size(maxOutputEntry.value, `${path}.maxOutput`)
      : this.#options.defaultMaxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    const inheritEntry = members.get("inheritEnv");
    const inheritEnv = inheritEntry
      ? union(this.#programEnv, this.#envNames(inheritEntry.value, `${path}.inheritEnv`))
      : this.#programEnv;
    const envEntry = members.get("env");
    const env = envEntry ? this.#env(envEntry.value, `${path}.env`) : undefined;
    const cwdEntry = members.get("cwd");
    const cwd = cwdEntry ? this.#string(cwdEntry.value, `${path}.cwd`) : undefined;
    return { kind: "run", argv, stdin, timeoutMs, maxOutputBytes, inheritEnv, env, cwd };
  }

  /** Names of the server's environment variables to pass on: each must be readable. */
  #envNames(node: JsonNode, path: string): string[] {
    if (node.type !== "array") {
      this.fail(
        node.start,
        path,
        `expected an array of environment variable names such as ["LANG"], got ${kindOf(node)}`,
      );
    }
    return node.items.map((item, index) => {
      const itemPath = `${path}[${index}]`;
      const name = this.#string(item, itemPath);
      if (!isEnvName(name)) {
        this.fail(item.start, itemPath, "not a valid environment variable name");
      }
      if (unreadableEnv([name]).length > 0) {
        this.fail(
          item.start,
          itemPath,
          `the server may not read the environment variable ${JSON.stringify(name)}, so it ` +
            `cannot pass it on; allow it with --allow-env=${name} (or remove it here)`,
        );
      }
      return name;
    });
  }

  #argv(node: JsonNode, path: string, scope: TemplateScope): string[] {
    if (node.type !== "array" || node.items.length === 0) {
      this.fail(
        node.start,
        path,
        `expected a non-empty array of strings such as ["wc", "-c"], got ${
          node.type === "array" ? "an empty array" : kindOf(node)
        }`,
      );
    }
    return node.items.map((item, index) => {
      const itemPath = `${path}[${index}]`;
      const value = this.#string(item, itemPath);
      if (index === 0 && value === "") this.fail(item.start, itemPath, "the program name is empty");
      // Client text must never become an argument; a placeholder here is a misunderstanding.
      const placeholder = /\{([^{}]*)\}/.exec(value);
      if (placeholder && placesPlaceholder(placeholder[1]!, scope)) {
        this.fail(
          offsetInString(this.#text, item as { start: number; value: string }, placeholder.index),
          itemPath,
          `argv is not a template: ${
            placeholder[0]
          } would be passed literally. Client text reaches a program only on its stdin (see "stdin")`,
        );
      }
      return value;
    });
  }

  #env(node: JsonNode, path: string): Record<string, string> {
    if (node.type !== "object") {
      this.fail(node.start, path, `expected an object of strings, got ${kindOf(node)}`);
    }
    const env: Record<string, string> = {};
    for (const entry of node.entries) {
      if (!isEnvName(entry.key)) {
        this.fail(entry.keyStart, `${path}.${entry.key}`, "not a valid environment variable name");
      }
      env[entry.key] = this.#string(entry.value, `${path}.${entry.key}`);
    }
    return env;
  }

  #duration(node: JsonNode, path: string): number {
    const expected =
      'expected a duration such as "500ms", "2s" or "1m", or a number of milliseconds';
    let ms: number;
    if (node.type === "number") {
      ms = node.value;
    } else if (node.type === "string") {
      const found = /^(\d+(?:\.\d+)?)\s*(ms|s|m)$/.exec(node.value.trim());
      if (!found) this.fail(node.start, path, `${expected}, got ${JSON.stringify(node.value)}`);
      ms = Math.round(Number(found[1]) * { ms: 1, s: 1000, m: 60_000 }[found[2] as "ms"]);
    } else {
      this.fail(node.start, path, `${expected}, got ${kindOf(node)}`);
    }
    if (!(ms > 0) || !Number.isFinite(ms)) {
      this.fail(node.start, path, "a program's timeout must be more than 0");
    }
    return ms;
  }

  #size(node: JsonNode, path: string): number {
    const expected = 'expected a size such as "64KiB" or "1MiB", or a number of bytes';
    let bytes: number;
    if (node.type === "number") {
      bytes = node.value;
    } else if (node.type === "string") {
      const found = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(node.value.trim());
      if (!found) this.fail(node.start, path, `${expected}, got ${JSON.stringify(node.value)}`);
      const unit = (found[2] ?? "b").charAt(0).toLowerCase() as "b" | "k" | "m" | "g";
      bytes = Math.round(Number(found[1]) * { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit]);
    } else {
      this.fail(node.start, path, `${expected}, got ${kindOf(node)}`);
    }
    if (!Number.isInteger(bytes) || bytes < 1) {
      this.fail(node.start, path, "the output limit must be a whole number of bytes, at least 1");
    }
    return bytes;
  }

  /** Indexes an object's members, rejecting keys not in `allowed`. */
  #members(
    node: JsonNode & { type: "object" },
    path: string,
    allowed: readonly string[],
  ): Map<string, JsonEntry> {
    const members = new Map<string, JsonEntry>();
    for (const entry of node.entries) {
      if (!allowed.includes(entry.key)) {
        const hint = nearest(entry.key, allowed);
        this.fail(
          entry.keyStart,
          path ? `${path}.${entry.key}` : entry.key,
          `unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; expected one of ${
            allowed.map(quote).join(", ")
          }`,
        );
      }
      members.set(entry.key, entry);
    }
    return members;
  }

  #comment(entry: JsonEntry | undefined, path: string): void {
    if (entry) this.#string(entry.value, path);
  }

  #string(node: JsonNode, path: string): string {
    if (node.type !== "string") {
      this.fail(node.start, path, `expected a string, got ${kindOf(node)}`);
    }
    return node.value;
  }

  #boolean(node: JsonNode, path: string): boolean {
    if (node.type !== "boolean") {
      this.fail(node.start, path, `expected true or false, got ${kindOf(node)}`);
    }
    return node.value;
  }
}

function isEnvName(name: string): boolean {
  return name !== "" && !name.includes("=") && !name.includes("\0");
}

/** `a` then the names of `b` that `a` lacks. */
function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

/** Whether a route object's `match` is a JSON command match (looked at before it is checked). */
function matchesCommands(route: JsonNode & { type: "object" }): boolean {
  const match = route.entries.find((entry) => entry.key === "match")?.value;
  return match?.type === "object" &&
    match.entries.some((entry) => entry.key === "command" || entry.key === "commandRegex");
}

function placesPlaceholder(name: string, scope: TemplateScope): boolean {
  if (/^\d+$/.test(name)) return Number(name) <= scope.groupCount;
  if (scope.args && (name === "args" || name.startsWith("args."))) return true;
  return scope.namedGroups.has(name) || scope.fields.has(name as FieldName);
}

function kindOf(node: JsonNode): string {
  switch (node.type) {
    case "object":
      return "an object";
    case "array":
      return "an array";
    case "string":
      return `the string ${JSON.stringify(node.value)}`;
    case "number":
      return `the number ${node.value}`;
    case "boolean":
      return String(node.value);
    case "null":
      return "null";
  }
}

function quote(text: string): string {
  return `"${text}"`;
}

/** The allowed key closest to a mistyped one, when it is close enough to be a typo. */
function nearest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

/** V8 says "Invalid regular expression: /(/: Unterminated group"; keep the last part. */
function regexProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const problem = message.slice(message.lastIndexOf(": ") + 2);
  return problem ? problem.charAt(0).toLowerCase() + problem.slice(1) : message;
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (see --allow-read)";
  return error instanceof Error ? error.message : String(error);
}

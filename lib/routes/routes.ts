/**
 * User routes for `linesock serve`: a file that describes a whole line protocol. Its routes, an
 * ordered table of rules, match a text line (exact text, a prefix, a regular expression, a line that
 * is not UTF-8, a line that is too long) or a JSON command (exact name or regular expression) and
 * say what to do: reply with template lines, run a program, close the connection or shut the server
 * down; the first matching rule wins. Around them: a greeting, farewells (on close, idle timeout and
 * shutdown), a fallback for lines nothing matched, whether the protocol's built-in commands answer,
 * and a few server settings, or instead of all that, a program per connection (`"exec"`).
 *
 * The file is JSONC (comments and trailing commas allowed), described by a JSON Schema
 * (docs/routes.schema.json: name it in `"$schema"` for editor completion). It is checked completely
 * when it loads; every mistake is a {@linkcode RoutesError} naming the file, line, column and path
 * of the offending value, and what was expected:
 * `routes.jsonc:12:5: routes[2].match.regex: missing closing ): …`.
 *
 * Regular expressions run in linear time (RE2 semantics), so no pattern can make a line hang the
 * server. The file format is described in `docs/routes.md`.
 *
 * @example Matching lines
 * ```ts
 * import { Routes } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const routes = Routes.parse(`{ "routes": [
 *   { "match": { "exact": "status" }, "reply": "OK all good" },  // a comment
 *   { "match": { "regex": "^add (?<a>\\\\d+) (?<b>\\\\d+)$" }, "reply": ["{a}+{b}", "from {peer}"] },
 *   { "match": { "prefix": "bye" }, "reply": "ACK bye{rest}", "close": true },
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
import { type JsonPath, RoutesDocument } from "./_routes_document.ts";
import {
  compileTemplate,
  CONNECTION_FIELDS,
  FIELD_NAMES,
  type FieldName,
  renderStdinTemplate,
  renderTemplate,
  type Template,
  TemplateError,
  type TemplateScope,
  type TemplateValues,
} from "./_route_template.ts";
import { compileRouteRegex, REGEX_FLAGS, RouteRegexError } from "./_route_regex.ts";
import { programMissing } from "./_program_process.ts";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_PROGRAM_ENV,
  DEFAULT_PROGRAM_TIMEOUT_MS,
  ExecLimiter,
  runProgram,
  unreadableEnv,
} from "./program_runner.ts";
import { RoutesError } from "./routes_error.ts";

export { RoutesError } from "./routes_error.ts";

/** What a route sees of the connection a line came from. */
export interface RouteContext {
  /** The peer, as the server names it (`127.0.0.1:50432`, `unix`): the `{peer}` placeholder. */
  peer: string;
  /** The connection's number: the `{id}` placeholder. */
  connectionId: number;
  /** The line's number on its connection (1-based; 0 for a greeting): `{lineNumber}`. */
  lineNumber: number;
  /** The server's name: the `{name}` placeholder. @default {the file's "name", or the host name} */
  name?: string;
  /** Connections open on the server: the `{connections}` placeholder. @default {1} */
  connections?: number;
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

/** When a farewell is said: see {@linkcode Routes.farewell}. */
export type FarewellKind = "close" | "idle" | "shutdown";

/** The file's `"exec"`: a program per connection (see `execProtocol`). */
export interface RoutesExec {
  /** The program and its arguments. */
  readonly argv: readonly string[];
  /** Kill a connection's program after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Programs running at once. */
  readonly maxExec?: number;
  /** The longest line the program may print, in bytes (the file's `"maxLine"`). */
  readonly maxLineBytes?: number;
  /** Environment variables set for the program. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The server's environment variables the program inherits besides `DEFAULT_PROGRAM_ENV` (as
   * `ExecOptions.inheritEnv`): the exec's `"inheritEnv"` and the `programEnv` option.
   */
  readonly inheritEnv?: readonly string[];
  /** The program's working directory. */
  readonly cwd?: string;
}

/** What the file says of the server around its routes; command-line flags override each. */
export interface RoutesSettings {
  /** `"protocol"`: the protocol the routes speak. */
  readonly protocol?: "text" | "json";
  /** `"name"`: the server's name (`{name}`, HELLO). */
  readonly name?: string;
  /** `"builtins"`: whether the protocol's built-in commands answer. */
  readonly builtins: boolean;
  /** `"allowShutdown"`: whether clients may shut the server down. */
  readonly allowShutdown?: boolean;
  /** `"maxClients"`: clients served at once. */
  readonly maxClients?: number;
  /** `"idleTimeout"`, in milliseconds (0: off). */
  readonly idleTimeoutMs?: number;
  /** `"maxLine"`, in bytes. */
  readonly maxLineBytes?: number;
  /** `"exec"`: a program per connection instead of routes. */
  readonly exec?: RoutesExec;
}

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

type MatchKind =
  | "exact"
  | "prefix"
  | "regex"
  | "command"
  | "commandRegex"
  | "undecodable"
  | "tooLong";
const MATCH_KINDS: readonly MatchKind[] = [
  "exact",
  "prefix",
  "regex",
  "command",
  "commandRegex",
  "undecodable",
  "tooLong",
];
/** Keys of the file that a program per connection replaces. */
const NOT_WITH_EXEC = [
  "routes",
  "fallback",
  "greeting",
  "farewell",
  "builtins",
  "protocol",
  "allowShutdown",
  "programEnv",
];

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
    /** `undefined`: the line (text) or the arguments as JSON (commands). */
    stdin: Template | undefined;
    timeoutMs: number;
    maxOutputBytes: number;
    inheritEnv: string[];
    env: Record<string, string> | undefined;
    cwd: string | undefined;
  };

interface CompiledRoute {
  /** Its place in the file, for the hit counts (`routes[0]`, `fallback`). */
  key: string;
  test(subject: string): Matched | undefined;
  action: CompiledAction;
  /** The JSON response's `extra`; `undefined` when the route has none. */
  extra?: unknown;
}

/** Every compiled part of a file. */
interface Compiled {
  lineRoutes: CompiledRoute[];
  commandRoutes: CompiledRoute[];
  undecodable: CompiledRoute | undefined;
  tooLong: CompiledRoute | undefined;
  fallback: CompiledRoute | undefined;
  textCommands: string[];
  commands: string[];
  greeting: Template[] | undefined;
  farewells: Partial<Record<FarewellKind, Template[]>>;
  settings: RoutesSettings;
  /** What the file says that still works but should change (a deprecated key), positioned. */
  warnings: string[];
}

const NOTHING_MATCHED: Matched = { groups: [], named: undefined, rest: "" };

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
 *
 * @example A whole protocol: greeting, farewell, no built-in commands, a fallback
 * ```ts
 * import { Routes } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const routes = Routes.parse(`{
 *   "name": "alpha",
 *   "greeting": "MSG Welcome to {name}, client {id}",
 *   "farewell": { "idle": "MSG too quiet" },
 *   "builtins": false,
 *   "routes": [{ "match": { "exact": "HELLO" }, "reply": "MSG Hello from {name}" }],
 *   "fallback": { "reply": "Command not found" },
 * }`);
 * const context = { peer: "unix", connectionId: 3, lineNumber: 1 };
 * assert.deepEqual(routes.greeting(context), ["MSG Welcome to alpha, client 3"]);
 * assert.deepEqual(routes.match("HELLO", context), { kind: "reply", lines: ["MSG Hello from alpha"] });
 * assert.deepEqual(routes.fallback("hello", context), { kind: "reply", lines: ["Command not found"] });
 * assert.deepEqual(routes.farewell("idle", context), ["MSG too quiet"]);
 * assert.equal(routes.settings.builtins, false);
 * ```
 */
export class Routes {
  /** Where the routes came from (the file name given). */
  readonly source: string;
  /** What the file says of the server around its routes. */
  readonly settings: RoutesSettings;
  /**
   * What the file says that still works but should change (a deprecated key), one positioned
   * line each (`FILE:LINE:COLUMN: PATH: …`); whoever loads the file logs them.
   */
  readonly warnings: readonly string[];
  readonly #compiled: Compiled;
  readonly #limiter: ExecLimiter;
  readonly #hits: Record<string, number> = {};

  private constructor(source: string, compiled: Compiled, limiter: ExecLimiter) {
    this.source = source;
    this.settings = compiled.settings;
    this.warnings = compiled.warnings;
    this.#compiled = compiled;
    this.#limiter = limiter;
    for (const route of [...compiled.lineRoutes, ...compiled.commandRoutes]) {
      this.#hits[route.key] = 0;
    }
    for (const route of [compiled.undecodable, compiled.tooLong, compiled.fallback]) {
      if (route !== undefined) this.#hits[route.key] = 0;
    }
  }

  /**
   * Checks and compiles a routes document.
   * @param text The JSONC text of the routes file.
   * @param source The file name used in error messages.
   * @param options Program limits.
   * @returns The route table.
   * @throws {RoutesError} On any mistake, with its line and column.
   */
  static parse(text: string, source = "routes", options: RoutesOptions = {}): Routes {
    const document = RoutesDocument.parse(text, source);
    const compiled = new Compiler(document, options).compile();
    return new Routes(source, compiled, options.limiter ?? new ExecLimiter());
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
    return this.lineRouteCount + this.commandRouteCount;
  }

  /** The number of routes that match text lines (those of undecodable and too long lines too). */
  get lineRouteCount(): number {
    const compiled = this.#compiled;
    return compiled.lineRoutes.length + (compiled.undecodable ? 1 : 0) +
      (compiled.tooLong ? 1 : 0);
  }

  /** The number of routes that match JSON commands. */
  get commandRouteCount(): number {
    return this.#compiled.commandRoutes.length;
  }

  /** The command names of command routes, in file order (for the json protocol's `help`). */
  get commands(): readonly string[] {
    return this.#compiled.commands;
  }

  /**
   * The command names of text routes, in file order (for the text protocol's `HELP`): an exact
   * route's text, a prefix route's prefix without trailing blanks, or a route's `"help"`.
   */
  get textCommands(): readonly string[] {
    return this.#compiled.textCommands;
  }

  /** Whether the file has a fallback. */
  get hasFallback(): boolean {
    return this.#compiled.fallback !== undefined;
  }

  /** Whether the file has a greeting. */
  get hasGreeting(): boolean {
    return this.#compiled.greeting !== undefined;
  }

  /** Whether the file has a route for lines that are not UTF-8. */
  get hasUndecodable(): boolean {
    return this.#compiled.undecodable !== undefined;
  }

  /** Whether the file has a route for lines that are too long. */
  get hasTooLong(): boolean {
    return this.#compiled.tooLong !== undefined;
  }

  /**
   * Whether the file has a farewell of this kind.
   * @param kind When it is said.
   * @returns Whether {@linkcode farewell} gives lines for it.
   */
  hasFarewell(kind: FarewellKind): boolean {
    return this.#compiled.farewells[kind] !== undefined;
  }

  /**
   * How many lines (or JSON commands) each route answered so far, by its place in the file
   * (`routes[0]`, …, `fallback`), for the server's metrics.
   */
  get hits(): Readonly<Record<string, number>> {
    return this.#hits;
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
    for (const route of this.#compiled.lineRoutes) {
      const matched = route.test(line);
      if (matched) return this.#act(route, matched, line, "", undefined, context);
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
    for (const route of this.#compiled.commandRoutes) {
      const matched = route.test(command);
      if (matched) return this.#act(route, matched, "", command, args, context);
    }
    return undefined;
  }

  /**
   * The action of the `{"undecodable": true}` route, for a line that is not valid UTF-8.
   * @param context The connection's facts.
   * @returns The action, or `undefined` when the file has no such route.
   */
  matchUndecodable(context: RouteContext): RouteAction | undefined {
    const route = this.#compiled.undecodable;
    return route && this.#act(route, NOTHING_MATCHED, "", "", undefined, context);
  }

  /**
   * The action of the `{"tooLong": true}` route, for a line longer than the server's limit.
   * @param context The connection's facts.
   * @returns The action, or `undefined` when the file has no such route.
   */
  matchTooLong(context: RouteContext): RouteAction | undefined {
    const route = this.#compiled.tooLong;
    return route && this.#act(route, NOTHING_MATCHED, "", "", undefined, context);
  }

  /**
   * The fallback's action, for a text line that nothing else answered.
   * @param line The line.
   * @param context The connection's facts.
   * @returns The action, or `undefined` when the file has no fallback.
   */
  fallback(line: string, context: RouteContext): RouteAction | undefined {
    const route = this.#compiled.fallback;
    if (route === undefined) return undefined;
    return this.#act(
      route,
      { groups: [line], named: undefined, rest: "" },
      line,
      "",
      undefined,
      context,
    );
  }

  /**
   * The fallback's action, for a JSON command that nothing else answered.
   * @param command The command's name.
   * @param args Its arguments.
   * @param context The connection's facts.
   * @returns The action, or `undefined` when the file has no fallback.
   */
  fallbackCommand(command: string, args: unknown, context: RouteContext): RouteAction | undefined {
    const route = this.#compiled.fallback;
    if (route === undefined) return undefined;
    return this.#act(
      route,
      { groups: [command], named: undefined, rest: "" },
      "",
      command,
      args,
      context,
    );
  }

  /**
   * The greeting's lines, rendered for a connection.
   * @param context The connection's facts.
   * @returns The lines, or `undefined` when the file has no greeting.
   */
  greeting(context: RouteContext): string[] | undefined {
    const lines = this.#compiled.greeting;
    return lines && this.#render(lines, context);
  }

  /**
   * A farewell's lines, rendered for a connection.
   * @param kind `close`: the client ended its input, or a route or command closed the connection;
   *   `idle`: the idle timeout; `shutdown`: the server shuts down.
   * @param context The connection's facts.
   * @returns The lines, or `undefined` when the file has no such farewell.
   */
  farewell(kind: FarewellKind, context: RouteContext): string[] | undefined {
    const lines = this.#compiled.farewells[kind];
    return lines && this.#render(lines, context);
  }

  #render(lines: readonly Template[], context: RouteContext): string[] {
    const values = this.#values(NOTHING_MATCHED, "", "", {}, context);
    return lines.map((template) => renderTemplate(template, values));
  }

  #values(
    matched: Matched,
    line: string,
    command: string,
    args: Readonly<Record<string, unknown>>,
    context: RouteContext,
  ): TemplateValues {
    return {
      ...matched,
      line,
      command,
      args,
      peer: context.peer,
      id: context.connectionId,
      lineNumber: context.lineNumber,
      host: hostName(),
      name: context.name ?? this.settings.name ?? hostName(),
      connections: context.connections ?? 1,
    };
  }

  #act(
    route: CompiledRoute,
    matched: Matched,
    line: string,
    command: string,
    rawArgs: unknown,
    context: RouteContext,
  ): RouteAction {
    const args = rawArgs !== null && typeof rawArgs === "object" && !Array.isArray(rawArgs)
      ? rawArgs as Record<string, unknown>
      : {};
    const values = this.#values(matched, line, command, args, context);
    this.#hits[route.key]!++;
    const action = route.action;
    let rendered: RouteAction;
    if (action.kind !== "run") {
      rendered = {
        kind: action.kind,
        lines: action.lines.map((template) => renderTemplate(template, values)),
      };
    } else {
      const stdin = action.stdin !== undefined
        ? renderStdinTemplate(action.stdin, values)
        : command !== ""
        ? JSON.stringify(args)
        : line;
      rendered = {
        kind: "run",
        lines: stdin === undefined ? refusedStdin() : runProgram({
          argv: action.argv,
          stdin,
          timeoutMs: action.timeoutMs,
          maxOutputBytes: action.maxOutputBytes,
          inheritEnv: action.inheritEnv,
          limiter: this.#limiter,
          ...(action.env ? { env: action.env } : {}),
          ...(action.cwd !== undefined ? { cwd: action.cwd } : {}),
          ...(context.signal ? { signal: context.signal } : {}),
        }),
      };
    }
    return route.extra === undefined || command === ""
      ? rendered
      : { ...rendered, extra: route.extra };
  }
}

/** Why a request whose value would add lines to a program's stdin is refused. */
const STDIN_LINE_BREAK_REFUSED =
  "refused: a value substituted into the program's stdin holds a line break (\\n or \\r)";

/**
 * The run of a request refused before its program starts: what it yields fails at once, and the
 * protocol answers with the error (`ERR …`, or a JSON response with status 4).
 */
// deno-lint-ignore require-yield
async function* refusedStdin(): AsyncIterable<string> {
  throw new Error(STDIN_LINE_BREAK_REFUSED);
}

let cachedHost: string | undefined;

/** The machine's host name (`localhost` when the server may not ask: no `--allow-sys`). */
function hostName(): string {
  if (cachedHost === undefined) {
    try {
      cachedHost = Deno.hostname();
    } catch {
      cachedHost = "localhost";
    }
  }
  return cachedHost;
}

/** Turns a checked document into compiled routes, checking what the schema cannot say. */
class Compiler {
  readonly #document: RoutesDocument;
  readonly #options: RoutesOptions;
  /** What every program inherits: the default, the option and the file's `"programEnv"`. */
  #programEnv: string[];
  readonly warnings: string[] = [];

  constructor(document: RoutesDocument, options: RoutesOptions) {
    this.#document = document;
    this.#options = options;
    this.#programEnv = [...DEFAULT_PROGRAM_ENV, ...options.programEnv ?? []];
  }

  fail(path: JsonPath, reason: string, options?: { key?: boolean; index?: number }): never {
    this.#document.fail(path, reason, options);
  }

  warn(path: JsonPath, reason: string, options?: { key?: boolean }): void {
    this.warnings.push(this.#document.warning(path, reason, options));
  }

  compile(): Compiled {
    const file = this.#document.value as FileShape;
    const exec = file.exec === undefined ? undefined : this.#exec(file);
    if (file.programEnv !== undefined) {
      this.#programEnv = union(this.#programEnv, this.#envNames(file.programEnv, ["programEnv"]));
    }
    const compiled: Compiled = {
      lineRoutes: [],
      commandRoutes: [],
      undecodable: undefined,
      tooLong: undefined,
      fallback: undefined,
      textCommands: [],
      commands: [],
      greeting: file.greeting === undefined
        ? undefined
        : this.#lines(file.greeting, ["greeting"], connectionScope()),
      farewells: {},
      settings: {
        builtins: file.builtins ?? true,
        ...(file.protocol !== undefined ? { protocol: file.protocol } : {}),
        ...(file.name !== undefined ? { name: file.name } : {}),
        ...(file.allowShutdown !== undefined ? { allowShutdown: file.allowShutdown } : {}),
        ...(file.maxClients !== undefined ? { maxClients: file.maxClients } : {}),
        ...(file.idleTimeout !== undefined
          ? { idleTimeoutMs: this.#duration(file.idleTimeout, ["idleTimeout"], true) }
          : {}),
        ...(file.maxLine !== undefined
          ? { maxLineBytes: this.#size(file.maxLine, ["maxLine"]) }
          : {}),
        ...(exec !== undefined ? { exec } : {}),
      },
      warnings: this.warnings,
    };
    for (const kind of ["close", "idle", "shutdown"] as const) {
      const lines = file.farewell?.[kind];
      if (lines !== undefined) {
        compiled.farewells[kind] = this.#lines(lines, ["farewell", kind], connectionScope());
      }
    }
    for (const [index, route] of (file.routes ?? []).entries()) {
      this.#route(route, ["routes", index], compiled);
    }
    if (file.fallback !== undefined) {
      const scope: TemplateScope = {
        groupCount: 0,
        namedGroups: new Set(),
        fields: new Set([...CONNECTION_FIELDS, "lineNumber", "line", "command", "args"]),
        args: true,
      };
      compiled.fallback = {
        key: "fallback",
        test: () => undefined,
        action: this.#action(file.fallback, ["fallback"], scope, "fallback"),
        ...(file.fallback.extra !== undefined ? { extra: file.fallback.extra } : {}),
      };
    }
    return compiled;
  }

  #exec(file: FileShape): RoutesExec {
    const exec = file.exec!;
    for (const key of NOT_WITH_EXEC) {
      if (Object.hasOwn(file, key)) {
        this.fail(
          [key],
          `not used with "exec": a program per connection answers every line itself`,
          { key: true },
        );
      }
    }
    const path = ["exec"];
    // Added to DEFAULT_PROGRAM_ENV, as everywhere: the option's (--exec-env) and the exec's.
    const inheritEnv = union(
      this.#options.programEnv ?? [],
      exec.inheritEnv === undefined ? [] : this.#envNames(exec.inheritEnv, [...path, "inheritEnv"]),
    );
    if (exec.env !== undefined) this.#env(exec.env, [...path, "env"]);
    this.#program(exec.argv, [...path, "argv"], {
      inheritEnv: union(DEFAULT_PROGRAM_ENV, inheritEnv),
      env: exec.env,
      cwd: exec.cwd,
    });
    // "maxLine" as at the top level (--max-line); "maxLineBytes" is its old, deprecated name.
    if (exec.maxLine !== undefined && exec.maxLineBytes !== undefined) {
      this.fail([...path, "maxLineBytes"], `give "maxLine" only ("maxLineBytes" is its old name)`, {
        key: true,
      });
    }
    if (exec.maxLineBytes !== undefined) {
      this.warn([...path, "maxLineBytes"], `deprecated: write "maxLine" instead`, { key: true });
    }
    const maxLine: [string | number, JsonPath] | undefined = exec.maxLine !== undefined
      ? [exec.maxLine, [...path, "maxLine"]]
      : exec.maxLineBytes !== undefined
      ? [exec.maxLineBytes, [...path, "maxLineBytes"]]
      : file.maxLine !== undefined
      ? [file.maxLine, ["maxLine"]]
      : undefined;
    return {
      argv: exec.argv,
      ...(exec.timeout !== undefined
        ? { timeoutMs: this.#duration(exec.timeout, [...path, "timeout"], false) }
        : {}),
      ...(exec.maxExec !== undefined ? { maxExec: exec.maxExec } : {}),
      ...(maxLine !== undefined ? { maxLineBytes: this.#size(...maxLine) } : {}),
      ...(exec.env !== undefined ? { env: exec.env } : {}),
      ...(inheritEnv.length > 0 ? { inheritEnv } : {}),
      ...(exec.cwd !== undefined ? { cwd: exec.cwd } : {}),
    };
  }

  #route(route: RouteShape, path: JsonPath, compiled: Compiled): void {
    const match = route.match;
    const kind = MATCH_KINDS.find((candidate) => Object.hasOwn(match, candidate))!;
    const onCommands = kind === "command" || kind === "commandRegex";
    // "extra" belongs to JSON responses: only command rules may have it.
    if (route.extra !== undefined && !onCommands) {
      this.fail(
        [...path, "extra"],
        '"extra" is only for command rules ("command" or "commandRegex"): it is a field of the ' +
          "json protocol's responses",
        { key: true },
      );
    }
    const matchPath = [...path, "match"];
    const { test, scope } = this.#matcher(match, kind, matchPath);
    const special = kind === "undecodable" || kind === "tooLong";
    const compiledRoute: CompiledRoute = {
      key: `routes[${path[1]}]`,
      test,
      action: this.#action(route, path, scope, special ? kind : undefined),
      ...(route.extra !== undefined ? { extra: route.extra } : {}),
    };
    if (special) {
      if (compiled[kind] !== undefined) {
        this.fail(matchPath, `a second {"${kind}": true} route would never be used`);
      }
      compiled[kind] = compiledRoute;
      return;
    }
    const pattern = match[kind] as string;
    const name = route.help ??
      (kind === "exact" || kind === "command"
        ? pattern
        : kind === "prefix"
        ? pattern.trimEnd()
        : undefined);
    const names = onCommands ? compiled.commands : compiled.textCommands;
    if (name !== undefined && name !== "" && !names.includes(name)) names.push(name);
    (onCommands ? compiled.commandRoutes : compiled.lineRoutes).push(compiledRoute);
  }

  #matcher(match: MatchShape, kind: MatchKind, path: JsonPath): {
    test: (subject: string) => Matched | undefined;
    scope: TemplateScope;
  } {
    const onCommands = kind === "command" || kind === "commandRegex";
    const fields = new Set<FieldName>([...CONNECTION_FIELDS, "lineNumber"]);
    if (onCommands) {
      fields.add("command");
      fields.add("args");
    } else if (kind !== "undecodable" && kind !== "tooLong") {
      fields.add("line");
      if (kind !== "exact") fields.add("rest");
    }
    const scope: TemplateScope = {
      groupCount: kind === "undecodable" || kind === "tooLong" ? -1 : 0,
      namedGroups: new Set(),
      fields,
      args: onCommands,
    };
    if (kind === "undecodable" || kind === "tooLong") {
      for (const key of ["ignoreCase", "flags"]) {
        if (Object.hasOwn(match, key)) {
          this.fail([...path, key], `not used with "${kind}"`, { key: true });
        }
      }
      return { test: () => undefined, scope };
    }
    const pattern = match[kind] as string;
    if (kind === "regex" || kind === "commandRegex") {
      if (match.ignoreCase !== undefined) {
        this.fail(
          [...path, "ignoreCase"],
          `not used with "${kind}": add "i" to "flags" instead`,
          { key: true },
        );
      }
      const flags = match.flags === undefined ? "" : this.#flags(match.flags, [...path, "flags"]);
      const regex = this.#regex(pattern, flags, [...path, kind], scope);
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
      };
    }
    if (match.flags !== undefined) {
      this.fail(
        [...path, "flags"],
        `only used with "regex" or "commandRegex" (for "${kind}" use "ignoreCase": true)`,
        { key: true },
      );
    }
    const ignoreCase = match.ignoreCase ?? false;
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
      };
    }
    return {
      test(subject) {
        return fold(subject) === wanted
          ? { groups: [subject], named: undefined, rest: "" }
          : undefined;
      },
      scope,
    };
  }

  #flags(flags: string, path: JsonPath): string {
    for (const [index, flag] of [...flags].entries()) {
      if (!REGEX_FLAGS.includes(flag)) {
        this.fail(
          path,
          `unsupported flag ${JSON.stringify(flag)}; allowed: ${[...REGEX_FLAGS].join(", ")}`,
          { index },
        );
      }
      if (flags.indexOf(flag) !== index) {
        this.fail(path, `flag ${JSON.stringify(flag)} is repeated`, { index });
      }
    }
    return flags;
  }

  /** Compiles the regular expression and records its groups in the template scope. */
  #regex(pattern: string, flags: string, path: JsonPath, scope: TemplateScope) {
    let regex;
    try {
      regex = compileRouteRegex(pattern, flags);
    } catch (error) {
      if (!(error instanceof RouteRegexError)) throw error;
      this.fail(path, `invalid regular expression: ${error.message}`, { index: error.index });
    }
    scope.groupCount = regex.groupCount;
    for (const name of regex.groupNames) {
      if ((FIELD_NAMES as readonly string[]).includes(name)) {
        this.fail(
          path,
          `the group name "${name}" hides the placeholder {${name}}; rename the group`,
          { index: Math.max(0, pattern.indexOf(`<${name}>`) - 2) },
        );
      }
    }
    scope.namedGroups = new Set(regex.groupNames);
    return regex;
  }

  #action(
    route: ActionShape,
    path: JsonPath,
    scope: TemplateScope,
    special: "undecodable" | "tooLong" | "fallback" | undefined,
  ): CompiledAction {
    const close = route.close ?? false;
    const shutdown = route.shutdown ?? false;
    const keys = Object.keys(route);
    const later = (a: string, b: string) => keys.indexOf(a) > keys.indexOf(b) ? a : b;
    if (close && shutdown) {
      this.fail(
        [...path, later("close", "shutdown")],
        '"close" and "shutdown" cannot both be set (a shutdown closes every connection)',
        { key: true },
      );
    }
    if (route.run !== undefined) {
      if (special === "undecodable" || special === "tooLong") {
        this.fail(
          [...path, "run"],
          `"run" is not available for a line that is ${
            special === "tooLong" ? "too long" : "not UTF-8"
          }: there is no text to give the program`,
          { key: true },
        );
      }
      const others = ["reply", ...close ? ["close"] : [], ...shutdown ? ["shutdown"] : []];
      for (const other of others) {
        if (!Object.hasOwn(route, other)) continue;
        const last = later(other, "run");
        this.fail(
          [...path, last],
          `"${last}" cannot be combined with "${last === "run" ? other : "run"}" in one route ` +
            `(a program's output is the reply; use a second route to close or shut down)`,
          { key: true },
        );
      }
      return this.#run(route.run, [...path, "run"], scope);
    }
    if (route.reply === undefined && !close && !shutdown) {
      this.fail(path, 'expected an action: "reply", "run", "close": true or "shutdown": true');
    }
    const lines = route.reply === undefined
      ? []
      : this.#lines(route.reply, [...path, "reply"], scope);
    return { kind: shutdown ? "shutdown" : close ? "close" : "reply", lines };
  }

  /** Reply lines: one template or an array of them, none with a line break. */
  #lines(lines: string | string[], path: JsonPath, scope: TemplateScope): Template[] {
    if (typeof lines === "string") return [this.#line(lines, path, scope)];
    return lines.map((line, index) => this.#line(line, [...path, index], scope));
  }

  #line(line: string, path: JsonPath, scope: TemplateScope): Template {
    const lineBreak = line.search(/[\r\n]/);
    if (lineBreak !== -1) {
      this.fail(
        path,
        "a reply line cannot contain a line break; give several lines as an array",
        { index: lineBreak },
      );
    }
    return this.#template(line, path, scope);
  }

  #template(text: string, path: JsonPath, scope: TemplateScope): Template {
    try {
      return compileTemplate(text, scope);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      this.fail(path, error.message, { index: error.index });
    }
  }

  #run(run: RunShape, path: JsonPath, scope: TemplateScope): CompiledAction {
    const argv = this.#argv(run.argv, [...path, "argv"], scope);
    const stdin = run.stdin === undefined
      ? undefined
      : this.#template(run.stdin, [...path, "stdin"], scope);
    const timeoutMs = run.timeout === undefined
      ? this.#options.defaultTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS
      : this.#duration(run.timeout, [...path, "timeout"], false);
    const maxOutputBytes = run.maxOutput === undefined
      ? this.#options.defaultMaxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
      : this.#size(run.maxOutput, [...path, "maxOutput"]);
    const inheritEnv = run.inheritEnv === undefined
      ? this.#programEnv
      : union(this.#programEnv, this.#envNames(run.inheritEnv, [...path, "inheritEnv"]));
    if (run.env !== undefined) this.#env(run.env, [...path, "env"]);
    this.#program(argv, [...path, "argv"], { inheritEnv, env: run.env, cwd: run.cwd });
    return {
      kind: "run",
      argv,
      stdin,
      timeoutMs,
      maxOutputBytes,
      inheritEnv,
      env: run.env,
      cwd: run.cwd,
    };
  }

  /** A program that cannot be found is a mistake of the file, reported where it is named. */
  #program(
    argv: readonly string[],
    path: JsonPath,
    options: {
      inheritEnv: readonly string[];
      env: Record<string, string> | undefined;
      cwd: string | undefined;
    },
  ): void {
    const program = argv[0]!;
    if (program === "") this.fail([...path, 0], "the program name is empty");
    const missing = programMissing(program, {
      inheritEnv: options.inheritEnv,
      env: options.env,
      cwd: options.cwd,
    });
    if (missing !== undefined) {
      this.fail([...path, 0], `cannot run ${JSON.stringify(program)}: ${missing}`);
    }
  }

  /** Names of the server's environment variables to pass on: each must be readable. */
  #envNames(names: readonly string[], path: JsonPath): string[] {
    return names.map((name, index) => {
      if (!isEnvName(name)) this.fail([...path, index], "not a valid environment variable name");
      if (unreadableEnv([name]).length > 0) {
        this.fail(
          [...path, index],
          `the server may not read the environment variable ${JSON.stringify(name)}, so it ` +
            `cannot pass it on; allow it with --allow-env=${name} (or remove it here)`,
        );
      }
      return name;
    });
  }

  #argv(argv: string[], path: JsonPath, scope: TemplateScope): string[] {
    for (const [index, value] of argv.entries()) {
      // Client text must never become an argument; a placeholder here is a misunderstanding.
      const placeholder = /\{([^{}]*)\}/.exec(value);
      if (placeholder && placesPlaceholder(placeholder[1]!, scope)) {
        this.fail(
          [...path, index],
          `argv is not a template: ${
            placeholder[0]
          } would be passed literally. Client text reaches a program only on its stdin (see "stdin")`,
          { index: placeholder.index },
        );
      }
    }
    return argv;
  }

  #env(env: Record<string, string>, path: JsonPath): void {
    for (const name of Object.keys(env)) {
      if (!isEnvName(name)) {
        this.fail([...path, name], "not a valid environment variable name", { key: true });
      }
    }
  }

  /** A duration (checked in form by the schema) in milliseconds; 0 only where it means off. */
  #duration(value: string | number, path: JsonPath, zeroIsOff: boolean): number {
    let ms: number;
    if (typeof value === "number") {
      ms = value;
    } else {
      const found = /^(\d+(?:\.\d+)?)\s*(ms|s|m)$/.exec(value.trim())!;
      ms = Math.round(Number(found[1]) * { ms: 1, s: 1000, m: 60_000 }[found[2] as "ms"]);
    }
    if (!Number.isFinite(ms) || (!zeroIsOff && !(ms > 0))) {
      this.fail(path, zeroIsOff ? "expected a finite duration" : "the timeout must be more than 0");
    }
    return ms;
  }

  /** A size (checked in form by the schema) in bytes. */
  #size(value: string | number, path: JsonPath): number {
    let bytes: number;
    if (typeof value === "number") {
      bytes = value;
    } else {
      const found = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(value.trim())!;
      const unit = (found[2] ?? "b").charAt(0).toLowerCase() as "b" | "k" | "m" | "g";
      bytes = Math.round(Number(found[1]) * { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit]);
    }
    if (!Number.isSafeInteger(bytes) || bytes < 1) {
      this.fail(path, "the size must be a whole number of bytes, at least 1");
    }
    return bytes;
  }
}

/** The scope of a greeting or a farewell: the server's and the connection's fields. */
function connectionScope(): TemplateScope {
  return {
    groupCount: -1,
    namedGroups: new Set(),
    fields: new Set(CONNECTION_FIELDS),
    args: false,
  };
}

// The shapes of the file's parts, as the schema guarantees them.
type Lines = string | string[];
interface MatchShape {
  exact?: string;
  prefix?: string;
  regex?: string;
  command?: string;
  commandRegex?: string;
  undecodable?: true;
  tooLong?: true;
  ignoreCase?: boolean;
  flags?: string;
}
interface RunShape {
  argv: string[];
  stdin?: string;
  timeout?: string | number;
  maxOutput?: string | number;
  inheritEnv?: string[];
  env?: Record<string, string>;
  cwd?: string;
}
interface ActionShape {
  reply?: Lines;
  close?: boolean;
  shutdown?: boolean;
  run?: RunShape;
  extra?: unknown;
}
interface RouteShape extends ActionShape {
  match: MatchShape;
  help?: string;
}
interface FileShape {
  protocol?: "text" | "json";
  name?: string;
  greeting?: Lines;
  farewell?: Partial<Record<FarewellKind, Lines>>;
  builtins?: boolean;
  allowShutdown?: boolean;
  maxClients?: number;
  idleTimeout?: string | number;
  maxLine?: string | number;
  programEnv?: string[];
  routes?: RouteShape[];
  fallback?: ActionShape;
  exec?: {
    argv: string[];
    timeout?: string | number;
    maxExec?: number;
    maxLine?: string | number;
    /** Deprecated: `maxLine`. */
    maxLineBytes?: string | number;
    env?: Record<string, string>;
    inheritEnv?: string[];
    cwd?: string;
  };
}

function isEnvName(name: string): boolean {
  return name !== "" && !name.includes("=") && !name.includes("\0");
}

/** `a` then the names of `b` that `a` lacks. */
function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

function placesPlaceholder(name: string, scope: TemplateScope): boolean {
  if (/^\d+$/.test(name)) return Number(name) <= scope.groupCount;
  if (scope.args && (name === "args" || name.startsWith("args."))) return true;
  return scope.namedGroups.has(name) || scope.fields.has(name as FieldName);
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (see --allow-read)";
  return error instanceof Error ? error.message : String(error);
}

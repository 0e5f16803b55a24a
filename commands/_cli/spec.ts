/**
 * The command-line definition every subcommand is written in, and the parser that reads it: one
 * description from which the arguments are parsed, `--help` is printed, and the shell completions
 * and the man page are generated (commands/_cli/completions.ts, commands/_cli/man.ts).
 *
 * No dependencies and no `node:` imports: `linesock send PING` starts about as fast as an empty
 * script (the parser libraries measured cost 1.08x to 3x; docs/benchmarks.md).
 *
 * Conventions (getopt_long's): `--name value` and `--name=value`, `-x value` and `-xvalue`, stacked
 * flags (`-qv`, `-vvv`), `--no-name` for a flag that defaults to on, options anywhere among the
 * positional arguments, and `--` ending the options.
 *
 * @module
 */

/** What a shell may complete an option's value or an argument with. */
export type Completion = "file" | "directory" | "none" | readonly string[];

/** One option of a subcommand. */
export interface OptionSpec {
  /** The long name without dashes (`connect-timeout`); the parsed value's key is its camel case. */
  readonly long: string;
  /** A one-letter short name without the dash. */
  readonly short?: string;
  /** The placeholder of its value (`DURATION`); without it, the option is a flag. */
  readonly value?: string;
  /** One line of help. */
  readonly help: string;
  /** Turns the text into a value; throws an `Error` whose message says what was expected. */
  readonly parse?: (text: string) => unknown;
  /** The values allowed (also what completion offers). */
  readonly choices?: readonly string[];
  /** The value when not given. */
  readonly default?: unknown;
  /** How `--help` shows the default, when `String(default)` would not read well. */
  readonly defaultText?: string;
  /** May be given several times: the value is an array. */
  readonly multiple?: boolean;
  /** A flag that counts how often it is given (`-vvv` is 3). */
  readonly count?: boolean;
  /** A flag that is on by default: `--no-NAME` turns it off. */
  readonly negatable?: boolean;
  /** Not shown in `--help` or completions (old spellings, test hooks). */
  readonly hidden?: boolean;
  /** What completion offers for its value. */
  readonly complete?: Completion;
}

/** An old spelling kept until 1.0: it works, with a one-line warning. */
export interface AliasSpec {
  /** The old spelling with its dashes (`-u`, `--pipeline`). */
  readonly name: string;
  /** The long name of the option it stands for. */
  readonly of: string;
}

/** One positional argument. */
export interface ArgumentSpec {
  /** Its placeholder (`TARGET`, `LINE`). */
  readonly name: string;
  /** One line of help. */
  readonly help: string;
  /** Any number of them (the last argument only). */
  readonly variadic?: boolean;
  /** What completion offers. */
  readonly complete?: Completion;
}

/** A subcommand. */
export interface CommandSpec {
  /** Its name (`send`). */
  readonly name: string;
  /** One line: what it does. */
  readonly summary: string;
  /** Its positional arguments, all optional. */
  readonly args: readonly ArgumentSpec[];
  /** Its options, in the order `--help` shows them. */
  readonly options: readonly OptionSpec[];
  /**
   * What the words after `--` are (a program and its arguments): with it they are kept apart, in
   * {@linkcode Parsed.afterDashes}; without it they are positional arguments.
   */
  readonly afterDashes?: ArgumentSpec;
  /** Old spellings. */
  readonly aliases?: readonly AliasSpec[];
  /**
   * Checks each positional argument as it is met, before the words after it are read as options:
   * returns a usage message to refuse it (`serve --exec python3 -u bot.py`, where the program
   * belongs after `--`), or `undefined` to take it.
   * @param word The argument.
   * @param given The camel-case names of the options given before it.
   * @param rest The words from it up to `--` (or the end).
   */
  readonly checkArgument?: (
    word: string,
    given: ReadonlySet<string>,
    rest: readonly string[],
  ) => string | undefined;
  /** Example command lines with what they do. */
  readonly examples: readonly (readonly [string, string])[];
  /** Paragraphs after the examples. */
  readonly notes?: string;
}

/** The result of parsing a subcommand's arguments. */
export interface Parsed {
  /** Option values by camel-case name (defaults filled in). */
  readonly options: Record<string, unknown>;
  /** The camel-case names of the options given on the command line. */
  readonly given: ReadonlySet<string>;
  /** The positional arguments. */
  readonly args: readonly string[];
  /** The words after `--`, when the spec keeps them apart (`afterDashes`) and `--` was given. */
  readonly afterDashes?: readonly string[];
  /** Whether `-h`/`--help` was given. */
  readonly help: boolean;
  /** One line per old spelling used. */
  readonly warnings: readonly string[];
}

/** A usage error (exit status 2): the message says what is wrong and how to fix it. */
export class UsageError extends Error {
  /** @param message One line. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The options every subcommand has. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  { long: "help", short: "h", help: "show this help" },
  { long: "quiet", short: "q", help: "say less: errors only" },
  { long: "verbose", short: "v", count: true, help: "say more (repeat for even more: -vv)" },
];

/** `connect-timeout` → `connectTimeout`. */
export function camel(long: string): string {
  return long.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/**
 * Parses a subcommand's arguments.
 * @param spec The subcommand.
 * @param argv The arguments after the subcommand's name.
 * @returns The options, the positional arguments and the warnings.
 * @throws {UsageError} On an unknown option, a missing or bad value, or a misused flag.
 */
export function parse(spec: CommandSpec, argv: readonly string[]): Parsed {
  const options = [...COMMON_OPTIONS, ...spec.options];
  const byLong = new Map(options.map((option) => [option.long, option]));
  const byShort = new Map(
    options.filter((option) => option.short).map((option) => [option.short!, option]),
  );
  const aliases = new Map((spec.aliases ?? []).map((alias) => [alias.name, alias.of]));
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const args: string[] = [];
  let afterDashes: string[] | undefined;
  const warnings: string[] = [];
  let help = false;

  const set = (option: OptionSpec, shown: string, text: string | undefined, negated = false) => {
    const key = camel(option.long);
    if (option.long === "help") {
      help = true;
      return;
    }
    given.add(key);
    if (option.count) {
      values[key] = ((values[key] as number | undefined) ?? 0) + 1;
      return;
    }
    if (option.value === undefined) {
      values[key] = !negated;
      return;
    }
    const value = convert(option, shown, text!);
    if (option.multiple) values[key] = [...(values[key] as unknown[] | undefined) ?? [], value];
    else values[key] = value;
  };

  const resolveAlias = (name: string): OptionSpec | undefined => {
    const of = aliases.get(name);
    if (of === undefined) return undefined;
    const option = byLong.get(of)!;
    const now = option.short ? `-${option.short}/--${option.long}` : `--${option.long}`;
    warnings.push(`${name} is deprecated and goes away in 1.0: use ${now}`);
    return option;
  };

  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    if (word === "--") {
      if (spec.afterDashes) afterDashes = argv.slice(index + 1);
      else args.push(...argv.slice(index + 1));
      break;
    }
    if (word.startsWith("--")) {
      const equals = word.indexOf("=");
      const name = equals === -1 ? word.slice(2) : word.slice(2, equals);
      const inline = equals === -1 ? undefined : word.slice(equals + 1);
      let option = byLong.get(name) ?? resolveAlias(`--${name}`);
      let negated = false;
      if (option === undefined && name.startsWith("no-")) {
        const positive = byLong.get(name.slice(3));
        if (positive?.negatable) [option, negated] = [positive, true];
      }
      if (option === undefined) throw unknownOption(`--${name}`, options);
      if (option.value === undefined) {
        if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
        set(option, `--${name}`, undefined, negated);
        continue;
      }
      const text = inline ?? argv[++index];
      if (text === undefined) throw new UsageError(`--${name} needs a value (${option.value})`);
      set(option, `--${name}`, text);
      continue;
    }
    if (word.startsWith("-") && word.length > 1 && !/^-\d/.test(word)) {
      // Short options, possibly stacked (-qv) or with the value attached (-p1991).
      for (let at = 1; at < word.length; at++) {
        const letter = word[at]!;
        const option = byShort.get(letter) ?? resolveAlias(`-${letter}`);
        if (option === undefined) throw unknownOption(`-${letter}`, options);
        if (option.value === undefined) {
          set(option, `-${letter}`, undefined);
          continue;
        }
        const text = at + 1 < word.length ? word.slice(at + 1) : argv[++index];
        if (text === undefined) throw new UsageError(`-${letter} needs a value (${option.value})`);
        set(option, `-${letter}`, text);
        break;
      }
      continue;
    }
    if (spec.checkArgument) {
      const end = argv.indexOf("--", index);
      const refused = spec.checkArgument(
        word,
        given,
        argv.slice(index, end === -1 ? undefined : end),
      );
      if (refused !== undefined) throw new UsageError(refused);
    }
    args.push(word);
  }

  for (const option of options) {
    const key = camel(option.long);
    if (!(key in values) && option.default !== undefined) values[key] = option.default;
  }
  const variadic = spec.args.at(-1)?.variadic ?? false;
  if (!help && !variadic && args.length > spec.args.length) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(args[spec.args.length])}` +
        (spec.args.length === 0 ? ` (${spec.name} takes none)` : ""),
    );
  }
  return { options: values, given, args, help, warnings, ...(afterDashes ? { afterDashes } : {}) };
}

function convert(option: OptionSpec, shown: string, text: string): unknown {
  if (option.choices && !option.choices.includes(text)) {
    throw new UsageError(
      `${shown}: ${JSON.stringify(text)} is not one of ${option.choices.join(", ")}`,
    );
  }
  if (!option.parse) return text;
  try {
    return option.parse(text);
  } catch (error) {
    throw new UsageError(`${shown}: ${(error as Error).message}`);
  }
}

function unknownOption(name: string, options: readonly OptionSpec[]): UsageError {
  const longs = options.filter((option) => !option.hidden).map((option) => `--${option.long}`);
  return new UnknownOptionError(name, name.startsWith("--") ? longs : []);
}

/**
 * An option that no definition has. Its message names the option; {@linkcode withHint} adds the
 * nearest known one, loading the edit distance only on this error path (an npm import in the
 * parser would cost every command's start-up).
 */
export class UnknownOptionError extends UsageError {
  /**
   * @param option The option as given.
   * @param candidates The options it may have meant (`--long` forms).
   */
  constructor(readonly option: string, readonly candidates: readonly string[]) {
    super(`unknown option ${option}`);
  }

  /** The message with `(did you mean --x?)` when one option is near enough. */
  async withHint(): Promise<string> {
    const { default: leven } = await import("leven");
    const extended = this.candidates.filter((candidate) => candidate.startsWith(this.option));
    let best = extended.length === 1 ? extended[0] : undefined;
    let bestDistance = 3;
    for (const candidate of best ? [] : this.candidates) {
      const distance = leven(this.option, candidate);
      if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
    }
    return best ? `${this.message} (did you mean ${best}?)` : this.message;
  }
}

/** How an option reads in a table: `-p, --port PORT`. */
export function optionLabel(option: OptionSpec): string {
  const names = option.short ? `-${option.short}, --${option.long}` : `    --${option.long}`;
  const negation = option.negatable ? `, --no-${option.long}` : "";
  return `${names}${negation}${option.value ? ` ${option.value}` : ""}`;
}

/** The default as `--help` shows it, if any. */
export function defaultLabel(option: OptionSpec): string | undefined {
  if (option.defaultText !== undefined) return option.defaultText;
  if (option.default === undefined || option.value === undefined) return undefined;
  return String(option.default);
}

/** The usage line's arguments: `[TARGET] [LINE...]`. */
export function usageArgs(spec: CommandSpec): string {
  const args = spec.args.map((arg) => `[${arg.name}${arg.variadic ? "..." : ""}]`);
  if (spec.afterDashes) args.push(`[-- ${spec.afterDashes.name}...]`);
  return args.join(" ");
}

/**
 * The `--help` text of a subcommand.
 * @param spec The subcommand.
 * @returns Text ending in a newline, at most 100 columns wide.
 */
export function formatHelp(spec: CommandSpec): string {
  const lines = [
    `Usage: linesock ${spec.name} [options] ${usageArgs(spec)}`.trimEnd(),
    "",
    spec.summary,
    "",
  ];
  const args = spec.afterDashes
    ? [...spec.args, { ...spec.afterDashes, name: `-- ${spec.afterDashes.name}...` }]
    : spec.args;
  if (args.length > 0) {
    lines.push("Arguments:");
    const width = Math.max(...args.map((arg) => arg.name.length)) + 2;
    for (const arg of args) lines.push(`  ${arg.name.padEnd(width)}${arg.help}`);
    lines.push("");
  }
  lines.push("Options:");
  const shown = [...spec.options, ...COMMON_OPTIONS].filter((option) => !option.hidden);
  const width = Math.max(...shown.map((option) => optionLabel(option).length)) + 2;
  for (const option of shown) {
    const fallback = defaultLabel(option);
    const help = option.help + (fallback !== undefined ? ` (default: ${fallback})` : "");
    lines.push(`  ${optionLabel(option).padEnd(width)}${help}`);
  }
  if (spec.examples.length > 0) {
    lines.push("", "Examples:");
    const exampleWidth = Math.max(...spec.examples.map(([command]) => command.length)) + 2;
    for (const [command, what] of spec.examples) {
      lines.push(`  ${command.padEnd(exampleWidth)}${what}`);
    }
  }
  if (spec.notes) lines.push("", spec.notes.trim());
  return lines.join("\n") + "\n";
}

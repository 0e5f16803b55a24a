/**
 * The repl's persistent history: one entry per line in `$XDG_STATE_HOME/linesock/history` (default
 * `~/.local/state/linesock/history`), bounded, and never holding lines the user marked secret with a
 * leading space (as shells do with `HISTCONTROL=ignorespace`).
 *
 * @module
 */

/** How many entries are kept when nothing else is said. */
export const DEFAULT_HISTORY_SIZE = 1000;

/**
 * Where the history file lives for this user.
 * @param env Reads environment variables (`XDG_STATE_HOME`, `HOME`).
 * @returns The absolute path, or `undefined` when neither variable is set.
 */
export function defaultHistoryPath(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string | undefined {
  // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
  const state = env("XDG_STATE_HOME");
  if (state && state.startsWith("/")) return `${state.replace(/\/+$/, "")}/linesock/history`;
  const home = env("HOME");
  if (home) return `${home.replace(/\/+$/, "")}/.local/state/linesock/history`;
  return undefined;
}

/**
 * Whether a typed line may be recorded: not empty, and not marked secret by a leading space.
 * @param line The line as typed.
 * @returns `true` to record it.
 */
export function isRecordable(line: string): boolean {
  return line.trim() !== "" && !/^\s/.test(line);
}

/** History entries in memory, mirrored to a file (oldest first, one per line). */
export class HistoryStore {
  /** The file, or `undefined` for a history that is not persisted. */
  readonly path: string | undefined;
  /** The most entries kept. */
  readonly maxEntries: number;
  #entries: string[] = [];
  #appended = 0;
  #writes: Promise<void> = Promise.resolve();

  /**
   * @param path The history file (`undefined`: keep history in memory only).
   * @param maxEntries The most entries kept.
   */
  constructor(path: string | undefined, maxEntries = DEFAULT_HISTORY_SIZE) {
    this.path = path;
    this.maxEntries = Math.max(0, maxEntries);
  }

  /** The entries, oldest first. */
  get entries(): readonly string[] {
    return this.#entries;
  }

  /** The entries newest first, as `node:readline`'s `history` option wants them. */
  newestFirst(): string[] {
    return this.#entries.toReversed();
  }

  /**
   * Reads the file. A missing or unreadable file is an empty history: history is a convenience and
   * never stops the repl.
   */
  async load(): Promise<void> {
    if (this.path === undefined) return;
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch {
      return;
    }
    const lines = text.split("\n").filter(isRecordable);
    this.#entries = dedupeKeepLast(lines).slice(-this.maxEntries);
    // A file that grew past the bound (several sessions appending) is trimmed now.
    if (lines.length > this.#entries.length) await this.#rewrite();
  }

  /**
   * Records a typed line, unless it is empty or secret. A repeat of an earlier entry moves it to the end.
   * @param line The line as typed.
   * @returns Whether it was recorded (settles once it is in the file).
   */
  add(line: string): Promise<boolean> {
    if (!isRecordable(line) || this.maxEntries === 0) return Promise.resolve(false);
    // Memory is updated at once (so Up and `:history` see the line); file writes run one at a time.
    const previous = this.#entries.indexOf(line);
    if (previous !== -1) this.#entries.splice(previous, 1);
    this.#entries.push(line);
    if (this.#entries.length > this.maxEntries) this.#entries.shift();
    if (this.path === undefined) return Promise.resolve(true);
    const path = this.path;
    this.#writes = this.#writes.then(async () => {
      try {
        // Appending keeps concurrent sessions from erasing each other's lines; the file is trimmed
        // and de-duplicated when it has grown well past the bound.
        if (previous !== -1 || ++this.#appended > this.maxEntries) {
          this.#appended = 0;
          await this.#rewrite();
        } else {
          await this.#ensureDirectory();
          await Deno.writeTextFile(path, `${line}\n`, { append: true, mode: 0o600 });
        }
      } catch {
        // An unwritable history file must not break the session.
      }
    });
    return this.#writes.then(() => true);
  }

  /**
   * Waits for the file writes started so far.
   * @returns A promise that settles when they are done.
   */
  flush(): Promise<void> {
    return this.#writes;
  }

  async #rewrite(): Promise<void> {
    if (this.path === undefined) return;
    await this.#ensureDirectory();
    const temporary = `${this.path}.${Deno.pid}.tmp`;
    const body = this.#entries.map((entry) => `${entry}\n`).join("");
    await Deno.writeTextFile(temporary, body, { mode: 0o600 });
    await Deno.rename(temporary, this.path);
  }

  async #ensureDirectory(): Promise<void> {
    const directory = this.path!.slice(0, this.path!.lastIndexOf("/"));
    if (directory) await Deno.mkdir(directory, { recursive: true, mode: 0o700 });
  }
}

function dedupeKeepLast(lines: string[]): string[] {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (seen.has(line)) continue;
    seen.add(line);
    kept.push(line);
  }
  return kept.reverse();
}

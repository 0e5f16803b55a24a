/**
 * A small pseudo-terminal driver for end-to-end tests of interactive commands, built on `tmux`: the
 * command runs in a detached tmux session of a fixed size on a private tmux server; tests type with
 * {@linkcode Pty.type} / {@linkcode Pty.press}, read the screen with {@linkcode Pty.screen}, and wait
 * for text with {@linkcode Pty.waitFor}, which polls the screen with a bounded timeout.
 *
 * @module
 */
import { type CliTask, taskArgs } from "./cli.ts";
import { toolMissing } from "./tools.ts";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const decoder = new TextDecoder();

/** Why `tmux` cannot be run here (`tmux is not installed`), or `undefined`. */
export const TMUX_MISSING: string | undefined = toolMissing("tmux", ["-V"]);

/** Whether `tmux` can be run here. */
export const HAS_TMUX: boolean = TMUX_MISSING === undefined;

/** Options of {@linkcode startPty}. */
export interface PtyOptions {
  /** Terminal width. @default {80} */
  columns?: number;
  /** Terminal height. @default {24} */
  rows?: number;
  /** The whole environment of the command (besides what tmux adds: TERM, TMUX). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** What {@linkcode Pty.screen} captures. */
export interface ScreenOptions {
  /** Rows the terminal wrapped come back as one line. */
  joined?: boolean;
  /** Keep colour escape sequences. */
  escapes?: boolean;
  /** Include the rows scrolled off the top. */
  history?: boolean;
}

/** A command running in a pseudo-terminal. */
export interface Pty extends AsyncDisposable {
  /** Types text literally (no key names). */
  type(text: string): Promise<void>;
  /** Presses keys by tmux name: `Enter`, `Up`, `Tab`, `C-c`, `C-d`, … */
  press(...keys: string[]): Promise<void>;
  /**
   * The visible screen, one string per row, trailing spaces removed.
   * @param options `joined`: rows the terminal wrapped come back as one line; `escapes`: keep colour
   * escape sequences; `history`: include the rows scrolled off the top (tmux scrolls a pane's
   * screen when its command ends, so read an exited command's output this way).
   */
  screen(options?: ScreenOptions): Promise<string[]>;
  /** The cursor position (0-based). */
  cursor(): Promise<{ x: number; y: number }>;
  /**
   * Waits until the screen satisfies `test` (a text it contains, a regular expression, or a
   * predicate of the screen's rows joined by newlines), polling; fails with the last screen after
   * the timeout (ms, default 10 s). With `joined`, rows the terminal wrapped count as one line.
   * @returns The screen that matched, joined with newlines.
   */
  waitFor(
    test: string | RegExp | ((screen: string) => boolean | Promise<boolean>),
    options?: number | { timeoutMs?: number; joined?: boolean },
  ): Promise<string>;
  /** Waits for the command to exit; returns its status. */
  waitForExit(ms?: number): Promise<number>;
}

async function tmux(socket: string, args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", {
    args: ["-S", socket, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`tmux ${args.join(" ")} failed: ${decoder.decode(output.stderr).trim()}`);
  }
  return decoder.decode(output.stdout);
}

const POLL_MS = 50;

/**
 * Starts `command` in a fresh pseudo-terminal.
 * @param command The program and its arguments (run directly, without a shell).
 * @param options Size, environment, directory.
 * @returns The running pty; `await using` kills it and its tmux server.
 */
export async function startPty(command: string[], options: PtyOptions = {}): Promise<Pty> {
  const dir = await Deno.makeTempDir({ prefix: "linesock-pty-" });
  const socket = `${dir}/tmux.sock`;
  const config = `${dir}/tmux.conf`;
  // remain-on-exit keeps the pane, so the exit status and the last screen can still be read.
  await Deno.writeTextFile(config, "set -g remain-on-exit on\nset -g status off\n");
  const env = options.env ?? {};
  const args = [
    "-S",
    socket,
    "-f",
    config,
    "new-session",
    "-d",
    "-x",
    String(options.columns ?? 80),
    "-y",
    String(options.rows ?? 24),
    "-s",
    "main",
    "-c",
    options.cwd ?? ROOT,
    ...Object.entries(env).flatMap(([name, value]) => ["-e", `${name}=${value}`]),
    "--",
    // tmux does not always report the exit status of a Deno process (pane_dead_status stays
    // empty), so a tiny wrapper writes it to a file once the command has ended.
    "/bin/sh",
    "-c",
    `"$@"; echo $? > '${dir}/status'`,
    "pty",
    ...command,
  ];
  const started = await new Deno.Command("tmux", {
    args,
    // A clean environment: the tmux server (and so the command) sees only what the test gives.
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", TERM: "xterm-256color", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!started.success) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`tmux new-session failed: ${decoder.decode(started.stderr)}`);
  }
  const run = (...tmuxArgs: string[]) => tmux(socket, tmuxArgs);
  const screen = async (options: ScreenOptions = {}) => {
    const flags = [
      "-p",
      ...(options.joined ? ["-J"] : []),
      ...(options.escapes ? ["-e"] : []),
      ...(options.history ? ["-S", "-"] : []),
    ];
    const text = await run("capture-pane", ...flags, "-t", "main");
    return text.replace(/\n$/, "").split("\n").map((row) => row.trimEnd());
  };
  const poll = async <T>(
    probe: () => Promise<T | undefined>,
    ms: number,
    what: () => Promise<string>,
  ): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const result = await probe();
      if (result !== undefined) return result;
      if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${await what()}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  return {
    type: async (text) => void await run("send-keys", "-t", "main", "-l", text),
    press: async (...keys) => void await run("send-keys", "-t", "main", ...keys),
    screen,
    async cursor() {
      const [x, y] = (await run("display-message", "-p", "-t", "main", "#{cursor_x} #{cursor_y}"))
        .trim().split(" ").map(Number);
      return { x: x!, y: y! };
    },
    waitFor(test, options = {}) {
      const { timeoutMs: ms = 10_000, joined = false } = typeof options === "number"
        ? { timeoutMs: options }
        : options;
      const matches = (text: string): boolean | Promise<boolean> =>
        typeof test === "string"
          ? text.includes(test)
          : test instanceof RegExp
          ? test.test(text)
          : test(text);
      let last = "";
      return poll(
        async () => {
          last = (await screen({ joined })).join("\n");
          return (await matches(last)) ? last : undefined;
        },
        ms,
        () => Promise.resolve(`waiting for ${String(test)}; screen:\n${last}`),
      );
    },
    waitForExit(ms = 10_000) {
      return poll(
        async () => {
          try {
            const text = await Deno.readTextFile(`${dir}/status`);
            // Written in one go, but read only once its newline is there.
            return text.endsWith("\n") ? Number(text.trim()) : undefined;
          } catch (error) {
            if (error instanceof Deno.errors.NotFound) return undefined;
            throw error;
          }
        },
        ms,
        async () => `waiting for exit; screen:\n${(await screen()).join("\n")}`,
      );
    },
    async [Symbol.asyncDispose]() {
      await run("kill-server").catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * The command line that runs a linesock task's subcommand (with the task's permission flags).
 * @param task The deno.json task.
 * @param args Subcommand arguments.
 * @returns The program and arguments for {@linkcode startPty}.
 */
export function cliCommand(task: CliTask, args: string[]): string[] {
  return [Deno.execPath(), ...taskArgs(task), ...args];
}

/**
 * An environment for a CLI in a pty: a private HOME and XDG state directory, and the Deno cache
 * of this process (a new HOME would otherwise mean a new, empty cache).
 * @param home The temporary home directory.
 * @param extra More variables.
 * @returns The environment.
 */
export function ptyEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const cacheHome = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return {
    HOME: home,
    XDG_STATE_HOME: `${home}/state`,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${cacheHome}/deno`,
    DENO_NO_UPDATE_CHECK: "1",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    ...extra,
  };
}

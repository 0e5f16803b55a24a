/**
 * `deno task install [--dist DIR]`: a `linesock` command on PATH, with its completions and man page
 * where the shells and `man` look for them on their own.
 *
 * 1. `deno task build`: the bundled command line in `dist/` (_tools/build.ts; `--dist` puts it
 *    elsewhere). A failed build leaves the previous one, and the launcher that runs it, as it was.
 * 2. `deno install --global --name linesock` of `dist/main.js` with {@linkcode INSTALL_FLAGS}: a
 *    launcher in `$DENO_INSTALL_ROOT/bin` (default `~/.deno/bin`) that runs the build from this
 *    clone, with a copy of deno.json (its import map) that `deno install` keeps beside it.
 * 3. Completions: bash's to `$BASH_COMPLETION_USER_DIR/completions/linesock` (default
 *    `$XDG_DATA_HOME/bash-completion`; bash-completion loads it on first use), fish's to
 *    `$XDG_CONFIG_HOME/fish/completions/linesock.fish`; zsh has no such folder of its own, so the
 *    line for `~/.zshrc` is printed.
 * 4. The man page: `docs/linesock.1` to `$DENO_INSTALL_ROOT/share/man/man1/`, where `man` finds it
 *    for a command in `$DENO_INSTALL_ROOT/bin` when `MANPATH` is not set (man-db derives
 *    `../share/man` from each PATH entry); with `MANPATH` set, add that folder to it.
 *
 * Each step says what it wrote; none needs root. The first build downloads esbuild (~10 MB).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { taskFlags } from "./task_flags.ts";
import { build } from "./build.ts";
import { allSpecs } from "../main.ts";
import { completionScript } from "../commands/_cli/completions.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The permissions the installed command runs with: those of `deno task linesock`. */
export const INSTALL_FLAGS: readonly string[] = taskFlags("linesock");

/**
 * The `deno` arguments that run a build as the installed launcher does.
 * @param dist The build's folder.
 * @param args The command line after `linesock`.
 * @returns Arguments for `Deno.execPath()`.
 */
export function launcherArgs(dist: string, args: readonly string[]): string[] {
  return ["run", "--config", `${ROOT}deno.json`, ...INSTALL_FLAGS, `${dist}/main.js`, ...args];
}

function home(): string {
  const value = Deno.env.get("HOME");
  if (!value) throw new Error("HOME is not set: cannot tell where to install");
  return value;
}

/** Where `deno install --global` puts the launcher's folder (`bin/`). */
function installRoot(): string {
  return Deno.env.get("DENO_INSTALL_ROOT") || `${home()}/.deno`;
}

/** An XDG base folder: the variable when it is an absolute path (the spec ignores others). */
function xdg(variable: string, fallback: string): string {
  const value = Deno.env.get(variable);
  return value?.startsWith("/") ? value : `${home()}/${fallback}`;
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
  console.log(`wrote ${path}`);
}

/**
 * Builds, installs the launcher, the completions and the man page.
 * @param dist Where the build goes (default: the clone's `dist/`).
 */
export async function install(dist = `${ROOT}dist`): Promise<void> {
  await build(dist);
  console.log(`built ${dist}/`);
  const installed = await new Deno.Command(Deno.execPath(), {
    args: [
      "install",
      "--global",
      "--force",
      "--name",
      "linesock",
      ...INSTALL_FLAGS,
      "--config",
      `${ROOT}deno.json`,
      `${dist}/main.js`,
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!installed.success) throw new Error(`deno install failed (exit ${installed.code})`);

  const specs = await allSpecs();
  const bashDir = Deno.env.get("BASH_COMPLETION_USER_DIR")?.startsWith("/")
    ? Deno.env.get("BASH_COMPLETION_USER_DIR")!
    : `${xdg("XDG_DATA_HOME", ".local/share")}/bash-completion`;
  await write(`${bashDir}/completions/linesock`, completionScript("bash", specs));
  await write(
    `${xdg("XDG_CONFIG_HOME", ".config")}/fish/completions/linesock.fish`,
    completionScript("fish", specs),
  );
  console.log("zsh: add to ~/.zshrc: source <(linesock completions zsh)");
  const manDir = `${installRoot()}/share/man`;
  await write(`${manDir}/man1/linesock.1`, await Deno.readTextFile(`${ROOT}docs/linesock.1`));
  if (Deno.env.get("MANPATH")) console.log(`man: MANPATH is set: add ${manDir} to it`);
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--dist");
  const dist = at === -1 ? undefined : Deno.args[at + 1];
  if ((at !== -1 && !dist?.startsWith("/")) || Deno.args.length !== (at === -1 ? 0 : 2)) {
    console.error("usage: deno task install [--dist /absolute/path]");
    Deno.exit(2);
  }
  try {
    await install(dist);
  } catch (error) {
    console.error(`install: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}

/**
 * `deno task install`: a `linesock` command on PATH, with its completions and man page where the
 * shells and `man` look for them on their own.
 *
 * 1. `deno task build`: the bundled command line in `dist/` (_tools/build.ts).
 * 2. `deno install --global --name linesock` of `dist/main.js` with {@linkcode INSTALL_FLAGS}: a
 *    launcher in `$DENO_INSTALL_ROOT/bin` (default `~/.deno/bin`) that runs the build from this
 *    clone.
 * 3. Completions: bash's to `$XDG_DATA_HOME/bash-completion/completions/linesock` (bash-completion
 *    loads it on first use), fish's to `$XDG_CONFIG_HOME/fish/completions/linesock.fish`; zsh has no
 *    such folder of its own, so the line for `~/.zshrc` is printed.
 * 4. The man page: `docs/linesock.1` to `$DENO_INSTALL_ROOT/share/man/man1/`, where `man` finds it
 *    for a command in `$DENO_INSTALL_ROOT/bin` (man-db derives `../share/man` from each PATH entry).
 *
 * Each step says what it wrote; none needs root.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { build } from "./build.ts";
import { allSpecs } from "../main.ts";
import { completionScript } from "../commands/_cli/completions.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The permissions the installed command runs with: those of `deno task linesock`. */
export const INSTALL_FLAGS: readonly string[] = (() => {
  const task = denoJson.tasks.linesock;
  const words = (typeof task === "string" ? task : task.command).trim().split(/\s+/);
  return words.slice(2, words.indexOf("main.ts"));
})();

function home(): string {
  const value = Deno.env.get("HOME");
  if (!value) throw new Error("HOME is not set: cannot tell where to install");
  return value;
}

/** Where `deno install --global` puts the launcher's folder (`bin/`). */
function installRoot(): string {
  return Deno.env.get("DENO_INSTALL_ROOT") || `${home()}/.deno`;
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
  console.log(`wrote ${path}`);
}

/** Builds, installs the launcher, the completions and the man page. */
export async function install(): Promise<void> {
  const dist = `${ROOT}dist`;
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
  const data = Deno.env.get("XDG_DATA_HOME") || `${home()}/.local/share`;
  const config = Deno.env.get("XDG_CONFIG_HOME") || `${home()}/.config`;
  await write(`${data}/bash-completion/completions/linesock`, completionScript("bash", specs));
  await write(`${config}/fish/completions/linesock.fish`, completionScript("fish", specs));
  console.log("zsh: add to ~/.zshrc: source <(linesock completions zsh)");
  await write(
    `${installRoot()}/share/man/man1/linesock.1`,
    await Deno.readTextFile(`${ROOT}docs/linesock.1`),
  );
}

if (import.meta.main) {
  try {
    await install();
  } catch (error) {
    console.error(`install: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}

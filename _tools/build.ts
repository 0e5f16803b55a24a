/**
 * `deno task build [--outdir DIR]`: the bundled build of the command line that `deno task install`
 * installs. `deno bundle` (esbuild) turns main.ts, each subcommand module and the serve worker into
 * one JavaScript file each in `dist/` (code they load later, such as the TLS fallback or the NATS
 * bus, into chunks beside them): `linesock send PING` then loads `main.js` and `send.js` instead of
 * some thirty source modules, which Deno checks and loads one by one (docs/benchmarks.md,
 * "Start-up").
 *
 * Each entry is bundled on its own, so no chunk is shared between subcommands: each has its own
 * copy of the parser and the error classes, and main.ts, which imports neither, hands the
 * arguments to the runner the subcommand module exports (commands/_cli/run_subcommand.ts). npm
 * packages stay external (Deno loads them from its cache through deno.json's import map, so the
 * build runs with `--config deno.json`): bundled, esbuild's CommonJS helper, which imports
 * `node:module`, would load Deno's Node layer into every command, which costs more at start-up than
 * all of linesock's own modules.
 *
 * The entries are main.ts and the modules the compile task names with `--include` (one list, kept
 * in step with main.ts by tests/compile_includes_test.ts). main.ts and lib/workers/worker_pool.ts
 * find the modules they load at run time by their own URL's extension (`.js`: the bundle's flat
 * layout).
 *
 * ```sh
 * deno task build                      # dist/
 * deno task build --outdir /tmp/build  # elsewhere (tests)
 * deno run --config deno.json -A dist/main.js send PING
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);

/** The modules bundled: main.ts and those the compile task includes (subcommands, the worker). */
export function bundleEntries(): string[] {
  const task = denoJson.tasks.compile;
  const command = typeof task === "string" ? task : task.command;
  const included = [...command.matchAll(/--include (\S+)/g)].map((match) => match[1]!);
  return ["main.ts", ...included];
}

/** Every package deno.json's import map names, and npm: specifiers: loaded by Deno, not bundled. */
function externals(): string[] {
  return [...Object.keys(denoJson.imports).map((name) => `--external=${name}`), "--external=npm:*"];
}

async function bundle(entry: string, outdir: string): Promise<void> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--code-splitting",
      "--platform=deno",
      "--format=esm",
      ...externals(),
      `--outdir=${outdir}`,
      entry,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`deno bundle ${entry} failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
}

/** The file that marks a folder as a build of this tool: only such a folder is ever replaced. */
export const BUILD_MARKER = ".linesock-build";

/**
 * Whether `dir` may be replaced by a build: it does not exist, is empty, or holds a build (its
 * marker file). Anything else is refused, so that a mistyped `--outdir` deletes nothing.
 */
async function replaceable(dir: string): Promise<boolean> {
  try {
    let empty = true;
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name === BUILD_MARKER) return true;
      empty = false;
    }
    return empty;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

/**
 * Bundles every entry, one file each, into a new folder beside `outdir`, then puts it in the place
 * of `outdir`: a failed build leaves the previous one (and a launcher that runs it) as it was.
 * @param outdir Where the build goes (an absolute path): missing, empty, or a previous build.
 * @returns The entry files written, by entry.
 * @throws When `outdir` holds something else, or a bundle fails.
 */
export async function build(outdir: string): Promise<Map<string, string>> {
  if (!await replaceable(outdir)) {
    throw new Error(
      `${outdir} exists and is not a linesock build (no ${BUILD_MARKER}): not replacing it`,
    );
  }
  const parent = outdir.slice(0, outdir.lastIndexOf("/")) || "/";
  await Deno.mkdir(parent, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: parent, prefix: ".linesock-build-" });
  try {
    const entries = bundleEntries();
    // Chunks are named by their content's hash: two bundles writing the same chunk write the same
    // file. Every bundle is awaited before a failure is reported: none is left running.
    const results = await Promise.allSettled(entries.map((entry) => bundle(entry, staging)));
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
    const written = new Map<string, string>();
    for (const entry of entries) {
      const name = entry.slice(entry.lastIndexOf("/") + 1).replace(/\.ts$/, ".js");
      await Deno.stat(`${staging}/${name}`);
      written.set(entry, `${outdir}/${name}`);
    }
    await Deno.writeTextFile(`${staging}/${BUILD_MARKER}`, "built by deno task build\n");
    await Deno.remove(outdir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.rename(staging, outdir);
    return written;
  } catch (error) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw error;
  }
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--outdir");
  const outdir = at === -1 ? "dist" : Deno.args[at + 1];
  if (outdir === undefined || Deno.args.length !== (at === -1 ? 0 : 2)) {
    console.error("usage: deno task build [--outdir DIR]");
    Deno.exit(2);
  }
  // Relative to the clone (where the task runs), as a path, not a URL (spaces stay spaces).
  const path = outdir.startsWith("/") ? outdir : fileURLToPath(new URL(outdir, ROOT));
  try {
    const written = await build(path.replace(/\/+$/, ""));
    console.log(
      `built ${written.size} bundles in ${outdir}/: deno run --config deno.json … ${outdir}/main.js`,
    );
  } catch (error) {
    console.error(`build: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}

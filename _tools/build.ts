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

/**
 * Bundles every entry into `outdir` (emptied first), one file each.
 * @param outdir Where the build goes (an absolute path).
 * @returns The entry files written, by entry.
 */
export async function build(outdir: string): Promise<Map<string, string>> {
  await Deno.remove(outdir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  const entries = bundleEntries();
  // Chunks are named by their content's hash: two bundles writing the same chunk write the same file.
  await Promise.all(entries.map((entry) => bundle(entry, outdir)));
  const written = new Map<string, string>();
  for (const entry of entries) {
    const file = `${outdir}/${entry.slice(entry.lastIndexOf("/") + 1).replace(/\.ts$/, ".js")}`;
    await Deno.stat(file);
    written.set(entry, file);
  }
  return written;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--outdir");
  const outdir = at === -1 ? "dist" : Deno.args[at + 1];
  if (outdir === undefined || Deno.args.length !== (at === -1 ? 0 : 2)) {
    console.error("usage: deno task build [--outdir DIR]");
    Deno.exit(2);
  }
  const path = outdir.startsWith("/") ? outdir : new URL(outdir, ROOT).pathname.replace(/\/$/, "");
  const written = await build(path);
  console.log(
    `built ${written.size} bundles in ${outdir}/: deno run --config deno.json … ${outdir}/main.js`,
  );
}

/**
 * The layer rule of lib/ (docs/architecture.md), checked from the imports: `deno task layers`,
 * part of `deno task ci`.
 *
 * - `lib/framing/` imports no other folder of lib/;
 * - `lib/server/` never imports `lib/client/` (nor protocols, routes, workers or metrics, which sit
 *   above it);
 * - `lib/client/` never imports `lib/server/`, protocols, routes or workers;
 * - `lib/routes/` imports neither server, client, protocols nor workers;
 * - `lib/protocols/` imports neither client, workers nor metrics;
 * - `lib/metrics/` imports the server's snapshot, never protocols, routes, client or workers;
 * - `lib/chat/` (the chat's rooms and bus) imports the server's types only, never protocols,
 *   routes, client, workers or metrics; only protocols and workers import it;
 * - the shared files at lib/'s root import no folder (lib/mod.ts, the entry point, re-exports
 *   them all);
 * - nothing in lib/ imports anything outside lib/ (commands/, the CLI-only engines, tests).
 *
 * A violation prints `file:line: imports 'specifier' (folder X may not import Y)` and exits 1.
 *
 * Usage: `deno run --allow-read _tools/check_layers.ts [ROOT]` (ROOT defaults to this repository).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The folders of lib/ and those each one may not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  "": ["framing", "server", "protocols", "routes", "client", "workers", "metrics", "chat"],
  framing: ["server", "protocols", "routes", "client", "workers", "metrics", "chat"],
  server: ["protocols", "routes", "client", "workers", "metrics", "chat"],
  client: ["server", "protocols", "routes", "workers", "metrics", "chat"],
  routes: ["server", "protocols", "client", "workers", "metrics", "chat"],
  protocols: ["client", "workers", "metrics"],
  workers: ["client"],
  metrics: ["protocols", "routes", "client", "workers", "chat"],
  chat: ["protocols", "routes", "client", "workers", "metrics"],
};

/** Static imports and re-exports, dynamic imports, and module URLs (workers). */
const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new\s+URL\(\s*)(["'])(\.{1,2}\/[^"']+)\1/g;

/** One import that breaks the rule. */
export interface Violation {
  /** The importing file, relative to the root. */
  file: string;
  /** The 1-based line of the import. */
  line: number;
  /** The import as written. */
  specifier: string;
  /** Why it is not allowed. */
  reason: string;
}

/**
 * Checks every `.ts` file under `ROOT/lib`.
 * @param root The repository root.
 * @returns The violations, in file order.
 */
export async function checkLayers(root: string): Promise<Violation[]> {
  const lib = `${root.replace(/\/$/, "")}/lib`;
  const violations: Violation[] = [];
  for (const file of await listTs(lib)) {
    const relative = file.slice(lib.length + 1);
    // The package's entry point re-exports every folder.
    if (relative === "mod.ts") continue;
    const folder = relative.includes("/") ? relative.slice(0, relative.indexOf("/")) : "";
    const text = await Deno.readTextFile(file);
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[2]!;
      const line = text.slice(0, match.index).split("\n").length;
      // Doc examples (comment lines) are not imports of the module.
      const lineText = text.split("\n")[line - 1] ?? "";
      if (/^\s*\*/.test(lineText)) continue;
      const target = new URL(specifier, `file://${file}`).pathname;
      const report = (reason: string) =>
        violations.push({ file: `lib/${relative}`, line, specifier, reason });
      if (!target.startsWith(`${lib}/`)) {
        report(`lib/ may not import anything outside lib/`);
        continue;
      }
      const targetRelative = target.slice(lib.length + 1);
      const targetFolder = targetRelative.includes("/")
        ? targetRelative.slice(0, targetRelative.indexOf("/"))
        : "";
      if (targetFolder === folder) continue;
      if ((FORBIDDEN[folder] ?? []).includes(targetFolder)) {
        report(`${name(folder)} may not import ${name(targetFolder)}`);
      }
    }
  }
  return violations;
}

function name(folder: string): string {
  return folder === "" ? "lib/'s root files" : `lib/${folder}/`;
}

async function listTs(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await listTs(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

if (import.meta.main) {
  const root = Deno.args[0] ?? fileURLToPath(new URL("../", import.meta.url));
  const violations = await checkLayers(root);
  for (const v of violations) {
    console.error(`${v.file}:${v.line}: imports '${v.specifier}' (${v.reason})`);
  }
  if (violations.length > 0) {
    console.error(`layers: ${violations.length} import(s) break the layer rule`);
    Deno.exit(1);
  }
  console.log("layers: lib/ keeps the layer rule");
}

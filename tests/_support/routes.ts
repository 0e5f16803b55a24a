/**
 * Routes in tests: a {@linkcode Routes} value from rules written inline, through the same parser as
 * a routes file (`{"routes": [...]}`), so that a rule a file could not hold cannot slip into a test.
 *
 * @module
 */
import { Routes } from "../../lib/routes/mod.ts";

/**
 * Parses `rules` as the `routes` array of a routes file named `routes.json`.
 * @param rules The route objects.
 * @returns The parsed routes; throws the file's error (with line and column) for an invalid rule.
 */
export function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }, null, 2), "routes.json");
}

/**
 * Writes `rules` as a routes file in a new temporary directory (for `serve --routes FILE`).
 * @param rules The route objects.
 * @returns The file's path; `await using` removes its directory.
 */
export async function routesFile(
  ...rules: unknown[]
): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "linesock-routes-" });
  const path = `${dir}/routes.json`;
  await Deno.writeTextFile(path, JSON.stringify({ routes: rules }, null, 2));
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * `deno task man`: writes docs/linesock.1 from the subcommands' definitions (`man -l
 * docs/linesock.1` reads it). `--check` fails when the file is not what it would write.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { allSpecs, EXIT_STATUSES } from "../main.ts";
import { manPage } from "../commands/_cli/man.ts";

const path = fileURLToPath(new URL("../docs/linesock.1", import.meta.url));
const page = manPage(await allSpecs(), denoJson.version, EXIT_STATUSES);
if (Deno.args.includes("--check")) {
  const current = await Deno.readTextFile(path).catch(() => "");
  if (current !== page) {
    console.error("docs/linesock.1 is out of date: run deno task man");
    Deno.exit(1);
  }
} else {
  await Deno.writeTextFile(path, page);
  console.log(`wrote ${path}`);
}

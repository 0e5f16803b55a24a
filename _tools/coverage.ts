/**
 * `deno task coverage [paths…]`: runs the tests with `deno test --coverage`, then `deno coverage`:
 * an lcov file (coverage/lcov.info) and an HTML report (coverage/raw/html/), and the line and branch figures per folder of the
 * product (lib/…, commands/…, main.ts) on stdout and in coverage/summary.md. docs/mutation.md keeps the
 * figures of a run beside the mutation scores.
 *
 * Without paths it runs what `deno task test` runs (lib/, commands/ and tests/, with the doc
 * examples); with paths (e.g. `tests/lib/ --doc lib/`), only those.
 *
 * @module
 */
const RAW = "coverage/raw";
const args = Deno.args.length > 0 ? Deno.args : ["--doc", "lib/", "commands/", "tests/"];

async function deno(argv: string[], stdout: "inherit" | "piped" = "inherit"): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: argv,
    stdin: "null",
    stdout,
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).output();
  if (!output.success) {
    console.error(`coverage: deno ${argv.join(" ")} failed (exit ${output.code})`);
    Deno.exit(output.code || 1);
  }
  return stdout === "piped" ? new TextDecoder().decode(output.stdout) : "";
}

await Deno.remove("coverage", { recursive: true }).catch(() => {});
// Failing tests still leave coverage data: report the figures, then exit with the failure.
const tests = await new Deno.Command(Deno.execPath(), {
  args: ["test", "--unstable-net", "--allow-all", "--parallel", `--coverage=${RAW}`, ...args],
  stdin: "null",
  env: { NO_COLOR: "1" },
}).spawn().status;
const exclude = "--exclude=(^|/)(tests|bench|_tools)/|\\.scratch/";
const lcov = await deno(["coverage", RAW, "--lcov", exclude], "piped");
await Deno.writeTextFile("coverage/lcov.info", lcov);
await deno(["coverage", RAW, "--html", exclude]);

/** Line and branch counts of a folder. */
interface Counts {
  lines: number;
  linesHit: number;
  branches: number;
  branchesHit: number;
}

const root = `${Deno.cwd()}/`;
const folders = new Map<string, Counts>();
let file = "";
for (const line of lcov.split("\n")) {
  const [key, value = ""] = line.split(":", 2) as [string, string?];
  if (key === "SF") {
    const path = decodeURIComponent(value.replace(/^file:\/\//, "")).replace(root, "");
    const parts = path.split("/");
    file = parts.length === 1 ? "main.ts" : parts.slice(0, -1).join("/") + "/";
    if (!folders.has(file)) {
      folders.set(file, { lines: 0, linesHit: 0, branches: 0, branchesHit: 0 });
    }
    continue;
  }
  const counts = folders.get(file);
  if (!counts) continue;
  const n = Number(value);
  if (key === "LF") counts.lines += n;
  else if (key === "LH") counts.linesHit += n;
  else if (key === "BRF") counts.branches += n;
  else if (key === "BRH") counts.branchesHit += n;
}

const percent = (hit: number, all: number) => all === 0 ? "—" : `${(100 * hit / all).toFixed(1)}%`;
const rows = [...folders].sort(([a], [b]) => a.localeCompare(b)).map(([folder, c]) =>
  `| ${folder.padEnd(22)} | ${
    percent(c.linesHit, c.lines).padStart(6)
  } (${c.linesHit}/${c.lines}) | ${
    percent(c.branchesHit, c.branches).padStart(6)
  } (${c.branchesHit}/${c.branches}) |`
);
const table = [
  `| folder                 | lines                | branches             |`,
  `| ---------------------- | -------------------- | -------------------- |`,
  ...rows,
].join("\n");
await Deno.writeTextFile("coverage/summary.md", `Tests: deno test ${args.join(" ")}\n\n${table}\n`);
console.log(table);
console.log("\ncoverage/lcov.info, coverage/raw/html/index.html, coverage/summary.md");
if (!tests.success) {
  console.error(`coverage: some tests failed (exit ${tests.code}); the figures include their runs`);
  Deno.exit(tests.code || 1);
}

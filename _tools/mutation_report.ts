/**
 * `deno run --allow-read _tools/mutation_report.ts AREA`: the figures of a Stryker JSON report
 * (`.stryker-tmp/reports/AREA.json`, written by `deno task mutation AREA`) as the Markdown that
 * docs/mutation.md keeps: the score per file, and one row per surviving mutant (file:line, the
 * mutator, the original and the replacement) for its verdict to be written in.
 *
 * @module
 */
interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number }; end: { line: number; column: number } };
}
interface Report {
  files: Record<string, { source: string; mutants: Mutant[] }>;
}

const area = Deno.args[0];
if (!area) {
  console.error("Usage: deno run --allow-read _tools/mutation_report.ts AREA");
  Deno.exit(2);
}
const report: Report = JSON.parse(await Deno.readTextFile(`.stryker-tmp/reports/${area}.json`));
const DETECTED = new Set(["Killed", "Timeout"]);
const COUNTED = new Set(["Killed", "Timeout", "Survived", "NoCoverage"]);
const oneLine = (text: string) =>
  text.replace(/\s+/g, " ").trim().slice(0, 60).replaceAll("|", "\\|");

console.log("| file | mutants | killed | timed out | survived | score |");
console.log("| ---- | ------: | -----: | --------: | -------: | ----: |");
let all = 0;
let detected = 0;
const survivors: string[] = [];
for (const [file, { source, mutants }] of Object.entries(report.files).sort()) {
  const counted = mutants.filter((m) => COUNTED.has(m.status));
  const killed = counted.filter((m) => m.status === "Killed").length;
  const timedOut = counted.filter((m) => m.status === "Timeout").length;
  const survived = counted.filter((m) => !DETECTED.has(m.status));
  all += counted.length;
  detected += killed + timedOut;
  const score = counted.length === 0
    ? "—"
    : `${(100 * (killed + timedOut) / counted.length).toFixed(1)}%`;
  console.log(
    `| ${file} | ${counted.length} | ${killed} | ${timedOut} | ${survived.length} | ${score} |`,
  );
  const lines = source.split("\n");
  for (const m of survived) {
    const { start, end } = m.location;
    const original = start.line === end.line
      ? lines[start.line - 1]!.slice(start.column - 1, end.column - 1)
      : lines[start.line - 1]!.slice(start.column - 1) + " …";
    survivors.push(
      `| ${file}:${start.line} | ${m.mutatorName} | \`${oneLine(original)}\` → \`${
        oneLine(m.replacement ?? "")
      }\` | |`,
    );
  }
}
console.log(
  `| **all** | ${all} | | | ${all - detected} | **${(100 * detected / all).toFixed(1)}%** |`,
);
console.log("\n| where | mutator | change | verdict |\n| ----- | ------- | ------ | ------- |");
for (const row of survivors) console.log(row);

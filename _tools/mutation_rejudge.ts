/**
 * `deno task mutation:rejudge`: judges the survivors of a Stryker run again, with new tests, without
 * a full run. Each mutant that survived (in `--report`, and was not killed in any `--after` report)
 * is planted from its location and replacement into a copy of the tree, and the given tests run on
 * it: a mutant they fail is killed. With `--base REV`, the report was made on the file as of that
 * commit: the mutant is planted there, then merged into the current file (`git merge-file`); one
 * that does not merge is listed as a conflict, to plant by hand.
 *
 * ```sh
 * deno task mutation:rejudge --report .stryker-tmp/reports/session.json \
 *   --file lib/server/session.ts --base ce70975 --out survivors.json \
 *   -- tests/lib/server/session_close_mutants_test.ts
 * ```
 *
 * `--only RESULTS.json` keeps the mutants a previous rejudge left surviving (to judge them again
 * with more tests); `--workers N` runs N copies of the tree at once (default 2). Used for the
 * figures of docs/mutation.md ("session.ts and line_server.ts").
 *
 * @module
 */

/** One mutant of a Stryker JSON report (mutation-testing-report-schema: lines and columns from 1). */
interface Mutant {
  id: string;
  mutatorName: string;
  replacement: string;
  status: string;
  location: { start: { line: number; column: number }; end: { line: number; column: number } };
}

/** What the rejudge says of one mutant. */
export interface Verdict {
  id: string;
  line: number;
  mutator: string;
  original: string;
  replacement: string;
  verdict: "Killed" | "Survived" | "Timeout" | "Conflict";
}

/** Plants `mutant` into `text` (the file the report was made on). */
export function plant(text: string, mutant: Mutant): { text: string; original: string } {
  const lines = text.split("\n");
  const offset = (line: number, column: number) =>
    lines.slice(0, line - 1).reduce((sum, each) => sum + each.length + 1, 0) + column - 1;
  const { start, end } = mutant.location;
  const from = offset(start.line, start.column);
  const to = offset(end.line, end.column);
  return {
    text: text.slice(0, from) + mutant.replacement + text.slice(to),
    original: text.slice(from, to),
  };
}

function usage(): never {
  console.error(
    "Usage: deno task mutation:rejudge --report R.json --file F [--after R.json]… [--base REV]\n" +
      "       [--only RESULTS.json] [--workers N] [--out RESULTS.json] -- TEST…",
  );
  Deno.exit(2);
}

async function run(command: string, args: string[], cwd = ".") {
  const { code, stdout } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout) };
}

/** `current` with the change from `base` to `mutated` merged in, or `undefined` on a conflict. */
async function merge(current: string, base: string, mutated: string): Promise<string | undefined> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/current`, current);
    await Deno.writeTextFile(`${dir}/base`, base);
    await Deno.writeTextFile(`${dir}/mutated`, mutated);
    const { code, stdout } = await run("git", [
      "merge-file",
      "-p",
      `${dir}/current`,
      `${dir}/base`,
      `${dir}/mutated`,
    ]);
    return code === 0 ? stdout : undefined;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Copies what the tests need into `root`. */
async function copyTree(root: string): Promise<void> {
  await Deno.remove(root, { recursive: true }).catch(() => {});
  await Deno.mkdir(root, { recursive: true });
  const parts = [
    "lib",
    "tests",
    "bench",
    "commands",
    "examples",
    "_tools",
    "main.ts",
    "deno.json",
    "deno.lock",
  ];
  const { code } = await run("cp", ["-r", ...parts, root]);
  if (code !== 0) throw new Error(`cannot copy the tree into ${root}`);
}

if (import.meta.main) {
  const split = Deno.args.indexOf("--");
  if (split === -1) usage();
  const tests = Deno.args.slice(split + 1);
  const options = new Map<string, string[]>();
  const flags = Deno.args.slice(0, split);
  for (let index = 0; index < flags.length; index += 2) {
    const [flag, value] = [flags[index]!, flags[index + 1]];
    if (!flag.startsWith("--") || value === undefined) usage();
    options.set(flag, [...(options.get(flag) ?? []), value]);
  }
  const [report] = options.get("--report") ?? [];
  const [file] = options.get("--file") ?? [];
  if (report === undefined || file === undefined || tests.length === 0) usage();
  const workers = Number(options.get("--workers")?.[0] ?? 2);
  const [base] = options.get("--base") ?? [];
  const [out] = options.get("--out") ?? [];

  const key = (m: Mutant) => JSON.stringify([m.mutatorName, m.location, m.replacement]);
  const mutantsOf = async (path: string): Promise<Mutant[]> =>
    JSON.parse(await Deno.readTextFile(path)).files[file]?.mutants ?? [];
  const killed = new Set<string>();
  for (const after of options.get("--after") ?? []) {
    for (const m of await mutantsOf(after)) {
      if (m.status === "Killed" || m.status === "Timeout") killed.add(key(m));
    }
  }
  let todo = (await mutantsOf(report)).filter((m) =>
    (m.status === "Survived" || m.status === "NoCoverage") && !killed.has(key(m))
  );
  for (const only of options.get("--only") ?? []) {
    const keep = new Set(
      (JSON.parse(await Deno.readTextFile(only)) as Verdict[])
        .filter((v) => v.verdict === "Survived").map((v) => v.id),
    );
    todo = todo.filter((m) => keep.has(m.id));
  }
  console.error(`${todo.length} mutants to judge`);

  const current = await Deno.readTextFile(file);
  const reported = base === undefined ? current : (await run("git", ["show", `${base}:${file}`]))
    .stdout;
  const verdicts: Verdict[] = [];
  const queue = [...todo];
  await Promise.all(Array.from({ length: workers }, async (_, worker) => {
    const root = `${await Deno.makeTempDir()}/tree${worker}`;
    await copyTree(root);
    try {
      for (let mutant = queue.shift(); mutant !== undefined; mutant = queue.shift()) {
        const planted = plant(reported, mutant);
        const text = base === undefined
          ? planted.text
          : await merge(current, reported, planted.text);
        let verdict: Verdict["verdict"] = "Conflict";
        if (text !== undefined) {
          await Deno.writeTextFile(`${root}/${file}`, text);
          const { code } = await run("timeout", [
            "120",
            Deno.execPath(),
            "test",
            "--no-check",
            "--allow-all",
            "--unstable-net",
            "--fail-fast",
            "--parallel",
            ...tests,
          ], root);
          await Deno.writeTextFile(`${root}/${file}`, current);
          verdict = code === 0 ? "Survived" : code === 124 ? "Timeout" : "Killed";
        }
        const line = mutant.location.start.line;
        verdicts.push({
          id: mutant.id,
          line,
          mutator: mutant.mutatorName,
          original: planted.original.slice(0, 80),
          replacement: mutant.replacement.slice(0, 80),
          verdict,
        });
        console.log(
          `${verdict.padEnd(9)} :${line} ${mutant.mutatorName} ${
            JSON.stringify(planted.original.slice(0, 50))
          } -> ${JSON.stringify(mutant.replacement.slice(0, 50))}`,
        );
      }
    } finally {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  }));
  verdicts.sort((a, b) => a.line - b.line);
  if (out !== undefined) await Deno.writeTextFile(out, JSON.stringify(verdicts, null, 1));
  const count = (v: Verdict["verdict"]) => verdicts.filter((each) => each.verdict === v).length;
  console.log(
    `killed ${count("Killed")}, timed out ${count("Timeout")}, survived ${
      count("Survived")
    }, conflicts ${count("Conflict")}`,
  );
}

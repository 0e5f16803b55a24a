/**
 * Command-line problems found in review, each run through the real CLI (with its task's
 * permissions): `serve --exec` without `--`, `--greeting-lines` in `send`/`repl` (and `bench`'s
 * hint), `HOST PORT` in `repl` and `echo-test`, `--workers` with a routes file's `"exec"` or without
 * `--unstable-net`, and `test`'s shared target options.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCli, startServer } from "../_support/cli.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

// ---------------------------------------------------------------------------------------------
// 1. serve --exec without --

Deno.test("serve -p 0 --exec cat: the program belongs after --", async () => {
  const result = await runCli("serve", ["-p", "0", "--exec", "cat"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /^linesock: --exec takes its program after --: linesock serve --exec -- cat\n/,
  );
  assert.doesNotMatch(result.stderr, /names the address/);
});

Deno.test("serve --exec python3 -u bot.py: said before -u is taken for --unix", async () => {
  const result = await runCli("serve", ["--exec", "python3", "-u", "bot.py"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /^linesock: --exec takes its program after --: linesock serve --exec -- python3 -u bot\.py\n/,
  );
  assert.doesNotMatch(result.stderr, /deprecated/);
});

Deno.test("serve PROGRAM --exec: the same, whatever the order", async () => {
  const result = await runCli("serve", ["cat", "--exec"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--exec takes its program after --: linesock serve --exec -- cat/);
});

Deno.test("serve ADDRESS --exec -- PROGRAM still listens where ADDRESS says", async () => {
  await using server = await startServer(["tcp://127.0.0.1:0", "--exec", "--", "cat"]);
  assert.match(server.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
});

// ---------------------------------------------------------------------------------------------
// 3. --greeting-lines

Deno.test("send --greeting-lines 1: the routes file's greeting is not taken for a reply", async () => {
  await using server = await startServer([
    "-p",
    "0",
    "--routes",
    "examples/protocols/hello.jsonc",
  ]);
  const result = await runCli("send", [
    server.url,
    "--greeting-lines",
    "1",
    "--replies",
    "1",
    "HELLO",
    "CLOSE",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 3, result.stdout);
  assert.match(lines[0]!, /^MSG Welcome/);
  assert.match(lines[1]!, /^MSG Hello from /);
  assert.equal(lines[2], "MSG Bye");
});

Deno.test("send --protocol json --greeting-lines 1: a greeting that is no response", async () => {
  await using server = await startServer([
    "-p",
    "0",
    "--protocol",
    "json",
    "--greeting",
    '{"hi":1}',
  ]);
  const result = await runCli("send", [
    server.url,
    "--protocol",
    "json",
    "--greeting-lines",
    "1",
    "ping",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '{"hi":1}\npong\n');
  const json = await runCli("send", [
    server.url,
    "--greeting-lines",
    "1",
    "--replies",
    "1",
    "--json",
    '{"command":"ping"}',
  ]);
  assert.equal(json.code, 0, json.stderr);
  const [greeting, reply] = json.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(greeting, { line: '{"hi":1}', bytes: 8 });
  assert.ok(reply.rttMs !== undefined, json.stdout);
});

Deno.test("send --greeting-lines 2: a greeting that does not come is a timeout", async () => {
  await using server = await startServer(["-p", "0", "--greeting", "hi"]);
  const result = await runCli("send", [
    server.url,
    "--greeting-lines",
    "2",
    "--timeout",
    "300ms",
    "--replies",
    "1",
    "PING",
  ]);
  assert.equal(result.code, 4, result.stderr);
  assert.equal(result.stdout, "hi\n");
  assert.match(result.stderr, /greeting line 2 of 2 \(--greeting-lines\)/);
});

Deno.test("repl --greeting-lines 1 without a terminal: printed, then the replies", async () => {
  await using server = await startServer([
    "-p",
    "0",
    "--protocol",
    "json",
    "--greeting",
    '{"hi":1}',
  ]);
  const result = await runCli("repl", [server.url, "--json", "--greeting-lines", "1"], {
    stdin: "ping\n",
  });
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines[0], '{"hi":1}');
  assert.equal(JSON.parse(lines[1]!).message, "pong");
});

Deno.test("bench suggests --greeting-lines when lines answer no request", async () => {
  await using server = await startServer(["-p", "0", "--greeting", "hi"]);
  const args = ["bench", server.url, "-m", "PING", "--expect", "PONG", "-n", "10", "-c", "1"];
  const failing = await runCli("linesock", args);
  assert.equal(failing.code, 1, failing.stdout + failing.stderr);
  assert.match(failing.stdout, /give --greeting-lines N/);
  const passing = await runCli("linesock", [...args, "--greeting-lines", "1"]);
  assert.equal(passing.code, 0, passing.stdout + passing.stderr);
  assert.doesNotMatch(passing.stdout, /--greeting-lines/);
});

// ---------------------------------------------------------------------------------------------
// 4. HOST PORT in repl and echo-test

Deno.test("repl 127.0.0.1 PORT: nc's order works", async () => {
  await using server = await startServer(["-p", "0"]);
  const result = await runCli("repl", ["127.0.0.1", String(server.port)], { stdin: "PING\n" });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "PONG\n");
});

Deno.test("echo-test 127.0.0.1 PORT: nc's order works", async () => {
  await using server = await startServer(["-p", "0", "--protocol", "echo"]);
  const result = await runCli("echo-test", [
    "127.0.0.1",
    String(server.port),
    "--case",
    "short-line",
  ]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /short-line/);
});

Deno.test("repl HOST PORT EXTRA: the third word is still refused", async () => {
  const result = await runCli("repl", ["127.0.0.1", "7", "extra"], { stdin: "" });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unexpected argument "extra"/);
});

// ---------------------------------------------------------------------------------------------
// 5 and 7. --workers

Deno.test('serve --workers with a routes file\'s "exec" is refused like --exec', async () => {
  const dir = await Deno.makeTempDir();
  try {
    const routes = `${dir}/exec.jsonc`;
    await Deno.writeTextFile(routes, '{ "exec": { "argv": ["cat"] } }');
    const result = await runCli("serve", ["-p", "0", "--workers", "2", "--routes", routes]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--workers does not apply with .*"exec"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --workers without --unstable-net: a clear usage error", async () => {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", "-p", "0", "--workers", "2"],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 2, stderr);
  assert.match(stderr, /^linesock: --workers needs Deno's --unstable-net flag/);
  assert.match(stderr, /deno task serve/);
});

// ---------------------------------------------------------------------------------------------
// 6. test's target options

Deno.test("test takes the client options: --connect-timeout, -u, HOST PORT, --target", async () => {
  await using server = await startServer(["-p", "0"]);
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/ping.conv`;
    await Deno.writeTextFile(file, "> PING\n< PONG\n");
    const hostPort = await runCli("linesock", [
      "test",
      "127.0.0.1",
      String(server.port),
      "--connect-timeout",
      "2s",
      file,
    ]);
    assert.equal(hostPort.code, 0, hostPort.stdout + hostPort.stderr);
    const target = await runCli("linesock", ["test", "--target", server.url, file]);
    assert.equal(target.code, 0, target.stdout + target.stderr);
    assert.match(target.stderr, /--target is deprecated and goes away in 1\.0: use --host/);
    const unix = await runCli("linesock", ["test", "-u", `${dir}/none.sock`, file]);
    assert.match(unix.stderr, /-u is deprecated/);
    assert.equal(unix.code, 1, unix.stdout + unix.stderr);
    const help = await runCli("linesock", ["test", "--help"]);
    assert.match(help.stdout, /\(or HOST PORT\)/);
    assert.match(help.stdout, /--connect-timeout DURATION/);
    assert.doesNotMatch(help.stdout, /--target/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// 2. No deprecated spelling in the documentation's examples or in --help

/** Shell words of a command line (quotes group; no expansion). */
function shellWords(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((match) =>
    match[1] ?? match[2] ?? match[3]!
  );
}

/** `linesock COMMAND ARGS` in a code line, up to a comment, a pipe or a redirection. */
function commandLines(text: string): string[] {
  const found: string[] = [];
  let inCode = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) {
      inCode = !inCode;
      continue;
    }
    if (!inCode) continue;
    const at = line.indexOf("linesock ");
    if (at === -1) continue;
    found.push(line.slice(at).split(/\s+#\s|\s\|\s|\s>\s|\s&&\s|\s&$/)[0]!.replace(/^\$\s*/, ""));
  }
  return found;
}

Deno.test("the docs' and --help's examples use no deprecated spelling", async () => {
  const { SUBCOMMANDS } = await import("../../main.ts");
  const { parse } = await import("../../commands/_cli/spec.ts");
  const sources: [string, string[]][] = [];
  for (const path of ["README.md", ...[...Deno.readDirSync(`${ROOT}docs`)].map((e) => e.name)]) {
    if (!path.endsWith(".md")) continue;
    const file = path === "README.md" ? `${ROOT}README.md` : `${ROOT}docs/${path}`;
    sources.push([path, commandLines(await Deno.readTextFile(file))]);
  }
  const specs = await Promise.all(
    Object.entries(SUBCOMMANDS).map(async ([name, load]) => [name, (await load()).spec] as const),
  );
  for (const [, spec] of specs) {
    sources.push([`${spec.name} --help`, spec.examples.map(([command]) => command)]);
  }
  const deprecated: string[] = [];
  for (const [where, lines] of sources) {
    for (const line of lines) {
      const [, name, ...args] = shellWords(line);
      const spec = specs.find(([command]) => command === name)?.[1];
      if (spec === undefined) continue;
      let warnings: readonly string[] = [];
      try {
        warnings = parse(spec, args).warnings;
      } catch {
        continue; // A placeholder or a shell construct: not a spelling question.
      }
      for (const warning of warnings) deprecated.push(`${where}: ${line}: ${warning}`);
    }
  }
  assert.deepEqual(deprecated, []);
});

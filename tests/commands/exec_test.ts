/**
 * `linesock serve --exec -- PROGRAM ARGS…` through the real CLI: the program's conversation, the
 * log (stderr, exit status), the limits (`--exec-timeout`, `--max-exec`, the flood), the clean
 * kill when the client goes (nothing left in /proc), the environment, and the usage errors. The
 * programs are tests/_servers/exec_program.py.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCli, startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { alive } from "../_support/process.ts";

const PROGRAM = fileURLToPath(new URL("../_servers/exec_program.py", import.meta.url));
/** The real python3 (not a shim that needs more of the environment than a program gets). */
const PYTHON = findPython();
const PYTHON_MISSING = PYTHON === undefined ? "python3 is not installed" : undefined;
const WAIT_MS = 15_000;

function findPython(): string | undefined {
  try {
    const { success, stdout } = new Deno.Command("python3", {
      args: ["-c", "import sys; print(sys.executable)"],
      stdin: "null",
      stderr: "null",
    }).outputSync();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** `serve` arguments that run exec_program.py in `mode` for each connection. */
function execArgs(mode: string[], options: string[] = []): string[] {
  return ["--port", "0", ...options, "--exec", "--", PYTHON!, PROGRAM, ...mode];
}

/** Polls (bounded) until `condition` holds. */
async function until(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    // The pause between two polls of the condition, not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether the process is gone entirely: exited and reaped by its parent (no zombie in /proc). */
function reaped(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch {
    return true;
  }
}

/** A number from /proc: `wchar` of /proc/PID/io, `VmRSS` (KiB) of /proc/PID/status. */
function procNumber(pid: number, file: "io" | "status", field: string): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/${file}`);
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)![1]);
}

/** The pid a program announced on a line (`pid 1234`). */
async function readPid(session: LineSession, word = "pid"): Promise<number> {
  const line = await session.readLine(WAIT_MS);
  const match = new RegExp(`^${word} (\\d+)$`).exec(line ?? "");
  assert.ok(match, `expected "${word} N", got ${JSON.stringify(line)}`);
  return Number(match[1]);
}

const ignore = PYTHON_MISSING !== undefined;
const suffix = PYTHON_MISSING ? ` (ignored: ${PYTHON_MISSING})` : "";

Deno.test({
  name:
    `serve --exec: a conversation, half-closes both ways, stderr and exit status logged${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["echo", "4"]));
    await using client = await LineSession.open(server.port);
    assert.equal(await client.readLine(), "ready");
    await client.write("hello; $(id)\n");
    assert.equal(await client.readLine(), "echo: hello; $(id)");
    // Client → program: the half-close ends the program's input, its last words still come.
    await client.closeWrite();
    assert.deepEqual(await client.readAll(), ["bye after 1 lines"]);
    await server.waitForStderr(/Connection 1 from [^:]+:\d+: started .*python.* \(pid \d+\)/);
    await server.waitForStderr(/Connection 1 from .*\(pid \d+\) exited with status 4/);

    // Program → client: the program exits on its own; what it wrote arrives, then the close,
    // while the client still has its side open. Its stderr goes to the log, with the connection.
    await using early = await startServer(execArgs(["early", "3"]));
    await using second = await LineSession.open(early.port);
    assert.equal(await second.readLine(), "early");
    assert.equal(await second.readLine(), null);
    await early.waitForStderr(/Connection 1 from [^:]+:\d+: program stderr: oops/);
    await early.waitForStderr(/\(pid \d+\) exited with status 3/);
    await early.waitForStderr(
      /Connection 1 from .* closed after .*\(program exited with status 3\)/,
    );
  },
});

Deno.test({
  name: `serve --exec: --exec-timeout kills the program and its group; the client is told${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["hang"], ["--exec-timeout", "300ms"]));
    await using client = await LineSession.open(server.port);
    const pid = await readPid(client);
    const child = await readPid(client, "child");
    assert.equal(await client.readLine(), "ERR program timed out after 300 ms");
    assert.equal(await client.readLine(), null);
    await server.waitForStderr(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL`));
    await until(() => reaped(pid), `the program ${pid} to be reaped`);
    await until(() => !alive(child), `the background process ${child} to be killed`);
  },
});

Deno.test({
  name: `serve --exec: a flood to a client that does not read is held back, bounded${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["flood"]));
    const serverPid = server.process.pid;
    const before = procNumber(serverPid, "status", "VmRSS");
    const client = await LineSession.open(server.port);
    const pid = await readPid(client);
    // The client reads nothing more: wait until the program is held (its bytes written stop).
    let last = -1;
    let still = 0;
    await until(() => {
      const written = procNumber(pid, "io", "wchar");
      still = written === last ? still + 1 : 0;
      last = written;
      return still >= 5;
    }, "the flooding program to be held back");
    assert.ok(last < 64 * 1024 * 1024, `the program wrote ${last} bytes before it was held`);
    const grown = procNumber(serverPid, "status", "VmRSS") - before;
    assert.ok(grown < 64 * 1024, `the server grew by ${grown} KiB`);
    for (let expected = 1; expected <= 10_000; expected++) {
      assert.equal(await client.readLine(), String(expected));
    }
    // The client goes: the program is killed and reaped, nothing is left.
    client.close();
    await server.waitForStderr(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL`));
    await until(() => reaped(pid), `the program ${pid} to be reaped`);
  },
});

Deno.test({
  name: `serve --exec: a client that resets: its program and group are killed, no zombie${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["hang"]));
    // Deno cannot reset a connection (SO_LINGER 0): python does.
    const { stdout } = await new Deno.Command(PYTHON!, {
      args: [
        "-c",
        `import socket, struct
s = socket.create_connection(("127.0.0.1", ${server.port}))
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
print(f.readline().decode().strip(), flush=True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()`,
      ],
      stdout: "piped",
    }).output();
    const [, pid, child] = /^pid (\d+)\nchild (\d+)\n$/.exec(new TextDecoder().decode(stdout))!
      .map(Number);
    await server.waitForStderr(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL`));
    await until(() => reaped(pid!), `the program ${pid} to be reaped`);
    await until(() => !alive(child!), `the background process ${child} to be killed`);
  },
});

Deno.test({
  name: `serve --exec: --max-exec reached: the next client gets ERR and is closed${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["echo"], ["--max-exec", "1"]));
    await using first = await LineSession.open(server.port);
    assert.equal(await first.readLine(), "ready");
    await using second = await LineSession.open(server.port);
    assert.deepEqual(await second.readAll(), [
      "ERR too many programs running (limit 1), try again later",
    ]);
    await server.waitForStderr(/Refused connection 2 from .*: too many programs running/);
    assert.deepEqual(await first.exchange(["x"]), ["echo: x", "bye after 1 lines"]);
    await using third = await LineSession.open(server.port);
    assert.deepEqual(await third.exchange([]), ["ready", "bye after 0 lines"]);
  },
});

Deno.test({
  name: `serve --exec: the program gets the allow-list and --exec-env only${suffix}`,
  ignore,
  async fn() {
    await using server = await startServer(execArgs(["env"], ["--exec-env", "LINESOCK_PASSED"]), {
      env: { LINESOCK_PASSED: "yes", LINESOCK_SECRET: "s3cret" },
      allowEnv: ["LINESOCK_PASSED", "LINESOCK_SECRET"],
    });
    await using client = await LineSession.open(server.port);
    const env = await client.readAll();
    assert.ok(env.includes("LINESOCK_PASSED=yes"), env.join("\n"));
    assert.ok(env.some((line) => line.startsWith("PATH=")));
    assert.ok(!env.some((line) => line.startsWith("LINESOCK_SECRET=")), env.join("\n"));
  },
});

Deno.test("serve --exec: a missing program is exit 2 at start-up", async () => {
  const missing = await runCli("serve", ["--port", "0", "--exec", "--", "no-such-program-here"]);
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr.trim(),
    'linesock: cannot start program "no-such-program-here": not found in PATH',
  );
  const notExecutable = await runCli("serve", ["--port", "0", "--exec", "--", PROGRAM + ".nope"]);
  assert.equal(notExecutable.code, 2);
  assert.match(notExecutable.stderr, /not found, or not an executable file/);
});

Deno.test("serve --exec: usage errors", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--exec"], /--exec needs a program after --/],
    [["--exec", "--"], /--exec needs a program after --/],
    [["--", "cat"], /unexpected argument "cat" after --: that is where --exec takes its program/],
    [["--exec-timeout", "1s"], /--exec-timeout needs --exec/],
    [["--exec", "--routes", "r.json", "--", "cat"], /--routes does not apply with --exec/],
    [["--exec", "--protocol", "json", "--", "cat"], /--protocol does not apply with --exec/],
    [["--exec", "--workers", "2", "--", "cat"], /--workers does not apply with --exec/],
    [["--max-exec", "2"], /--max-exec needs --routes or --exec/],
  ];
  for (const [args, expected] of cases) {
    await t.step(args.join(" "), async () => {
      const result = await runCli("serve", ["--port", "0", ...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, expected);
    });
  }
  await t.step("--help shows where the program goes", async () => {
    const help = await runCli("serve", ["--help"]);
    assert.match(
      help.stdout,
      /^Usage: linesock serve \[options\] \[ADDRESS\] \[-- PROGRAM\.\.\.\]$/m,
    );
    assert.match(help.stdout, /--exec-timeout DURATION/);
  });
});

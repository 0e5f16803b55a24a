/**
 * `execProtocol`: a program per connection, over real sockets and real processes (the programs are
 * tests/_servers/exec_program.py). The server runs in this process; its log is captured, so that a
 * test waits for the program's exit to be logged (the moment it was reaped) instead of guessing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Logs, withLogs } from "../../_support/logs.ts";
import { type ExecOptions, execProtocol } from "../../../lib/protocols/exec.ts";
import { ProgramStartError } from "../../../lib/routes/program_runner.ts";
import { serve } from "../../../lib/server/serve.ts";
import { LineSession } from "../../_support/line_session.ts";
import { alive } from "../../_support/process.ts";

const PROGRAM = fileURLToPath(new URL("../../_servers/exec_program.py", import.meta.url));
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

/** The options of a program of exec_program.py in `mode`. */
function program(mode: string[], options: Omit<ExecOptions, "argv"> = {}): ExecOptions {
  return { argv: [PYTHON!, PROGRAM, ...mode], ...options };
}

/** The pid a program announced on its first line (`pid 1234`). */
async function readPid(session: LineSession, word = "pid"): Promise<number> {
  const line = await session.readLine(WAIT_MS);
  const match = new RegExp(`^${word} (\\d+)$`).exec(line ?? "");
  assert.ok(match, `expected "${word} N", got ${JSON.stringify(line)}`);
  return Number(match[1]);
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

/** Whether the process is gone entirely: exited and reaped (no zombie left in /proc). */
function reaped(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch {
    return true;
  }
}

/** What a process is blocked in, and the bytes it has written so far (from /proc). */
function blockedIn(pid: number): { wchan: string; written: number } {
  const wchan = Deno.readTextFileSync(`/proc/${pid}/wchan`);
  const io = Deno.readTextFileSync(`/proc/${pid}/io`);
  return { wchan, written: Number(/^wchar: (\d+)$/m.exec(io)![1]) };
}

/**
 * Waits until `progress()` stops moving for five polls in a row (bounded): the producer is held
 * back. A producer that is never held back keeps moving, and the wait fails.
 */
async function stalled(progress: () => number, what: string): Promise<number> {
  let last = -1;
  let still = 0;
  await until(() => {
    const now = progress();
    still = now === last ? still + 1 : 0;
    last = now;
    return still >= 5;
  }, what);
  return last;
}

Deno.test({
  name: `execProtocol${PYTHON_MISSING ? ` (ignored: ${PYTHON_MISSING})` : ""}`,
  ignore: PYTHON_MISSING !== undefined,
  async fn(t) {
    await withLogs(["linesock"], "debug", (logs) => steps(t, logs));
  },
});

async function steps(t: Deno.TestContext, logs: Logs): Promise<void> {
  await t.step("lines go to the program's stdin, its stdout lines come back", async () => {
    await using server = await serve({ port: 0 }, execProtocol(program(["echo"])));
    await using client = await LineSession.open(server.addr);
    assert.equal(await client.readLine(), "ready");
    await client.write("first\n");
    assert.equal(await client.readLine(), "echo: first");
    // A `\r` before the `\n` is dropped; bytes that are not UTF-8 pass as they are.
    await client.write(new Uint8Array([0x73, 0x65, 0x63, 0xff, 0x0d, 0x0a]));
    assert.deepEqual([...(await client.readLineBytes())!], [
      ...new TextEncoder().encode("echo: sec"),
      0xff,
    ]);
    // The client half-closes: the program reads the end of its input, and what it writes then
    // still arrives, before the server's close.
    await client.closeWrite();
    assert.deepEqual(await client.readAll(), ["bye after 2 lines"]);
    await logs.waitFor(/: .*python.* \(pid \d+\) exited with status 0$/);
  });

  await t.step("the program's bytes pass unchanged; a last line without \\n gets one", async () => {
    await using server = await serve({ port: 0 }, execProtocol(program(["bytes"])));
    await using client = await LineSession.open(server.addr);
    const expected = [0x63, 0x61, 0x66, 0xc3, 0xa9, 0x20, 0xff, 0xfe, 0x0d, 0x0a];
    assert.deepEqual([...await client.readAllBytes()], expected);

    await using unterminated = await serve({ port: 0 }, execProtocol(program(["unterminated"])));
    await using second = await LineSession.open(unterminated.addr);
    assert.equal(new TextDecoder().decode(await second.readAllBytes()), "partial\n");
  });

  await t.step("arguments reach the program as they are, with no shell", async () => {
    const tricky = ["$(id)", "; rm -rf /", "*", "a b", "`uname`", "'\"", ""];
    await using server = await serve({ port: 0 }, execProtocol(program(["argv", ...tricky])));
    await using client = await LineSession.open(server.addr);
    assert.deepEqual(await client.readAll(), tricky);
  });

  await t.step("the program's exit: its output is sent, then the connection closes", async () => {
    await using server = await serve({ port: 0 }, execProtocol(program(["early", "3"])));
    await using client = await LineSession.open(server.addr);
    // The client never half-closes: the close comes from the program's end.
    assert.equal(await client.readLine(), "early");
    assert.equal(await client.readLine(), null);
    await logs.waitFor(/\(pid \d+\) exited with status 3$/);
    await logs.waitFor(/program stderr: oops$/);
  });

  await t.step(
    "a program past its timeout is killed with its group; the client is told",
    async () => {
      await using server = await serve(
        { port: 0 },
        execProtocol(program(["hang"], { timeoutMs: 300 })),
      );
      await using client = await LineSession.open(server.addr);
      const pid = await readPid(client);
      const child = await readPid(client, "child");
      assert.equal(await client.readLine(), "ERR program timed out after 300 ms");
      assert.equal(await client.readLine(), null);
      await logs.waitFor(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL$`));
      assert.ok(reaped(pid), `the program ${pid} is still in /proc (a zombie?)`);
      await until(() => !alive(child), `the background process ${child} to be killed`);
    },
  );

  await t.step("an over-long output line kills the program: ERR, then the close", async () => {
    await using server = await serve(
      { port: 0 },
      execProtocol(program(["long", "5000"], { maxLineBytes: 1000 })),
    );
    await using client = await LineSession.open(server.addr);
    assert.deepEqual(await client.readAll(), [
      "short",
      "ERR program output line too long (limit 1000 bytes)",
    ]);
    await logs.waitFor(/program output line too long .*: killing/);
  });

  await t.step("the client's over-long line gets ERR and does not reach the program", async () => {
    await using server = await serve(
      { port: 0, maxLineBytes: 10 },
      execProtocol(program(["echo"])),
    );
    await using client = await LineSession.open(server.addr);
    assert.equal(await client.readLine(), "ready");
    await client.write(`short\n${"x".repeat(50)}\nafter\n`);
    await client.closeWrite();
    // The server's ERR and the program's echoes travel separately: their order may vary.
    assert.deepEqual((await client.readAll()).sort(), [
      "ERR line too long (limit 10 bytes)",
      "bye after 2 lines",
      "echo: after",
      "echo: short",
    ]);
  });

  await t.step(
    "a client that does not read holds the program back (pipe backpressure)",
    async () => {
      await using server = await serve({ port: 0 }, execProtocol(program(["flood"])));
      const client = await LineSession.open(server.addr);
      const pid = await readPid(client);
      // The client reads nothing more: the socket's buffers, the server's bounded queue and the pipe
      // fill, and the program blocks in its write.
      const written = await stalled(() => blockedIn(pid).written, "the flooding program to block");
      const { wchan } = blockedIn(pid);
      assert.ok(/pipe_write|^0?$/.test(wchan), `blocked in ${wchan}, not in a pipe write`);
      assert.ok(written < 64 * 1024 * 1024, `the program wrote ${written} bytes before it blocked`);
      // Nothing was lost meanwhile: the lines arrive whole and in order.
      for (let expected = 1; expected <= 50_000; expected++) {
        assert.equal(await client.readLine(), String(expected));
      }
      // The client goes away while the program floods: its writes fail, and it is killed.
      client.close();
      await logs.waitFor(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL$`));
      assert.ok(reaped(pid));
    },
  );

  await t.step("a program that does not read holds the client back", async () => {
    await using server = await serve({ port: 0, graceMs: 100 }, execProtocol(program(["sink"])));
    await using client = await LineSession.open(server.addr);
    const pid = await readPid(client);
    let sent = 0;
    const line = new TextEncoder().encode("x".repeat(1023) + "\n");
    const chunk = new Uint8Array(64 * 1024);
    for (let offset = 0; offset < chunk.length; offset += line.length) chunk.set(line, offset);
    const writing = (async () => {
      try {
        for (;;) {
          sent += await client.conn.write(chunk);
        }
      } catch {
        // The connection was closed: the end of this test.
      }
    })();
    const held = await stalled(() => sent, "the client's writes to block");
    assert.ok(held < 64 * 1024 * 1024, `the server took ${held} bytes the program did not read`);
    // The client's close waits behind the data it sent (TCP): the server cannot see it, and the
    // program, which reads nothing, runs until its timeout or, here, the server's shutdown.
    client.close();
    await writing;
    await server.shutdown();
    await logs.waitFor(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL$`));
  });

  await t.step(
    "a client that resets: the program and its group are killed and reaped",
    async () => {
      await using server = await serve({ port: 0 }, execProtocol(program(["hang"])));
      const port = (server.addr as Deno.NetAddr).port;
      // Deno cannot reset a connection (SO_LINGER 0): python does.
      const reset = new Deno.Command(PYTHON!, {
        args: [
          "-c",
          `import socket, struct
s = socket.create_connection(("127.0.0.1", ${port}))
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
print(f.readline().decode().strip(), flush=True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()`,
        ],
        stdout: "piped",
      });
      const output = new TextDecoder().decode((await reset.output()).stdout);
      const [, pid, child] = /^pid (\d+)\nchild (\d+)\n$/.exec(output)!.map(Number);
      await logs.waitFor(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL$`));
      assert.ok(reaped(pid!), `the program ${pid} is still in /proc (a zombie?)`);
      await until(() => !alive(child!), `the background process ${child} to be killed`);
    },
  );

  await t.step("at shutdown, running programs are killed", async () => {
    const server = await serve({ port: 0, graceMs: 200 }, execProtocol(program(["hang"])));
    await using client = await LineSession.open(server.addr);
    const pid = await readPid(client);
    await server.shutdown();
    await logs.waitFor(new RegExp(`\\(pid ${pid}\\) was killed by SIGKILL$`));
    assert.ok(reaped(pid));
  });

  await t.step("maxExec reached: the next client gets ERR and is closed", async () => {
    await using server = await serve({ port: 0 }, execProtocol(program(["echo"], { maxExec: 1 })));
    await using first = await LineSession.open(server.addr);
    assert.equal(await first.readLine(), "ready");
    await using second = await LineSession.open(server.addr);
    assert.deepEqual(await second.readAll(), [
      "ERR too many programs running (limit 1), try again later",
    ]);
    // The first program ends (its exit is known before its connection closes): the slot is free.
    assert.deepEqual(await first.exchange([]), ["bye after 0 lines"]);
    await using third = await LineSession.open(server.addr);
    assert.equal(await third.readLine(), "ready");
    assert.deepEqual(await third.exchange(["again"]), ["echo: again", "bye after 1 lines"]);
  });

  await t.step("stderr goes to the log, bounded, with the connection's id", async () => {
    await using server = await serve({ port: 0 }, execProtocol(program(["stderr", "20000"])));
    await using client = await LineSession.open(server.addr);
    assert.equal(await client.readLine(), "done");
    await logs.waitFor(/^Connection \d+ from 127\.0\.0\.1:\d+: program stderr: problem 1$/);
    // Control characters reach the log escaped: a program cannot drive the log's terminal.
    await logs.waitFor(/program stderr: escape \\x1b\[31mred$/);
    await logs.waitFor(/program stderr beyond 65536 bytes is not logged$/);
    assert.deepEqual(await client.exchange([]), []);
    const logged = logs.lines.filter((line) => /program stderr: problem \d+$/.test(line));
    assert.ok(logged.length < 20_000 && logged.length > 1000, `${logged.length} lines logged`);
  });

  await t.step("the environment is reduced to the allow-list", async () => {
    Deno.env.set("LINESOCK_EXEC_TEST_SECRET", "s3cret");
    try {
      await using server = await serve(
        { port: 0 },
        execProtocol(program(["env"], { env: { GREETING: "hi" } })),
      );
      await using client = await LineSession.open(server.addr);
      const env = await client.readAll();
      assert.ok(env.includes("GREETING=hi"));
      assert.ok(env.some((line) => line.startsWith("PATH=")));
      assert.ok(!env.some((line) => line.startsWith("LINESOCK_EXEC_TEST_SECRET=")), env.join("\n"));
    } finally {
      Deno.env.delete("LINESOCK_EXEC_TEST_SECRET");
    }
  });

  await t.step("a program gone after the start: the client gets ERR and is closed", async () => {
    const directory = await Deno.makeTempDir();
    try {
      const script = `${directory}/vanishing`;
      await Deno.writeTextFile(script, "#!/bin/sh\necho hi\n");
      await Deno.chmod(script, 0o755);
      await using server = await serve({ port: 0 }, execProtocol({ argv: [script] }));
      await Deno.remove(script);
      await using client = await LineSession.open(server.addr);
      assert.deepEqual(await client.readAll(), [
        `ERR cannot start program ${JSON.stringify(script)}: not found`,
      ]);
    } finally {
      await Deno.remove(directory, { recursive: true });
    }
  });

  await t.step("a program that cannot be started is refused at once", () => {
    assert.throws(
      () => execProtocol({ argv: ["no-such-program-anywhere"] }),
      (error) =>
        error instanceof ProgramStartError &&
        error.message === 'cannot start program "no-such-program-anywhere": not found in PATH',
    );
    assert.throws(
      () => execProtocol({ argv: [PROGRAM.replace(".py", ".nope")] }),
      /not found, or not an executable file/,
    );
    assert.throws(
      () => execProtocol({ argv: ["python3"], env: { PATH: "/nonexistent" } }),
      /not found in PATH/,
    );
    assert.throws(() => execProtocol({ argv: ["sh"], cwd: "/no/such/dir" }), /working directory/);
    assert.throws(() => execProtocol({ argv: [] }), TypeError);
    assert.throws(() => execProtocol({ argv: ["sh"], timeoutMs: 0 }), RangeError);
    assert.throws(() => execProtocol({ argv: ["sh"], maxExec: 0 }), RangeError);
  });
}

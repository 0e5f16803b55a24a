import assert from "node:assert/strict";
import { alive, allGone, STRYKER_MUTANT_ENV, withEnv } from "../../_support/process.ts";
import { exists } from "../../_support/fs.ts";
import {
  DEFAULT_PROGRAM_ENV,
  ExecLimiter,
  ExecQueueFullError,
  ProgramError,
  ProgramFailedError,
  ProgramOutputEncodingError,
  ProgramOutputLimitError,
  ProgramStartError,
  ProgramTimeoutError,
  runProgram,
  unreadableEnv,
} from "../../../lib/routes/program_runner.ts";

/** A bound for waits on external events, so that a broken kill fails the test instead of hanging. */
const EVENT_TIMEOUT_MS = 20_000;

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), EVENT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects the lines delivered before the iteration failed, and the failure. */
async function collect(lines: AsyncIterable<string>): Promise<{ lines: string[]; error: unknown }> {
  const seen: string[] = [];
  try {
    for await (const line of lines) seen.push(line);
  } catch (error) {
    return { lines: seen, error };
  }
  return { lines: seen, error: undefined };
}

/** Environment variable names in `env` output lines. */
function names(lines: string[]): string[] {
  return lines.map((line) => line.slice(0, line.indexOf("="))).sort();
}

/** A `deno eval` program: Deno's own binary with a script, no shell involved. */
function denoEval(script: string): string[] {
  return [Deno.execPath(), "eval", script];
}

Deno.test("runProgram", async (t) => {
  await t.step(
    "streams stdout lines, strips CR, and keeps a final line without newline",
    async () => {
      const lines = await Array.fromAsync(
        runProgram({ argv: ["printf", "one\\r\\ntwo\\n\\nlast"] }),
      );
      assert.deepEqual(lines, ["one", "two", "", "last"]);
    },
  );

  await t.step("writes the input and a newline to stdin only", async () => {
    assert.deepEqual(
      await Array.fromAsync(runProgram({ argv: ["wc", "-c"], stdin: "héllo" })),
      ["7"],
    );
    assert.deepEqual(await Array.fromAsync(runProgram({ argv: ["cat"] })), []);
  });

  await t.step("shell metacharacters in the input are plain bytes to the program", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_inject_" });
    try {
      const marker = `${dir}/pwned`;
      const hostile = [
        `; touch ${marker}`,
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        `' " && touch ${marker} || touch ${marker} | touch ${marker} > ${marker}`,
        `\\ $HOME * ? ~ # !`,
      ].join(" ");
      assert.deepEqual(await Array.fromAsync(runProgram({ argv: ["cat"], stdin: hostile })), [
        hostile,
      ]);
      // Newlines inside the input stay data too.
      assert.deepEqual(
        await Array.fromAsync(runProgram({ argv: ["cat"], stdin: `a\n$(touch ${marker})\nb` })),
        ["a", `$(touch ${marker})`, "b"],
      );
      // Arguments are not expanded either.
      assert.deepEqual(
        await Array.fromAsync(runProgram({ argv: ["printf", "%s", `$(touch ${marker})`] })),
        [`$(touch ${marker})`],
      );
      assert.equal(await exists(marker), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a program that hangs is killed at its timeout", async () => {
    const { lines, error } = await collect(runProgram({ argv: ["sleep", "30"], timeoutMs: 100 }));
    assert.deepEqual(lines, []);
    assert.ok(error instanceof ProgramTimeoutError);
    assert.equal(error.code, "PROGRAM_TIMEOUT");
    assert.equal(error.timeoutMs, 100);
    assert.equal(error.message, "program timed out after 100 ms");
    assert.deepEqual(error.argv, ["sleep", "30"]);
  });

  await t.step("killing a program also kills what it started", async () => {
    // The program starts a grandchild that keeps our stdout pipe and a TCP connection open, and
    // waits for it. Only killing the whole process group ends the grandchild; its connection then
    // closes.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    const grandchild = `const c = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
      await c.write(new Uint8Array([1])); await c.read(new Uint8Array(1));`;
    const program = `const g = new Deno.Command(Deno.execPath(), { args: ["eval", ${
      JSON.stringify(grandchild)
    }], stdin: "null" }).spawn(); console.log("spawned"); await g.status;`;
    const controller = new AbortController();
    const run = collect(runProgram({ argv: denoEval(program), signal: controller.signal }));
    using conn = await withTimeout(listener.accept(), "the grandchild to connect");
    const byte = new Uint8Array(1);
    assert.equal(await conn.read(byte), 1);
    // Same path as a timeout or an output limit: stop() kills the group.
    controller.abort(new Error("stop"));
    const { lines, error } = await run;
    assert.deepEqual(lines, ["spawned"]);
    assert.match(String(error), /stop/);
    // The grandchild's socket closes when it dies: end of stream or a reset, never a hang.
    const end = await withTimeout(conn.read(byte).catch(() => null), "the grandchild to die");
    assert.equal(end, null);
  });

  await t.step("a flooding program is cut at the output limit", async () => {
    const { lines, error } = await collect(runProgram({ argv: ["yes"], maxOutputBytes: 65536 }));
    // "y\n" is 2 bytes: exactly the complete lines inside the limit arrive, then the error.
    assert.equal(lines.length, 32768);
    assert.ok(lines.every((line) => line === "y"));
    assert.ok(error instanceof ProgramOutputLimitError);
    assert.equal(error.scope, "output");
    assert.equal(error.message, "program output exceeded the limit of 65536 bytes");
  });

  await t.step("an over-long output line kills the program", async () => {
    const { lines, error } = await collect(
      runProgram({ argv: ["printf", "short\\nmuch too long\\nnever\\n"], maxLineBytes: 8 }),
    );
    assert.deepEqual(lines, ["short"]);
    assert.ok(error instanceof ProgramOutputLimitError);
    assert.equal(error.scope, "line");
    assert.equal(error.message, "program output line longer than the limit of 8 bytes");
  });

  await t.step("invalid UTF-8 output is an error after the good lines", async () => {
    const { lines, error } = await collect(
      runProgram({ argv: ["printf", "ok\\n\\377\\nnext\\n"] }),
    );
    assert.deepEqual(lines, ["ok"]);
    assert.ok(error instanceof ProgramOutputEncodingError);
    assert.equal(error.lineNumber, 2);
    assert.equal(error.message, "program output line 2 is not valid UTF-8");
  });

  await t.step(
    "a failing program reports its status (its first stderr line kept for the log) after its output",
    async () => {
      const { lines, error } = await collect(
        runProgram({ argv: ["cat", "-", "/nonexistent/linesock"], stdin: "before" }),
      );
      assert.deepEqual(lines, ["before"]);
      assert.ok(error instanceof ProgramFailedError);
      assert.equal(error.code, "PROGRAM_FAILED");
      assert.equal(error.exitCode, 1);
      assert.equal(error.signal, null);
      assert.match(error.stderr, /\/nonexistent\/linesock: No such file or directory$/);
      // The message goes to clients: the status only, no stderr (paths, tracebacks).
      assert.equal(error.message, "program exited with status 1");
    },
  );

  await t.step("a missing program is a start error", async () => {
    const { error } = await collect(runProgram({ argv: ["linesock-no-such-program"] }));
    assert.ok(error instanceof ProgramStartError);
    assert.ok(error instanceof ProgramError);
    assert.equal(error.message, 'cannot start program "linesock-no-such-program": not found');
  });

  await t.step("a program that exits without reading its input is fine", async () => {
    const big = "x".repeat(2 * 1024 * 1024);
    assert.deepEqual(await Array.fromAsync(runProgram({ argv: ["true"], stdin: big })), []);
    const { error } = await collect(
      runProgram({ argv: ["sleep", "30"], stdin: big, timeoutMs: 100 }),
    );
    assert.ok(error instanceof ProgramTimeoutError);
  });

  await t.step("stopping the iteration early kills the program", async () => {
    let count = 0;
    for await (const line of runProgram({ argv: ["yes", "more"] })) {
      assert.equal(line, "more");
      if (++count === 3) break;
    }
    assert.equal(count, 3);
  });

  await t.step("aborting the signal kills the program", async () => {
    const controller = new AbortController();
    const iterator = runProgram({ argv: ["sleep", "30"], signal: controller.signal })
      [Symbol.asyncIterator]();
    const next = iterator.next();
    controller.abort(new Error("client went away"));
    await assert.rejects(next, /client went away/);
  });

  await t.step("aborting kills a busy program and what it started within 1 s", async () => {
    // Both the program and its background child burn CPU; neither would ever end by itself.
    const controller = new AbortController();
    const iterator = runProgram({
      argv: ["sh", "-c", "while :; do :; done & echo $$ $!; while :; do :; done"],
      signal: controller.signal,
      timeoutMs: 60_000,
    })[Symbol.asyncIterator]();
    const first = await withTimeout(iterator.next(), "the program's pids");
    const pids = String(first.value).split(" ").map(Number);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    const abortedAt = performance.now();
    controller.abort(new Error("client went away"));
    await assert.rejects(iterator.next(), /client went away/);
    assert.ok(performance.now() - abortedAt < 1000, "the iteration ends at once");
    // The program itself is reaped by now; its child is killed with the group.
    assert.equal(alive(pids[0]!), false);
    await allGone(pids, abortedAt + 1000);
  });

  await t.step("a background process does not outlive its program", async () => {
    const started = performance.now();
    const [pid] = await Array.fromAsync(
      runProgram({ argv: ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!"] }),
    );
    await allGone([Number(pid)], performance.now() + 1000);
    // One that keeps our stdout open is killed when the program exits, not at the timeout.
    const [held] = await Array.fromAsync(
      runProgram({ argv: ["sh", "-c", "sleep 97 & echo $!"], timeoutMs: 30_000 }),
    );
    await allGone([Number(held)], performance.now() + 1000);
    // And so is one whose program failed.
    const { lines, error } = await collect(
      runProgram({ argv: ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!; exit 3"] }),
    );
    assert.ok(error instanceof ProgramFailedError);
    assert.equal(error.exitCode, 3);
    await allGone(lines.map(Number), performance.now() + 1000);
    assert.ok(performance.now() - started < 10_000);
  });

  await t.step("20 programs leaving background processes, 4 at a time: none is left", async () => {
    const limiter = new ExecLimiter({ maxRunning: 4 });
    const runs = await Promise.all(
      Array.from({ length: 20 }, () =>
        Array.fromAsync(
          runProgram({ argv: ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!"], limiter }),
        )),
    );
    const pids = runs.flat().map(Number);
    assert.equal(new Set(pids).size, 20);
    await allGone(pids, performance.now() + 1000);
  });

  await t.step("under --allow-run=sh,kill the process group is still killed", async () => {
    // Deno.kill needs --allow-run without a list; the runner then uses the kill program.
    const dir = await Deno.makeTempDir({ prefix: "linesock_scoped_" });
    let pid = 0;
    try {
      const script = `${dir}/scoped.ts`;
      await Deno.writeTextFile(
        script,
        `import { runProgram } from ${
          JSON.stringify(new URL("../../../lib/routes/program_runner.ts", import.meta.url).href)
        };
        const argv = ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!"];
        console.log((await Array.fromAsync(runProgram({ argv }))).join(" "));`,
      );
      const output = await withTimeout(
        new Deno.Command(Deno.execPath(), {
          // The repository's import map: the runner logs through @logtape/logtape.
          args: [
            "run",
            "--no-prompt",
            "--config",
            new URL("../../../deno.json", import.meta.url).pathname,
            "--allow-run=sh,kill",
            `--allow-env=${STRYKER_MUTANT_ENV}`,
            script,
          ],
          stdin: "null",
        }).output(),
        "the scoped runner",
      );
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      pid = Number(new TextDecoder().decode(output.stdout).trim());
      assert.ok(pid > 0);
      await allGone([pid], performance.now() + 1000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("programs get only the allowed environment variables", async () => {
    await withEnv("SECRET_TOKEN", "x", async () => {
      const plain = await Array.fromAsync(runProgram({ argv: ["env"] }));
      assert.ok(!plain.includes("SECRET_TOKEN=x"), "not inherited");
      const allowed = DEFAULT_PROGRAM_ENV.filter((name) => Deno.env.get(name) !== undefined);
      assert.deepEqual(names(plain), [...allowed].sort());
      assert.ok(plain.includes(`PATH=${Deno.env.get("PATH")}`));
      const listed = await Array.fromAsync(
        runProgram({ argv: ["env"], inheritEnv: [...DEFAULT_PROGRAM_ENV, "SECRET_TOKEN"] }),
      );
      assert.ok(listed.includes("SECRET_TOKEN=x"), "allow-listed");
      // Only what is named; set values win; a name that is not set is simply absent.
      const only = await Array.fromAsync(
        runProgram({
          argv: ["env"],
          inheritEnv: ["SECRET_TOKEN", "LINESOCK_NOT_SET"],
          env: { EXTRA: "1" },
        }),
      );
      assert.deepEqual(only.sort(), ["EXTRA=1", "SECRET_TOKEN=x"]);
      assert.deepEqual(
        await Array.fromAsync(
          runProgram({ argv: ["env"], inheritEnv: ["SECRET_TOKEN"], env: { SECRET_TOKEN: "y" } }),
        ),
        ["SECRET_TOKEN=y"],
      );
    });
    assert.deepEqual(unreadableEnv(["PATH", "A=B"]), ["A=B"]);
  });

  await t.step("env and cwd are passed", async () => {
    assert.deepEqual(
      await Array.fromAsync(
        runProgram({ argv: ["printenv", "LINESOCK_TEST"], env: { LINESOCK_TEST: "a b;c" } }),
      ),
      ["a b;c"],
    );
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "linesock_cwd_" }));
    try {
      assert.deepEqual(await Array.fromAsync(runProgram({ argv: ["pwd"], cwd: dir })), [dir]);
    } finally {
      await Deno.remove(dir);
    }
  });

  await t.step("bad options are rejected at once", () => {
    assert.throws(() => runProgram({ argv: [] }), TypeError);
    assert.throws(() => runProgram({ argv: [""] }), TypeError);
    assert.throws(() => runProgram({ argv: ["cat"], timeoutMs: 0 }), RangeError);
    assert.throws(() => runProgram({ argv: ["cat"], maxOutputBytes: 0 }), RangeError);
  });
});

Deno.test("ExecLimiter", async (t) => {
  await t.step(
    "at most maxRunning programs run at once; the next starts when one ends",
    async () => {
      // Each program connects to us and blocks until we close its connection, so the connections we
      // accept are exactly the programs running.
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const script =
        `const c = await Deno.connect({ hostname: "127.0.0.1", port: ${listener.addr.port} });
      await c.read(new Uint8Array(1)); console.log("released");`;
      const limiter = new ExecLimiter({ maxRunning: 2, maxWaiting: 4 });
      const runs = [0, 1, 2].map(() =>
        Array.fromAsync(runProgram({ argv: denoEval(script), limiter, timeoutMs: 20_000 }))
      );
      const first = await withTimeout(listener.accept(), "program 1");
      const second = await withTimeout(listener.accept(), "program 2");
      assert.equal(limiter.running, 2);
      assert.equal(limiter.waiting, 1);
      first.close();
      const third = await withTimeout(listener.accept(), "program 3");
      assert.equal(limiter.waiting, 0);
      second.close();
      third.close();
      assert.deepEqual(await Promise.all(runs), [["released"], ["released"], ["released"]]);
      assert.equal(limiter.running, 0);
    },
  );

  await t.step("callers beyond the waiting line are refused", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1, maxWaiting: 1 });
    const held = await limiter.acquire();
    const waiting = limiter.acquire();
    await assert.rejects(limiter.acquire(), ExecQueueFullError);
    const { error } = await collect(runProgram({ argv: ["true"], limiter }));
    assert.ok(error instanceof ExecQueueFullError);
    assert.equal(error.code, "EXEC_QUEUE_FULL");
    assert.equal(
      error.message,
      "too many programs running (1 running, 1 waiting), try again later",
    );
    held.release();
    held.release(); // idempotent: must not free a second slot
    const slot = await waiting;
    assert.equal(limiter.running, 1);
    slot.release();
    assert.equal(limiter.running, 0);
  });

  await t.step("aborting a program waiting for a slot: it never starts", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_waiting_" });
    try {
      const marker = `${dir}/started`;
      const limiter = new ExecLimiter({ maxRunning: 1, maxWaiting: 1 });
      const held = await limiter.acquire();
      const controller = new AbortController();
      const run = collect(
        runProgram({ argv: ["touch", marker], limiter, signal: controller.signal }),
      );
      assert.equal(limiter.waiting, 1);
      controller.abort(new Error("client went away"));
      assert.equal(limiter.waiting, 0, "its place in the line is free at once");
      const { lines, error } = await run;
      assert.deepEqual(lines, []);
      assert.match(String(error), /client went away/);
      // Releasing the held slot would hand it to a caller still in line: nobody takes it.
      held.release();
      assert.equal(limiter.running, 0);
      assert.deepEqual(await Array.fromAsync(runProgram({ argv: ["true"], limiter })), []);
      assert.equal(await exists(marker), false, "the program never ran");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a waiting caller can give up", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1 });
    using _held = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    assert.equal(limiter.waiting, 1);
    controller.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
    assert.equal(limiter.waiting, 0);
  });

  await t.step("bad limits are rejected", () => {
    assert.throws(() => new ExecLimiter({ maxRunning: 0 }), RangeError);
    assert.throws(() => new ExecLimiter({ maxWaiting: -1 }), RangeError);
  });
});

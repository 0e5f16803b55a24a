/**
 * `linesock send`, run as a real process (with the `send` task's permissions) against real servers:
 * the CLI `serve` where a real linesock server is meant, and small in-process servers for the ending
 * rules (one that does not close on half-close, one that sends several replies per line, one that
 * hangs up on half-close).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { runCli, startServer, taskArgs, within } from "../_support/cli.ts";
import {
  type ConnectionContext,
  type LineProtocol,
  type Reply,
  serve,
  type Server,
} from "../../lib/server/mod.ts";
import { unusedPort } from "../_support/ports.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WAIT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Helpers

/** An in-process server; `holdOpen` keeps each connection open after the client's half-close. */
interface TestServer extends AsyncDisposable {
  readonly server: Server;
  readonly port: number;
}

async function startTestServer(
  onLine: (line: string, context: ConnectionContext) => Reply | Promise<Reply>,
  options: { holdOpen?: boolean; onEnd?: LineProtocol["onEnd"] } = {},
): Promise<TestServer> {
  const hold = Promise.withResolvers<void>();
  const protocol: LineProtocol = {
    stripCR: false,
    onLine: (bytes, context) => onLine(decoder.decode(bytes), context),
    ...(options.holdOpen ? { onEnd: () => hold.promise } : {}),
    ...(options.onEnd ? { onEnd: options.onEnd } : {}),
  };
  const server = await serve({ port: 0 }, protocol);
  return {
    server,
    port: (server.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      hold.resolve();
      await server.shutdown();
    },
  };
}

/** A `send` process whose stdin we write and whose output we watch as it arrives. */
interface SendProcess extends AsyncDisposable {
  readonly pid: number;
  /** Standard output so far, as bytes. */
  stdoutBytes(): Uint8Array;
  stdout(): string;
  stderr(): string;
  write(text: string | Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  waitForStdout(text: string): Promise<void>;
  waitForStderr(text: string): Promise<void>;
  /** Waits for the exit (bounded). */
  finish(): Promise<Deno.CommandStatus>;
}

function spawnSend(
  args: string[],
  options: { onStdout?: (chunk: Uint8Array) => void; keepStdout?: boolean } = {},
): SendProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("send"), ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const keep = options.keepStdout ?? true;
  const out: Uint8Array[] = [];
  let errText = "";
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  const reading = Promise.all([
    (async () => {
      for await (const chunk of child.stdout) {
        options.onStdout?.(chunk);
        if (keep) out.push(chunk);
        wake();
      }
    })(),
    (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        errText += text;
        wake();
      }
    })(),
  ]);
  const stdin = child.stdin.getWriter();
  let stdinClosed = false;
  const stdoutBytes = () => Buffer.concat(out);
  const waitFor = (seen: () => boolean, what: string) => {
    if (seen()) return Promise.resolve();
    let waiter!: () => void;
    const found = new Promise<void>((resolve) => {
      waiter = () => seen() && resolve();
      waiters.add(waiter);
    });
    return within(found, WAIT_MS, `${what}; stderr so far: ${errText}`)
      .finally(() => waiters.delete(waiter));
  };
  let status: Deno.CommandStatus | undefined;
  const finish = async () => {
    if (status) return status;
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      if (!stdinClosed) {
        stdinClosed = true;
        await stdin.close().catch(() => {});
      }
      status = await child.status;
      await reading;
      return status;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    pid: child.pid,
    stdoutBytes,
    stdout: () => decoder.decode(stdoutBytes()),
    stderr: () => errText,
    write: (text) => stdin.write(typeof text === "string" ? encoder.encode(text) : text),
    async closeStdin() {
      stdinClosed = true;
      await stdin.close();
    },
    waitForStdout: (text) =>
      waitFor(() => decoder.decode(stdoutBytes()).includes(text), `stdout to contain ${text}`),
    waitForStderr: (text) => waitFor(() => errText.includes(text), `stderr to contain ${text}`),
    finish,
    async [Symbol.asyncDispose]() {
      if (!status) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
      }
      await finish();
    },
  };
}

function bytes(...parts: (string | number[])[]): Uint8Array {
  return new Uint8Array(Buffer.concat(
    parts.map((part) => typeof part === "string" ? encoder.encode(part) : new Uint8Array(part)),
  ));
}

const got = (line: string) => `got ${line}`;

// ---------------------------------------------------------------------------------------------

Deno.test("send: input forms against the real linesock server", async (t) => {
  await using text = await startServer(["--port", "0"]);
  await using echo = await startServer(["--port", "0", "--protocol", "echo"]);
  const tempDir = await Deno.makeTempDir({ prefix: "linesock-send-" });
  try {
    await t.step(
      "each argument is one line; replies in order, nothing else on stdout",
      async () => {
        const result = await runCli("send", ["--port", `${text.port}`, "-v", "PING", "ECHO hi"]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "PONG\nhi\n");
        assert.match(result.stderr, /connected to tcp:\/\/127\.0\.0\.1:\d+/);
        assert.match(result.stderr, /ended: the server closed the connection/);
      },
    );

    await t.step(
      "a file: byte for byte, CRLF and non-UTF-8 kept, last line without \\n sent",
      async () => {
        const path = `${tempDir}/input.bin`;
        await Deno.writeFile(path, bytes("one\r\n", [0xff, 0xfe, 0x00, 0x41], "\nlast"));
        const result = await runCli("send", ["--port", `${echo.port}`, "-f", path]);
        assert.equal(result.code, 0, result.stderr);
        // Echo returns the bytes; the missing final newline was added when sending.
        assert.deepEqual(
          result.stdoutBytes,
          bytes("one\r\n", [0xff, 0xfe, 0x00, 0x41], "\nlast\n"),
        );
      },
    );

    await t.step("piped standard input, and -f - for standard input", async () => {
      for (const args of [[], ["-f", "-"]]) {
        const result = await runCli("send", ["--port", `${text.port}`, ...args], {
          stdin: "PING\nECHO a b\n",
        });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "PONG\na b\n");
      }
    });

    await t.step(
      "the last input line without \\n is sent and answered: stream, --replies and json modes",
      async () => {
        for (const args of [[], ["--replies", "1"], ["--until", "^last$"]]) {
          const result = await runCli("send", ["--port", `${text.port}`, ...args], {
            stdin: "PING\nECHO last",
          });
          assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
          assert.equal(result.stdout, "PONG\nlast\n", args.join(" "));
        }
        await using json = await startServer(["--port", "0", "--protocol", "json"]);
        const result = await runCli("send", ["--port", `${json.port}`, "--protocol", "json"], {
          stdin: '{"command": "ping"}\n{"command": "echo", "args": {"text": "last"}}',
        });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "pong\nlast\n");
      },
    );

    await t.step("no input at all is a usage error that says so", async () => {
      const none = await runCli("send", ["--port", `${text.port}`]); // stdin is /dev/null
      assert.equal(none.code, 2);
      assert.match(none.stderr, /nothing to send: standard input was empty/);
      assert.equal(none.stdout, "");
      const path = `${tempDir}/empty.txt`;
      await Deno.writeTextFile(path, "");
      const empty = await runCli("send", ["--port", `${text.port}`, "-f", path]);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /nothing to send: .*empty\.txt is empty/);
      const missing = await runCli("send", ["--port", `${text.port}`, "-f", `${tempDir}/nope`]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read .*nope/);
    });

    await t.step("usage errors exit 2", async () => {
      for (
        const args of [
          ["--unix", "/tmp/x.sock", "--port", "1", "PING"],
          ["--until", "(", "PING"],
          ["--args", "[1]", "--protocol", "json", "x"],
          ["--deadline", "soon", "PING"],
          ["--port", "70000", "PING"],
          ["--replies", "0", "PING"],
          ["--protocol", "json", "echo", "novalue"],
        ]
      ) {
        const result = await runCli("send", args);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.equal(result.stdout, "");
      }
    });

    await t.step("a Unix socket", async () => {
      const path = `${tempDir}/s.sock`;
      await using unix = await startServer(["--unix", path]);
      assert.equal(unix.path, path);
      const result = await runCli("send", ["--unix", path, "PING", "ECHO over unix"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "PONG\nover unix\n");
      const missing = await runCli("send", ["--unix", `${tempDir}/none.sock`, "PING"]);
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /^linesock: Cannot connect to .*none\.sock: no such socket\n$/);
    });
  } finally {
    await Deno.remove(tempDir, { recursive: true });
  }
});

Deno.test("send: a slow pipe is forwarded line by line as it arrives", async () => {
  await using server = await startTestServer((line) => got(line));
  await using send = spawnSend(["--port", `${server.port}`]);
  await send.write("one\n");
  await send.waitForStdout("got one\n");
  await send.write("tw");
  await send.write("o\n");
  await send.waitForStdout("got one\ngot two\n");
  await send.closeStdin();
  const status = await send.finish();
  assert.equal(status.code, 0, send.stderr());
  assert.equal(send.stdout(), "got one\ngot two\n");
});

Deno.test("send: ending rules", async (t) => {
  await t.step("default: half-close, then print until the server closes", async () => {
    await using server = await startTestServer((line) => [got(line), "more"]);
    const result = await runCli("send", ["--port", `${server.port}`, "--wait", "0", "-v", "a"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "got a\nmore\n");
    assert.match(result.stderr, /ended: the server closed the connection/);
  });

  await t.step("default with a server that stays open: stop after --wait of silence", async () => {
    await using server = await startTestServer((line) => [got(line), "more"], { holdOpen: true });
    const result = await runCli("send", [
      "--port",
      `${server.port}`,
      "--wait",
      "200ms",
      "-v",
      "a",
      "b",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "got a\nmore\ngot b\nmore\n");
    assert.match(result.stderr, /ended: no reply for 200 ms after the input/);
  });

  await t.step("-n N: lockstep, and exit as soon as the last reply arrives", async () => {
    // The server never closes and --wait/--timeout are off: only the reply count can end `send`.
    const received: string[] = [];
    let mostLinesInOneChunk = 0;
    const hold = Promise.withResolvers<void>();
    const protocol: LineProtocol = {
      onLine: () => undefined,
      onData(chunk, context) {
        const lines = decoder.decode(chunk).split("\n").slice(0, -1);
        mostLinesInOneChunk = Math.max(mostLinesInOneChunk, lines.length);
        for (const line of lines) {
          received.push(line);
          context.sendRaw(encoder.encode(`${line}:1\n${line}:2\n`));
        }
      },
      onEnd: () => hold.promise,
    };
    const server = await serve({ port: 0 }, protocol);
    try {
      const result = await runCli("send", [
        "--port",
        `${(server.addr as Deno.NetAddr).port}`,
        "--replies",
        "2",
        "--wait",
        "0",
        "--timeout",
        "0",
      ], { stdin: "a\nb\nc\n", timeoutMs: 15_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "a:1\na:2\nb:1\nb:2\nc:1\nc:2\n");
      assert.deepEqual(received, ["a", "b", "c"]);
      // Lockstep: each line was sent on its own, after the replies to the one before.
      assert.equal(mostLinesInOneChunk, 1);
    } finally {
      hold.resolve();
      await server.shutdown();
    }
  });

  await t.step("--until REGEX: stop at the first matching reply", async () => {
    await using server = await startTestServer(
      (line) => [`working on ${line}`, "Done.", "after the match"],
      { holdOpen: true },
    );
    const result = await runCli("send", [
      "--port",
      `${server.port}`,
      "--until",
      "^Done",
      "--wait",
      "0",
      "--timeout",
      "0",
      "job",
    ], { timeoutMs: 15_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "working on job\nDone.\n");
  });

  await t.step(
    "--until: exit 4 when nothing matches in --timeout, 5 when the server closes",
    async () => {
      await using open = await startTestServer((line) => got(line), { holdOpen: true });
      const silent = await runCli("send", [
        "--port",
        `${open.port}`,
        "--until",
        "^Done",
        "--timeout",
        "300ms",
        "x",
      ]);
      assert.equal(silent.code, 4, silent.stderr);
      assert.equal(silent.stdout, "got x\n");
      assert.match(silent.stderr, /Timed out after 300 ms: no reply .* matched \/\^Done\//);

      await using closing = await startTestServer((line) => got(line));
      const closed = await runCli("send", ["--port", `${closing.port}`, "--until", "^Done", "x"]);
      assert.equal(closed.code, 5, closed.stderr);
      assert.equal(closed.stdout, "got x\n");
      assert.match(closed.stderr, /closed by .* before a reply matched/);
    },
  );

  await t.step("--no-half-close for a server that takes a half-close as a hang-up", async () => {
    // A raw server: it answers a line only when the test says so, and hangs up at once on EOF.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const runServer = (mode: string) => {
      const events = {
        received: Promise.withResolvers<void>(),
        eof: Promise.withResolvers<void>(),
      };
      const gate = Promise.withResolvers<void>();
      const serving = (async () => {
        const conn = await listener.accept();
        const buffer = new Uint8Array(1024);
        let sawEof = false;
        const reading = (async () => {
          for (let count; (count = await conn.read(buffer)) !== null;) {
            if (decoder.decode(buffer.subarray(0, count)).includes("\n")) events.received.resolve();
          }
          sawEof = true;
          events.eof.resolve();
        })();
        await Promise.race([gate.promise, events.eof.promise]);
        if (!sawEof) await conn.write(encoder.encode("PONG\n"));
        conn.close();
        await reading.catch(() => {});
      })();
      const send = spawnSend([
        "--port",
        `${listener.addr.port}`,
        "--wait",
        "0",
        ...(mode === "no" ? ["--no-half-close"] : []),
        "PING",
      ]);
      return { events, gate, serving, send };
    };

    const hangUp = runServer("default");
    await within(hangUp.events.eof.promise, WAIT_MS, "EOF at the server");
    await hangUp.serving;
    assert.equal((await hangUp.send.finish()).code, 0, hangUp.send.stderr());
    assert.equal(hangUp.send.stdout(), "");

    const kept = runServer("no");
    await within(kept.events.received.promise, WAIT_MS, "the line at the server");
    kept.gate.resolve();
    await kept.serving;
    assert.equal((await kept.send.finish()).code, 0, kept.send.stderr());
    assert.equal(kept.send.stdout(), "PONG\n");
  });

  await t.step(
    "replies are printed byte for byte: \\r kept, a final reply without \\n",
    async () => {
      await using server = await startTestServer((line) => `${line}\r`, {
        onEnd: (context) => context.sendRaw(bytes([0xff], "tail")),
      });
      const result = await runCli("send", ["--port", `${server.port}`, "a"]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdoutBytes, bytes("a\r\n", [0xff], "tail"));
    },
  );
});

Deno.test("send: exit statuses", async (t) => {
  await t.step("1: an ERR reply (printed first), the run goes on", async () => {
    await using server = await startTestServer((line) =>
      line === "FOO" ? "ERR unknown command: FOO" : got(line)
    );
    const result = await runCli("send", ["--port", `${server.port}`, "FOO", "BAR"]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "ERR unknown command: FOO\ngot BAR\n");
    assert.equal(
      result.stderr,
      "linesock: the server answered with an error: ERR unknown command: FOO\n",
    );
  });

  await t.step("1: ERR is a word: ERRATA is no error reply, ERR: is one", async () => {
    await using server = await startTestServer((line) => line === "a" ? "ERRATA" : "ERR: no");
    const fine = await runCli("send", ["--port", `${server.port}`, "a"]);
    assert.equal(fine.code, 0, fine.stderr);
    assert.equal(fine.stdout, "ERRATA\n");
    const bad = await runCli("send", ["--port", `${server.port}`, "b"]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, "linesock: the server answered with an error: ERR: no\n");
  });

  await t.step("1: a reply longer than --max-line is left out, the run goes on", async () => {
    await using server = await startTestServer((line) =>
      line === "big" ? "x".repeat(100) : got(line)
    );
    const result = await runCli("send", [
      "--port",
      `${server.port}`,
      "--max-line",
      "64",
      "--replies",
      "1",
      "big",
      "small",
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "got small\n");
    assert.equal(
      result.stderr,
      "linesock: a reply was longer than --max-line (64 bytes) and was left out\n",
    );
  });

  await t.step("3: nothing listening, one clear line and no stack trace", async () => {
    const port = unusedPort();
    const result = await runCli("send", ["--port", `${port}`, "PING"]);
    assert.equal(result.code, 3);
    assert.equal(
      result.stderr,
      `linesock: Cannot connect to 127.0.0.1:${port}: connection refused\n`,
    );
    assert.equal(result.stdout, "");
  });

  await t.step("4: a server that never answers, with -n 1 and a short --timeout", async () => {
    await using server = await startTestServer(() => undefined, { holdOpen: true });
    const result = await runCli("send", [
      "--port",
      `${server.port}`,
      "--replies",
      "1",
      "--timeout",
      "300ms",
      "PING",
    ]);
    assert.equal(result.code, 4);
    assert.match(
      result.stderr,
      /^linesock: Timed out after 300 ms: waiting for a reply from tcp:\/\/127\.0\.0\.1:\d+\n$/,
    );
  });

  await t.step("5: the server closes before the expected replies", async () => {
    await using server = await startTestServer((line, context) => {
      context.close();
      return got(line);
    });
    const result = await runCli("send", ["--port", `${server.port}`, "--replies", "2", "PING"]);
    assert.equal(result.code, 5);
    assert.equal(result.stdout, "got PING\n");
    assert.match(
      result.stderr,
      /closed by tcp:\/\/127\.0\.0\.1:\d+ after 1 of 2 replies to line 1/,
    );
  });

  await t.step(
    "--quiet keeps stderr empty for a remote error; the status still says it",
    async () => {
      await using server = await startTestServer(() => "ERR nope");
      const result = await runCli("send", ["--port", `${server.port}`, "-q", "X"]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, "");
      assert.equal(result.stdout, "ERR nope\n");
    },
  );
});

Deno.test("send: --deadline stops a server that dribbles a line every 200 ms forever", async () => {
  // A raw server: once a client connects it sends a line every 200 ms and never closes.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      let count = 0;
      const timer = setInterval(() => {
        conn.write(encoder.encode(`line ${++count}\n`)).catch(() => clearInterval(timer));
      }, 200);
      timers.push(timer);
    }
  })().catch(() => {});
  try {
    const started = performance.now();
    const result = await runCli(
      "send",
      ["--port", `${listener.addr.port}`, "--deadline", "1s", "PING"],
      { timeoutMs: 15_000 },
    );
    const elapsed = performance.now() - started;
    assert.equal(result.code, 4, result.stderr);
    assert.equal(result.signal, null);
    assert.equal(
      result.stderr,
      "linesock: Timed out after 1000 ms: the whole run (--deadline)\n",
    );
    // What arrived before the deadline was printed, whole lines in order.
    assert.match(result.stdout, /^line 1\n(line \d+\n)*$/);
    const lines = result.stdout.split("\n").slice(0, -1);
    assert.deepEqual(lines, lines.map((_, i) => `line ${i + 1}`));
    // Process start-up is on top of the deadline; without --deadline this run would never end.
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  } finally {
    timers.forEach(clearInterval);
    listener.close();
    for (const conn of conns) conn.close();
    await serving;
  }
});

Deno.test("send: --deadline also ends a run waiting for its input (-n 1, stdin open)", async () => {
  await using server = await startTestServer((line) => got(line));
  await using send = spawnSend([
    "--port",
    `${server.port}`,
    "--replies",
    "1",
    "--deadline",
    "1500ms",
  ]);
  await send.write("a\n");
  await send.waitForStdout("got a\n");
  // stdin stays open (finish() would close it): the run waits for the next line until the deadline.
  await send.waitForStderr("the whole run (--deadline)");
  const status = await send.finish();
  assert.equal(status.code, 4, send.stderr());
  assert.equal(send.stdout(), "got a\n");
  assert.match(
    send.stderr(),
    /^linesock: Timed out after 1500 ms: the whole run \(--deadline\)\n$/,
  );
});

Deno.test("send: --retry reaches a server started after the first failure", async () => {
  const port = unusedPort();
  await using send = spawnSend(["--port", `${port}`, "--retry", "30", "--replies", "1", "PING"]);
  await send.waitForStderr("retry 1 of 30");
  await using late = await serve({ port }, (line) => got(line));
  const status = await send.finish();
  assert.equal(status.code, 0, send.stderr());
  assert.equal(send.stdout(), "got PING\n");
  assert.match(
    send.stderr(),
    /Cannot connect to 127\.0\.0\.1:\d+: connection refused; retry 1 of 30/,
  );
  assert.equal(late.stats.connections >= 1, true);
});

Deno.test("send: JSON mode against the real linesock JSON server", async (t) => {
  await using server = await startServer(["--port", "0", "--protocol", "json"]);
  const port = `${server.port}`;

  await t.step(
    "key=value arguments (JSON when they parse); a string message prints raw",
    async () => {
      const result = await runCli("send", [
        "--port",
        port,
        "--protocol",
        "json",
        "echo",
        "text=hi there",
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "hi there\n");
    },
  );

  await t.step(
    "other messages print as pretty JSON; --raw prints the whole response; text=7 reaches the server as the number 7",
    async () => {
      const help = await runCli("send", ["--port", port, "--protocol", "json", "help"]);
      assert.equal(help.code, 0, help.stderr);
      const commands = JSON.parse(help.stdout);
      assert.ok(Array.isArray(commands) && commands.includes("echo"), help.stdout);
      assert.equal(help.stdout, JSON.stringify(commands, null, 2) + "\n");

      const raw = await runCli("send", [
        "--port",
        port,
        "--protocol",
        "json",
        "--raw",
        "echo",
        "text=7",
      ]);
      assert.equal(raw.code, 0, raw.stderr);
      // `7` parses as JSON, so the server gets the number 7 and echoes it back as the number 7 (not
      // the string "7"); --raw prints that whole response, one line, as the server sent it.
      assert.match(raw.stdout, /^\{.*\}\n$/);
      const response = JSON.parse(raw.stdout);
      assert.equal(response.status, 0);
      assert.strictEqual(response.message, 7);
    },
  );

  await t.step(
    "a remote error: exit 1, the server's message on stderr, nothing on stdout",
    async () => {
      const result = await runCli("send", [
        "--port",
        port,
        "--protocol",
        "json",
        "no-such-command",
      ]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^linesock: remote error \(status 1\): .*no-such-command/);
    },
  );

  await t.step("several commands piped in as JSON lines (blank lines skipped)", async () => {
    const result = await runCli("send", ["--port", port, "--protocol", "json"], {
      stdin:
        '{"command": "ping"}\n\n{"command": "nope"}\n{"command": "echo", "args": {"text": "x"}}',
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "pong\nx\n");
    assert.match(result.stderr, /remote error \(status 1\)/);
  });
});

Deno.test("send: JSON mode arguments reach the server as typed values", async () => {
  const requests: unknown[] = [];
  await using server = await startTestServer((line) => {
    const request = JSON.parse(line);
    requests.push(request);
    return JSON.stringify({ status: 0, message: request.args });
  }, { holdOpen: true });
  const result = await runCli("send", [
    "--port",
    `${server.port}`,
    "--protocol",
    "json",
    "--args",
    '{"nested": {"a": [1, 2]}, "n": 1}',
    "calc",
    "n=3",
    "flag=true",
    "text=hello",
    'list=[1,"x"]',
    'quoted="5"',
    "eq=a=b",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const args = {
    nested: { a: [1, 2] },
    n: 3,
    flag: true,
    text: "hello",
    list: [1, "x"],
    quoted: "5",
    eq: "a=b",
  };
  assert.deepEqual(requests, [{ command: "calc", args }]);
  assert.equal(result.stdout, JSON.stringify(args, null, 2) + "\n");
});

// ---------------------------------------------------------------------------------------------
// Bounded memory: a large stream through `send` to the real echo server, with the send process's
// peak resident memory (VmHWM, a high-water mark) sampled from /proc while it runs.

const BLOCK_BYTES = 1024 * 1024;
const LINE_BYTES = 1024;
const PEAK_LIMIT_KIB = 200 * 1024;

/** A 1 MiB block of 1 KiB lines whose first line starts with the block's number. */
function stampBlock(block: Uint8Array, index: number): Uint8Array {
  block.set(encoder.encode(String(index).padStart(10, "0")));
  return block;
}

function newBlock(): Uint8Array {
  const block = new Uint8Array(BLOCK_BYTES).fill(0x78); // "x"
  for (let end = LINE_BYTES - 1; end < BLOCK_BYTES; end += LINE_BYTES) block[end] = 0x0a;
  return block;
}

/** Streams `mebibytes` MiB through `send` and the echo server; returns the peak RSS in KiB. */
async function streamThroughEcho(mebibytes: number): Promise<number> {
  await using echo = await startServer(["--port", "0", "--protocol", "echo"]);
  const total = mebibytes * BLOCK_BYTES;
  const expected = newBlock();
  let expectedIndex = -1;
  let received = 0;
  let mismatchAt = -1;
  let peakKiB = 0;
  let nextSample = 0;
  let pid = 0;
  const sample = () => {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) peakKiB = Math.max(peakKiB, Number(match[1]));
    } catch {
      // The process has just exited.
    }
  };
  const check = (chunk: Uint8Array) => {
    for (let offset = 0; offset < chunk.length && mismatchAt === -1;) {
      const index = Math.floor(received / BLOCK_BYTES);
      if (index !== expectedIndex) stampBlock(expected, expectedIndex = index);
      const at = received % BLOCK_BYTES;
      const length = Math.min(chunk.length - offset, BLOCK_BYTES - at);
      const actual = chunk.subarray(offset, offset + length);
      if (Buffer.compare(actual, expected.subarray(at, at + length)) !== 0) mismatchAt = received;
      offset += length;
      received += length;
    }
    if (received >= nextSample) {
      sample();
      nextSample += 16 * BLOCK_BYTES;
    }
  };
  await using send = spawnSend(["--port", `${echo.port}`, "--wait", "0"], {
    onStdout: check,
    keepStdout: false,
  });
  pid = send.pid;
  const input = newBlock();
  for (let index = 0; index < mebibytes; index++) await send.write(stampBlock(input, index));
  await send.closeStdin();
  const status = await send.finish();
  assert.equal(status.code, 0, send.stderr());
  assert.equal(mismatchAt, -1, `output differs from the input at byte ${mismatchAt}`);
  assert.equal(received, total);
  assert.ok(peakKiB > 0, "no memory sample was taken");
  return peakKiB;
}

/** 1 GiB takes about 2 s here; `LINESOCK_SEND_STREAM_MIB` changes the size (e.g. smaller on a slow machine). */
const STREAM_MIB = Number(Deno.env.get("LINESOCK_SEND_STREAM_MIB") ?? "1024");

Deno.test(`send: ${STREAM_MIB} MiB through send to an echo server with bounded memory`, async () => {
  const peakKiB = await streamThroughEcho(STREAM_MIB);
  assert.ok(
    peakKiB < PEAK_LIMIT_KIB,
    `peak RSS of send was ${Math.round(peakKiB / 1024)} MiB (limit ${PEAK_LIMIT_KIB / 1024} MiB)`,
  );
  console.log(`send: peak RSS ${Math.round(peakKiB / 1024)} MiB for ${STREAM_MIB} MiB`);
});

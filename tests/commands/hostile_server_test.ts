/**
 * Clients treat the server as untrusted: a hostile server's escape sequences (a window title, a
 * screen clear, a fake red prompt, an OSC 52 clipboard write, an 8-bit CSI) reach a terminal only as
 * visible text. The real `repl` and `send` run in a real terminal (tmux, with `set-clipboard on` so
 * that tmux would take an OSC 52 write into a paste buffer), and the test reads what the terminal
 * did: the screen, the pane title and the paste buffers. `--raw` lets the bytes through (which also
 * proves that the checks can fail). Into a pipe, output stays byte for byte.
 */
import assert from "node:assert/strict";
import { runCli } from "../_support/cli.ts";
import { cliCommand, type Pty, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { ignoredName } from "../_support/tools.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const CLIPBOARD_TEXT = "pwned-clip";
const GREETING = "welcome \x1b]2;pwned-greeting\x07";
/** The reply to any line but PING, HELP and JSON. */
const PAYLOAD = "evil: \x1b]0;pwned\x07 \x1b[2J \x1b[31m127.0.0.1:1991> \x1b[0m " +
  `\x1b]52;c;${btoa(CLIPBOARD_TEXT)}\x07 \u009b31m end`;
/** How the payload must look on screen: every control visible, nothing done. */
const PAYLOAD_SHOWN = "evil: \\x1b]0;pwned\\x07 \\x1b[2J \\x1b[31m127.0.0.1:1991> \\x1b[0m " +
  "\\x1b]52;c;cHduZWQtY2xpcA==\\x07 \\u009b31m end";
/** JSON mode: a message whose controls only exist once the JSON is parsed. */
const JSON_MESSAGE = "json \x1b]0;pwned-json\x07 \u009b2J done";
const JSON_MESSAGE_SHOWN = "json \\x1b]0;pwned-json\\x07 \\u009b2J done";

/**
 * A raw TCP server on port 0: a greeting with an OSC title (unless `greeting: false`), `commands: …`
 * with a hostile name for HELP, PONG for PING, an `ERR` line with a screen clear for ERRME, a JSON
 * response with a hostile message for a JSON line (status 1 for the command `fail`), and the payload
 * for anything else. It hangs up on the client's end of input.
 */
function startHostileServer({ greeting = true } = {}): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const reply = (line: string): string => {
    if (line === "PING") return "PONG";
    if (line === "HELP") return "commands: EVIL PING \x1b]0;pwned-cmd\x07";
    if (line === "ERRME") return "ERR \x1b[2J";
    if (line.startsWith("{")) {
      const { id, command } = JSON.parse(line) as { id?: unknown; command?: unknown };
      return JSON.stringify({ status: command === "fail" ? 1 : 0, message: JSON_MESSAGE, id });
    }
    return PAYLOAD;
  };
  const handle = async (conn: Deno.Conn) => {
    const write = async (text: string) => {
      const bytes = encoder.encode(`${text}\n`);
      for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
    };
    try {
      if (greeting) await write(GREETING);
      const buffer = new Uint8Array(4096);
      let pending = "";
      for (let count; (count = await conn.read(buffer)) !== null;) {
        pending += decoder.decode(buffer.subarray(0, count), { stream: true });
        const lines = pending.split("\n");
        pending = lines.pop()!;
        for (const line of lines) await write(reply(line.replace(/\r$/, "")));
      }
    } catch {
      // The client went away, or the test is over.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  const serving = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        handle(conn);
      }
    } catch {
      // Closed.
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await serving;
    },
  };
}

/** A pty whose tmux server can be asked what the terminal did. */
interface Terminal extends AsyncDisposable {
  pty: Pty;
  /** The pane's title before the command started. */
  initialTitle: string;
  /** The pane's title now (OSC 0 and 2 set it). */
  title(): Promise<string>;
  /** The paste buffers' contents (an OSC 52 write adds one, with `set-clipboard on`). */
  buffers(): Promise<string[]>;
}

/**
 * Runs `command` in tmux with `set-clipboard on`. A small wrapper inside the pane finds the tmux
 * server (from `$TMUX`), switches the option on and notes the pane title before it starts `command`.
 * @param command The program and arguments.
 * @param home A private home directory.
 * @param stdin Text piped into the command instead of the terminal (for the repl's scripted mode).
 */
async function startTerminal(command: string[], home: string, stdin?: string): Promise<Terminal> {
  const info = await Deno.makeTempFile({ dir: home, prefix: "tmux-info-" });
  const run = stdin === undefined ? 'exec "$@"' : `printf '%b' '${stdin}' | "$@"`;
  const pty = await startPty([
    "/bin/sh",
    "-c",
    `tmux set -g set-clipboard on && tmux display -p '#{pane_title}' > "$0.title" && ` +
    `printf '%s\\n' "$TMUX" > "$0" && ${run}`,
    info,
    ...command,
  ], { columns: 200, rows: 30, env: ptyEnv(home, { NO_COLOR: "1" }) });
  let socket = "";
  for (const deadline = Date.now() + 10_000; socket === "";) {
    const text = await Deno.readTextFile(info);
    if (text.endsWith("\n")) socket = text.split(",")[0]!;
    else if (Date.now() > deadline) throw new Error("the tmux wrapper did not start");
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const tmux = async (...args: string[]) => {
    const output = await new Deno.Command("tmux", { args: ["-S", socket, ...args] }).output();
    assert.ok(output.success, decoder.decode(output.stderr));
    return decoder.decode(output.stdout);
  };
  return {
    pty,
    initialTitle: (await Deno.readTextFile(`${info}.title`)).trim(),
    title: async () => (await tmux("display", "-p", "-t", "main", "#{pane_title}")).trim(),
    async buffers() {
      const names = (await tmux("list-buffers", "-F", "#{buffer_name}")).split("\n")
        .filter((name) => name !== "");
      return await Promise.all(names.map((name) => tmux("show-buffer", "-b", name)));
    },
    [Symbol.asyncDispose]: () => pty[Symbol.asyncDispose](),
  };
}

/** Waits (polling, bounded) until `probe` holds. */
async function eventually(probe: () => Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Asserts that the terminal did nothing a server asked for. */
async function assertUntouched(terminal: Terminal) {
  assert.equal(await terminal.title(), terminal.initialTitle);
  assert.ok(!terminal.initialTitle.includes("pwned"));
  assert.deepEqual(await terminal.buffers(), []);
  const coloured = (await terminal.pty.screen({ escapes: true, history: true })).join("\n");
  assert.ok(!coloured.includes("\x1b[31m"), `red on the screen:\n${coloured}`);
}

Deno.test({
  name: ignoredName("a hostile server cannot drive the terminal", TMUX_MISSING),
  ignore: TMUX_MISSING !== undefined,
  async fn(t) {
    const home = await Deno.makeTempDir({ prefix: "linesock-hostile-" });
    await using server = startHostileServer();
    const port = String(server.port);
    try {
      await t.step(
        "repl: replies, greeting, JSON messages and HELP names show escaped",
        async () => {
          await using terminal = await startTerminal(cliCommand("repl", ["--port", port]), home);
          const { pty } = terminal;
          await pty.waitFor(`127.0.0.1:${port}>`);
          await pty.waitFor("< welcome \\x1b]2;pwned-greeting\\x07");
          await pty.type("EVIL");
          await pty.press("Enter");
          await pty.waitFor(`< ${PAYLOAD_SHOWN}`);
          // The screen was not cleared: the first lines are still there.
          assert.match((await pty.screen())[0]!, /^\* connected to 127\.0\.0\.1:\d+/);
          await pty.type(":commands");
          await pty.press("Enter");
          await pty.waitFor("* EVIL HELP PING");
          await pty.type(":json on");
          await pty.press("Enter");
          await pty.waitFor(`127.0.0.1:${port} json>`);
          await pty.type("anything");
          await pty.press("Enter");
          await pty.waitFor(`< ${JSON_MESSAGE_SHOWN}`);
          await assertUntouched(terminal);
          await pty.press("C-d");
          assert.equal(await pty.waitForExit(), 0);
        },
      );

      await t.step("repl --raw: the bytes reach the terminal (the title changes)", async () => {
        await using terminal = await startTerminal(
          cliCommand("repl", ["--port", port, "--raw"]),
          home,
        );
        const { pty } = terminal;
        await pty.waitFor(`127.0.0.1:${port}>`);
        await pty.type("EVIL");
        await pty.press("Enter");
        await eventually(async () => (await terminal.title()) === "pwned", "the title to change");
        await eventually(
          async () => (await terminal.buffers()).includes(CLIPBOARD_TEXT),
          "the OSC 52 paste buffer",
        );
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step("repl without a terminal on stdin, printing to one: escaped", async () => {
        await using terminal = await startTerminal(
          cliCommand("repl", ["--port", port]),
          home,
          "EVIL\\n",
        );
        assert.equal(await terminal.pty.waitForExit(), 0);
        const screen = (await terminal.pty.screen({ history: true })).join("\n");
        assert.ok(screen.includes(PAYLOAD_SHOWN), screen);
        assert.ok(screen.includes("welcome \\x1b]2;pwned-greeting\\x07"), screen);
        await assertUntouched(terminal);
      });

      await t.step("send on a terminal: escaped", async () => {
        await using terminal = await startTerminal(
          cliCommand("send", ["--port", port, "EVIL"]),
          home,
        );
        assert.equal(await terminal.pty.waitForExit(), 0);
        const screen = (await terminal.pty.screen({ history: true })).join("\n");
        assert.ok(screen.includes(`welcome \\x1b]2;pwned-greeting\\x07\n${PAYLOAD_SHOWN}`), screen);
        await assertUntouched(terminal);
      });

      await t.step("send --raw on a terminal: the bytes reach it", async () => {
        await using terminal = await startTerminal(
          cliCommand("send", ["--port", port, "--raw", "EVIL"]),
          home,
        );
        assert.equal(await terminal.pty.waitForExit(), 0);
        assert.equal(await terminal.title(), "pwned");
        assert.deepEqual(await terminal.buffers(), [CLIPBOARD_TEXT]);
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("into a pipe, a hostile server's bytes stay exact", async (t) => {
  await using server = startHostileServer();
  const port = String(server.port);
  const expected = encoder.encode(`${GREETING}\n${PAYLOAD}\n`);

  await t.step("send, with and without --raw", async () => {
    for (const extra of [[], ["--raw"]]) {
      const result = await runCli("send", ["--port", port, ...extra, "EVIL"]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdoutBytes, expected);
    }
  });

  await t.step("the repl's scripted mode", async () => {
    const result = await runCli("repl", ["--port", port], { stdin: "EVIL\n" });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdoutBytes, expected);
  });

  await t.step(
    "send --protocol json: the message as it is; the server's words on stderr escaped",
    async () => {
      await using quiet = startHostileServer({ greeting: false });
      const ok = await runCli("send", ["--port", String(quiet.port), "--protocol", "json", "x"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(ok.stdoutBytes, encoder.encode(`${JSON_MESSAGE}\n`));
      const failed = await runCli("send", [
        "--port",
        String(quiet.port),
        "--protocol",
        "json",
        "fail",
      ]);
      assert.equal(failed.code, 1);
      assert.equal(failed.stderr, `linesock: remote error (status 1): ${JSON_MESSAGE_SHOWN}\n`);
      const text = await runCli("send", ["--port", String(quiet.port), "ERRME"]);
      assert.equal(text.code, 1);
      assert.equal(text.stdout, "ERR \x1b[2J\n");
      assert.equal(text.stderr, "linesock: the server answered with an error: ERR \\x1b[2J\n");
    },
  );
});

/**
 * End-to-end tests of `linesock repl`: the real CLI (with the `repl` task's permissions) in a real
 * pseudo-terminal (tmux), against real servers on loopback; and its non-terminal mode via runCli.
 */
import assert from "node:assert/strict";
import {
  type ConnectionContext,
  type LineProtocol,
  serve,
  type Server,
} from "../../lib/server/mod.ts";
import { runCli, startServer } from "../_support/cli.ts";
import { cliCommand, type Pty, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { unusedPort } from "../_support/ports.ts";
import { ignoredName } from "../_support/tools.ts";

interface TextServer extends AsyncDisposable {
  server: Server;
  port: number;
  /** Sends an unsolicited line to the client that sent the latest line. */
  push(line: string): Promise<void>;
}

/** PING → PONG, HELP per the conventions, SHOUT x → X, anything else an ERR line. */
async function startTextServer(port = 0): Promise<TextServer> {
  let latest: ConnectionContext | undefined;
  const server = await serve({ port }, (line, context) => {
    latest = context;
    if (line === "PING") return "PONG";
    if (line === "HELP") return "commands: PING HELP SHOUT";
    if (line.startsWith("SHOUT ")) return line.slice(6).toUpperCase();
    return `ERR unknown command: ${line.split(" ")[0]}`;
  });
  return {
    server,
    port: (server.addr as Deno.NetAddr).port,
    push(line) {
      if (!latest) throw new Error("no client has sent a line yet");
      return latest.send(line);
    },
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

/** The JSON protocol: help, ping, add; anything else status 1. */
function startJsonServer(): Promise<Server> {
  return serve({ port: 0 }, (line) => {
    const request = JSON.parse(line) as {
      command: string;
      args: Record<string, number>;
      id?: unknown;
    };
    const reply = (status: number, message: unknown) =>
      JSON.stringify({ status, message, id: request.id });
    switch (request.command) {
      case "help":
        return reply(0, ["help", "ping", "add"]);
      case "ping":
        return reply(0, "pong");
      case "add":
        return reply(0, Object.values(request.args).reduce((sum, value) => sum + value, 0));
      default:
        return reply(1, `unknown command: ${request.command}`);
    }
  });
}

const ESC = String.fromCharCode(27);

/** The SGR codes set right before the first `text` on a screen captured with escapes. */
function styleBefore(screen: string, text: string): string[] {
  const trailingSgr = new RegExp(`${ESC}\\[([0-9;]*)m$`);
  let end = screen.indexOf(text);
  if (end === -1) return [];
  const codes: string[] = [];
  // tmux may put several sequences there (e.g. a reset, the colour, a background default).
  for (let match; (match = trailingSgr.exec(screen.slice(0, end))) !== null;) {
    codes.push(...match[1]!.split(";"));
    end -= match[0].length;
  }
  return codes;
}

/** The row the cursor is on. */
async function cursorRow(pty: Pty): Promise<string> {
  const [screen, cursor] = await Promise.all([pty.screen(), pty.cursor()]);
  return screen[cursor.y] ?? "";
}

Deno.test({
  name: ignoredName("repl in a terminal", TMUX_MISSING),
  ignore: TMUX_MISSING !== undefined,
  async fn(t) {
    const home = await Deno.makeTempDir({ prefix: "linesock-repl-home-" });
    const historyFile = `${home}/state/linesock/history`;
    const repl = (port: number, args: string[] = [], env: Record<string, string> = {}) =>
      startPty(cliCommand("repl", ["--port", String(port), ...args]), {
        columns: 80,
        rows: 24,
        env: ptyEnv(home, { NO_COLOR: "1", ...env }),
      });
    try {
      await using text = await startTextServer();
      const prompt = `127.0.0.1:${text.port}> `;

      await t.step("typing, replies, completion from HELP and history recall with Up", async () => {
        await using pty = await repl(text.port);
        await pty.waitFor(prompt.trimEnd());
        await pty.type("PING");
        await pty.press("Enter");
        await pty.waitFor(/^< PONG \(\d/m);
        // Tab completes a name that only the server's HELP reply listed.
        await pty.type("SH");
        // A Tab read in the same chunk as other keys counts as pasted text, so let "SH" land first.
        await pty.waitFor(`${prompt}SH`);
        await pty.press("Tab");
        await pty.waitFor(`${prompt}SHOUT`);
        await pty.type(" hello there");
        await pty.press("Enter");
        await pty.waitFor(/^< HELLO THERE/m);
        await pty.type(" SHOUT secret");
        await pty.press("Enter");
        await pty.waitFor(/^< SECRET/m);
        const screen = (await pty.screen()).join("\n");
        assert.ok(!screen.includes("commands:"), `the HELP probe's reply leaked:\n${screen}`);
        // The secret line is not in history: Up brings back the line before it.
        await pty.press("Up");
        await pty.waitFor(`${prompt}SHOUT hello there`);
        await pty.press("Up");
        await pty.waitFor(async () => (await cursorRow(pty)) === `${prompt}PING`);
        await pty.press("Enter");
        await pty.waitFor((s) =>
          s.split("\n").filter((row) => row.startsWith("< PONG")).length === 2
        );
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
        assert.deepEqual((await Deno.readTextFile(historyFile)).split("\n"), [
          "SHOUT hello there",
          "PING",
          "",
        ]);
      });

      await t.step("history persists into the next session", async () => {
        await using pty = await repl(text.port);
        await pty.waitFor(prompt.trimEnd());
        await pty.press("Up");
        await pty.waitFor(`${prompt}PING`);
        await pty.press("Up");
        await pty.waitFor(`${prompt}SHOUT hello there`);
        // Ctrl-D only quits on an empty line (elsewhere it deletes forward).
        await pty.press("C-d");
        await pty.press("C-c");
        await pty.waitFor(`${prompt}SHOUT hello there^C`);
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step(
        "a server line arriving mid-typing leaves the wrapped input intact",
        async () => {
          await using pty = await startPty(cliCommand("repl", ["--port", String(text.port)]), {
            columns: 40,
            rows: 20,
            env: ptyEnv(home, { NO_COLOR: "1" }),
          });
          await pty.waitFor(prompt.trimEnd());
          await pty.type("PING");
          await pty.press("Enter");
          await pty.waitFor("< PONG");
          const typed = "SHOUT the quick brown fox jumps over the lazy dog";
          await pty.type(typed);
          // The cursor goes back into the middle of the wrapped line before the message arrives.
          await pty.press("Left", "Left", "Left", "Left");
          await pty.waitFor(async () =>
            (await pty.cursor()).x === (prompt + typed).length - 40 - 4
          );
          await text.push("breaking news");
          await pty.waitFor("< breaking news");
          const rows = await pty.screen({ joined: true });
          const news = rows.indexOf("< breaking news");
          assert.ok(news > 0, rows.join("\n"));
          assert.match(rows[news - 1]!, /^< PONG/);
          assert.equal(rows[news + 1], prompt + typed, rows.join("\n"));
          // Typing goes on where the cursor was.
          await pty.type("X");
          await pty.press("Enter");
          await pty.waitFor("< THE QUICK BROWN FOX JUMPS OVER THE LAZYX DOG", { joined: true });
          await pty.press("C-d");
          assert.equal(await pty.waitForExit(), 0);
        },
      );

      await t.step("colour on a terminal; markers with NO_COLOR", async () => {
        await using pty = await repl(text.port, [], { NO_COLOR: "" });
        await pty.waitFor(prompt.trimEnd());
        await pty.type("PING");
        await pty.press("Enter");
        await pty.type("NOPE");
        await pty.press("Enter");
        await pty.waitFor("ERR unknown command: NOPE");
        const coloured = (await pty.screen({ escapes: true })).join("\n");
        assert.ok(styleBefore(coloured, "PONG").includes("32"), coloured);
        assert.ok(styleBefore(coloured, "ERR unknown command: NOPE").includes("31"), coloured);
        assert.ok(!(await pty.screen()).some((row) => row.startsWith("< ")));
        await pty.type(":quit");
        await pty.press("Enter");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step("Ctrl-C clears the line, a second Ctrl-C on the empty line quits", async () => {
        await using pty = await repl(text.port);
        await pty.waitFor(prompt.trimEnd());
        await pty.type("half a line");
        await pty.press("C-c");
        await pty.waitFor(`${prompt}half a line^C`);
        await pty.waitFor(async () => (await cursorRow(pty)) === prompt.trimEnd());
        await pty.press("C-c");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step("Ctrl-C on an empty line warns first; other keys disarm it", async () => {
        await using pty = await repl(text.port);
        await pty.waitFor(prompt.trimEnd());
        await pty.press("C-c");
        await pty.waitFor("Ctrl-C again to quit");
        await pty.type("PING");
        await pty.press("Enter");
        await pty.waitFor("< PONG");
        // The typed line disarmed it: this Ctrl-C only warns again.
        await pty.press("C-c");
        await pty.waitFor((s) => s.split("Ctrl-C again to quit").length === 3);
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step(
        "JSON mode: typed commands become requests (a= sends an empty string, a bare 5 is refused), responses are readable",
        async () => {
          await using json = await startJsonServer();
          const port = (json.addr as Deno.NetAddr).port;
          await using pty = await repl(port, ["--json"]);
          await pty.waitFor(`127.0.0.1:${port} json>`);
          await pty.type("ad");
          await pty.waitFor("json> ad");
          await pty.press("Tab");
          await pty.waitFor(`json> add`);
          await pty.type(" a=1 b=2");
          await pty.press("Enter");
          await pty.waitFor(/^< 3 \(/m);
          const screen = await pty.screen();
          assert.ok(screen.includes('> {"command":"add","args":{"a":1,"b":2},"id":1}'));
          await pty.type("nope x=1");
          await pty.press("Enter");
          await pty.waitFor("< error 1: unknown command: nope");
          // `a=` is the empty string, not a missing value: the request says so.
          await pty.type("add a=");
          await pty.press("Enter");
          await pty.waitFor('> {"command":"add","args":{"a":""},"id":3}');
          await pty.type("add 5");
          await pty.press("Enter");
          await pty.waitFor("! expected name=value, got 5");
          await pty.type(":json off");
          await pty.press("Enter");
          await pty.waitFor(`127.0.0.1:${port}>`);
          assert.ok(!(await pty.screen()).join("\n").includes("linesock-repl-help"));
          await pty.press("C-d");
          assert.equal(await pty.waitForExit(), 0);
        },
      );

      await t.step("server restart: says so, reconnects by itself, keeps history", async () => {
        const port = unusedPort();
        const first = await startTextServer(port);
        await using pty = await repl(port);
        const here = `127.0.0.1:${port}`;
        try {
          await pty.waitFor(`${here}>`);
          await pty.type("PING");
          await pty.press("Enter");
          await pty.waitFor("< PONG");
        } finally {
          await first.server.shutdown();
        }
        await pty.waitFor(`! connection to ${here} lost`);
        await pty.waitFor(`${here} disconnected>`);
        await pty.type("PING");
        await pty.press("Enter");
        await pty.waitFor("! not connected, nothing sent");
        await using _second = await startTextServer(port);
        await pty.waitFor(`* reconnected to ${here}`, 15_000);
        await pty.waitFor(async () => (await cursorRow(pty)) === `${here}>`);
        await pty.press("Up");
        await pty.waitFor(async () => (await cursorRow(pty)) === `${here}> PING`);
        await pty.press("Enter");
        await pty.waitFor((s) =>
          s.split("\n").filter((row) => row.startsWith("< PONG")).length === 2
        );
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step("cannot connect at start: exit status 3", async () => {
        await using pty = await repl(unusedPort());
        assert.equal(await pty.waitForExit(), 3);
        const output = (await pty.screen({ history: true })).join("\n");
        assert.match(output, /linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

/** The reply rows on the screen that start with `text`, each with its round-trip figure if any. */
async function replies(pty: Pty, text: string): Promise<{ row: string; ms?: number }[]> {
  const rows = (await pty.screen({ joined: true })).filter((row) => row.startsWith(`< ${text}`));
  return rows.map((row) => {
    const figure = /\((\d+(?:\.\d+)?) (ms|s)\)$/.exec(row);
    if (!figure) return { row };
    return { row, ms: Number(figure[1]) * (figure[2] === "s" ? 1000 : 1) };
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Round-trip times are right or absent (#11): each case waits well over a second between lines, so a
 * reply credited to an older line would show a figure of more than a second; a loopback round trip
 * takes milliseconds.
 */
Deno.test({
  name: ignoredName("repl: round-trip times are right or absent", TMUX_MISSING),
  ignore: TMUX_MISSING !== undefined,
  async fn(t) {
    const home = await Deno.makeTempDir({ prefix: "linesock-repl-home-" });
    const GAP_MS = 1500;
    const repl = (port: number) =>
      startPty(cliCommand("repl", ["--port", String(port)]), {
        columns: 120,
        rows: 30,
        env: ptyEnv(home, { NO_COLOR: "1" }),
      });
    const enter = async (pty: Pty, line: string) => {
      await pty.type(line);
      await pty.press("Enter");
    };
    const count = (pty: Pty, text: string, n: number) =>
      pty.waitFor(async () => (await replies(pty, text)).length === n, { joined: true });
    try {
      await t.step("a route that swallows its line: no figure after it, none wrong", async () => {
        await using server = await startServer([
          "--port",
          "0",
          "--routes",
          "tests/fixtures/routes/swallow.json",
        ]);
        await using pty = await repl(server.port);
        const prompt = `127.0.0.1:${server.port}>`;
        await pty.waitFor(prompt);
        await enter(pty, "PING");
        await count(pty, "PONG", 1);
        await enter(pty, "swallow");
        await pause(GAP_MS);
        await enter(pty, "PING");
        await count(pty, "PONG", 2);
        await pause(GAP_MS / 2);
        await enter(pty, "PING");
        await count(pty, "PONG", 3);
        const [before, ...after] = await replies(pty, "PONG");
        // Before the swallowed line, PING's reply is PING's: a figure, and a small one.
        assert.ok(before!.ms !== undefined && before!.ms < 1000, before!.row);
        // After it, a reply could be an answer to "swallow" as far as the repl can know: no figure.
        assert.deepEqual(after.map(({ row }) => row), ["< PONG", "< PONG"]);
        // A new connection is a new conversation: figures again.
        await enter(pty, ":reconnect");
        await pty.waitFor(`* connected to 127.0.0.1:${server.port}`);
        await pause(300);
        await enter(pty, "PING");
        await count(pty, "PONG", 4);
        const last = (await replies(pty, "PONG"))[3]!;
        assert.ok(last.ms !== undefined && last.ms < 1000, last.row);
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step(":json on and :json off against a text server: figures stay right", async () => {
        await using server = await startServer(["--port", "0"]);
        await using pty = await repl(server.port);
        const here = `127.0.0.1:${server.port}`;
        await pty.waitFor(`${here}>`);
        await enter(pty, "ping");
        await count(pty, "pong", 1);
        await enter(pty, ":json on");
        await pty.waitFor(`${here} json>`);
        await pause(GAP_MS);
        // The text server answers the JSON request with its unknown-command error: that request's.
        await enter(pty, "ping");
        await count(pty, "ERR unknown command: {", 1);
        await pause(GAP_MS);
        await enter(pty, ":json off");
        await pty.waitFor(async () => (await cursorRow(pty)) === `${here}>`);
        await pause(GAP_MS);
        await enter(pty, "ping");
        await count(pty, "pong", 2);
        await pause(GAP_MS / 2);
        await enter(pty, "ping");
        await count(pty, "pong", 3);
        const shown = [...await replies(pty, "pong"), ...await replies(pty, "ERR")];
        for (const { row, ms } of shown) {
          assert.ok(ms !== undefined, `no figure: ${row}`);
          assert.ok(ms < 1000, `a wrong figure: ${row}`);
        }
        const screen = (await pty.screen({ joined: true })).join("\n");
        assert.ok(!screen.includes("linesock-repl-help"), screen);
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });

      await t.step("an unknown command: its ERR reply is its only one", async () => {
        await using server = await startServer(["--port", "0"]);
        await using pty = await repl(server.port);
        await pty.waitFor(`127.0.0.1:${server.port}>`);
        await enter(pty, "FROB");
        await count(pty, "ERR unknown command: FROB", 1);
        await pause(GAP_MS);
        await enter(pty, "PING");
        await count(pty, "PONG", 1);
        for (const { row, ms } of [...await replies(pty, "ERR"), ...await replies(pty, "PONG")]) {
          assert.ok(ms !== undefined && ms < 1000, row);
        }
        await pty.press("C-d");
        assert.equal(await pty.waitForExit(), 0);
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("repl without a terminal behaves like send", async (t) => {
  await using text = await startTextServer();
  const port = String(text.port);

  await t.step("lines from stdin go out, replies come back plainly", async () => {
    const result = await runCli("repl", ["--port", port], { stdin: "PING\nSHOUT a b\n" });
    assert.equal(result.stdout, "PONG\nA B\n");
    assert.equal(result.code, 0, result.stderr);
  });

  await t.step("the last stdin line without \\n is sent and answered, --json too", async () => {
    const result = await runCli("repl", ["--port", port], { stdin: "PING\nSHOUT last" });
    assert.equal(result.stdout, "PONG\nLAST\n");
    assert.equal(result.code, 0, result.stderr);
    await using json = await startJsonServer();
    const typed = await runCli("repl", [
      "--port",
      String((json.addr as Deno.NetAddr).port),
      "--json",
    ], {
      stdin: "ping\nadd a=1 b=2",
    });
    assert.equal(
      typed.stdout,
      '{"status":0,"message":"pong","id":1}\n{"status":0,"message":3,"id":2}\n',
    );
    assert.equal(typed.code, 0, typed.stderr);
  });

  await t.step("--unix with --host or --port is a usage error, as in send", async () => {
    for (const extra of [["--host", "127.0.0.1"], ["--port", port]]) {
      const result = await runCli("repl", ["--unix", "/nonexistent.sock", ...extra], {
        stdin: "PING\n",
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /use either --unix or --host\/--port, not both/);
    }
  });

  await t.step("--help shows durations with their unit", async () => {
    const result = await runCli("repl", ["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--connect-timeout DURATION[\s\S]*?\(default:\s+10s\)/);
  });

  await t.step("an error reply gives exit status 1", async () => {
    const result = await runCli("repl", ["--port", port], { stdin: "NOPE\nPING\n" });
    assert.equal(result.stdout, "ERR unknown command: NOPE\nPONG\n");
    assert.equal(result.code, 1);
  });

  await t.step("meta-commands are not special: the line is sent", async () => {
    const result = await runCli("repl", ["--port", port], { stdin: ":quit\n" });
    assert.equal(result.stdout, "ERR unknown command: :quit\n");
  });

  await t.step("--json encodes typed commands", async () => {
    await using json = await startJsonServer();
    const result = await runCli("repl", [
      "--port",
      String((json.addr as Deno.NetAddr).port),
      "--json",
    ], {
      stdin: "add a=1 b=2\nnope\n",
    });
    assert.equal(
      result.stdout,
      '{"status":0,"message":3,"id":1}\n{"status":1,"message":"unknown command: nope","id":2}\n',
    );
    assert.equal(result.code, 1);
  });

  await t.step("cannot connect: exit status 3", async () => {
    const result = await runCli("repl", ["--port", String(unusedPort())], { stdin: "PING\n" });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
  });
});

Deno.test("repl without a terminal and send: one engine, one set of rules", async (t) => {
  /** Replies `reply(line)` to each line; keeps the connection open after a half-close if `hold`. */
  async function server(reply: (line: string) => string | undefined, hold?: Promise<void>) {
    const protocol: LineProtocol = {
      stripCR: false,
      onLine: (bytes) => reply(new TextDecoder().decode(bytes)),
      ...(hold ? { onEnd: () => hold } : {}),
    };
    return await serve({ port: 0 }, protocol);
  }
  const port = (server: Server) => String((server.addr as Deno.NetAddr).port);

  await t.step("an error reply starts with the word ERR: ERRATA is not one", async () => {
    await using words = await server((line) => line === "bad" ? "ERR: bad" : "ERRATA: none");
    for (const [stdin, code] of [["fine\n", 0], ["bad\n", 1]] as const) {
      const repl = await runCli("repl", ["--port", port(words)], { stdin });
      const send = await runCli("send", ["--port", port(words)], { stdin });
      assert.equal(repl.code, code, `repl, ${stdin}: ${repl.stderr}`);
      assert.equal(send.code, code, `send, ${stdin}: ${send.stderr}`);
      assert.equal(repl.stdout, send.stdout);
    }
  });

  await t.step(
    "JSON mode: a line that is not a JSON response is an error, as in send",
    async () => {
      await using text = await server(() => "hello");
      const repl = await runCli("repl", ["--port", port(text), "--protocol", "json"], {
        stdin: "ping\n",
      });
      const send = await runCli("send", ["--port", port(text), "--protocol", "json", "ping"]);
      assert.equal(repl.stdout, "hello\n");
      assert.equal(repl.code, 1, repl.stderr);
      assert.equal(send.code, 1, send.stderr);
    },
  );

  await t.step("replies byte for byte, as send prints them", async () => {
    await using crlf = await server((line) => `${line}\r`);
    const stdin = "a\r\nb\n";
    const repl = await runCli("repl", ["--port", port(crlf)], { stdin });
    const send = await runCli("send", ["--port", port(crlf)], { stdin });
    assert.equal(repl.stdout, "a\r\r\nb\r\n");
    assert.deepEqual(repl.stdoutBytes, send.stdoutBytes);
  });

  await t.step("--timeout: the longest wait for each reply once stdin ended (exit 4)", async () => {
    const hold = Promise.withResolvers<void>();
    await using quiet = await server((line) => line === "now" ? "ok" : undefined, hold.promise);
    try {
      const result = await runCli("repl", ["--port", port(quiet), "--timeout", "300ms"], {
        stdin: "now\nlater\n",
      });
      assert.equal(result.stdout, "ok\n");
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, /no reply for 300 ms after the input ended/);
    } finally {
      hold.resolve();
    }
  });

  await t.step("--connect-timeout 0 is no limit, and --help says so in both", async () => {
    await using echo = await server((line) => line);
    const result = await runCli("repl", ["--port", port(echo), "--connect-timeout", "0"], {
      stdin: "x\n",
    });
    assert.equal(result.stdout, "x\n");
    for (const command of ["send", "repl"] as const) {
      const help = (await runCli(command, ["--help"])).stdout.replace(/\s+/g, " ");
      assert.match(
        help,
        /--connect-timeout DURATION give up connecting after this long \(0: no limit\)/,
      );
      assert.match(
        help,
        /--timeout DURATION longest wait for each awaited reply, counted from the line or the previous reply/,
      );
    }
  });
});

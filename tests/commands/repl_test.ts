/**
 * End-to-end tests of `linesock repl`: the real CLI (with the `repl` task's permissions) in a real
 * pseudo-terminal (tmux), against real servers on loopback; and its non-terminal mode via runCli.
 */
import assert from "node:assert/strict";
import { type ConnectionContext, serve, type Server } from "../../lib/server/server.ts";
import { runCli } from "../_util/cli.ts";
import { cliCommand, HAS_TMUX, type Pty, ptyEnv, startPty } from "../_util/pty.ts";

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

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
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
  name: "repl in a terminal",
  ignore: !HAS_TMUX,
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
        "JSON mode: typed commands become requests, responses are readable",
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
          await pty.type("add a=");
          await pty.press("Enter");
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
        const port = freePort();
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
        await using pty = await repl(freePort());
        assert.equal(await pty.waitForExit(), 3);
        const output = (await pty.screen({ history: true })).join("\n");
        assert.match(output, /linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
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
    assert.match(result.stdout, /--connect-timeout <duration>[\s\S]*?\(default:\s+10s\)/);
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
    const result = await runCli("repl", ["--port", String(freePort())], { stdin: "PING\n" });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
  });
});

/**
 * `linesock serve --protocol chat` as a real process: its options and their usage errors, a bus
 * that cannot be reached, a conversation, the slow-receiver policy ending in a real disconnect, and
 * a large raw broadcast with bounded memory. (The rooms across instances: chat_nats_test.ts.)
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, startServer, within } from "../_support/cli.ts";
import { unusedPort } from "../_support/ports.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { ignoredName } from "../_support/tools.ts";
import { connect, type LineConnection } from "../../lib/client/client.ts";

/** The peak resident memory of a process, in bytes (Linux). */
async function peakRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Reads lines until one satisfies `done`; returns all of them, that one last. */
async function readUntil(
  conn: LineConnection,
  done: (line: string) => boolean,
  ms = 10_000,
): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await conn.readLine(ms);
    if (line === null) throw new Error(`closed after ${JSON.stringify(lines.slice(-3))}`);
    lines.push(line);
    if (done(line)) return lines;
  }
}

Deno.test("linesock serve --protocol chat", async (t) => {
  await t.step("options that do not fit are one usage error line each", async () => {
    const creds = await Deno.makeTempFile();
    const routes = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(routes, '{ "routes": [] }');
    try {
      const cases: [string[], string][] = [
        [["--raw"], "--raw needs --protocol chat"],
        [["--bus", "nats://127.0.0.1:4222"], "--bus needs --protocol chat"],
        [["--chat-rate", "5"], "--chat-rate needs --protocol chat"],
        [["--protocol", "chat", "--bus-prefix", "x"], "--bus-prefix needs --bus"],
        [["--protocol", "chat", "--bus-creds", creds], "--bus-creds needs --bus"],
        [
          ["--protocol", "chat", "--workers", "2"],
          "--protocol chat with --workers needs --bus: each worker has its own rooms, and they " +
          "share them through NATS",
        ],
        [["--protocol", "chat", "--raw", "--routes", routes], "--routes does not apply to --raw"],
        [
          ["--protocol", "chat", "--bus", "http://127.0.0.1:4222"],
          "--bus: (expected nats://HOST:PORT or tls://HOST:PORT)",
        ],
        [
          ["--protocol", "chat", "--bus", "nats://127.0.0.1:4222", "--bus-prefix", "a.*"],
          '--bus-prefix: invalid subject prefix: "a.*" (tokens separated by dots, no spaces or ' +
          "wildcards)",
        ],
        [
          ["--protocol", "chat", "--bus", "nats://127.0.0.1:4222", "--bus-cert", creds],
          "--bus-cert and --bus-key go together",
        ],
        [
          ["--protocol", "chat", "--bus", "nats://127.0.0.1:4222", "--bus-creds", "/nonexistent"],
          "--bus-creds: cannot read /nonexistent: ",
        ],
      ];
      for (const [args, message] of cases) {
        const result = await runCli("serve", ["--port", "0", ...args]);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.ok(
          result.stderr.startsWith(`linesock: ${message}`),
          `${args.join(" ")}: ${result.stderr}`,
        );
        assert.equal(result.stdout, "");
      }
    } finally {
      await Deno.remove(creds);
      await Deno.remove(routes);
    }
  });

  await t.step("a bus that cannot be reached is one error line, exit 3", async () => {
    const port = unusedPort();
    const result = await runCli("serve", [
      "--protocol",
      "chat",
      "--port",
      "0",
      "--bus",
      `nats://127.0.0.1:${port}`,
    ]);
    assert.equal(result.code, 3, result.stderr);
    assert.equal(
      result.stderr,
      `linesock: Cannot connect to the bus nats://127.0.0.1:${port}: connection refused\n`,
    );
  });

  await t.step("two clients talk; the summary counts their lines", async () => {
    await using server = await startServer(["--protocol", "chat", "--port", "0"]);
    {
      await using alice = await connect({ port: server.port });
      await using bob = await connect({ port: server.port });
      await alice.join("lobby", { name: "alice" });
      await bob.join("lobby", { name: "bob" });
      await readUntil(alice, (line) => line === "* guest2 is now known as bob");
      await alice.send("hi bob");
      assert.equal(await bob.readLine(5000), "<alice> hi bob");
      await bob.send("/quit");
      assert.equal(await bob.readLine(5000), "* bye");
      assert.equal(await alice.readLine(5000), "* bob left lobby");
    }
    const result = await server.stop();
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^summary: 2 connections, 6 lines in, /m);
  });

  await t.step({
    name: ignoredName(
      "the repl shows the room's lines as they arrive, and completes the commands",
      TMUX_MISSING,
    ),
    ignore: TMUX_MISSING !== undefined,
    fn: async () => {
      await using server = await startServer(["--protocol", "chat", "--port", "0"]);
      const home = await Deno.makeTempDir({ prefix: "linesock-chat-repl-" });
      try {
        await using pty = await startPty(cliCommand("repl", ["--port", String(server.port)]), {
          columns: 100,
          env: ptyEnv(home, { NO_COLOR: "1" }),
        });
        await pty.waitFor(/\* welcome guest1: you are in lobby/);
        // Its HELP probe was answered (before /help's answer), not said in the room: /ni
        // completes to /nick.
        await pty.type("/help");
        await pty.press("Enter");
        await pty.waitFor("* commands: /nick NAME, /join ROOM, /who, /rooms, /quit, /help");
        await pty.type("/ni");
        await pty.press("Tab");
        await pty.type(" alice");
        await pty.press("Enter");
        await pty.waitFor("* you are now alice");
        await using bob = await connect({ port: server.port });
        await bob.join("lobby", { name: "bob" });
        await bob.send("hello alice");
        await pty.waitFor("<bob> hello alice");
        await pty.type("hi bob");
        await pty.press("Enter");
        assert.equal(await bob.readLine(5000), "<alice> hi bob");
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    },
  });

  await t.step(
    "a client that stops reading is disconnected at once (--chat-queue); the others " +
      "get every line",
    async () => {
      await using server = await startServer([
        "--protocol",
        "chat",
        "--port",
        "0",
        "--chat-queue",
        "64KiB",
        "--chat-rate",
        "0",
        "--write-timeout",
        "5s",
      ]);
      await using sender = await connect({ port: server.port });
      await using reader = await connect({ port: server.port });
      const sleeper = await Deno.connect({ port: server.port });
      try {
        await sender.join("lobby", { name: "sender" });
        await reader.join("lobby", { name: "reader" });
        const line = "s".repeat(1000);
        let sent = 0;
        let got = 0;
        let disconnected = false;
        const reading = (async (): Promise<void> => {
          for (;;) {
            const next = await reader.readLine(30_000);
            if (next === null) throw new Error("the reader was closed");
            if (!next.startsWith("<sender> ")) continue;
            assert.equal(next, `<sender> ${got} ${line}`);
            got++;
            if (disconnected && got === sent) return;
          }
        })();
        // Awaited below; a failure meanwhile must not be an unhandled rejection.
        reading.catch(() => {});
        while (!/is disconnected: it reads too slowly/.test(server.stderr())) {
          for (let i = 0; i < 200; i++) sender.enqueue(`${sent++} ${line}`);
          await sender.flush();
          await new Promise((resolve) => setTimeout(resolve, 0));
          assert.ok(sent < 500_000, "the sleeper was never disconnected");
        }
        disconnected = true;
        sender.enqueue(`${sent++} ${line}`);
        await sender.flush();
        await within(reading, 60_000, "the reader's lines").catch((error) => {
          throw new Error(`${error}\nserver log:\n${server.stderr().slice(-3000)}`);
        });
        // The sleeper's connection is closed for real, at once (not at the 5 s write timeout).
        await server.waitForStderr(
          /Connection \d+ from [^ ]+ closed after \d+ ms: .*\(too slow\)/,
          20_000,
        );
        assert.doesNotMatch(server.stderr(), /write timeout/);
        const buffer = new Uint8Array(1024 * 1024);
        let received = 0;
        for (;;) {
          const count = await within(
            sleeper.read(buffer).catch(() => null),
            20_000,
            "the sleeper's end",
          );
          if (count === null) break;
          received += count;
        }
        assert.ok(received > 0);
      } finally {
        sleeper.close();
      }
    },
  );

  await t.step("a 1 GiB raw broadcast to two readers in bounded memory", async () => {
    await using server = await startServer(["--protocol", "chat", "--raw", "--port", "0"]);
    const sender = await Deno.connect({ port: server.port });
    const readers = [
      await Deno.connect({ port: server.port }),
      await Deno.connect({ port: server.port }),
    ];
    try {
      // Each is in the room once its line was relayed: readers[1]'s reaches readers[0] and sender.
      await readers[1]!.write(new TextEncoder().encode("ready\n"));
      for (const conn of [readers[0]!, sender]) {
        const seen = new Uint8Array(16);
        assert.equal(await within(conn.read(seen), 5000, "the ready line"), 6);
      }
      const total = 1024 * 1024 * 1024;
      const lineLength = 1024;
      const chunk = new Uint8Array(256 * 1024);
      for (let offset = 0; offset < chunk.length; offset += lineLength) {
        chunk.fill(0x61 + (offset / lineLength) % 26, offset, offset + lineLength - 1);
        chunk[offset + lineLength - 1] = 0x0a;
      }
      const counted = readers.map(async (reader) => {
        const buffer = new Uint8Array(256 * 1024);
        let count = 0;
        let newlines = 0;
        while (count < total) {
          const read = await reader.read(buffer);
          if (read === null) break;
          for (let index = 0; index < read; index++) if (buffer[index] === 0x0a) newlines++;
          count += read;
        }
        return { count, newlines };
      });
      const started = performance.now();
      for (let sent = 0; sent < total; sent += chunk.length) {
        for (let offset = 0; offset < chunk.length;) {
          offset += await sender.write(chunk.subarray(offset));
        }
      }
      const results = await within(Promise.all(counted), 120_000, "the readers' bytes");
      const seconds = (performance.now() - started) / 1000;
      for (const result of results) {
        assert.deepEqual(result, { count: total, newlines: total / lineLength });
      }
      const peak = await peakRss(server.process.pid);
      console.log(
        `raw broadcast: 1 GiB to 2 readers in ${seconds.toFixed(1)} s, server peak RSS ` +
          `${(peak / 1024 / 1024).toFixed(0)} MiB`,
      );
      assert.ok(peak < 160 * 1024 * 1024, `peak RSS ${peak}`);
    } finally {
      sender.close();
      for (const reader of readers) reader.close();
    }
  });
});

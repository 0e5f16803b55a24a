import assert from "node:assert/strict";
import { runCli, type RunningServer, startServer, taskArgs, within } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";
import tls from "node:tls";
import { ignoredName } from "../_support/tools.ts";

const SUMMARY =
  /^summary: (\d+) connections?, (\d+) lines? in, (\d+) lines? out, (\d+) bytes? in, (\d+) bytes? out, (\d+) errors?$/;

function target(server: RunningServer): Deno.Addr | number {
  return server.path ? { transport: "unix", path: server.path } : server.port;
}

async function talk(server: RunningServer, lines: string[]): Promise<string[]> {
  await using session = await LineSession.open(target(server));
  return await session.exchange(lines);
}

/** The resident memory of a process, in bytes (Linux). */
async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Makes a socket file that no server listens on, as a crashed server leaves it. */
function makeStaleSocket(path: string): void {
  const listener = Deno.listen({ transport: "unix", path });
  Deno.linkSync(path, `${path}.keep`);
  listener.close();
  Deno.renameSync(`${path}.keep`, path);
}

Deno.test("linesock serve", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-serve-" });
  try {
    await t.step("prints its address first and speaks the text protocol", async () => {
      await using server = await startServer(["--port", "0", "--name", "cli"]);
      assert.equal(server.hostname, "127.0.0.1");
      assert.ok(server.port > 0);
      const replies = await talk(server, [
        "PING",
        "ping",
        "HELLO",
        "ECHO a b",
        "HELP",
        "NOPE",
        "[t]x",
      ]);
      assert.deepEqual(replies, [
        "PONG",
        "pong",
        "cli",
        "a b",
        "commands: PING HELLO TIME ECHO HELP QUIT CLOSE DISCONNECT [t] [d]",
        "ERR unknown command: NOPE",
        "x",
      ]);
      await using session = await LineSession.open(server.port);
      await session.write("[d]\n");
      assert.deepEqual(await session.readAll(), ["Done!"]);
      assert.deepEqual(await talk(server, ["TIME"]).then((lines) => lines.length), 1);
      await server.waitForStderr(/Connection \d+ from 127\.0\.0\.1:\d+ closed after/);
    });

    await t.step("SIGTERM and SIGINT stop it gracefully with a summary", async () => {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        const server = await startServer(["--port", "0"]);
        assert.deepEqual(await talk(server, ["PING", "NOPE"]), [
          "PONG",
          "ERR unknown command: NOPE",
        ]);
        const result = await server.stop(signal);
        assert.equal(result.code, 0, result.stderr);
        const match = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
        assert.ok(match, `no summary in ${JSON.stringify(server.stdoutLines)}`);
        assert.deepEqual(match.slice(1).map(Number), [1, 2, 2, 10, 31, 1]);
        assert.match(result.stderr, new RegExp(`${signal}: shutting down`));
      }
    });

    await t.step("a second signal exits at once", async () => {
      // A client that never reads keeps the graceful shutdown waiting for the grace time.
      await using server = await startServer([
        "--port",
        "0",
        "--protocol",
        "echo",
        "--grace",
        "60s",
      ]);
      await using hog = await LineSession.open(server.port);
      const chunk = new Uint8Array(1024 * 1024).fill(0x0a);
      for (let attempt = 0; attempt < 256; attempt++) {
        const done = await within(hog.write(chunk).then(() => true), 2000, "write").catch(() =>
          false
        );
        if (!done) break;
      }
      server.process.kill("SIGTERM");
      await server.waitForStderr("SIGTERM: shutting down");
      const result = await within(server.stop("SIGTERM"), 10_000, "exit after the second signal");
      assert.equal(result.code, 143);
      hog.close();
    });

    await t.step("Ctrl-D on a terminal stops it gracefully", async () => {
      const command = [Deno.execPath(), ...taskArgs("serve"), "--port", "0"]
        .map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
      const child = new Deno.Command("script", {
        args: ["-qfec", command, "/dev/null"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const writer = child.stdin.getWriter();
      let output = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const readUntil = async (pattern: RegExp) => {
        while (!pattern.test(output)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`output ended without ${pattern}: ${output}`);
          output += value;
        }
      };
      try {
        await within(readUntil(/listening on tcp:\/\/127\.0\.0\.1:\d+/), 15_000, "listening");
        const port = Number(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]);
        await using session = await LineSession.open(port);
        assert.deepEqual(await session.exchange(["PING"]), ["PONG"]);
        await writer.write(new Uint8Array([0x04]));
        await within(readUntil(/summary: .* errors?/), 15_000, "summary");
        const status = await within(child.status, 15_000, "exit");
        assert.equal(status.code, 0, output);
        assert.match(output, /end of input: shutting down/);
      } finally {
        await writer.close().catch(() => {});
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        await child.stderr.cancel().catch(() => {});
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
        await child.status;
      }
    });

    await t.step("IPv6 loopback", async () => {
      await using server = await startServer(["--host", "::1", "--port", "0"]);
      assert.match(server.url, /^tcp:\/\/\[::1\]:\d+$/);
      await using session = await LineSession.open({
        transport: "tcp",
        hostname: "::1",
        port: server.port,
      });
      assert.deepEqual(await session.exchange(["PING"]), ["PONG"]);
    });

    await t.step("echo protocol returns every byte", async () => {
      await using server = await startServer(["--port", "0", "--protocol", "echo"]);
      await using session = await LineSession.open(server.port);
      const sent = new Uint8Array([0x61, 0x0d, 0x0a, 0x00, 0xff, 0x0a, 0x62]);
      await session.write(sent);
      await session.closeWrite();
      assert.deepEqual(await session.readAllBytes(), sent);
    });

    await t.step("json protocol", async () => {
      await using server = await startServer(["--port", "0", "--protocol", "json", "--name", "j"]);
      const replies = (await talk(server, [
        '{"command":"ping","id":1}',
        "{bad",
        '{"command":"hello"}',
        '{"command":"shutdown"}',
      ])).map((line) => JSON.parse(line));
      assert.deepEqual(replies.map((reply) => reply.status), [0, 2, 0, 5]);
      assert.deepEqual(replies[0], { status: 0, message: "pong", extra: null, id: 1 });
      assert.equal(replies[2].message, "j");
    });

    await t.step(
      "half-close: every pipelined line is answered in order, then the close",
      async () => {
        await using server = await startServer(["--port", "0"]);
        const lines = Array.from({ length: 20_000 }, (_, index) => `ECHO ${index}`);
        const replies = await talk(server, lines);
        assert.equal(replies.length, lines.length);
        assert.deepEqual(replies, lines.map((_, index) => `${index}`));
      },
    );

    await t.step(
      "a client that stops reading is no longer read; memory stays bounded",
      async () => {
        await using server = await startServer(["--port", "0", "--protocol", "echo"]);
        assert.deepEqual(await talk(server, ["warm up"]), ["warm up"]);
        const before = await rss(server.process.pid);
        await using hog = await LineSession.open(server.port);
        const chunk = new Uint8Array(1024 * 1024).fill(0x78);
        chunk[chunk.length - 1] = 0x0a;
        let written = 0;
        // Try to push 200 MiB without reading; the server must stop reading long before that.
        for (let attempt = 0; attempt < 200; attempt++) {
          const done = await within(hog.write(chunk).then(() => true), 2000, "write").catch(() =>
            false
          );
          if (!done) break;
          written += chunk.length;
        }
        assert.ok(written < 200 * chunk.length, "the server read everything");
        const after = await rss(server.process.pid);
        assert.ok(
          after - before < 64 * 1024 * 1024,
          `RSS grew by ${((after - before) / 1048576).toFixed(1)} MiB after ${written >> 20} MiB`,
        );
        assert.deepEqual(await talk(server, ["others are served"]), ["others are served"]);
      },
    );

    await t.step("--max-clients 1 --queue 1: one waits, the next gets ERR busy", async () => {
      await using server = await startServer(["--port", "0", "--max-clients", "1", "--queue", "1"]);
      await using first = await LineSession.open(server.port);
      await first.write("PING\n");
      assert.equal(await first.readLine(), "PONG");
      await using second = await LineSession.open(server.port);
      await second.write("ECHO waited\n");
      await using third = await LineSession.open(server.port);
      assert.deepEqual(await third.readAll(), ["ERR busy"]);
      await first.write("QUIT\n");
      assert.deepEqual(await first.readAll(), ["BYE"]);
      assert.equal(await second.readLine(), "waited");
    });

    await t.step(
      "--idle-timeout: a farewell line, also for a line without its newline",
      async () => {
        await using server = await startServer(["--port", "0", "--idle-timeout", "300ms"]);
        await using silent = await LineSession.open(server.port);
        await using stuck = await LineSession.open(server.port);
        await stuck.write("PING\nPIN");
        assert.deepEqual(await silent.readAll(), ["ERR idle timeout"]);
        assert.deepEqual(await stuck.readAll(), ["PONG", "ERR idle timeout"]);
      },
    );

    await t.step("--max-line: ERR line too long, then the connection carries on", async () => {
      await using server = await startServer(["--port", "0", "--max-line", "1KiB"]);
      assert.deepEqual(await talk(server, ["x".repeat(5000), "PING"]), [
        "ERR line too long (limit 1024 bytes)",
        "PONG",
      ]);
    });

    await t.step("--close-after, --greeting and --invalid-reply", async () => {
      await using server = await startServer([
        "--port",
        "0",
        "--close-after",
        "2",
        "--greeting",
        "welcome",
        "--invalid-reply",
        "invalid",
      ]);
      await using session = await LineSession.open(server.port);
      await session.write(new Uint8Array([0xff, 0x0a]));
      await session.write("PING\nPING\n");
      assert.deepEqual(await session.readAll(), ["welcome", "invalid", "PONG"]);
    });

    await t.step("SHUTDOWN with --allow-shutdown stops the process with a summary", async () => {
      await using server = await startServer(["--port", "0", "--allow-shutdown"]);
      assert.deepEqual(await talk(server, ["SHUTDOWN"]), ["BYE shutting down"]);
      const status = await within(server.process.status, 10_000, "exit");
      assert.equal(status.code, 0);
      const result = await server.stop();
      assert.match(result.stdout, /summary: 1 connection, 1 line in, 1 line out/);
    });

    await t.step("Unix socket: owner-only by default, removed on shutdown", async () => {
      const path = `${dir}/default.sock`;
      const server = await startServer(["--unix", path]);
      assert.equal(server.url, `unix://${path}`);
      assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o600);
      assert.deepEqual(await talk(server, ["PING"]), ["PONG"]);
      const result = await server.stop("SIGTERM");
      assert.equal(result.code, 0);
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    });

    await t.step("Unix socket: --socket-mode and --socket-group", async () => {
      const path = `${dir}/mode.sock`;
      const gid = Deno.gid()!;
      await using server = await startServer([
        "--unix",
        path,
        "--socket-mode",
        "660",
        "--socket-group",
        String(gid),
      ]);
      const info = await Deno.lstat(path);
      assert.equal(info.mode! & 0o777, 0o660);
      assert.equal(info.gid, gid);
      assert.deepEqual(await talk(server, ["PING"]), ["PONG"]);
    });

    await t.step("--socket-mode: bits above 777 are refused, bits for others warn", async () => {
      const refused = await runCli("serve", [
        "--unix",
        `${dir}/suid.sock`,
        "--socket-mode",
        "4755",
      ]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /up to 777/);
      const path = `${dir}/open.sock`;
      await using server = await startServer(["--unix", path, "--socket-mode", "0666"]);
      await server.waitForStderr(
        "warning: --socket-mode 666 lets every user of this machine connect",
      );
      assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o666);
    });

    await t.step("cannot listen: the message names the address and says why (exit 1)", async () => {
      await using taken = await startServer(["--port", "0"]);
      const cases: [string[], string][] = [
        [["--port", String(taken.port)], `tcp://127.0.0.1:${taken.port}: address already in use`],
        [["--unix", `${dir}/missing/x.sock`], `unix://${dir}/missing/x.sock: no such directory`],
        [
          ["--host", "nosuch.invalid", "--port", "1991"],
          "tcp://nosuch.invalid:1991: cannot resolve host",
        ],
      ];
      for (const [args, expected] of cases) {
        const result = await runCli("serve", args);
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr.trim(), `linesock: Cannot listen on ${expected}`);
      }
    });

    await t.step("--max-line does not apply to echo; --idle-timeout does", async () => {
      const result = await runCli("serve", ["--protocol", "echo", "--max-line", "4k"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--max-line does not apply to the echo protocol/);
      await using server = await startServer([
        "--port",
        "0",
        "--protocol",
        "echo",
        "--idle-timeout",
        "200ms",
      ]);
      await using session = await LineSession.open(server.port);
      await session.write("abc\n");
      assert.equal(await session.readLine(), "abc");
      assert.deepEqual(await session.readAll(), ["ERR idle timeout"]);
    });

    await t.step(
      "Unix socket: a stale file is replaced, a live server is never stolen",
      async () => {
        const path = `${dir}/shared.sock`;
        makeStaleSocket(path);
        await using server = await startServer(["--unix", path, "--protocol", "json"]);
        const second = await runCli("serve", ["--unix", path]);
        assert.equal(second.code, 1);
        assert.match(second.stderr, /another server is listening there/);
        assert.equal(second.stdout, "");
        const [reply] = await talk(server, ['{"command":"ping"}']);
        assert.equal(reply, '{"status":0,"message":"pong","extra":null}');
      },
    );

    await t.step("--routes: two small protocols reproduced exactly", async () => {
      const prefixed = `${dir}/prefixed.json`;
      await Deno.writeTextFile(
        prefixed,
        JSON.stringify({
          routes: [
            { match: { exact: "PING" }, reply: "+OK PONG" },
            { match: { regex: "^GET (?<key>\\w+)$" }, reply: "+OK value-of-{key}" },
            { match: { regex: "^.*$" }, reply: "+ERR unknown" },
          ],
        }),
      );
      await using first = await startServer(["--port", "0", "--routes", prefixed]);
      assert.deepEqual(await talk(first, ["PING", "GET color", "what"]), [
        "+OK PONG",
        "+OK value-of-color",
        "+ERR unknown",
      ]);

      const acked = `${dir}/acked.json`;
      await Deno.writeTextFile(
        acked,
        JSON.stringify({
          routes: [
            { match: { exact: "LOGOUT" }, reply: "ACK LOGOUT", close: true },
            { match: { prefix: "SAY " }, reply: "SAID {rest}" },
          ],
        }),
      );
      await using second = await startServer(["--port", "0", "--routes", acked]);
      await using session = await LineSession.open(second.port);
      await session.write("SAY hi\nPING\nLOGOUT\n");
      assert.deepEqual(await session.readAll(), ["SAID hi", "PONG", "ACK LOGOUT"]);
    });

    await t.step("--routes: a mistake is reported with its line and column (exit 2)", async () => {
      const bad = `${dir}/bad.json`;
      await Deno.writeTextFile(
        bad,
        '{\n  "routes": [\n    { "match": { "regex": "(" }, "reply": "x" }\n  ]\n}\n',
      );
      const result = await runCli("serve", ["--port", "0", "--routes", bad]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /bad\.json:3:\d+: /);
    });

    await t.step({
      name: ignoredName(
        "TLS: a close without close_notify is a normal end; a failed handshake is one line",
        OPENSSL_MISSING,
      ),
      ignore: OPENSSL_MISSING !== undefined,
      async fn() {
        await using certificates = await makeTestCertificates();
        await using server = await startServer([
          "--port",
          "0",
          "--tls-cert",
          certificates.server.cert,
          "--tls-key",
          certificates.server.key,
        ]);
        const ca = await Deno.readTextFile(certificates.caFile);
        // node:tls's destroy() drops the connection without a TLS close_notify.
        await new Promise<void>((resolve, reject) => {
          const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca }, () => {
            socket.write("PING\n");
          });
          socket.on("data", () => {
            socket.destroy();
            resolve();
          });
          socket.on("error", reject);
        });
        await server.waitForStderr(/Connection 1 from \S+ closed after .*\(closed by client/);
        // A plain-text client: the handshake fails.
        await using plain = await LineSession.open(server.port);
        await plain.write("PING\n");
        await plain.readAll().catch(() => []);
        await server.waitForStderr("failed: TLS:");
        const stderr = server.stderr();
        assert.doesNotMatch(stderr, /UnexpectedEof/);
        assert.equal(stderr.match(/failed:/g)?.length, 1, stderr);
        assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
      },
    });

    await t.step("usage errors exit 2; --help shows examples", async () => {
      for (
        const args of [
          ["--unix", `${dir}/x.sock`, "--port", "5"],
          ["--protocol", "smtp"],
          ["--port", "70000"],
          ["--bogus"],
          ["--idle-timeout", "soon"],
        ]
      ) {
        const result = await runCli("serve", args);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.notEqual(result.stderr, "");
      }
      const help = await runCli("serve", ["--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Examples:/);
      assert.match(help.stdout, /--idle-timeout/);
      // Every limit has a finite default.
      const flat = help.stdout.replace(/\s+/g, " ");
      for (
        const pattern of [
          /--write-timeout DURATION [^-]*\(default: 30s\)/,
          /--write-buffer SIZE [^-]*\(default: 1MiB\)/,
          /--queue N [^-]*\(default: 64\)/,
          /--max-connections N [^-]*\(default: 16384\)/,
          /--queue-timeout DURATION/,
        ]
      ) {
        assert.match(flat, pattern);
      }
    });

    await t.step(
      "--queue-timeout: a client that waits too long for a slot gets ERR busy",
      async () => {
        await using server = await startServer([
          "--port",
          "0",
          "--max-clients",
          "1",
          "--queue-timeout",
          "200ms",
        ]);
        await using first = await LineSession.open(server.port);
        await first.write("PING\n");
        assert.equal(await first.readLine(), "PONG");
        await using second = await LineSession.open(server.port);
        assert.deepEqual(await second.readAll(), ["ERR busy"]);
        const alone = await runCli("serve", ["--port", "0", "--queue-timeout", "1s"]);
        assert.equal(alone.code, 2);
        assert.match(alone.stderr, /need --max-clients/);
      },
    );

    await t.step("--log-format json and --quiet", async () => {
      const json = await startServer(["--port", "0", "--log-format", "json"]);
      assert.deepEqual(await talk(json, ["PING"]), ["PONG"]);
      await json.waitForStderr("closed after");
      const result = await json.stop();
      const records = result.stderr.split("\n").filter((line) => line.startsWith("{"));
      assert.ok(records.length >= 3);
      for (const record of records) assert.equal(typeof JSON.parse(record).message, "string");

      const quiet = await startServer(["--port", "0", "--quiet"]);
      assert.deepEqual(await talk(quiet, ["PING"]), ["PONG"]);
      const quietResult = await quiet.stop();
      assert.equal(quietResult.code, 0);
      assert.doesNotMatch(quietResult.stderr, /Connection|Listening/);
    });

    await t.step(
      "--workers 2: connections spread over both, one summary adds them up, SIGTERM stops all",
      async () => {
        const server = await startServer(["--port", "0", "--workers", "2", "--log-format", "json"]);
        const connections = 30;
        for (let index = 0; index < connections; index++) {
          assert.deepEqual(await talk(server, ["PING"]), ["PONG"]);
        }
        await server.waitForStderr((text) => text.split("closed after").length - 1 >= connections);
        const result = await server.stop("SIGTERM", 15_000);
        assert.equal(result.code, 0, result.stderr);
        const records = result.stderr.split("\n").filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line));
        const workers = new Set(
          records.filter((record) => /opened/.test(record.message))
            .map((record) => record.properties.worker),
        );
        assert.deepEqual([...workers].sort(), [1, 2]);
        const match = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
        assert.ok(match, `no summary in ${JSON.stringify(server.stdoutLines)}`);
        assert.deepEqual(match.slice(1).map(Number), [
          connections,
          connections,
          connections,
          5 * connections,
          5 * connections,
          0,
        ]);
        assert.equal(server.stdoutLines.filter((line) => line.startsWith("summary:")).length, 1);
      },
    );

    await t.step("--workers with --unix, or a bad count, is a usage error", async () => {
      const unix = await runCli("serve", ["--workers", "2", "--unix", `${dir}/w.sock`]);
      assert.equal(unix.code, 2);
      assert.match(unix.stderr, /--workers/);
      const bad = await runCli("serve", ["--workers", "0"]);
      assert.equal(bad.code, 2);
    });

    await t.step("--proxy-protocol: logs and routes see the address from the header", async () => {
      const routes = `${dir}/peer-routes.json`;
      await Deno.writeTextFile(
        routes,
        JSON.stringify({ routes: [{ match: { exact: "WHO" }, reply: "you are {peer}" }] }),
      );
      const server = await startServer([
        "--port",
        "0",
        "--proxy-protocol",
        "--routes",
        routes,
        "--log-format",
        "json",
      ]);
      await using session = await LineSession.open(server.port);
      await session.write("PROXY TCP4 192.0.2.44 127.0.0.1 45678 1991\r\nWHO\n");
      assert.deepEqual(await session.readLines(1), ["you are 192.0.2.44:45678"]);
      await session.closeWrite();
      assert.deepEqual(await session.readAll(), []);
      assert.deepEqual(await talk(server, ["PING"]), [
        "ERR invalid PROXY protocol header: the connection does not start with a PROXY header",
      ]);
      await server.waitForStderr('"peer":"192.0.2.44:45678"');
      const result = await server.stop();
      assert.equal(result.code, 0, result.stderr);
      const opened = result.stderr.split("\n").filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line)).filter((record) => /opened/.test(record.message));
      assert.deepEqual(opened.map((record) => record.properties.peer), ["192.0.2.44:45678"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

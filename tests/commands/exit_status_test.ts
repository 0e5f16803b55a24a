/**
 * Every exit status and error message that README.md ("Exit statuses") and docs/*.md document, for
 * every subcommand, produced through the real CLI: a process with its task's permission flags
 * against real servers. One table, one step per row; a row names the document that promises it.
 *
 * Status 70 comes from an injected internal failure (tests/_support/internal_failure_main.ts: the real
 * `main()` with subcommands that throw, as a bug would); 130 from a SIGINT sent to a client waiting
 * on a server that never answers, and to `serve` a second time. A second table pins the JSON forms of
 * the server's own error replies (`busy`, `too_many_connections`, `internal`).
 */
import assert from "node:assert/strict";
import {
  type CliResult,
  type CliTask,
  internalFailureArgs,
  runCli,
  type RunningServer,
  startServer,
  taskArgs,
} from "../_support/cli.ts";
import { PYTHON_MISSING, type ResetServer, startResetServer } from "../_support/reset_server.ts";
import { LineSession } from "../_support/line_session.ts";
import { unusedPort } from "../_support/ports.ts";
import { routesFile } from "../_support/routes.ts";
import { WAIT_MS, waitUntil, within } from "../_support/timeouts.ts";
import { ignoredName } from "../_support/tools.ts";
import { startBrokenEcho } from "../_servers/broken_echo.ts";
import { serve, type Server } from "../../lib/server/mod.ts";
import { jsonProtocol } from "../../lib/protocols/json.ts";

type Command = "serve" | "send" | "repl" | "echo-test" | "test" | "completions";

const decoder = new TextDecoder();

/** The task (permissions) a command runs under, and the subcommand word the task lacks. */
function taskOf(command: Command): { task: CliTask; prefix: string[] } {
  return command === "test" || command === "completions"
    ? { task: "linesock", prefix: [command] }
    : { task: command, prefix: [] };
}

function cli(
  command: Command,
  args: string[],
  options: { stdin?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const { task, prefix } = taskOf(command);
  return runCli(task, [...prefix, ...args], options);
}

/** A TCP server that accepts, reads, and never answers nor closes; it tells when bytes arrived. */
interface SilentServer {
  readonly port: string;
  /**
   * From now on, a wait for `count` more bytes (over all connections), or for one more connection
   * with `count` 0. Call it before starting the client, await the result once it runs.
   */
  expect(count: number): () => Promise<void>;
  close(): void;
}

function startSilentServer(): SilentServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let total = 0;
  const waiters = new Set<() => void>();
  const wakeAll = () => waiters.forEach((wake) => wake());
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      wakeAll();
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          for (let n; (n = await conn.read(buffer)) !== null;) {
            total += n;
            wakeAll();
          }
        } catch {
          // Closed by the test or reset by the client.
        }
      })();
    }
  })().catch(() => {});
  return {
    port: String(listener.addr.port),
    expect(count) {
      const done = count === 0
        ? ((target: number) => () => conns.length >= target)(conns.length + 1)
        : ((target: number) => () => total >= target)(total + count);
      return () =>
        within(
          new Promise<void>((resolve) => {
            const wake = () => {
              if (done()) {
                waiters.delete(wake);
                resolve();
              }
            };
            waiters.add(wake);
            wake();
          }),
          WAIT_MS,
          count === 0 ? "a connection to the silent server" : `${count} bytes at the silent server`,
        );
    },
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

/** A byte echo server that counts what it relayed. */
function startCountingEcho(): { port: string; bytes(): number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let relayed = 0;
  const relays: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      relays.push((async () => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          for (let n; (n = await conn.read(buffer)) !== null;) {
            for (let at = 0; at < n;) at += await conn.write(buffer.subarray(at, n));
            relayed += n;
          }
        } catch {
          // The client went away.
        } finally {
          conn.close();
        }
      })());
    }
  })().catch(() => {});
  return {
    port: String(listener.addr.port),
    bytes: () => relayed,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(relays);
    },
  };
}

/** Runs a command until `ready` says it waits, then sends SIGINT; returns how it ended. */
async function interrupted(
  command: Command,
  args: string[],
  ready: () => Promise<void>,
): Promise<CliResult> {
  const { task, prefix } = taskOf(command);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(task), ...prefix, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = child.output();
  try {
    await ready();
    child.kill("SIGINT");
    const result = await within(output, WAIT_MS, `${command} to end after SIGINT`);
    return {
      code: result.code,
      signal: result.signal,
      stdoutBytes: result.stdout,
      stdout: decoder.decode(result.stdout),
      stderr: decoder.decode(result.stderr),
    };
  } catch (error) {
    child.kill("SIGKILL");
    await output.catch(() => {});
    throw error;
  }
}

/** Runs a command through the entry point whose subcommands fail as a bug would. */
async function withInternalFailure(command: Command, args: string[]): Promise<CliResult> {
  const { task, prefix } = taskOf(command);
  const result = await new Deno.Command(Deno.execPath(), {
    args: [...internalFailureArgs(task), ...prefix, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: result.code,
    signal: result.signal,
    stdoutBytes: result.stdout,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/** The servers and files the rows run against. */
interface Fixtures {
  /** `linesock serve` (text). */
  text: RunningServer;
  /** `linesock serve --protocol json`. */
  json: RunningServer;
  /** In-process: `ERR …` for BAD, a 100-byte reply for BIG, `hello` (not JSON) for HELLO. */
  odd: Server;
  /** In-process: answers one line, then closes. */
  closer: Server;
  silent: SilentServer;
  reset: ResetServer | undefined;
  broken: { port: number } & AsyncDisposable;
  dir: string;
}

const portOf = (server: Server) => String((server.addr as Deno.NetAddr).port);

interface Row {
  command: Command;
  status: number;
  /** The condition, as the document words it. */
  when: string;
  /** Where it is documented. */
  doc: string;
  run(f: Fixtures): Promise<CliResult>;
  /** The whole of stderr. */
  stderr: RegExp;
  stdout?: string | RegExp;
  /** Why the row cannot run here, if it cannot. */
  ignore?: string | undefined;
}

const INSECURE_WARNING = "linesock: WARNING: --insecure: the server's certificate is NOT " +
  "verified; anyone between you and the server can read and change this connection\n";
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const INSECURE = escape(INSECURE_WARNING);
const USAGE_HINT = "\\(run with --help for usage\\)\\n";
const INTERNAL = (command: string) =>
  new RegExp(
    `^linesock: internal error \\(TypeError\\): injected internal failure in ${command}\\n$`,
  );

const ROWS: Row[] = [
  // ---------------------------------------------------------------------------------- serve
  {
    command: "serve",
    status: 0,
    when: "SIGTERM: graceful stop, the summary line",
    doc: "docs/serve.md#shutdown",
    async run() {
      const server = await startServer(["--port", "0"]);
      // One round trip first: serve installs its signal handlers right after printing its first
      // line, and a signal that came in between would end it the default way.
      await using client = await LineSession.open(server.port);
      await client.write("PING\n");
      assert.equal(await client.readLine(), "PONG");
      client.close();
      return await server.stop("SIGTERM");
    },
    // Log lines (INF), and the signal's line.
    stderr:
      /^(.* \[INF\] .*\n|linesock: SIGTERM: shutting down \(send it again to exit at once\)\n)+$/,
    stdout: /^summary: 1 connections?, 1 lines? in, 1 lines? out, /,
  },
  {
    command: "serve",
    status: 1,
    when: "cannot listen: the address is in use, one line naming it",
    doc: "README.md, docs/serve.md",
    async run(f) {
      return await cli("serve", ["--port", String(f.text.port)]);
    },
    stderr: /^linesock: Cannot listen on tcp:\/\/127\.0\.0\.1:\d+: address already in use\n$/,
    stdout: "",
  },
  {
    command: "serve",
    status: 2,
    when: "usage error: --max-line with --protocol echo",
    doc: "docs/serve.md",
    run: () => cli("serve", ["--protocol", "echo", "--max-line", "10"]),
    stderr: new RegExp(
      `^linesock: --max-line does not apply to the echo protocol\\n${USAGE_HINT}$`,
    ),
    stdout: "",
  },
  {
    command: "serve",
    status: 2,
    when: "a routes file mistake, with its line and column",
    doc: "docs/serve.md (--routes)",
    async run(f) {
      const file = `${f.dir}/bad-routes.json`;
      await Deno.writeTextFile(file, '{"routes": [\n  {"match": {"exact": "a"}, "reply": 5}\n]}\n');
      return await cli("serve", ["--port", "0", "--routes", file]);
    },
    stderr: /^linesock: \S*bad-routes\.json:2:\d+: .+\n/,
    stdout: "",
  },
  {
    command: "serve",
    status: 130,
    when: "a second SIGINT during the graceful stop exits at once, without the summary",
    doc: "README.md, docs/serve.md#shutdown",
    async run(f) {
      await using routes = await routesFile({
        match: { exact: "hang" },
        run: { argv: ["sh", "-c", "echo started; exec sleep 30"] },
      });
      const server = await startServer([
        "--port",
        "0",
        "--routes",
        routes.path,
        "--grace",
        "60s",
      ]);
      try {
        await using client = await LineSession.open(server.port);
        await client.write("hang\n");
        // The program runs: the shutdown now waits for it (up to --grace).
        assert.equal(await client.readLine(), "started");
        server.process.kill("SIGINT");
        await server.waitForStderr("shutting down");
        return await server.stop("SIGINT");
      } finally {
        void f;
        await server.stop("SIGKILL");
      }
    },
    // Log lines, then the first signal's line, and nothing after it: no summary.
    stderr: /\nlinesock: SIGINT: shutting down \(send it again to exit at once\)\n$/,
    stdout: "",
  },
  {
    command: "serve",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("serve", ["--port", "0"]),
    stderr: INTERNAL("serve"),
    stdout: "",
  },

  // ---------------------------------------------------------------------------------- send
  {
    command: "send",
    status: 0,
    when: "success",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", String(f.text.port), "PING"]),
    stderr: /^$/,
    stdout: "PONG\n",
  },
  {
    command: "send",
    status: 1,
    when: "the server answered ERR …",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", portOf(f.odd), "BAD"]),
    stderr: /^linesock: the server answered with an error: ERR bad\n$/,
    stdout: "ERR bad\n",
  },
  {
    command: "send",
    status: 1,
    when: "JSON mode: a status other than 0",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", String(f.json.port), "--protocol", "json", "nope"]),
    stderr:
      /^linesock: remote error \(status 1\): unknown command: "nope" \(send \{"command": "help"\} for the list\)\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 1,
    when: "JSON mode: a reply that is not a JSON response",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", portOf(f.odd), "--protocol", "json", "HELLO"]),
    stderr: /^linesock: remote error \(status 1\): Not a JSON response: hello\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 1,
    when: "a reply longer than --max-line",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", portOf(f.odd), "--max-line", "64", "BIG"]),
    stderr: /^linesock: a reply was longer than --max-line \(64 bytes\) and was left out\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 2,
    when: "usage error: a bad option",
    doc: "docs/send.md",
    run: () => cli("send", ["--replies", "x", "PING"]),
    stderr: new RegExp(`^linesock: --replies: .+\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "send",
    status: 2,
    when: "nothing to send",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", String(f.text.port), "-f", `${f.dir}/empty.txt`]),
    stderr: /^linesock: .*nothing to send.*\n/,
    stdout: "",
  },
  {
    command: "send",
    status: 3,
    when: "cannot connect: connection refused, one line",
    doc: "docs/send.md",
    async run() {
      return await cli("send", ["--port", String(unusedPort()), "PING"]);
    },
    stderr: /^linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 4,
    when: "--timeout: an awaited reply did not come",
    doc: "docs/send.md",
    run: (f) =>
      cli("send", ["--port", f.silent.port, "--replies", "1", "--timeout", "300ms", "PING"]),
    stderr:
      /^linesock: Timed out after 300 ms: waiting for a reply from tcp:\/\/127\.0\.0\.1:\d+\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 4,
    when: "--deadline: the whole run",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", f.silent.port, "--deadline", "500ms", "PING"]),
    stderr: /^linesock: Timed out after 500 ms: the whole run \(--deadline\)\n$/,
    stdout: "",
  },
  {
    command: "send",
    status: 4,
    when: "--connect-timeout: a TLS handshake that never finishes",
    doc: "docs/tls.md, docs/send.md",
    run: (f) =>
      cli("send", [
        "--port",
        f.silent.port,
        "--tls",
        "--insecure",
        "--connect-timeout",
        "300ms",
        "PING",
      ]),
    stderr: new RegExp(
      `^${INSECURE}linesock: Timed out after 300 ms: connect to 127\\.0\\.0\\.1:\\d+\\n$`,
    ),
    stdout: "",
  },
  {
    command: "send",
    status: 5,
    when: "the server closed before the expected replies",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", portOf(f.closer), "--replies", "2", "PING"]),
    stderr:
      /^linesock: Connection closed by tcp:\/\/127\.0\.0\.1:\d+ after 1 of 2 replies to line 1\n$/,
    stdout: "got PING\n",
  },
  {
    command: "send",
    status: 5,
    when: "the connection was reset by the server",
    doc: "docs/send.md",
    run: (f) => cli("send", ["--port", String(f.reset!.port), "PING", "MORE"]),
    stderr: /^linesock: Connection to tcp:\/\/127\.0\.0\.1:\d+ lost: connection reset\n$/,
    stdout: "first\n",
    ignore: PYTHON_MISSING,
  },
  {
    command: "send",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("send", ["PING"]),
    stderr: INTERNAL("send"),
    stdout: "",
  },
  {
    command: "send",
    status: 130,
    when: "interrupted by Ctrl-C (SIGINT) while waiting for a reply",
    doc: "README.md, docs/cli.md",
    run: (f) =>
      interrupted(
        "send",
        ["--port", f.silent.port, "--replies", "1", "--timeout", "0", "PING"],
        f.silent.expect(5),
      ),
    stderr: /^$/,
    stdout: "",
  },

  // ---------------------------------------------------------------------------------- repl
  {
    command: "repl",
    status: 0,
    when: "success (without a terminal)",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", String(f.text.port)], { stdin: "PING\n" }),
    stderr: /^$/,
    stdout: "PONG\n",
  },
  {
    command: "repl",
    status: 1,
    when: "a reply was an error",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", portOf(f.odd)], { stdin: "BAD\n" }),
    // The reply itself says it; the repl adds nothing on stderr.
    stderr: /^$/,
    stdout: "ERR bad\n",
  },
  {
    command: "repl",
    status: 1,
    when: "JSON mode: a line that is not a JSON response",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", portOf(f.odd), "--protocol", "json"], { stdin: "HELLO\n" }),
    stderr: /^$/,
    stdout: "hello\n",
  },
  {
    command: "repl",
    status: 2,
    when: "usage error: --unix with --port",
    doc: "docs/repl.md",
    run: () => cli("repl", ["--unix", "/tmp/x.sock", "--port", "1"], { stdin: "" }),
    stderr: new RegExp(`^linesock: .+\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "repl",
    status: 2,
    when: "--json: a line that could not be encoded (not sent; the rest is)",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", String(f.json.port), "--json"], { stdin: "add 5\nping\n" }),
    stderr:
      /^linesock: not sent: expected name=value, got 5 \(quote values with spaces: x="a b"\)\n$/,
    stdout: '{"status":0,"message":"pong","extra":null,"id":2}\n',
  },
  {
    command: "repl",
    status: 3,
    when: "cannot connect",
    doc: "docs/repl.md",
    run: () => cli("repl", ["--port", String(unusedPort())], { stdin: "PING\n" }),
    stderr: /^linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused\n$/,
    stdout: "",
  },
  {
    command: "repl",
    status: 4,
    when: "--timeout expired once the input ended",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", f.silent.port, "--timeout", "300ms"], { stdin: "PING\n" }),
    stderr: /^linesock: no reply for 300 ms after the input ended\n$/,
    stdout: "",
  },
  {
    command: "repl",
    status: 4,
    when: "--connect-timeout: a TLS handshake that never finishes",
    doc: "docs/repl.md, docs/tls.md",
    run: (f) =>
      cli("repl", [
        "--port",
        f.silent.port,
        "--tls",
        "--insecure",
        "--connect-timeout",
        "300ms",
      ], { stdin: "PING\n" }),
    stderr: new RegExp(
      `^${INSECURE}linesock: Timed out after 300 ms: connect to 127\\.0\\.0\\.1:\\d+\\n$`,
    ),
    stdout: "",
  },
  {
    command: "repl",
    status: 5,
    when: "the connection was reset (lost)",
    doc: "docs/repl.md",
    run: (f) => cli("repl", ["--port", String(f.reset!.port)], { stdin: "PING\nMORE\n" }),
    stderr: /^linesock: Connection to tcp:\/\/127\.0\.0\.1:\d+ lost: connection reset\n$/,
    stdout: "first\n",
    ignore: PYTHON_MISSING,
  },
  {
    command: "repl",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("repl", []),
    stderr: INTERNAL("repl"),
    stdout: "",
  },
  {
    command: "repl",
    status: 130,
    when: "interrupted by SIGINT (without a terminal) while waiting for a reply",
    doc: "README.md",
    run: (f) =>
      // Connected, stdin open and empty: it waits for a line, and for the server.
      interrupted("repl", ["--port", f.silent.port], f.silent.expect(0)),
    stderr: /^$/,
    stdout: "",
  },

  // ---------------------------------------------------------------------------------- echo-test
  {
    command: "echo-test",
    status: 0,
    when: "every selected case passed (its own embedded echo server)",
    doc: "docs/echo-test.md",
    run: () => cli("echo-test", ["--case", "crlf-preserved"], { timeoutMs: 60_000 }),
    stderr: /^$/,
    stdout: /PASS\s+crlf-preserved/,
  },
  {
    command: "echo-test",
    status: 1,
    when: "a case failed",
    doc: "docs/echo-test.md",
    run: (f) =>
      cli("echo-test", ["--port", String(f.broken.port), "--case", "crlf-preserved"], {
        timeoutMs: 60_000,
      }),
    stderr: /^[\s\S]*$/,
    stdout: /FAIL\s+crlf-preserved/,
  },
  {
    command: "echo-test",
    status: 2,
    when: "usage error: --lines with --duration",
    doc: "docs/echo-test.md",
    run: () => cli("echo-test", ["--load", "--count", "5", "--duration", "1s"]),
    stderr: new RegExp(`^linesock: .+\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "echo-test",
    status: 2,
    when: "usage error: an unknown case",
    doc: "docs/echo-test.md",
    run: () => cli("echo-test", ["--case", "no-such-case"]),
    stderr: new RegExp(`^linesock: .*no-such-case.*\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "echo-test",
    status: 3,
    when: "cannot connect to the target",
    doc: "docs/echo-test.md",
    run: () => cli("echo-test", ["--port", String(unusedPort())]),
    stderr: /^linesock: Cannot connect to 127\.0\.0\.1:\d+: connection refused\n$/,
    stdout: "",
  },
  {
    command: "echo-test",
    status: 4,
    when: "connecting timed out: a TLS handshake that never finishes (--timeout)",
    doc: "docs/echo-test.md, docs/tls.md",
    run: (f) =>
      cli("echo-test", ["--port", f.silent.port, "--tls", "--insecure", "--timeout", "300ms"]),
    stderr: new RegExp(
      `^${INSECURE}linesock: Timed out after 300 ms: connect to 127\\.0\\.0\\.1:\\d+\\n$`,
    ),
    stdout: "",
  },
  {
    command: "echo-test",
    status: 0,
    when: "load: Ctrl-C stops sending, waits for the lines in flight, and prints the report",
    doc: "docs/echo-test.md",
    async run() {
      await using echo = startCountingEcho();
      return await interrupted(
        "echo-test",
        ["--port", echo.port, "--load", "--duration", "60s", "--json"],
        // Load is flowing once the echo server has relayed some bytes.
        () => waitUntil(() => echo.bytes() > 10_000, WAIT_MS, "load at the echo server"),
      );
    },
    stderr: /^[\s\S]*$/,
    stdout: /"mode":\s*"load"/,
  },
  {
    command: "echo-test",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("echo-test", []),
    stderr: INTERNAL("echo-test"),
    stdout: "",
  },
  {
    command: "echo-test",
    status: 130,
    when: "conformance interrupted by SIGINT while waiting for an echo",
    doc: "README.md",
    run: (f) =>
      interrupted(
        "echo-test",
        ["--port", f.silent.port, "--case", "crlf-preserved", "--timeout", "60s"],
        f.silent.expect(1),
      ),
    stderr: /^$/,
    stdout: /^[\s\S]*$/,
  },

  // ---------------------------------------------------------------------------------- test
  {
    command: "test",
    status: 0,
    when: "every file passed",
    doc: "docs/test.md",
    run: (f) => cli("test", ["--port", String(f.text.port), `${f.dir}/pass.conv`]),
    stderr: /^$/,
    stdout: /^PASS \S+pass\.conv \(2 steps, /m,
  },
  {
    command: "test",
    status: 1,
    when: "a file failed (with the step, a diff)",
    doc: "docs/test.md",
    run: (f) => cli("test", ["--port", String(f.text.port), `${f.dir}/fail.conv`]),
    stderr: /^$/,
    stdout: /^FAIL \S+fail\.conv:2: a different line arrived[\s\S]*- PANG\n {2}\+ PONG\n/m,
  },
  {
    command: "test",
    status: 2,
    when: "a malformed file, named with its line and what was expected there",
    doc: "docs/test.md",
    run: (f) => cli("test", ["--port", String(f.text.port), `${f.dir}/malformed.conv`]),
    stderr: new RegExp(
      `^linesock: \\S+malformed\\.conv:1: expected a step: .+; got "PING"\\n${USAGE_HINT}$`,
    ),
    stdout: "",
  },
  {
    command: "test",
    status: 2,
    when: "usage error: no file",
    doc: "docs/test.md",
    run: () => cli("test", []),
    stderr: new RegExp(`^linesock: .+\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "test",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("test", ["x.conv"]),
    stderr: INTERNAL("test"),
    stdout: "",
  },
  {
    command: "test",
    status: 130,
    when: "interrupted by SIGINT while a step waits for a reply",
    doc: "README.md",
    run: (f) =>
      interrupted(
        "test",
        ["--port", f.silent.port, `${f.dir}/pass.conv`],
        f.silent.expect(5),
      ),
    stderr: /^$/,
    stdout: "",
  },

  // ---------------------------------------------------------------------------------- completions
  {
    command: "completions",
    status: 0,
    when: "a shell's script",
    doc: "docs/cli.md",
    run: () => cli("completions", ["bash"]),
    stderr: /^$/,
    stdout: /complete .*linesock/,
  },
  {
    command: "completions",
    status: 2,
    when: "usage error: no shell named",
    doc: "docs/cli.md",
    run: () => cli("completions", []),
    stderr: new RegExp(`^linesock: completions: name a shell: bash, zsh, fish\\n${USAGE_HINT}$`),
    stdout: "",
  },
  {
    command: "completions",
    status: 70,
    when: "an internal error (a bug): one line",
    doc: "README.md",
    run: () => withInternalFailure("completions", ["bash"]),
    stderr: INTERNAL("completions"),
    stdout: "",
  },
];

Deno.test("exit statuses: every documented status and message, per subcommand, through the CLI", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-exit-" });
  await Deno.writeTextFile(`${dir}/empty.txt`, "");
  await Deno.writeTextFile(`${dir}/pass.conv`, "> PING\n< PONG\n");
  await Deno.writeTextFile(`${dir}/fail.conv`, "> PING\n< PANG\n");
  await Deno.writeTextFile(`${dir}/malformed.conv`, "PING\n");
  const text = await startServer(["--port", "0"]);
  const json = await startServer(["--port", "0", "--protocol", "json"]);
  const odd = await serve({ port: 0 }, (line) => {
    if (line === "BAD") return "ERR bad";
    if (line === "BIG") return "x".repeat(100);
    return "hello";
  });
  const closer = await serve({ port: 0 }, (line, context) => {
    context.close();
    return `got ${line}`;
  });
  const silent = startSilentServer();
  const reset = PYTHON_MISSING === undefined ? await startResetServer("first") : undefined;
  const broken = startBrokenEcho("drops-cr");
  const fixtures: Fixtures = { text, json, odd, closer, silent, reset, broken, dir };
  try {
    for (const row of ROWS) {
      await t.step({
        name: ignoredName(
          `${row.command} exits ${row.status}: ${row.when} (${row.doc})`,
          row.ignore,
        ),
        ignore: row.ignore !== undefined,
        async fn() {
          const result = await row.run(fixtures);
          const seen = `stdout: ${JSON.stringify(result.stdout)}\nstderr: ${
            JSON.stringify(result.stderr)
          }`;
          assert.equal(result.code, row.status, seen);
          assert.match(result.stderr, row.stderr, seen);
          if (typeof row.stdout === "string") assert.equal(result.stdout, row.stdout, seen);
          else if (row.stdout) assert.match(result.stdout, row.stdout, seen);
        },
      });
    }
    await t.step("the table has a row for every status of every subcommand's documentation", () => {
      const covered = (command: Command) =>
        new Set(ROWS.filter((row) => row.command === command).map((row) => row.status));
      const documented: Record<Command, number[]> = {
        serve: [0, 1, 2, 70, 130],
        send: [0, 1, 2, 3, 4, 5, 70, 130],
        repl: [0, 1, 2, 3, 4, 5, 70, 130],
        "echo-test": [0, 1, 2, 3, 4, 70, 130],
        test: [0, 1, 2, 70, 130],
        completions: [0, 2, 70],
      };
      for (const [command, statuses] of Object.entries(documented) as [Command, number[]][]) {
        assert.deepEqual([...covered(command)].sort((a, b) => a - b), statuses, command);
      }
    });
  } finally {
    silent.close();
    await reset?.[Symbol.asyncDispose]();
    await broken[Symbol.asyncDispose]();
    await odd.shutdown();
    await closer.shutdown();
    await text.stop();
    await json.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --protocol json: the JSON forms of the server's own error replies", async (t) => {
  await t.step("busy: all --max-clients slots taken and the queue full", async () => {
    const server = await startServer([
      "--port",
      "0",
      "--protocol",
      "json",
      "--max-clients",
      "1",
      "--queue",
      "1",
    ]);
    try {
      await using served = await LineSession.open(server.port);
      await served.write('{"command":"ping"}\n');
      assert.match((await served.readLine())!, /"status":0/);
      await using waiting = await LineSession.open(server.port);
      await waiting.write('{"command":"ping"}\n');
      await using third = await LineSession.open(server.port);
      const replies = await third.readAll();
      assert.deepEqual(replies.map((line) => JSON.parse(line)), [
        { status: 4, message: "busy", extra: { error: "busy" } },
      ]);
    } finally {
      await server.stop();
    }
  });

  await t.step("too_many_connections: more than --max-connections open", async () => {
    const server = await startServer([
      "--port",
      "0",
      "--protocol",
      "json",
      "--max-connections",
      "1",
    ]);
    try {
      await using first = await LineSession.open(server.port);
      await first.write('{"command":"ping"}\n');
      assert.match((await first.readLine())!, /"status":0/);
      await using second = await LineSession.open(server.port);
      const replies = await second.readAll();
      assert.deepEqual(replies.map((line) => JSON.parse(line)), [
        {
          status: 4,
          message: "too many connections",
          extra: { error: "too_many_connections" },
        },
      ]);
    } finally {
      await server.stop();
    }
  });

  await t.step(
    "internal: a handler that throws (library use), and the connection carries on",
    async () => {
      const json = jsonProtocol();
      await using server = await serve({ port: 0 }, {
        ...json,
        onLine(line, context) {
          if (decoder.decode(line).includes("boom")) throw new TypeError("boom");
          return json.onLine(line, context);
        },
      });
      await using session = await LineSession.open(server.addr);
      await session.write('{"command":"boom"}\n{"command":"ping","id":2}\n');
      const [failed, after] = await session.readLines(2);
      assert.deepEqual(JSON.parse(failed!), {
        status: 4,
        message: "internal error",
        extra: { error: "internal" },
      });
      assert.deepEqual(JSON.parse(after!), { status: 0, message: "pong", extra: null, id: 2 });
    },
  );
});

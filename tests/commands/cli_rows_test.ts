/**
 * Every row of docs/cli.md's tables — Targets, Flags and Old spellings — has a check here, run
 * through the real `linesock` against real servers on loopback (ports from the OS).
 *
 * The first test reads the tables and fails, naming the row, when a row has no entry in the tables
 * of checks below (or an entry names a row the page no longer has). The other tests run each row's
 * check; where a row says "every subcommand" or "clients", its check runs once per subcommand that
 * the row's "where" cell names (`every subcommand`: each one `linesock help` lists), and a
 * subcommand without a check fails. An entry may instead point at the test in
 * tests/commands/cli_test.ts that already pins the row; the first test checks that it still exists.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import {
  type CliResult,
  runCli,
  type RunningServer,
  startServer,
  taskArgs,
  within,
} from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { connect } from "../../lib/client/mod.ts";
import { unusedPort } from "../_support/ports.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { EARLY_MARGIN_MS, since } from "../_support/timeouts.ts";
import { makeTestCertificates, OPENSSL_MISSING, type TestCertificates } from "../_support/tls.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI_MD = await Deno.readTextFile(`${ROOT}docs/cli.md`);
const CLI_TEST = "tests/commands/cli_test.ts";

/** What `HELLO` answers on the servers here: a reply proves the client reached this test's server. */
const NAME = `rows-${crypto.randomUUID().slice(0, 8)}`;
/** The client subcommands ("clients" in docs/cli.md's where column; its Targets section names them). */
const CLIENTS = ["send", "repl", "echo-test"];

/** Why `::1` cannot be used here, or `undefined`. */
const IPV6_MISSING: string | undefined = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return undefined;
  } catch (error) {
    return `IPv6 loopback is unavailable here (${(error as Error).message})`;
  }
})();

// ---------------------------------------------------------------------------------------------
// Reading docs/cli.md
// ---------------------------------------------------------------------------------------------

/** One row of a table: its cells, `\|` unescaped. */
interface DocRow {
  readonly cells: readonly string[];
}

/** The cells of a Markdown table row, split on the `|` that are not escaped. */
function cellsOf(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "").split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replaceAll("\\|", "|"));
}

/** The body rows of the first table under `heading` (header and separator rows left out). */
function tableRows(heading: string): DocRow[] {
  const lines = CLI_MD.split("\n");
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start === -1) return [];
  const table: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,6} /.test(line)) break;
    if (line.trimStart().startsWith("|")) table.push(line);
    else if (table.length > 0) break;
  }
  return table.slice(2).map((line) => ({ cells: cellsOf(line) }));
}

/** The subcommands `linesock help` lists (without `help` itself). */
async function subcommands(): Promise<string[]> {
  const help = await runCli("linesock", ["help"]);
  assert.equal(help.code, 0, help.stderr);
  const section = help.stdout.split("Commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = section.split("\n").map((line) => /^ {2}(\S+)\s/.exec(line)?.[1]).filter(
    (name): name is string => name !== undefined && name !== "help",
  );
  assert.ok(names.includes("send"), `no subcommands found in linesock help:\n${help.stdout}`);
  return names;
}

/** The subcommands a Flags row's "where" cell names. */
async function subcommandsOf(where: string): Promise<string[]> {
  if (where === "every subcommand") return await subcommands();
  if (where === "clients") return CLIENTS;
  const named = [...where.matchAll(/`([a-z-]+)`/g)].map((match) => match[1]!);
  assert.ok(named.length > 0, `cannot read the where cell ${JSON.stringify(where)}`);
  return named;
}

// ---------------------------------------------------------------------------------------------
// The tables of checks
// ---------------------------------------------------------------------------------------------

/** A test in tests/commands/cli_test.ts that pins a row (its name, and the step that does it). */
interface Covered {
  readonly test: string;
  readonly step?: string;
}

/** A check of one subcommand. */
interface SubcommandCheck {
  readonly fn?: (fx: Fixtures, t: Deno.TestContext) => Promise<void>;
  readonly covered?: Covered;
  /** Why it cannot run here (a missing tool), or `undefined`. */
  readonly ignore?: string | undefined;
  /** Why the row does not apply to this subcommand. */
  readonly notApplicable?: string;
}

/** The check of one row. */
interface RowCheck {
  /** The row's own check. */
  readonly check?: (fx: Fixtures, t: Deno.TestContext) => Promise<void>;
  /**
   * For a row whose where cell names several subcommands: a check per subcommand (a function for
   * a check that is the same for every one).
   */
  readonly bySubcommand?:
    | Readonly<Record<string, SubcommandCheck>>
    | ((subcommand: string) => SubcommandCheck);
  /** The cli_test.ts test that pins the row (as well as, or instead of, the check). */
  readonly covered?: Covered;
  /** Why the check cannot run here, or `undefined`. */
  readonly ignore?: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/** A TCP server in this test's process, for behaviours no linesock server has. */
interface InProcessServer extends AsyncDisposable {
  readonly port: number;
}

/**
 * Listens on 127.0.0.1 (port from the OS) and runs `handle` for each connection; `disposed`
 * resolves when the server is being stopped.
 */
function listenInProcess(
  handle: (conn: Deno.Conn, disposed: Promise<void>) => Promise<void>,
): InProcessServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { promise: disposed, resolve: dispose } = Promise.withResolvers<void>();
  const conns = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        handlers.push(
          handle(conn, disposed).catch(() => {}).finally(() => {
            conns.delete(conn);
            try {
              conn.close();
            } catch {
              // Closed by the disposal already.
            }
          }),
        );
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      dispose();
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(handlers);
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Reads the lines a connection sends, as they arrive, until it ends. */
async function* linesFrom(conn: Deno.Conn): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let pending = "";
  for (;;) {
    const read = await conn.read(buffer);
    if (read === null) return;
    pending += decoder.decode(buffer.subarray(0, read), { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
}

/** Accepts, reads, never writes a byte (no TLS handshake, no reply) and never closes first. */
function silentServer(): InProcessServer {
  return listenInProcess(async (conn, disposed) => {
    for await (const _line of linesFrom(conn)) {
      // Read and dropped.
    }
    await disposed;
  });
}

/** Answers every line with three: `LINE 1`, `LINE 2`, `LINE 3`; never closes. */
function threeRepliesServer(): InProcessServer {
  const encoder = new TextEncoder();
  return listenInProcess(async (conn) => {
    for await (const line of linesFrom(conn)) {
      await writeAll(conn, encoder.encode(`${line} 1\n${line} 2\n${line} 3\n`));
    }
  });
}

/**
 * An echo server that answers nothing on a connection until `depth` lines have arrived on it, then
 * echoes those and everything after at once. A client that keeps fewer than `depth` lines in
 * flight waits forever; `held` records how many lines each connection had sent before its first
 * echo (exactly `depth` for a client that keeps `depth` in flight).
 */
function holdingEchoServer(depth: number): InProcessServer & { readonly held: number[] } {
  const held: number[] = [];
  const server = listenInProcess(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    const waiting: Uint8Array[] = [];
    let lines = 0;
    for (;;) {
      const read = await conn.read(buffer);
      if (read === null) return;
      const chunk = buffer.slice(0, read);
      if (lines >= depth) {
        await writeAll(conn, chunk);
        continue;
      }
      waiting.push(chunk);
      lines += chunk.filter((byte) => byte === 0x0a).length;
      if (lines >= depth) {
        held.push(lines);
        for (const part of waiting.splice(0)) await writeAll(conn, part);
      }
    }
  });
  return { port: server.port, held, [Symbol.asyncDispose]: () => server[Symbol.asyncDispose]() };
}

/**
 * Starts `serve` with `args`, hands its first `count` stdout lines to `use`, then kills it.
 * (Unlike `startServer`, it takes whatever the first line is, `listening on tls://…` included.)
 */
async function withServe(
  args: string[],
  use: (lines: string[]) => Promise<void>,
  count = 1,
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("serve"), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
    cwd: ROOT,
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    await within(
      (async () => {
        while (text.split("\n").length <= count) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
      })(),
      15_000,
      `the first ${count} line(s) of serve ${args.join(" ")}`,
    );
    await use(text.split("\n").slice(0, count));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await reader.cancel().catch(() => {});
    await child.status;
  }
}

/** Stops a `serve --json` and returns its summary object. */
async function jsonSummary(server: RunningServer): Promise<Record<string, number>> {
  const stopped = await server.stop("SIGTERM");
  const last = server.stdoutLines.at(-1) ?? "";
  assert.equal(stopped.code, 0, stopped.stderr);
  return JSON.parse(last).summary;
}

/** The servers and files the checks share, each started on first use and stopped at the end. */
class Fixtures implements AsyncDisposable {
  #made = new Map<string, Promise<unknown>>();
  #disposers: (() => PromiseLike<void>)[] = [];

  #once<T>(
    key: string,
    make: () => Promise<T>,
    dispose: (value: T) => PromiseLike<void>,
  ): Promise<T> {
    let made = this.#made.get(key) as Promise<T> | undefined;
    if (made === undefined) {
      made = make();
      this.#made.set(key, made);
      made.then((value) => this.#disposers.push(() => dispose(value)), () => {});
    }
    return made;
  }

  #server(key: string, args: string[]): Promise<RunningServer> {
    return this.#once(key, () => startServer(args), (server) => server[Symbol.asyncDispose]());
  }

  #inProcess<T extends InProcessServer>(key: string, make: () => T): Promise<T> {
    return this.#once(
      key,
      () => Promise.resolve(make()),
      (server) => server[Symbol.asyncDispose](),
    );
  }

  /** The text protocol on 127.0.0.1 (`-p 0`), answering `HELLO` with {@linkcode NAME}. */
  text(): Promise<RunningServer> {
    return this.#server("text", ["-p", "0", "--name", NAME]);
  }
  /** Byte-exact echo on 127.0.0.1 (`--port 0`). */
  echo(): Promise<RunningServer> {
    return this.#server("echo", ["--port", "0", "--protocol", "echo"]);
  }
  /** The JSON protocol on 127.0.0.1. */
  json(): Promise<RunningServer> {
    return this.#server("json", ["-p", "0", "--protocol", "json"]);
  }
  /** The text protocol on ::1, listening where `tcp://[::1]:0` says. */
  ipv6(): Promise<RunningServer> {
    return this.#server("ipv6", ["tcp://[::1]:0", "--name", NAME]);
  }
  /** A directory with a text server at `text.sock` (`serve unix://…`) and echo at `echo.sock` (`--unix`). */
  async unix(): Promise<{ dir: string; text: RunningServer; echo: RunningServer }> {
    const dir = await this.#once(
      "unix-dir",
      () => Deno.makeTempDir({ prefix: "linesock-rows-" }),
      (dir) => Deno.remove(dir, { recursive: true }),
    );
    const [text, echo] = await Promise.all([
      this.#server("unix-text", [`unix://${dir}/text.sock`, "--name", NAME]),
      this.#server("unix-echo", ["--unix", `${dir}/echo.sock`, "--protocol", "echo"]),
    ]);
    return { dir, text, echo };
  }
  /** Throw-away certificates (tests/_support/tls.ts). */
  certs(): Promise<TestCertificates> {
    return this.#once("certs", makeTestCertificates, (certs) => certs[Symbol.asyncDispose]());
  }
  /** TLS with a certificate for localhost, 127.0.0.1 and ::1 that the test CA signed. */
  async tls(protocol: "text" | "echo"): Promise<RunningServer> {
    const certs = await this.certs();
    return await this.#server(`tls-${protocol}`, [
      "-p",
      "0",
      "--protocol",
      protocol,
      "--name",
      NAME,
      "--tls-cert",
      certs.server.cert,
      "--tls-key",
      certs.server.key,
    ]);
  }
  /** Accepts and never answers (nor completes a TLS handshake). */
  silent(): Promise<InProcessServer> {
    return this.#inProcess("silent", silentServer);
  }
  /** Three replies to every line. */
  threeReplies(): Promise<InProcessServer> {
    return this.#inProcess("three", threeRepliesServer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.allSettled(this.#made.values());
    for (const dispose of this.#disposers.reverse()) {
      try {
        await dispose();
      } catch {
        // Stopped already.
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Small assertions
// ---------------------------------------------------------------------------------------------

/** The non-empty lines of a text. */
function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/** Stdout and stderr of a run, for a failure message. */
function shown(result: CliResult): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** `send … HELLO` (lockstep) or `repl …` with `HELLO` on stdin reaches this test's server. */
async function assertHello(command: "send" | "repl", args: string[]): Promise<void> {
  const result = command === "send"
    ? await runCli("send", [...args, "--replies", "1", "HELLO"])
    : await runCli("repl", args, { stdin: "HELLO\n" });
  const what = `${command} ${args.join(" ")}`;
  assert.equal(result.stdout, `${NAME}\n`, `${what}: ${shown(result)}`);
  assert.equal(result.code, 0, `${what}: ${shown(result)}`);
}

/** `echo-test … --case short-line` passes. */
async function assertEchoTest(args: string[]): Promise<void> {
  const result = await runCli("echo-test", [...args, "--case", "short-line"]);
  assert.equal(result.code, 0, `echo-test ${args.join(" ")}: ${shown(result)}`);
  assert.match(result.stdout, /^PASS\s+short-line/m);
}

/** Runs `echo-test … --json` and returns its report. */
async function echoReport(
  args: string[],
): Promise<{ result: CliResult; report: Record<string, unknown> }> {
  const result = await runCli("echo-test", [...args, "--json"]);
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(result.stdout);
  } catch {
    assert.fail(`echo-test ${args.join(" ")} --json printed no JSON: ${shown(result)}`);
  }
  return { result, report };
}

/** The one warning an old spelling prints. */
function deprecation(old: string, now: string): string {
  return `linesock: warning: ${old} is deprecated and goes away in 1.0: use ${now}\n`;
}

/** Runs a client that should give up after `ms`: exit 4 and `message`, after at least `ms`. */
async function assertTimesOut(
  command: "send" | "repl" | "echo-test",
  args: string[],
  ms: number,
  message: RegExp,
  stdin?: string,
): Promise<void> {
  const start = performance.now();
  const result = await runCli(command, args, stdin === undefined ? {} : { stdin });
  const elapsed = since(start);
  assert.equal(result.code, 4, `${command} ${args.join(" ")}: ${shown(result)}`);
  assert.match(result.stderr, message);
  assert.equal(linesOf(result.stderr).length, 1, `one line on stderr: ${result.stderr}`);
  assert.ok(
    elapsed >= ms - EARLY_MARGIN_MS,
    `gave up after ${Math.round(elapsed)} ms, before ${ms}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

const TARGET_ROWS: Readonly<Record<string, RowCheck>> = {
  "`tcp://127.0.0.1:7000`": {
    covered: { test: "targets: every form serve prints, and HOST PORT", step: "a URL first" },
  },

  "`tcp://[::1]:7000`": {
    ignore: IPV6_MISSING,
    async check(fx) {
      const server = await fx.ipv6();
      assert.match(server.url, /^tcp:\/\/\[::1\]:\d+$/, "serve tcp://[::1]:0 prints that form");
      await assertHello("send", [server.url]);
      await assertHello("repl", [server.url]);
    },
  },

  "`tls://example.org:7000`": {
    ignore: OPENSSL_MISSING,
    async check(fx, t) {
      const certs = await fx.certs();
      const server = await fx.tls("text");
      const url = `tls://127.0.0.1:${server.port}`;
      await t.step("send and repl speak TLS to tls://, verifying the certificate", async () => {
        await assertHello("send", [url, "--ca", certs.caFile]);
        await assertHello("repl", [url, "--ca", certs.caFile]);
        const untrusted = await runCli("send", [url, "--replies", "1", "HELLO"]);
        assert.equal(
          untrusted.code,
          3,
          `without --ca the certificate is not trusted: ${shown(untrusted)}`,
        );
        assert.match(untrusted.stderr, /certificate not trusted/);
      });
      await t.step("the same server as tcp:// is plain TCP, which it does not answer", async () => {
        const plain = await runCli("send", [
          `tcp://127.0.0.1:${server.port}`,
          "--replies",
          "1",
          "HELLO",
        ]);
        assert.notEqual(plain.code, 0, shown(plain));
        assert.equal(plain.stdout, "");
      });
      await t.step("serve tls://127.0.0.1:0 prints a tls:// address, taken as it is", async () => {
        await withServe([
          "tls://127.0.0.1:0",
          "--name",
          NAME,
          "--tls-cert",
          certs.server.cert,
          "--tls-key",
          certs.server.key,
        ], async ([line = ""]) => {
          assert.match(
            line,
            /^listening on tls:\/\/127\.0\.0\.1:\d+$/,
            `DOC MISMATCH: serve over TLS printed ${JSON.stringify(line)}; docs/cli.md says a ` +
              "target is written exactly as serve prints it, and a client given tcp:// speaks " +
              "plain TCP to this TLS server",
          );
          await assertHello("send", [line.slice("listening on ".length), "--ca", certs.caFile]);
        });
      });
    },
  },

  "`unix:///run/app.sock`": {
    covered: {
      test: "targets: every form serve prints, and HOST PORT",
      step: "unix:/// and -U reach a Unix socket",
    },
    async check(fx) {
      const { dir, text, echo } = await fx.unix();
      assert.equal(text.url, `unix://${dir}/text.sock`, "serve unix:///PATH listens there");
      await assertHello("send", [text.url]);
      await assertHello("repl", [text.url]);
      await assertEchoTest([echo.url]);
    },
  },

  "`--host HOST[:PORT]`, `--host [::1]:7000`": {
    covered: { test: "targets: every form serve prints, and HOST PORT", step: "--host HOST:PORT" },
    async check(fx, t) {
      await t.step("--host HOST:PORT in send, repl and echo-test", async () => {
        const [text, echo] = await Promise.all([fx.text(), fx.echo()]);
        await assertHello("send", ["--host", `127.0.0.1:${text.port}`]);
        await assertHello("repl", ["--host", `127.0.0.1:${text.port}`]);
        await assertEchoTest(["--host", `127.0.0.1:${echo.port}`]);
      });
      await t.step({
        name: "--host [::1]:PORT in send and repl; serve --host [::1]:0 listens there",
        ignore: IPV6_MISSING !== undefined,
        async fn() {
          const server = await fx.ipv6();
          await assertHello("send", ["--host", `[::1]:${server.port}`]);
          await assertHello("repl", ["--host", `[::1]:${server.port}`]);
          await withServe(["--host", "[::1]:0"], ([line]) => {
            assert.match(line ?? "", /^listening on tcp:\/\/\[::1\]:\d+$/);
            return Promise.resolve();
          });
        },
      });
    },
  },

  "`-p, --port PORT`": {
    async check(fx) {
      const [text, echo] = await Promise.all([fx.text(), fx.echo()]);
      // serve -p 0 (text) and --port 0 (echo) took a free port, not the default 1991.
      for (const server of [text, echo]) assert.ok(server.port > 0 && server.port !== 1991);
      await assertHello("send", ["-p", String(text.port)]);
      await assertHello("send", ["--port", String(text.port)]);
      await assertHello("repl", ["-p", String(text.port)]);
      await assertEchoTest(["--port", String(echo.port)]);
    },
  },

  "`-U, --unix PATH`": {
    async check(fx) {
      const { dir, echo } = await fx.unix();
      assert.equal(echo.url, `unix://${dir}/echo.sock`, "serve --unix PATH listens there");
      await assertHello("send", ["-U", `${dir}/text.sock`]);
      await assertHello("send", ["--unix", `${dir}/text.sock`]);
      await assertHello("repl", ["-U", `${dir}/text.sock`]);
      await assertEchoTest(["--unix", `${dir}/echo.sock`]);
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Flags: -q and -v, per subcommand
// ---------------------------------------------------------------------------------------------

/** Conversation files: one that passes against the text server, one that fails. */
async function conversations(fx: Fixtures): Promise<{ pass: string; fail: string }> {
  const { dir } = await fx.unix();
  const pass = `${dir}/pass.conv`;
  const fail = `${dir}/fail.conv`;
  await Deno.writeTextFile(pass, "> PING\n< PONG\n");
  await Deno.writeTextFile(fail, "> PING\n< PANG\n");
  return { pass, fail };
}

/** The repl on a terminal, until its prompt and one answered line; returns the screen. */
async function replScreen(fx: Fixtures, flags: string[]): Promise<string> {
  const text = await fx.text();
  const home = await Deno.makeTempDir({ prefix: "linesock-rows-home-" });
  try {
    await using pty = await startPty(cliCommand("repl", ["-p", String(text.port), ...flags]), {
      env: ptyEnv(home, { NO_COLOR: "1" }),
    });
    await pty.waitFor(`127.0.0.1:${text.port}>`);
    await pty.type("HELLO");
    await pty.press("Enter");
    return await pty.waitFor(NAME);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const QUIET: Readonly<Record<string, SubcommandCheck>> = {
  serve: {
    async fn() {
      const run = async (flags: string[]) => {
        await using server = await startServer(["-p", "0", ...flags]);
        await runCli("send", [server.url, "--replies", "1", "PING"]);
        return await server.stop("SIGTERM");
      };
      const loud = await run([]);
      const quiet = await run(["-q"]);
      assert.match(loud.stderr, /\[INF\]/, "without -q, serve logs at info level");
      assert.doesNotMatch(quiet.stderr, /\[INF\]/, `serve -q logs info lines:\n${quiet.stderr}`);
      assert.match(quiet.stdout, /^summary: 1 connection/m, "the summary is output, not chatter");
      using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const failed = await runCli("serve", ["--quiet", "-p", String(busy.addr.port)]);
      assert.equal(failed.code, 1, shown(failed));
      assert.match(failed.stderr, /^linesock: Cannot listen on .*address already in use$/m);
    },
  },
  send: {
    async fn(fx) {
      // Nothing listens: a retry note, then the error; -q keeps the error only.
      const port = String(unusedPort());
      const loud = await runCli("send", ["-p", port, "--retry", "1", "PING"]);
      const quiet = await runCli("send", ["-p", port, "--retry", "1", "-q", "PING"]);
      assert.equal(loud.code, 3, shown(loud));
      assert.equal(quiet.code, 3, shown(quiet));
      assert.match(loud.stderr, /retry 1 of 1/, "without -q, send says it retries");
      const [error, ...more] = linesOf(quiet.stderr);
      assert.match(error ?? "", /^linesock: Cannot connect to 127\.0\.0\.1:\d+/);
      assert.deepEqual(more, [], `send -q printed more than the error:\n${quiet.stderr}`);
      // Replies are the output: -q keeps them.
      const text = await fx.text();
      const replies = await runCli("send", ["--quiet", text.url, "--replies", "1", "PING"]);
      assert.equal(replies.stdout, "PONG\n", shown(replies));
    },
  },
  repl: {
    ignore: TMUX_MISSING,
    async fn(fx) {
      const loud = await replScreen(fx, []);
      assert.match(loud, /connected to/, "without -q, the repl says where it connected");
      const quiet = await replScreen(fx, ["-q"]);
      assert.doesNotMatch(
        quiet,
        /connected to/,
        `DOC MISMATCH: repl -q still shows its connection notice (docs/cli.md: -q is errors only ` +
          `in every subcommand); screen:\n${quiet}`,
      );
    },
  },
  test: {
    async fn(fx) {
      const text = await fx.text();
      const { pass, fail } = await conversations(fx);
      const loud = await runCli("linesock", ["test", text.url, pass, fail]);
      const quiet = await runCli("linesock", ["test", "-q", text.url, pass, fail]);
      assert.equal(loud.code, 1, shown(loud));
      assert.equal(quiet.code, 1, shown(quiet));
      assert.match(quiet.stdout, /^FAIL .*fail\.conv:2/m, "-q still reports the failure");
      assert.ok(
        linesOf(quiet.stdout + quiet.stderr).length < linesOf(loud.stdout + loud.stderr).length,
        `test -q printed as much as without it:\n${quiet.stdout}${quiet.stderr}`,
      );
    },
  },
  "echo-test": {
    async fn(fx) {
      const [echo, text] = await Promise.all([fx.echo(), fx.text()]);
      const args = [echo.url, "--case", "short-line"];
      const loud = await runCli("echo-test", args);
      const quiet = await runCli("echo-test", [...args, "-q"]);
      assert.equal(quiet.code, 0, shown(quiet));
      // A failing run (the text server is no echo server) still reports the failure.
      const failing = await runCli("echo-test", [text.url, "--case", "short-line", "-q"]);
      assert.equal(failing.code, 1, shown(failing));
      assert.match(failing.stdout + failing.stderr, /FAIL/);
      assert.ok(
        linesOf(quiet.stdout + quiet.stderr).length < linesOf(loud.stdout + loud.stderr).length,
        "DOC MISMATCH: echo-test -q prints exactly what it prints without -q (docs/cli.md: -q " +
          `is errors only in every subcommand):\n${quiet.stdout}${quiet.stderr}`,
      );
    },
  },
  bench: {
    async fn(fx) {
      const text = await fx.text();
      const benchArgs = ["bench", text.url, "-m", "PING", "-n", "20", "-c", "1"];
      const loud = await runCli("linesock", [...benchArgs, "--expect", "PONG"]);
      const quiet = await runCli("linesock", [...benchArgs, "--expect", "PONG", "-q"]);
      assert.equal(quiet.code, 0, shown(quiet));
      assert.ok(
        linesOf(quiet.stdout + quiet.stderr).length < linesOf(loud.stdout + loud.stderr).length,
        `bench -q printed as much as without it:\n${quiet.stdout}${quiet.stderr}`,
      );
      // Wrong replies are errors: -q still says so.
      const failing = await runCli("linesock", [...benchArgs, "--expect", "PANG", "-q"]);
      assert.equal(failing.code, 1, shown(failing));
      assert.match(
        failing.stdout + failing.stderr,
        /wrong|expected "PANG"/,
        "DOC MISMATCH: bench -q exits 1 for wrong replies without a word about them (docs/cli.md: " +
          "-q is errors only, so the errors stay)",
      );
    },
  },
  completions: { notApplicable: "it prints a completion script and nothing else" },
};

/** Runs serve with a client queued behind another (--max-clients 1); returns its stderr. */
async function serveWithQueuedClient(flags: string[]): Promise<string> {
  await using server = await startServer(["-p", "0", "--max-clients", "1", ...flags]);
  await using first = await LineSession.open(server.port);
  await first.write("PING\n");
  assert.equal(await first.readLine(), "PONG", "the first client holds the only slot");
  const second = runCli("send", [server.url, "--replies", "1", "PING"]);
  // Debug level says so; without it, this step is what fails (bounded).
  await server.waitForStderr(/\[DBG\][^\n]*waits for a slot/, 5000).catch(() => {
    throw new Error(`serve ${flags.join(" ")} logged nothing at debug level:\n${server.stderr()}`);
  });
  first.close();
  assert.equal((await second).stdout, "PONG\n");
  const stopped = await server.stop("SIGTERM");
  return stopped.stderr;
}

/** A run of a subcommand whose output (stdout and stderr) more verbosity should lengthen. */
type Scenario = (fx: Fixtures, flags: string[]) => Promise<string>;

const VERBOSITY_SCENARIOS: Readonly<Record<string, Scenario>> = {
  async send(fx, flags) {
    const text = await fx.text();
    const result = await runCli("send", [text.url, "--replies", "1", "PING", ...flags]);
    assert.equal(result.code, 0, shown(result));
    return result.stdout + result.stderr;
  },
  async repl(fx, flags) {
    const text = await fx.text();
    const result = await runCli("repl", [text.url, ...flags], { stdin: "PING\n" });
    assert.equal(result.code, 0, shown(result));
    return result.stdout + result.stderr;
  },
  async test(fx, flags) {
    const text = await fx.text();
    const { pass } = await conversations(fx);
    const result = await runCli("linesock", ["test", text.url, pass, ...flags]);
    assert.equal(result.code, 0, shown(result));
    return result.stdout + result.stderr;
  },
  async "echo-test"(fx, flags) {
    const echo = await fx.echo();
    const result = await runCli("echo-test", [echo.url, "--case", "short-line", ...flags]);
    assert.equal(result.code, 0, shown(result));
    return result.stdout + result.stderr;
  },
  async bench(fx, flags) {
    const text = await fx.text();
    const result = await runCli("linesock", [
      "bench",
      text.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "-n",
      "20",
      "-c",
      "1",
      ...flags,
    ]);
    assert.equal(result.code, 0, shown(result));
    return result.stdout + result.stderr;
  },
};

/** `-v` says more than nothing, `--verbose` too, and `-vv` more than `-v`. */
function verbosityCheck(subcommand: string): SubcommandCheck {
  if (subcommand === "completions") {
    return { notApplicable: "it prints a completion script and nothing else" };
  }
  if (subcommand === "serve") {
    return {
      async fn(_fx, t) {
        await t.step("-v and --verbose log at debug level", async () => {
          await serveWithQueuedClient(["-v"]);
          await serveWithQueuedClient(["--verbose"]);
        });
        await t.step("-vv says more still (trace level)", async () => {
          const stderr = await serveWithQueuedClient(["-vv"]);
          assert.match(
            stderr,
            /\[TRC\]/,
            "DOC MISMATCH: serve -vv logs nothing more than -v: no message is logged at trace " +
              "level (docs/cli.md: -vv more still)",
          );
        });
      },
    };
  }
  const scenario = VERBOSITY_SCENARIOS[subcommand];
  if (scenario === undefined) return {};
  return {
    async fn(fx, t) {
      const plain = linesOf(await scenario(fx, []));
      const verbose = linesOf(await scenario(fx, ["-v"]));
      await t.step("-v and --verbose say more than without", async () => {
        const long = linesOf(await scenario(fx, ["--verbose"]));
        for (const [flag, lines] of [["-v", verbose], ["--verbose", long]] as const) {
          assert.ok(
            lines.length > plain.length,
            `DOC MISMATCH: ${subcommand} ${flag} prints nothing more than without it ` +
              `(docs/cli.md: -v in every subcommand):\n${lines.join("\n")}`,
          );
        }
      });
      await t.step("-vv says more than -v", async () => {
        const veryVerbose = linesOf(await scenario(fx, ["-vv"]));
        assert.ok(
          veryVerbose.length > verbose.length && verbose.length > plain.length,
          `DOC MISMATCH: ${subcommand} -vv prints ${veryVerbose.length} lines, -v ` +
            `${verbose.length}, none ${plain.length} (docs/cli.md: -vv more still):\n` +
            veryVerbose.join("\n"),
        );
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

/** An echo-test load run against a fresh `serve --protocol echo --json`; returns the summary. */
async function countedEcho(
  runs: (url: string) => Promise<void>,
): Promise<Record<string, number>> {
  await using server = await startServer(["-p", "0", "--protocol", "echo", "--json", "-q"]);
  await runs(server.url);
  return await jsonSummary(server);
}

const FLAG_ROWS: Readonly<Record<string, RowCheck>> = {
  "`-q, --quiet`": { bySubcommand: QUIET },

  "`-v, --verbose` (repeatable)": { bySubcommand: verbosityCheck },

  "`--json`": {
    bySubcommand: {
      serve: {
        covered: { test: "serve listens where its first argument says; --json prints the summary" },
      },
      send: {
        covered: {
          test: "send --json: one JSON object per reply, with the round-trip time in lockstep",
        },
      },
      "echo-test": {
        async fn(fx) {
          const echo = await fx.echo();
          const conformance = await echoReport([echo.url, "--case", "short-line"]);
          assert.equal(conformance.result.code, 0, shown(conformance.result));
          assert.equal(conformance.report.mode, "conformance");
          assert.equal(conformance.report.passed, true);
          assert.deepEqual(
            (conformance.report.results as { name: string; status: string }[])
              .map(({ name, status }) => ({ name, status })),
            [{ name: "short-line", status: "pass" }],
          );
          const load = await echoReport([echo.url, "-n", "20", "-c", "2"]);
          assert.equal(load.report.mode, "load");
          assert.equal(load.report.linesSent, 20);
          assert.equal(load.report.linesReceived, 20);
          assert.equal(typeof (load.report.latencyMs as { p99: unknown }).p99, "number");
        },
      },
      test: {
        async fn(fx) {
          const text = await fx.text();
          const { pass, fail } = await conversations(fx);
          const result = await runCli("linesock", ["test", text.url, pass, fail, "--json"]);
          assert.equal(result.code, 1, shown(result));
          const report = JSON.parse(result.stdout);
          assert.equal(report.passed, 1);
          assert.equal(report.failed, 1);
          assert.deepEqual(report.files[1].failure.received, ["PONG"]);
        },
      },
      bench: {
        async fn(fx) {
          const text = await fx.text();
          const result = await runCli("linesock", [
            "bench",
            text.url,
            "-m",
            "PING",
            "--expect",
            "PONG",
            "-n",
            "20",
            "-c",
            "2",
            "--json",
          ]);
          assert.equal(result.code, 0, shown(result));
          const report = JSON.parse(result.stdout);
          assert.equal(report.sent, 20);
          assert.equal(report.answered, 20);
          assert.equal(report.connections, 2);
        },
      },
      repl: {
        // docs/cli.md: in repl, --json still means --protocol json (its output is for people).
        async fn(fx) {
          const json = await fx.json();
          const result = await runCli("repl", [json.url, "--json"], { stdin: "ping\n" });
          assert.equal(result.code, 0, shown(result));
          assert.equal(JSON.parse(result.stdout).message, "pong");
        },
      },
      completions: { notApplicable: "it prints a completion script and nothing else" },
    },
  },

  "`--protocol text|json`": {
    bySubcommand: {
      send: {
        async fn(fx) {
          const json = await fx.json();
          const spoken = await runCli("send", [json.url, "--protocol", "json", "ping"]);
          assert.equal(spoken.code, 0, shown(spoken));
          assert.equal(spoken.stdout, "pong\n", "a JSON request, its response's message printed");
          const text = await runCli("send", [
            json.url,
            "--protocol",
            "text",
            "--replies",
            "1",
            "ping",
          ]);
          assert.match(text.stdout, /malformed JSON/, "--protocol text sends the line as it is");
          const wrong = await runCli("send", [json.url, "--protocol", "xml", "ping"]);
          assert.equal(wrong.code, 2, shown(wrong));
        },
      },
      repl: {
        async fn(fx) {
          const json = await fx.json();
          const spoken = await runCli("repl", [json.url, "--protocol", "json"], {
            stdin: "ping\n",
          });
          assert.equal(spoken.code, 0, shown(spoken));
          assert.equal(JSON.parse(spoken.stdout).message, "pong");
          const text = await runCli("repl", [json.url, "--protocol", "text"], { stdin: "ping\n" });
          assert.match(text.stdout, /malformed JSON/, "--protocol text sends the line as it is");
        },
      },
    },
  },

  "`-n, --count N`": {
    async check() {
      const reports: Record<string, unknown>[] = [];
      const summary = await countedEcho(async (url) => {
        for (const count of [["-n", "60"], ["--count", "40"]]) {
          const { result, report } = await echoReport([url, ...count, "-c", "2"]);
          assert.equal(result.code, 0, shown(result));
          reports.push(report);
        }
      });
      assert.deepEqual(reports.map((report) => report.linesSent), [60, 40]);
      assert.deepEqual(reports.map((report) => report.linesReceived), [60, 40]);
      assert.equal(summary.linesIn, 100, "the server received exactly the lines counted");
    },
  },

  "`-c, --connections N`": {
    async check() {
      const reports: Record<string, unknown>[] = [];
      const summary = await countedEcho(async (url) => {
        for (const connections of [["-c", "3"], ["--connections", "2"]]) {
          const { result, report } = await echoReport([url, ...connections, "-n", "30"]);
          assert.equal(result.code, 0, shown(result));
          reports.push(report);
        }
      });
      assert.deepEqual(reports.map((report) => report.connections), [3, 2]);
      assert.equal(summary.connections, 5, "the server saw exactly the connections asked for");
    },
  },

  "`-P, --pipeline N`": {
    async check() {
      // The server echoes nothing until 4 lines are in flight: only a pipeline of 4 gets answers.
      await using server = holdingEchoServer(4);
      const { result, report } = await echoReport([
        "-p",
        String(server.port),
        "-P",
        "4",
        "-n",
        "8",
        "-c",
        "1",
        "--timeout",
        "2s",
      ]);
      assert.equal(result.code, 0, `-P 4 kept fewer than 4 lines in flight: ${shown(result)}`);
      assert.equal(report.pipeline, 4);
      assert.deepEqual(server.held, [4], "exactly 4 lines in flight before the first echo");
    },
  },

  "`-d, --duration D`": {
    async check(fx) {
      const echo = await fx.echo();
      // Paced, so that the run is light; without -d it would send 100000 lines at 100/s.
      const { result, report } = await echoReport([echo.url, "-d", "1s", "-r", "100", "-c", "1"]);
      assert.equal(result.code, 0, shown(result));
      assert.ok((report.elapsedMs as number) >= 1000 - EARLY_MARGIN_MS, `${report.elapsedMs} ms`);
      assert.ok((report.linesSent as number) > 0);
    },
  },

  "`-r, --rate N`": {
    async check(fx) {
      const echo = await fx.echo();
      // 25 lines at 50 per second take at least 24 intervals of 20 ms; unpaced, a few ms.
      const { result, report } = await echoReport([echo.url, "-r", "50", "-n", "25", "-c", "1"]);
      assert.equal(result.code, 0, shown(result));
      assert.equal(report.rate, 50);
      assert.equal(report.linesSent, 25);
      assert.ok((report.elapsedMs as number) >= 480 - EARLY_MARGIN_MS, `${report.elapsedMs} ms`);
    },
  },

  "`--replies N`": {
    async check(fx) {
      const server = await fx.threeReplies();
      const port = String(server.port);
      // --wait 0 waits for the close, which never comes: only --replies ends this run.
      const three = await runCli("send", ["-p", port, "--replies", "3", "--wait", "0", "a", "b"]);
      assert.equal(three.code, 0, shown(three));
      assert.equal(three.stdout, "a 1\na 2\na 3\nb 1\nb 2\nb 3\n");
      const four = await runCli("send", ["-p", port, "--replies", "4", "--timeout", "500ms", "a"]);
      assert.equal(four.code, 4, `a fourth reply never comes: ${shown(four)}`);
    },
  },

  "`--connect-timeout D`": {
    bySubcommand(subcommand) {
      if (!CLIENTS.includes(subcommand)) return {};
      return {
        async fn(fx) {
          // The server accepts the TCP connection but never answers the TLS handshake.
          const server = await fx.silent();
          const args = ["-p", String(server.port), "--tls", "--connect-timeout", "700ms"];
          const message = new RegExp(
            `^linesock: Timed out after 700 ms: connect to 127\\.0\\.0\\.1:${server.port}\\n$`,
          );
          if (subcommand === "echo-test") {
            const result = await runCli("echo-test", [...args, "--case", "short-line"]);
            assert.notEqual(
              result.code,
              2,
              `DOC MISMATCH: echo-test has no --connect-timeout (docs/cli.md: clients): ${result.stderr.trim()}`,
            );
            await assertTimesOut("echo-test", [...args, "--case", "short-line"], 700, message);
          } else {
            const [command, lines, stdin] = subcommand === "send"
              ? ["send", ["PING"], undefined] as const
              : ["repl", [], "PING\n"] as const;
            await assertTimesOut(command, [...args, ...lines], 700, message, stdin);
          }
        },
      };
    },
  },

  "`--timeout D`": {
    bySubcommand: {
      send: {
        async fn(fx) {
          const server = await fx.silent();
          await assertTimesOut(
            "send",
            ["-p", String(server.port), "--replies", "1", "--timeout", "700ms", "PING"],
            700,
            /^linesock: Timed out after 700 ms: waiting for a reply from tcp:\/\/127\.0\.0\.1:\d+\n$/,
          );
        },
      },
      repl: {
        async fn(fx) {
          const server = await fx.silent();
          await assertTimesOut(
            "repl",
            ["-p", String(server.port), "--timeout", "700ms"],
            700,
            /^linesock: no reply for 700 ms after the input ended\n$/,
            "PING\n",
          );
        },
      },
      "echo-test": {
        // In echo-test, --timeout bounds each case, and in load mode each echo (lines lost: exit 1).
        async fn(fx) {
          const server = await fx.silent();
          const start = performance.now();
          const { result, report } = await echoReport([
            "-p",
            String(server.port),
            "--timeout",
            "700ms",
            "-n",
            "1",
            "-c",
            "1",
          ]);
          const elapsed = since(start);
          assert.equal(result.code, 1, shown(result));
          assert.equal(report.linesLost, 1);
          assert.match(String((report.errors as string[])[0]), /no echo for 700 ms/);
          assert.ok(elapsed >= 700 - EARLY_MARGIN_MS, `${Math.round(elapsed)} ms`);
        },
      },
    },
  },

  "`--tls`, `--ca`, `--servername`, `--insecure`": {
    ignore: OPENSSL_MISSING,
    bySubcommand: {
      send: {
        async fn(fx, t) {
          const { caFile } = await fx.certs();
          const server = await fx.tls("text");
          const port = ["-p", String(server.port)];
          await t.step(
            "--tls verifies against the system's CAs: the test CA is unknown",
            async () => {
              const result = await runCli("send", [...port, "--tls", "--replies", "1", "HELLO"]);
              assert.equal(result.code, 3, shown(result));
              assert.match(result.stderr, /certificate not trusted/);
            },
          );
          await t.step("--ca trusts a CA (with or without --tls)", async () => {
            await assertHello("send", [...port, "--tls", "--ca", caFile]);
            await assertHello("send", [...port, "--ca", caFile]);
          });
          await t.step("--servername is the name verified", async () => {
            await assertHello("send", [...port, "--ca", caFile, "--servername", "localhost"]);
            const wrong = await runCli("send", [
              ...port,
              "--ca",
              caFile,
              "--servername",
              "elsewhere.invalid",
              "--replies",
              "1",
              "HELLO",
            ]);
            assert.equal(wrong.code, 3, shown(wrong));
            assert.match(wrong.stderr, /elsewhere\.invalid/);
          });
          await t.step("--insecure skips verification, and warns once", async () => {
            const result = await runCli("send", [...port, "--insecure", "--replies", "1", "HELLO"]);
            assert.equal(result.stdout, `${NAME}\n`, shown(result));
            assert.match(result.stderr, /^linesock: WARNING: --insecure: .*NOT verified/);
            assert.equal(linesOf(result.stderr).length, 1, result.stderr);
          });
        },
      },
      repl: {
        async fn(fx) {
          const { caFile } = await fx.certs();
          const port = ["-p", String((await fx.tls("text")).port)];
          await assertHello("repl", [...port, "--ca", caFile, "--servername", "localhost"]);
          const untrusted = await runCli("repl", [...port, "--tls"], { stdin: "HELLO\n" });
          assert.equal(untrusted.code, 3, shown(untrusted));
          const wrong = await runCli(
            "repl",
            [...port, "--ca", caFile, "--servername", "x.invalid"],
            {
              stdin: "HELLO\n",
            },
          );
          assert.equal(wrong.code, 3, shown(wrong));
          const insecure = await runCli("repl", [...port, "--insecure"], { stdin: "HELLO\n" });
          assert.equal(insecure.stdout, `${NAME}\n`, shown(insecure));
          assert.match(insecure.stderr, /WARNING: --insecure/);
        },
      },
      "echo-test": {
        async fn(fx) {
          const { caFile } = await fx.certs();
          const port = ["-p", String((await fx.tls("echo")).port)];
          await assertEchoTest([...port, "--tls", "--ca", caFile, "--servername", "localhost"]);
          const untrusted = await runCli("echo-test", [...port, "--tls", "--case", "short-line"]);
          assert.equal(untrusted.code, 3, shown(untrusted));
          const wrong = await runCli("echo-test", [
            ...port,
            "--ca",
            caFile,
            "--servername",
            "x.invalid",
            "--case",
            "short-line",
          ]);
          assert.equal(wrong.code, 3, shown(wrong));
          const insecure = await runCli("echo-test", [
            ...port,
            "--insecure",
            "--case",
            "short-line",
          ]);
          assert.equal(insecure.code, 0, shown(insecure));
          assert.match(insecure.stderr, /WARNING: --insecure/);
        },
      },
    },
  },

  "`-h, --help`, `help COMMAND`": {
    async check() {
      const top = await runCli("linesock", ["--help"]);
      assert.equal(top.code, 0, shown(top));
      assert.match(top.stdout, /^Examples:$/m);
      assert.equal((await runCli("linesock", ["-h"])).stdout, top.stdout);
    },
    bySubcommand(subcommand) {
      return {
        async fn() {
          const [short, long, viaHelp] = await Promise.all([
            runCli("linesock", [subcommand, "-h"]),
            runCli("linesock", [subcommand, "--help"]),
            runCli("linesock", ["help", subcommand]),
          ]);
          for (const result of [short, long, viaHelp]) {
            assert.equal(result.code, 0, shown(result));
            assert.equal(result.stderr, "");
          }
          assert.match(long.stdout, new RegExp(`^Usage: linesock ${subcommand} `));
          assert.match(long.stdout, /^Examples:$/m, `${subcommand} --help has no examples`);
          assert.equal(short.stdout, long.stdout, "-h and --help print the same");
          assert.equal(viaHelp.stdout, long.stdout, `help ${subcommand} prints the same`);
        },
      };
    },
  },

  "`--exec -- PROGRAM ARGS…`": {
    async check() {
      // Each connection's lines go to the program's stdin; its stdout lines come back.
      await using cat = await startServer(["-p", "0", "--exec", "--", "cat"]);
      const lines = await runCli("send", [cat.url, "--replies", "1", "a", "b"]);
      assert.equal(lines.stdout, "a\nb\n", shown(lines));
      // The arguments reach the program as they are: no shell splits or expands them.
      await using printf = await startServer([
        "-p",
        "0",
        "--exec",
        "--",
        "printf",
        "%s|\\n",
        "a b",
        "$HOME",
      ]);
      const args = await runCli("send", [printf.url, "--replies", "2", "x"]);
      assert.equal(args.stdout, "a b|\n$HOME|\n", shown(args));
    },
  },

  "`--protocol chat` (`--raw`, `--bus URL`)": {
    async check(_fx, t) {
      await t.step("--protocol chat: a line reaches the others in the room, named", async () => {
        await using server = await startServer(["-p", "0", "--protocol", "chat"]);
        await using ann = await connect({ port: server.port });
        await using ben = await connect({ port: server.port });
        await ann.join("ops", { name: "ann" });
        await ben.join("ops", { name: "ben" });
        await ben.send("deploying");
        const heard: string[] = [];
        while (heard.at(-1) !== "<ben> deploying") {
          const line = await ann.readLine(10_000);
          assert.ok(line !== null, `ann's connection closed; heard ${heard}`);
          heard.push(line);
        }
      });
      await t.step("--raw: bytes relayed as sent, no names", async () => {
        await using server = await startServer(["-p", "0", "--protocol", "chat", "--raw"]);
        await using reader = await connect({ port: server.port });
        await using writer = await connect({ port: server.port });
        // The reader is a member once the server has answered something on its connection; the
        // raw relay answers nothing, so wait until the writer's line arrives, resending meanwhile.
        let got: string | null = null;
        for (let attempt = 0; got === null && attempt < 50; attempt++) {
          await writer.send(`raw ${attempt}`);
          got = await reader.readLine(200).catch(() => null);
        }
        assert.match(got ?? "", /^raw \d+$/);
      });
      await t.step("--bus needs a reachable NATS server: exit 3 with one line", async () => {
        const result = await runCli("serve", [
          "-p",
          "0",
          "--protocol",
          "chat",
          "--bus",
          `nats://127.0.0.1:${unusedPort()}`,
        ]);
        assert.equal(result.code, 3, shown(result));
        assert.match(result.stderr, /Cannot connect to the bus/);
      });
    },
  },

  "`--metrics HOST:PORT` (`--metrics-public`)": {
    async check(_fx, t) {
      const scrape = async (metricsLine: string | undefined, host: string) => {
        const url = /^metrics on (http:\/\/(.+):(\d+)\/metrics)$/.exec(metricsLine ?? "");
        assert.ok(url, `serve's second line: ${JSON.stringify(metricsLine)}`);
        assert.equal(url[2], host);
        const base = `http://127.0.0.1:${url[3]}`;
        const metrics = await fetch(`${base}/metrics`);
        const body = await metrics.text();
        assert.equal(metrics.status, 200, body);
        assert.match(body, /^linesock_serving 1$/m);
        const health = await fetch(`${base}/healthz`);
        await health.body?.cancel();
        assert.equal(health.status, 200);
      };
      await t.step("--metrics 127.0.0.1:0 serves /metrics and /healthz", async () => {
        await withServe(
          ["-p", "0", "--metrics", "127.0.0.1:0"],
          ([, metrics]) => scrape(metrics, "127.0.0.1"),
          2,
        );
      });
      await t.step("an address other hosts reach needs --metrics-public", async () => {
        const refused = await runCli("serve", ["-p", "0", "--metrics", "0.0.0.0:0"]);
        assert.equal(refused.code, 2, shown(refused));
        assert.match(
          refused.stderr,
          /^linesock: --metrics 0\.0\.0\.0:0 is not a loopback .*--metrics-public/,
        );
        await withServe(
          ["-p", "0", "--metrics", "0.0.0.0:0", "--metrics-public"],
          ([, metrics]) => scrape(metrics, "0.0.0.0"),
          2,
        );
      });
    },
  },

  "`-V, --version`": {
    async check() {
      for (const flag of ["-V", "--version"]) {
        const result = await runCli("linesock", [flag]);
        assert.equal(result.code, 0, shown(result));
        assert.equal(result.stdout, `${denoJson.version}\n`, `linesock ${flag}`);
      }
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Old spellings
// ---------------------------------------------------------------------------------------------

const OLD_SPELLING_ROWS: Readonly<Record<string, RowCheck>> = {
  "`-u PATH`": {
    covered: {
      test: "targets: every form serve prints, and HOST PORT",
      step: "-u still works with a warning",
    },
  },

  "`send -n N`": {
    async check(fx) {
      const server = await fx.threeReplies();
      // As --replies 3: the run ends at the third reply (--wait 0 would wait for a close forever).
      const result = await runCli("send", [
        "-p",
        String(server.port),
        "-n",
        "3",
        "--wait",
        "0",
        "a",
      ]);
      assert.equal(result.code, 0, shown(result));
      assert.equal(result.stdout, "a 1\na 2\na 3\n");
      assert.equal(result.stderr, deprecation("-n", "--replies"));
    },
  },

  "`test --target URL`": {
    async check(fx) {
      const [text, { pass }] = await Promise.all([fx.text(), conversations(fx)]);
      const result = await runCli("linesock", ["test", "--target", text.url, pass]);
      assert.equal(result.code, 0, shown(result));
      assert.equal(result.stderr, deprecation("--target", "--host"));
    },
  },

  "`echo-test -n N` / `--lines N`": {
    async check(fx) {
      const echo = await fx.echo();
      const now = await echoReport([echo.url, "-n", "40", "-c", "1"]);
      assert.equal(now.result.stderr, "", "-n is the current spelling: no warning");
      assert.equal(now.report.linesSent, 40);
      const old = await echoReport([echo.url, "--lines", "30", "-c", "1"]);
      assert.equal(old.result.code, 0, shown(old.result));
      assert.equal(old.report.linesSent, 30);
      assert.equal(old.result.stderr, deprecation("--lines", "-n/--count"));
    },
  },

  "`echo-test -k N`": {
    async check() {
      await using server = holdingEchoServer(3);
      const { result, report } = await echoReport([
        "-p",
        String(server.port),
        "-k",
        "3",
        "-n",
        "6",
        "-c",
        "1",
        "--timeout",
        "2s",
      ]);
      assert.equal(result.code, 0, `-k 3 kept fewer than 3 lines in flight: ${shown(result)}`);
      assert.equal(report.pipeline, 3);
      assert.deepEqual(server.held, [3]);
      assert.equal(result.stderr, deprecation("-k", "-P/--pipeline"));
    },
  },
};

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

interface Table {
  readonly name: string;
  readonly heading: string;
  /** Which column says where a flag applies, if any. */
  readonly whereColumn?: number;
  readonly checks: Readonly<Record<string, RowCheck>>;
}

const TABLES: readonly Table[] = [
  { name: "Targets", heading: "## Targets", checks: TARGET_ROWS },
  { name: "Flags", heading: "## Flags", whereColumn: 1, checks: FLAG_ROWS },
  { name: "Old spellings", heading: "### Old spellings", checks: OLD_SPELLING_ROWS },
];

/** Whether cli_test.ts still has the test (and step) an entry points at. */
function coveredProblem(source: string, row: string, covered: Covered): string | undefined {
  if (!source.includes(`"${covered.test}"`)) {
    return `${row}: ${CLI_TEST} has no test named "${covered.test}"`;
  }
  if (covered.step !== undefined && !source.includes(covered.step)) {
    return `${row}: ${CLI_TEST} has no step "${covered.step}"`;
  }
  return undefined;
}

Deno.test("docs/cli.md: every row of Targets, Flags and Old spellings has a check here", async () => {
  const source = await Deno.readTextFile(`${ROOT}${CLI_TEST}`);
  const problems: string[] = [];
  for (const table of TABLES) {
    const rows = tableRows(table.heading).map((row) => row.cells[0]!);
    if (rows.length === 0) problems.push(`docs/cli.md has no table under "${table.heading}"`);
    for (const row of rows) {
      const entry = table.checks[row];
      if (entry === undefined) {
        problems.push(`${table.name} row ${row} has no check in tests/commands/cli_rows_test.ts`);
      } else if (!entry.check && !entry.bySubcommand && !entry.covered) {
        problems.push(`${table.name} row ${row}: its entry checks nothing`);
      }
    }
    for (const [row, entry] of Object.entries(table.checks)) {
      if (!rows.includes(row)) {
        problems.push(`${table.name}: a check for ${row}, which docs/cli.md no longer lists`);
      }
      const pointers = [
        entry.covered,
        ...typeof entry.bySubcommand === "object"
          ? Object.values(entry.bySubcommand).map((check) => check.covered)
          : [],
      ];
      for (const covered of pointers) {
        const problem = covered && coveredProblem(source, row, covered);
        if (problem) problems.push(problem);
      }
    }
  }
  assert.equal(problems.length, 0, `\n${problems.join("\n")}`);
});

for (const table of TABLES) {
  Deno.test(`docs/cli.md ${table.name}: each row works through the CLI`, async (t) => {
    await using fx = new Fixtures();
    for (const { cells } of tableRows(table.heading)) {
      const row = cells[0]!;
      const entry = table.checks[row];
      await t.step({
        name: entry?.ignore ? `${row} (ignored: ${entry.ignore})` : row,
        ignore: entry?.ignore !== undefined,
        async fn(t) {
          assert.ok(entry, `no check for ${row} in tests/commands/cli_rows_test.ts`);
          if (entry.check) await entry.check(fx, t);
          if (entry.bySubcommand) {
            const where = table.whereColumn === undefined ? "" : cells[table.whereColumn] ?? "";
            for (const subcommand of await subcommandsOf(where)) {
              const check = typeof entry.bySubcommand === "function"
                ? entry.bySubcommand(subcommand)
                : entry.bySubcommand[subcommand] ?? {};
              const skip = check.notApplicable ?? check.ignore;
              await t.step({
                name: skip ? `${subcommand} (ignored: ${skip})` : subcommand,
                ignore: skip !== undefined,
                async fn(t) {
                  if (check.fn) return await check.fn(fx, t);
                  assert.ok(
                    check.covered,
                    `${row} applies to ${subcommand} ("${where}"), which has no check in ` +
                      "tests/commands/cli_rows_test.ts",
                  );
                  // Pinned by cli_test.ts (the first test checks that the test is still there).
                },
              });
            }
          }
        },
      });
    }
  });
}

/**
 * `linesock serve`: turns options into a {@linkcode serve} call with one of the ready protocols (or,
 * with `--workers`, into {@linkcode serveWorkers} on all cores), prints the bound address as the first
 * stdout line, and stops gracefully on SIGINT, SIGTERM or Ctrl-D (when stdin is a terminal), printing
 * a one-line summary.
 *
 * The server modules load only when the command runs, so that other subcommands start fast.
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "commander";
import type { LogLevel } from "@logtape/logtape";
import type { ServeOptions, ServerStats } from "../lib/server/server.ts";
import type { ServeConfig } from "../lib/workers/worker_pool.ts";
import { DEFAULT_HOST, DEFAULT_PORT } from "../lib/address.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../lib/framing/line_framer.ts";
import {
  ExitCode,
  ExitError,
  parseByteSize,
  parseCount,
  parseDuration,
  parsePort,
  parsePositive,
  UsageError,
} from "./_cli.ts";
import { parseLevel, setUpLogging } from "./_logging.ts";

/** The idle timeout of the line protocols when none is given (echo has none). */
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_GRACE_MS = 5000;
const DEFAULT_WRITE_TIMEOUT_MS = 30_000;
const DEFAULT_QUEUE = 64;
/** Enough for 10,000 idle connections and more; each needs a descriptor (see `ulimit -n`). */
const DEFAULT_MAX_CONNECTIONS = 16384;
const DEFAULT_WRITE_BUFFER_BYTES = 1024 * 1024;
/** The line timeout of the line protocols when none is given (echo has none). */
const DEFAULT_LINE_TIMEOUT_MS = 30_000;
const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

interface ServeFlags {
  host: string;
  port: number;
  unix?: string;
  socketMode: number;
  socketGroup?: string;
  protocol: "echo" | "text" | "json";
  name?: string;
  greeting?: string;
  routes?: string;
  allowShutdown?: boolean;
  maxClients?: number;
  queue: number;
  queueTimeout?: number;
  idleTimeout?: number;
  lineTimeout?: number;
  maxPerAddress?: number;
  maxLine: number;
  closeAfter?: number;
  grace: number;
  invalidReply?: string;
  logLevel: LogLevel;
  logFormat: "text" | "json";
  quiet?: boolean;
  maxExec?: number;
  execEnv?: string[];
  maxConnections: number;
  writeTimeout: number;
  writeBuffer: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsHandshakeTimeout: number;
  workers?: number;
  proxyProtocol?: boolean;
  proxyTimeout: number;
}

/** What `serve` stops and summarizes: one server, or a pool of workers. */
interface Stoppable {
  readonly url: string;
  readonly stats: Readonly<ServerStats>;
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("Run a line server on TCP or a Unix socket")
    .option("--host <host>", "TCP host to bind (IPv6 literals such as ::1 work)", DEFAULT_HOST)
    .option("--port <port>", "TCP port; 0 picks a free one", parsePort, DEFAULT_PORT)
    .option("--unix <path>", "listen on this Unix socket instead of TCP")
    .option("--tls-cert <file>", "serve TLS with this PEM certificate (chain); needs --tls-key")
    .option("--tls-key <file>", "the PEM private key of --tls-cert")
    .addOption(
      new Option(
        "--tls-handshake-timeout <duration>",
        "close a TLS client that has not completed its handshake this long; 0 = off",
      ).argParser(parseDuration).default(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, "10s"),
    )
    .addOption(
      new Option("--socket-mode <mode>", "Unix socket permission bits, octal")
        .argParser(parseMode).default(0o600, "600"),
    )
    .option("--socket-group <group>", "Unix socket group, a name or a number")
    .addOption(
      new Option("--protocol <name>", "what the server speaks")
        .choices(["echo", "text", "json"])
        .default("text"),
    )
    .option("--name <name>", "what HELLO answers (default: the host name)")
    .option("--greeting <text>", "a line sent to each client when it connects")
    .option("--routes <file>", "JSON file of routes, tried before the built-in commands")
    .option("--allow-shutdown", "let clients stop the server with SHUTDOWN")
    .option(
      "--max-clients <n>",
      "clients served at once; later ones wait (default: no limit)",
      parsePositive,
    )
    .addOption(
      new Option("--queue <n>", "clients that may wait for a slot; beyond it: ERR busy")
        .argParser(parseCount).default(DEFAULT_QUEUE),
    )
    .option(
      "--queue-timeout <duration>",
      "how long a client may wait for a slot; then ERR busy; 0 = off (default: the idle timeout)",
      parseDuration,
    )
    .addOption(
      new Option(
        "--max-connections <n>",
        "connections open at once; beyond it: ERR too many connections",
      ).argParser(parsePositive).default(DEFAULT_MAX_CONNECTIONS),
    )
    .option(
      "--idle-timeout <duration>",
      "close a connection silent this long; 0 = off (default: 5m, echo: off)",
      parseDuration,
    )
    .option(
      "--line-timeout <duration>",
      "a line must arrive whole this long after its first byte; 0 = off (default: 30s, echo: off)",
      parseDuration,
    )
    .option(
      "--max-per-address <n>",
      "connections open at once from one client address (PROXY-aware; default: no limit)",
      parsePositive,
    )
    .addOption(
      new Option("--max-line <size>", "longest line accepted (not for echo)")
        .argParser(parseByteSize).default(DEFAULT_MAX_LINE_BYTES, "1MiB"),
    )
    .option("--close-after <lines>", "close each connection after this many lines", parsePositive)
    .addOption(
      new Option("--grace <duration>", "how long shutdown waits for replies in flight")
        .argParser(parseDuration).default(DEFAULT_GRACE_MS, "5s"),
    )
    .addOption(
      new Option(
        "--write-timeout <duration>",
        "drop a client whose replies make no progress this long (it stopped reading); 0 = off",
      ).argParser(parseDuration).default(DEFAULT_WRITE_TIMEOUT_MS, "30s"),
    )
    .addOption(
      new Option(
        "--write-buffer <size>",
        "unsent replies per connection before the server stops reading from it",
      ).argParser(parseByteSize).default(DEFAULT_WRITE_BUFFER_BYTES, "1MiB"),
    )
    .option("--invalid-reply <text>", "the reply to a line that is not UTF-8 (text protocol)")
    .option("--max-exec <n>", "route programs running at once (default: 16)", parsePositive)
    .option(
      "--exec-env <names>",
      "environment variables route programs inherit besides PATH, HOME, LANG, LC_ALL, LC_CTYPE, " +
        "TZ, TMPDIR (comma-separated)",
      parseNames,
    )
    .option(
      "--log-level <level>",
      "trace, debug, info, warning, error or fatal",
      parseLevel,
      "info",
    )
    .addOption(
      new Option("--log-format <format>", "log format on stderr").choices(["text", "json"]).default(
        "text",
      ),
    )
    .option("--quiet", "log errors only")
    .option(
      "--workers <n>",
      'accept loops on all cores: N workers sharing the TCP port (SO_REUSEPORT), or "auto"',
      parseWorkers,
    )
    .option(
      "--proxy-protocol",
      "expect a PROXY protocol v1/v2 header on every connection (behind HAProxy and the like)",
    )
    .addOption(
      new Option(
        "--proxy-timeout <duration>",
        "how long a client may take to send its PROXY header",
      )
        .argParser(parseDuration).default(5000, "5s"),
    )
    .addHelpText(
      "after",
      `
Examples:
  linesock serve                               text protocol on tcp://127.0.0.1:1991
  linesock serve --port 0                      pick a free port (printed on the first line)
  linesock serve --protocol echo --port 7000   byte-exact echo
  linesock serve --host ::1 --name alpha       IPv6 loopback; HELLO answers "alpha"
  linesock serve --unix /tmp/app.sock --protocol json --allow-shutdown
  linesock serve --max-clients 1 --queue 4     one client at a time, four may wait
  linesock serve --routes routes.json --greeting "welcome"
  linesock serve --tls-cert server.pem --tls-key server-key.pem
  linesock serve --protocol echo --workers auto    one accept loop per core
  linesock serve --proxy-protocol --log-format json   behind HAProxy (send-proxy / send-proxy-v2)

The first stdout line is "listening on tcp://HOST:PORT" or "listening on unix:///PATH"; logs go to
stderr. SIGINT, SIGTERM or Ctrl-D (when stdin is a terminal) stop the server gracefully and print a
summary line; a second signal exits at once with status 130 (SIGINT) or 143 (SIGTERM).`,
    )
    .action(async function (this: Command, flags: ServeFlags) {
      await runServe(flags, (name) => this.getOptionValueSource(name) === "cli");
    });
}

async function runServe(flags: ServeFlags, given: (option: string) => boolean): Promise<void> {
  setUpLogging({ level: flags.quiet ? "error" : flags.logLevel, format: flags.logFormat });
  if (flags.unix !== undefined && (given("host") || given("port"))) {
    throw new UsageError("--unix cannot be combined with --host or --port");
  }
  if (flags.unix === undefined && (given("socketMode") || flags.socketGroup !== undefined)) {
    throw new UsageError("--socket-mode and --socket-group need --unix");
  }
  if (flags.protocol === "echo") {
    // Echo relays bytes: it has no lines to limit or to answer (an idle timeout does apply).
    const lineOptions = [["routes", "--routes"], ["invalidReply", "--invalid-reply"], [
      "maxLine",
      "--max-line",
    ]];
    for (const [option, name] of lineOptions) {
      if (given(option!)) throw new UsageError(`${name} does not apply to the echo protocol`);
    }
  }
  if (flags.protocol === "json" && given("invalidReply")) {
    throw new UsageError("--invalid-reply applies to the text protocol only");
  }
  if (given("maxExec") && flags.routes === undefined) {
    throw new UsageError("--max-exec needs --routes");
  }
  if (flags.execEnv !== undefined) {
    if (flags.routes === undefined) throw new UsageError("--exec-env needs --routes");
    const { unreadableEnv } = await import("../lib/routes/program_runner.ts");
    const unreadable = unreadableEnv(flags.execEnv);
    if (unreadable.length > 0) {
      throw new UsageError(
        `--exec-env: the server may not read ${unreadable.join(", ")} ` +
          "(run it with --allow-env covering them)",
      );
    }
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (flags.tlsCert !== undefined && flags.unix !== undefined) {
    throw new UsageError("TLS is for TCP; Unix sockets are protected by their file mode");
  }
  if ((given("queue") || given("queueTimeout")) && flags.maxClients === undefined) {
    throw new UsageError("--queue and --queue-timeout need --max-clients");
  }
  if (flags.workers !== undefined && flags.unix !== undefined) {
    throw new UsageError("--workers shares a TCP port; it cannot be combined with --unix");
  }
  if (given("tlsHandshakeTimeout") && flags.tlsCert === undefined) {
    throw new UsageError("--tls-handshake-timeout needs --tls-cert and --tls-key");
  }
  if (given("proxyTimeout") && !flags.proxyProtocol) {
    throw new UsageError("--proxy-timeout needs --proxy-protocol");
  }

  const serveOptions: Omit<ServeOptions, "signal" | "listener"> = {
    maxLineBytes: flags.maxLine,
    idleTimeoutMs: flags.idleTimeout ?? (flags.protocol === "echo" ? 0 : DEFAULT_IDLE_TIMEOUT_MS),
    lineTimeoutMs: flags.lineTimeout ?? (flags.protocol === "echo" ? 0 : DEFAULT_LINE_TIMEOUT_MS),
    ...(flags.maxPerAddress !== undefined ? { maxConnectionsPerAddress: flags.maxPerAddress } : {}),
    graceMs: flags.grace,
    writeTimeoutMs: flags.writeTimeout,
    writeBufferBytes: flags.writeBuffer,
    ...(flags.maxClients !== undefined ? { maxClients: flags.maxClients } : {}),
    queue: flags.queue,
    ...(flags.queueTimeout !== undefined ? { queueTimeoutMs: flags.queueTimeout } : {}),
    maxConnections: flags.maxConnections,
    ...(flags.closeAfter !== undefined ? { closeAfterLines: flags.closeAfter } : {}),
    ...(flags.greeting !== undefined ? { greeting: flags.greeting } : {}),
    ...(flags.proxyProtocol
      ? { proxyProtocol: true, proxyHeaderTimeoutMs: flags.proxyTimeout }
      : {}),
  };
  if (flags.unix !== undefined) {
    if ((flags.socketMode & 0o007) !== 0) {
      console.error(
        `linesock: warning: --socket-mode ${flags.socketMode.toString(8).padStart(3, "0")} lets ` +
          "every user of this machine connect",
      );
    }
    serveOptions.path = flags.unix;
    serveOptions.socketMode = flags.socketMode;
    if (flags.socketGroup !== undefined) serveOptions.socketGid = await groupId(flags.socketGroup);
  } else {
    serveOptions.hostname = flags.host.replace(/^\[(.*)\]$/, "$1");
    serveOptions.port = flags.port;
    if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
      serveOptions.tls = { cert: await readPem(flags.tlsCert), key: await readPem(flags.tlsKey) };
      serveOptions.tlsHandshakeTimeoutMs = flags.tlsHandshakeTimeout;
    }
  }
  const config: ServeConfig = {
    protocol: flags.protocol,
    serve: serveOptions,
    allowShutdown: flags.allowShutdown ?? false,
    logLevel: flags.quiet ? "error" : flags.logLevel,
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    ...(flags.invalidReply !== undefined ? { invalidReply: flags.invalidReply } : {}),
    ...(flags.routes !== undefined ? { routesPath: flags.routes } : {}),
    ...(flags.maxExec !== undefined ? { maxExec: flags.maxExec } : {}),
    ...(flags.execEnv !== undefined ? { programEnv: flags.execEnv } : {}),
  };

  const [{ serve }, { protocolFromConfig, serveWorkers }, { RoutesError }] = await Promise.all([
    import("../lib/server/server.ts"),
    import("../lib/workers/worker_pool.ts"),
    import("../lib/routes/routes.ts"),
  ]);
  let protocol;
  try {
    // Also checks the routes file before any worker starts.
    protocol = await protocolFromConfig(config);
  } catch (error) {
    if (error instanceof RoutesError) throw new ExitError(ExitCode.usage, error.message);
    throw error;
  }
  const server: Stoppable = flags.workers === undefined
    ? await serve(serveOptions, protocol)
    : await serveWorkers(config, flags.workers);
  console.log(`listening on ${server.url}`);
  const stopOnSignals = handleSignals(server);
  const stopOnCtrlD = Deno.stdin.isTerminal() ? watchTerminal(server) : undefined;
  try {
    await server.finished;
    await server.shutdown();
  } finally {
    stopOnSignals();
    stopOnCtrlD?.abort();
  }
  console.log(summarize(server.stats));
}

/** The first SIGINT/SIGTERM shuts down gracefully; a second one exits at once. */
function handleSignals(server: Stoppable): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let received = false;
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (received) Deno.exit(signal === "SIGINT" ? 130 : 143);
      received = true;
      console.error(`linesock: ${signal}: shutting down (send it again to exit at once)`);
      void server.shutdown();
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}

/** Ctrl-D on the terminal (stdin reads end of input) shuts down gracefully. */
function watchTerminal(server: Stoppable): AbortController {
  const controller = new AbortController();
  (async () => {
    const buffer = new Uint8Array(1024);
    while (!controller.signal.aborted) {
      const count = await Deno.stdin.read(buffer);
      if (count === null) break;
    }
    if (!controller.signal.aborted) {
      console.error("linesock: end of input: shutting down");
      await server.shutdown();
    }
  })().catch(() => void server.shutdown());
  return controller;
}

/** One line about the server's life, printed on stdout at exit. */
export function summarize(stats: Readonly<ServerStats>): string {
  return `summary: ${stats.connections} connections, ${stats.linesIn} lines in, ` +
    `${stats.linesOut} lines out, ${stats.bytesIn} bytes in, ${stats.bytesOut} bytes out, ` +
    `${stats.errors} errors` +
    (stats.acceptErrors > 0 ? `, ${stats.acceptErrors} failed accepts` : "") +
    (stats.workerRestarts > 0 ? `, ${stats.workerRestarts} worker restarts` : "");
}

/** Reads a PEM file; a missing or unreadable file is a usage error naming it. */
async function readPem(path: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    if (!text.includes("-----BEGIN ")) throw new UsageError(`${path} is not a PEM file`);
    return text;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

/** `--exec-env`: environment variable names, comma-separated. */
function parseNames(text: string): string[] {
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  const bad = names.find((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name));
  if (bad !== undefined) throw new InvalidArgumentError(`not a variable name: ${bad}`);
  return names;
}

/** `--workers`: a positive count, or `auto` for one per core. */
function parseWorkers(text: string): number {
  if (text.trim().toLowerCase() === "auto") return navigator.hardwareConcurrency;
  return parsePositive(text);
}

/** `--socket-mode`: octal permission bits; setuid, setgid and sticky bits make no sense here. */
function parseMode(text: string): number {
  const match = /^(?:0o?)?([0-7]{1,4})$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError("expected octal permission bits such as 600 or 0660");
  const mode = parseInt(match[1]!, 8);
  if (mode > 0o777) {
    throw new InvalidArgumentError(
      "expected permission bits up to 777 (setuid, setgid and sticky bits do not apply)",
    );
  }
  return mode;
}

/** A group name or number to a group id (names through /etc/group). */
async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const table = await Deno.readTextFile("/etc/group").catch(() => "");
  for (const line of table.split("\n")) {
    const [name, , id] = line.split(":");
    if (name === group && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  throw new UsageError(`--socket-group: no group named ${group}`);
}

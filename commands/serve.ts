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
import { type CommandSpec, parse, type Parsed } from "./_cli/spec.ts";
import { parseAddress, parsePortNumber } from "./_cli/address_args.ts";
import { hostPort } from "../lib/address.ts";
import type { LogLevel } from "@logtape/logtape";
import type { ServeOptions, ServerStats } from "../lib/server/serve.ts";
import type { ServerMetrics } from "../lib/server/metrics.ts";
import type { MetricsEndpoint } from "../lib/metrics/metrics_endpoint.ts";
import type { ServeConfig } from "../lib/workers/worker_pool.ts";
import type { RoutesSettings } from "../lib/routes/routes.ts";
import { CLI_SERVE_DEFAULTS, SERVE_DEFAULTS } from "../lib/server/defaults.ts";
import { DEFAULT_EXEC_TIMEOUT_MS, type ExecOptions } from "../lib/protocols/exec.ts";
import {
  ExitCode,
  ExitError,
  InvalidArgumentError,
  parseByteSize,
  parseCount,
  parseDuration,
  parsePositive,
  UsageError,
} from "./_cli.ts";
import { parseLevel, setUpLogging } from "./_logging.ts";
import { CHAT_OPTIONS, chatConfig, type ChatFlags, withoutBus } from "./_serve_chat.ts";

// Every default comes from lib/server/defaults.ts; the help shows it from there too.
const DEFAULTS = SERVE_DEFAULTS;
const LINE_DEFAULTS = CLI_SERVE_DEFAULTS.line;
const ECHO_DEFAULTS = CLI_SERVE_DEFAULTS.echo;

interface ServeFlags extends ChatFlags {
  host: string;
  port: number;
  unix?: string;
  socketMode: number;
  socketGroup?: string;
  protocol: "echo" | "text" | "json" | "chat";
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
  exec?: boolean;
  execTimeout?: number;
  /** The words after `--`: the program of --exec and its arguments. */
  execArgv?: readonly string[];
  maxConnections: number;
  writeTimeout: number;
  writeBuffer: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsHandshakeTimeout: number;
  workers?: number;
  proxyProtocol?: boolean;
  proxyTimeout: number;
  metrics?: { hostname: string; port: number };
  metricsPublic?: boolean;
}

/** What `serve` stops and summarizes: one server, or a pool of workers. */
interface Stoppable {
  readonly url: string;
  readonly stats: Readonly<ServerStats>;
  readonly finished: Promise<void>;
  readonly serving: boolean;
  metrics(): ServerMetrics | Promise<ServerMetrics>;
  shutdown(): Promise<void>;
}

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock serve`. */
export const spec: CommandSpec = {
  name: "serve",
  summary: "Run a line server on TCP, TLS or a Unix socket",
  args: [{
    name: "ADDRESS",
    help: "where to listen: tcp://HOST:PORT, tls://HOST:PORT (with --tls-cert) or unix:///PATH",
  }],
  afterDashes: {
    name: "PROGRAM",
    help: "with --exec: the program each connection runs, then its arguments (no shell)",
    complete: "file",
  },
  options: [
    {
      long: "host",
      value: "HOST",
      help: "TCP host to bind (IPv6 literals such as ::1 work; HOST:PORT and URLs too)",
      default: DEFAULTS.hostname,
    },
    {
      long: "port",
      short: "p",
      value: "PORT",
      help: "TCP port; 0 picks a free one",
      parse: (text) => parsePortNumber(text, true),
      default: DEFAULTS.port,
    },
    {
      long: "unix",
      short: "U",
      value: "PATH",
      help: "listen on this Unix socket instead of TCP",
      complete: "file",
    },
    {
      long: "tls-cert",
      value: "FILE",
      help: "serve TLS with this PEM certificate (chain); needs --tls-key",
      complete: "file",
    },
    { long: "tls-key", value: "FILE", help: "the PEM private key of --tls-cert", complete: "file" },
    {
      long: "tls-handshake-timeout",
      value: "DURATION",
      help: "close a TLS client that has not completed its handshake this long; 0 = off",
      parse: parseDuration,
      default: DEFAULTS.tlsHandshakeTimeoutMs,
      defaultText: durationText(DEFAULTS.tlsHandshakeTimeoutMs),
    },
    {
      long: "socket-mode",
      value: "MODE",
      help: "Unix socket permission bits, octal",
      parse: parseMode,
      default: DEFAULTS.socketMode,
      defaultText: DEFAULTS.socketMode.toString(8),
    },
    { long: "socket-group", value: "GROUP", help: "Unix socket group, a name or a number" },
    {
      long: "protocol",
      value: "NAME",
      help: "what the server speaks",
      choices: ["echo", "text", "json", "chat"],
      default: "text",
    },
    ...CHAT_OPTIONS,
    { long: "name", value: "NAME", help: "what HELLO answers (default: the host name)" },
    { long: "greeting", value: "TEXT", help: "a line sent to each client when it connects" },
    {
      long: "routes",
      value: "FILE",
      help: "a routes file (JSONC): routes tried before the built-in commands, or a whole " +
        "protocol (greeting, farewells, fallback, settings; these options win over it)",
      complete: "file",
    },
    { long: "allow-shutdown", help: "let clients stop the server with SHUTDOWN" },
    {
      long: "max-clients",
      value: "N",
      help: "clients served at once; later ones wait (default: no limit)",
      parse: parsePositive,
    },
    {
      long: "queue",
      value: "N",
      help: "clients that may wait for a slot; beyond it: ERR busy",
      parse: parseCount,
      default: DEFAULTS.queue,
    },
    {
      long: "queue-timeout",
      value: "DURATION",
      help: "how long a client may wait for a slot; then ERR busy; 0 = off (default: the idle " +
        "timeout)",
      parse: parseDuration,
    },
    {
      long: "max-connections",
      value: "N",
      help: "connections open at once; beyond it: ERR too many connections",
      parse: parsePositive,
      default: DEFAULTS.maxConnections,
    },
    {
      long: "idle-timeout",
      value: "DURATION",
      help: "close a connection silent this long; 0 = off " +
        `(default: ${durationText(LINE_DEFAULTS.idleTimeoutMs)}, ` +
        `echo and chat: ${durationText(ECHO_DEFAULTS.idleTimeoutMs)})`,
      parse: parseDuration,
    },
    {
      long: "line-timeout",
      value: "DURATION",
      help: "a line must arrive whole this long after its first byte; 0 = off " +
        `(default: ${durationText(LINE_DEFAULTS.lineTimeoutMs)}, ` +
        `echo: ${durationText(ECHO_DEFAULTS.lineTimeoutMs)})`,
      parse: parseDuration,
    },
    {
      long: "max-per-address",
      value: "N",
      help: "connections open at once from one client address (PROXY-aware; default: no limit)",
      parse: parsePositive,
    },
    {
      long: "max-line",
      value: "SIZE",
      help: "longest line accepted (not for echo)",
      parse: parseByteSize,
      default: DEFAULTS.maxLineBytes,
      defaultText: sizeText(DEFAULTS.maxLineBytes),
    },
    {
      long: "close-after",
      value: "LINES",
      help: "close each connection after this many lines",
      parse: parsePositive,
    },
    {
      long: "grace",
      value: "DURATION",
      help: "how long shutdown waits for replies in flight",
      parse: parseDuration,
      default: DEFAULTS.graceMs,
      defaultText: durationText(DEFAULTS.graceMs),
    },
    {
      long: "write-timeout",
      value: "DURATION",
      help: "drop a client whose replies make no progress this long (it stopped reading); 0 = off",
      parse: parseDuration,
      default: DEFAULTS.writeTimeoutMs,
      defaultText: durationText(DEFAULTS.writeTimeoutMs),
    },
    {
      long: "write-buffer",
      value: "SIZE",
      help: "unsent replies per connection before the server stops reading from it",
      parse: parseByteSize,
      default: DEFAULTS.writeBufferBytes,
      defaultText: sizeText(DEFAULTS.writeBufferBytes),
    },
    {
      long: "invalid-reply",
      value: "TEXT",
      help: "the reply to a line that is not UTF-8 (text protocol)",
    },
    {
      long: "exec",
      help: "run a program per connection, named after --: the connection's lines are its " +
        "stdin, its stdout lines go back, its stderr to the log",
    },
    {
      long: "exec-timeout",
      value: "DURATION",
      help: "kill a connection's --exec program after this long (the client gets ERR, then the " +
        "close); 0 = off",
      parse: parseDuration,
      default: DEFAULT_EXEC_TIMEOUT_MS,
      defaultText: durationText(DEFAULT_EXEC_TIMEOUT_MS),
    },
    {
      long: "max-exec",
      value: "N",
      help: "route or --exec programs running at once; with --exec, a connection beyond it gets " +
        "ERR and is closed (default: 16)",
      parse: parsePositive,
    },
    {
      long: "exec-env",
      value: "NAMES",
      help: "environment variables route or --exec programs inherit besides PATH, HOME, LANG, " +
        "LC_ALL, LC_CTYPE, TZ, TMPDIR (comma-separated)",
      parse: parseNames,
    },
    {
      long: "log-level",
      value: "LEVEL",
      help: "trace, debug, info, warning, error or fatal (-v: debug, -vv: trace)",
      parse: parseLevel,
      default: "info",
      complete: ["trace", "debug", "info", "warning", "error", "fatal"],
    },
    {
      long: "log-format",
      value: "FORMAT",
      help: "log format on stderr",
      choices: ["text", "json"],
      default: "text",
    },
    { long: "json", help: "print the summary at exit as one JSON object (the counters)" },
    {
      long: "workers",
      value: "N",
      help: 'accept loops on all cores: N workers sharing the TCP port (SO_REUSEPORT), or "auto"',
      parse: parseWorkers,
    },
    {
      long: "proxy-protocol",
      help:
        "expect a PROXY protocol v1/v2 header on every connection (behind HAProxy and the like)",
    },
    {
      long: "proxy-timeout",
      value: "DURATION",
      help: "how long a client may take to send its PROXY header",
      parse: parseDuration,
      default: DEFAULTS.proxyHeaderTimeoutMs,
      defaultText: durationText(DEFAULTS.proxyHeaderTimeoutMs),
    },
    {
      long: "metrics",
      value: "HOST:PORT",
      help: "serve Prometheus metrics at http://HOST:PORT/metrics and a health check at /healthz " +
        "(200, 503 once shutting down); a loopback address unless --metrics-public",
      parse: parseMetricsAddress,
    },
    {
      long: "metrics-public",
      help: "let --metrics listen on an address other hosts reach (they see traffic and errors)",
    },
  ],
  aliases: [{ name: "-u", of: "unix" }],
  // Checked while parsing: `--exec python3 -u bot.py` is refused before `-u` is read as --unix.
  checkArgument: (word, given, rest) => misplacedProgram(word, given.has("exec"), rest),
  examples: [
    ["linesock serve", "text protocol on tcp://127.0.0.1:1991"],
    ["linesock serve tcp://[::1]:7000", "listen where a URL says (the form clients take)"],
    ["linesock serve -p 0", "pick a free port (printed on the first line)"],
    ["linesock serve --protocol echo -p 7000", "byte-exact echo"],
    ["linesock serve --host ::1 --name alpha", 'IPv6 loopback; HELLO answers "alpha"'],
    ["linesock serve -U /tmp/app.sock --protocol json --allow-shutdown", ""],
    ["linesock serve --max-clients 1 --queue 4", "one client at a time, four may wait"],
    ['linesock serve --routes routes.json --greeting "welcome"', ""],
    ["linesock serve -p 7000 --exec -- python3 -u bot.py", "one bot.py per connection"],
    ["linesock serve --tls-cert server.pem --tls-key server-key.pem", ""],
    ["linesock serve --protocol echo --workers auto", "one accept loop per core"],
    ["linesock serve --protocol chat", "rooms: each line goes to the others in its room"],
    [
      "linesock serve --protocol chat --bus nats://127.0.0.1:4222",
      "rooms shared with every instance on that NATS server",
    ],
    [
      "linesock serve --proxy-protocol --log-format json",
      "behind HAProxy (send-proxy / send-proxy-v2)",
    ],
    [
      "linesock serve --metrics 127.0.0.1:9464",
      "Prometheus scrapes /metrics; HAProxy checks /healthz",
    ],
  ],
  notes:
    `The first stdout line is "listening on tcp://HOST:PORT" (tls:// with TLS) or "listening on unix:///PATH"; logs go to
stderr. SIGINT, SIGTERM or Ctrl-D (when stdin is a terminal) stop the server gracefully and print a
summary line; a second signal exits at once with status 130 (SIGINT) or 143 (SIGTERM).

Saying less or more (logs on stderr; the first line and the summary on stdout stay):
  -q    errors only: no connection logs, no shutdown notice (--log-level error)
  -v    debug logs too: connections waiting for a slot, closed without a reply (--log-level debug)
  -vv   trace logs too: each line received and each reply sent, per connection (--log-level
        trace; echo: each chunk each way)`,
};

/**
 * Runs `linesock serve` until it is stopped.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const flags = parsed.options as unknown as ServeFlags & { verbose?: number; json?: boolean };
  if (flags.verbose) flags.logLevel = flags.verbose > 1 ? "trace" : "debug";
  const given = takeListenAddress(flags, parsed);
  if (parsed.afterDashes !== undefined) flags.execArgv = parsed.afterDashes;
  await runServe(flags, given);
  return 0;
}

/**
 * Starts a server from `serve`'s arguments in this process, quietly (for `linesock test --serve`).
 * @param argv The arguments, as after `linesock serve` (`--port 0` unless given).
 * @returns Its address and a way to stop it.
 */
export async function startEmbedded(
  argv: readonly string[],
): Promise<{ url: string; stop(): Promise<void> }> {
  const parsed = parse(spec, argv);
  const flags = parsed.options as unknown as ServeFlags;
  const given = takeListenAddress(flags, parsed);
  if (parsed.afterDashes !== undefined) flags.execArgv = parsed.afterDashes;
  if (!given("port") && flags.unix === undefined) flags.port = 0;
  flags.quiet = true;
  const { server, metrics } = await startServing(flags, given);
  return {
    url: server.url,
    stop: async () => {
      await server.shutdown();
      await metrics?.shutdown();
    },
  };
}

/**
 * With `--exec`, a word before `--` that is not a listen address (a URL, or HOST:PORT) is the
 * program put where options are still read.
 * @returns The usage message, or `undefined` when the word is fine.
 */
function misplacedProgram(
  word: string,
  exec: boolean,
  words: readonly string[],
): string | undefined {
  if (!exec || /^(tcp|tls|unix):\/\//i.test(word) || /:\d+$/.test(word)) return undefined;
  return `--exec takes its program after --: linesock serve --exec -- ${
    words.map(shellWord).join(" ")
  }`;
}

/** A word as a shell reads it back: quoted when it holds anything but plain characters. */
function shellWord(word: string): string {
  return /^[\w@%+=:,.\/-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The listen address from the first argument, if one is given there; returns `given`. */
function takeListenAddress(
  flags: ServeFlags,
  parsed: Parsed,
): (option: string) => boolean {
  const explicit = new Set(parsed.given);
  parsed.args.forEach((word, index) => {
    const refused = misplacedProgram(word, flags.exec ?? false, parsed.args.slice(index));
    if (refused !== undefined) throw new UsageError(refused);
  });
  const [first, ...rest] = parsed.args;
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const fromHost = flags.host !== DEFAULTS.hostname && /:/.test(flags.host) &&
    !/^[0-9a-f:]+$/i.test(flags.host);
  const address = first ?? (fromHost ? flags.host : undefined);
  if (address !== undefined) {
    if (first !== undefined && (explicit.has("host") || explicit.has("port") || flags.unix)) {
      throw new UsageError(`${first} names the address already: drop --host, --port and --unix`);
    }
    const target = parseAddress(address, true);
    if (target.kind === "unix") {
      flags.unix = target.path;
      explicit.delete("host");
      explicit.add("unix");
    } else {
      flags.host = target.hostname;
      if (target.port !== undefined) {
        if (explicit.has("port") && flags.port !== target.port) {
          throw new UsageError(`--host ${address} and --port ${flags.port} disagree`);
        }
        flags.port = target.port;
        explicit.add("port");
      }
      explicit.add("host");
      if (target.tls && flags.tlsCert === undefined) {
        throw new UsageError(`${address}: tls:// needs --tls-cert and --tls-key`);
      }
    }
  }
  return (option) => explicit.has(option);
}

async function runServe(flags: ServeFlags, given: (option: string) => boolean): Promise<void> {
  setUpLogging({ level: flags.quiet ? "error" : flags.logLevel, format: flags.logFormat });
  const { server, metrics } = await startServing(flags, given);
  // Signals are handled before the address is printed: a script that sends SIGTERM as soon as it
  // reads the first line gets a graceful stop.
  // -q: errors only, so not the notices of a shutdown either (the summary is output: it stays).
  const notice = flags.quiet
    ? () => {}
    : (message: string) => console.error(`linesock: ${message}`);
  const stopOnSignals = handleSignals(server, notice);
  console.log(`listening on ${server.url}`);
  if (metrics !== undefined) console.log(`metrics on ${metrics.url}/metrics`);
  const stopOnCtrlD = Deno.stdin.isTerminal() ? watchTerminal(server, notice) : undefined;
  try {
    await server.finished;
    await server.shutdown();
    // Until here, /healthz answered 503 to tell load balancers that the server is going.
    await metrics?.shutdown();
  } finally {
    stopOnSignals();
    stopOnCtrlD?.abort();
  }
  const json = (flags as { json?: boolean }).json;
  console.log(json ? JSON.stringify({ summary: server.stats }) : summarize(server.stats));
}

/** Checks the flags and starts the server (or the workers). */
async function startServing(
  flags: ServeFlags,
  given: (option: string) => boolean,
): Promise<{ server: Stoppable; metrics?: MetricsEndpoint }> {
  if (flags.unix !== undefined && (given("host") || given("port"))) {
    throw new UsageError("--unix cannot be combined with --host or --port");
  }
  if (flags.unix === undefined && (given("socketMode") || flags.socketGroup !== undefined)) {
    throw new UsageError("--socket-mode and --socket-group need --unix");
  }
  // A routes file describes a protocol and some settings; the command line wins over it.
  const routesFile = flags.routes === undefined || flags.exec || flags.protocol === "echo"
    ? undefined
    : await routesFileSettings(flags.routes);
  if (routesFile !== undefined) applyRoutesFile(flags, given, routesFile);
  if (routesFile?.exec !== undefined && flags.workers !== undefined) {
    // Each worker would run its own programs: --max-exec (the file's maxExec) times the workers.
    throw new UsageError(
      `--workers does not apply with ${flags.routes}'s "exec" (the program is the protocol, and ` +
        "--max-exec holds for this one process)",
    );
  }
  // The file's greeting has placeholders: its protocol sends it (or --greeting instead).
  const protocolGreets = routesFile !== undefined && routesFile.exec === undefined;
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
  checkExec(flags, given);
  if (given("maxExec") && flags.routes === undefined && !flags.exec) {
    throw new UsageError("--max-exec needs --routes or --exec");
  }
  if (flags.execEnv !== undefined) {
    if (flags.routes === undefined && !flags.exec) {
      throw new UsageError("--exec-env needs --routes or --exec");
    }
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
  if (flags.workers !== undefined && !("listenDatagram" in Deno)) {
    // Deno's unstable network APIs (SO_REUSEPORT among them) come with --unstable-net only.
    throw new UsageError(
      "--workers needs Deno's --unstable-net flag (to share the port): run deno run " +
        "--unstable-net … main.ts serve, or deno task serve",
    );
  }
  if (given("tlsHandshakeTimeout") && flags.tlsCert === undefined) {
    throw new UsageError("--tls-handshake-timeout needs --tls-cert and --tls-key");
  }
  const { isLoopback, serveMetrics } = await import("../lib/metrics/metrics_endpoint.ts");
  if (flags.metricsPublic && flags.metrics === undefined) {
    throw new UsageError("--metrics-public needs --metrics");
  }
  if (flags.metrics !== undefined && !flags.metricsPublic && !isLoopback(flags.metrics.hostname)) {
    throw new UsageError(
      `--metrics ${hostPort(flags.metrics.hostname, flags.metrics.port)} is not a loopback ` +
        "address: metrics would be open to the network (add --metrics-public to serve them there)",
    );
  }
  if (given("proxyTimeout") && !flags.proxyProtocol) {
    throw new UsageError("--proxy-timeout needs --proxy-protocol");
  }

  const chat = await chatConfig(flags, given);
  const protocolDefaults = flags.protocol === "echo" ? ECHO_DEFAULTS : LINE_DEFAULTS;
  const serveOptions: Omit<ServeOptions, "signal" | "listener"> = {
    maxLineBytes: flags.maxLine,
    // A chat client that only listens is not idle.
    idleTimeoutMs: flags.idleTimeout ??
      (chat !== undefined ? ECHO_DEFAULTS.idleTimeoutMs : protocolDefaults.idleTimeoutMs),
    lineTimeoutMs: flags.lineTimeout ?? protocolDefaults.lineTimeoutMs,
    ...(flags.maxPerAddress !== undefined ? { maxConnectionsPerAddress: flags.maxPerAddress } : {}),
    graceMs: flags.grace,
    writeTimeoutMs: flags.writeTimeout,
    writeBufferBytes: flags.writeBuffer,
    ...(flags.maxClients !== undefined ? { maxClients: flags.maxClients } : {}),
    queue: flags.queue,
    ...(flags.queueTimeout !== undefined ? { queueTimeoutMs: flags.queueTimeout } : {}),
    maxConnections: flags.maxConnections,
    ...(flags.closeAfter !== undefined ? { closeAfterLines: flags.closeAfter } : {}),
    ...(flags.greeting !== undefined && !protocolGreets ? { greeting: flags.greeting } : {}),
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
    ...(flags.greeting !== undefined && protocolGreets ? { greeting: flags.greeting } : {}),
    ...(flags.maxExec !== undefined ? { maxExec: flags.maxExec } : {}),
    ...(flags.execEnv !== undefined ? { programEnv: flags.execEnv } : {}),
    ...(chat !== undefined ? { chat } : {}),
  };
  if (flags.exec) config.exec = execOptions(flags);

  const [
    { serve },
    { protocolFromConfig, serveWorkers },
    { RoutesError },
    { ProgramStartError },
  ] = await Promise.all([
    import("../lib/server/serve.ts"),
    import("../lib/workers/worker_pool.ts"),
    import("../lib/routes/routes_error.ts"),
    import("../lib/routes/program_runner.ts"),
  ]);
  let protocol;
  try {
    // Also checks the routes file (or the --exec program) before any worker starts.
    // (With --workers, each worker connects to the chat's bus; this one only checks.)
    protocol = await protocolFromConfig(
      flags.workers !== undefined && chat !== undefined
        ? { ...config, chat: withoutBus(chat) }
        : config,
    );
  } catch (error) {
    if (error instanceof RoutesError || error instanceof ProgramStartError) {
      throw new ExitError(ExitCode.usage, error.message);
    }
    throw error;
  }
  // Only with --metrics is each line's handling timed.
  if (flags.metrics !== undefined) serveOptions.metrics = true;
  const server: Stoppable = flags.workers === undefined
    ? await serve(serveOptions, protocol)
    : await serveWorkers(config, flags.workers);
  if (chat !== undefined && flags.workers === undefined) leaveBusAfter(server, protocol);
  if (flags.metrics === undefined) return { server };
  try {
    const metrics = serveMetrics({
      ...flags.metrics,
      public: flags.metricsPublic ?? false,
      // A program per connection (--exec, or the routes file's "exec") is the exec protocol.
      protocol: config.exec !== undefined || routesFile?.exec !== undefined
        ? "exec"
        : flags.protocol,
    }, server);
    return { server, metrics };
  } catch (error) {
    await server.shutdown();
    throw error;
  }
}

/** The chat's bus is left once the server has shut down (its last farewells go out first). */
function leaveBusAfter(server: Stoppable, protocol: object): void {
  const shutdown = server.shutdown.bind(server);
  const leave = () => (protocol as Partial<AsyncDisposable>)[Symbol.asyncDispose]?.();
  let stopping: Promise<void> | undefined;
  server.shutdown = () => stopping ??= shutdown().finally(leave);
}

/** `--metrics`: `HOST:PORT` (`[::1]:PORT` for IPv6), or a port alone on 127.0.0.1. */
function parseMetricsAddress(text: string): { hostname: string; port: number } {
  if (/^\d+$/.test(text.trim())) {
    return { hostname: "127.0.0.1", port: parsePortNumber(text, true) };
  }
  const address = parseAddress(text, true);
  if (address.kind !== "tcp" || address.port === undefined || /^\w+:\/\//.test(text)) {
    throw new InvalidArgumentError("expected HOST:PORT, such as 127.0.0.1:9464");
  }
  return { hostname: address.hostname, port: address.port };
}

/** Loads a routes file (it is loaded again for the protocol) for what it says of the server. */
async function routesFileSettings(path: string): Promise<RoutesSettings> {
  const [{ Routes }, { RoutesError }] = await Promise.all([
    import("../lib/routes/routes.ts"),
    import("../lib/routes/routes_error.ts"),
  ]);
  try {
    return (await Routes.load(path)).settings;
  } catch (error) {
    if (error instanceof RoutesError) throw new ExitError(ExitCode.usage, error.message);
    throw error;
  }
}

/** The routes file's settings, where the command line does not give them. */
function applyRoutesFile(
  flags: ServeFlags,
  given: (option: string) => boolean,
  file: RoutesSettings,
): void {
  if (!given("protocol") && file.protocol !== undefined) flags.protocol = file.protocol;
  if (flags.maxClients === undefined && file.maxClients !== undefined) {
    flags.maxClients = file.maxClients;
  }
  if (flags.idleTimeout === undefined && file.idleTimeoutMs !== undefined) {
    flags.idleTimeout = file.idleTimeoutMs;
  }
  if (!given("maxLine") && file.maxLineBytes !== undefined) flags.maxLine = file.maxLineBytes;
  if (file.allowShutdown) flags.allowShutdown = true;
}

/** `--exec`: its program after `--`, and the options that do not go with it. */
function checkExec(flags: ServeFlags, given: (option: string) => boolean): void {
  if (!flags.exec) {
    const stray = flags.execArgv?.[0];
    if (stray !== undefined) {
      throw new UsageError(
        `unexpected argument ${
          JSON.stringify(stray)
        } after --: that is where --exec takes its program`,
      );
    }
    if (given("execTimeout")) throw new UsageError("--exec-timeout needs --exec");
    return;
  }
  if (flags.execArgv === undefined || flags.execArgv.length === 0 || flags.execArgv[0] === "") {
    throw new UsageError(
      "--exec needs a program after --: linesock serve --exec -- PROGRAM [ARGS...]",
    );
  }
  const replaced: [string, string][] = [
    ["protocol", "--protocol"],
    ["routes", "--routes"],
    ["name", "--name"],
    ["invalidReply", "--invalid-reply"],
    ["allowShutdown", "--allow-shutdown"],
    ["workers", "--workers"],
  ];
  for (const [option, name] of replaced) {
    if (given(option)) {
      throw new UsageError(
        `${name} does not apply with --exec (the program is the protocol${
          option === "workers" ? ", and --max-exec holds for this one process" : ""
        })`,
      );
    }
  }
}

/** The `--exec` program's options, from the flags. */
function execOptions(flags: ServeFlags): ExecOptions {
  return {
    argv: flags.execArgv!,
    timeoutMs: flags.execTimeout === undefined || flags.execTimeout === 0
      ? Infinity
      : flags.execTimeout,
    maxLineBytes: flags.maxLine,
    ...(flags.maxExec !== undefined ? { maxExec: flags.maxExec } : {}),
    // Added to DEFAULT_PROGRAM_ENV, which the program always inherits.
    ...(flags.execEnv !== undefined ? { inheritEnv: flags.execEnv } : {}),
  };
}

/** The first SIGINT/SIGTERM shuts down gracefully; a second one exits at once. */
function handleSignals(server: Stoppable, notice: (message: string) => void): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let received = false;
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (received) Deno.exit(signal === "SIGINT" ? 130 : 143);
      received = true;
      notice(`${signal}: shutting down (send it again to exit at once)`);
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
function watchTerminal(server: Stoppable, notice: (message: string) => void): AbortController {
  const controller = new AbortController();
  (async () => {
    const buffer = new Uint8Array(1024);
    while (!controller.signal.aborted) {
      const count = await Deno.stdin.read(buffer);
      if (count === null) break;
    }
    if (!controller.signal.aborted) {
      notice("end of input: shutting down");
      await server.shutdown();
    }
  })().catch(() => void server.shutdown());
  return controller;
}

/** One line about the server's life, printed on stdout at exit. */
export function summarize(stats: Readonly<ServerStats>): string {
  return `summary: ${count(stats.connections, "connection")}, ${
    count(stats.linesIn, "line")
  } in, ` +
    `${count(stats.linesOut, "line")} out, ${count(stats.bytesIn, "byte")} in, ` +
    `${count(stats.bytesOut, "byte")} out, ${count(stats.errors, "error")}` +
    (stats.acceptErrors > 0 ? `, ${count(stats.acceptErrors, "failed accept")}` : "") +
    (stats.workerRestarts > 0 ? `, ${count(stats.workerRestarts, "worker restart")}` : "");
}

/** `1 connection`, `2 connections`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A default duration as `--help` shows it: `5m`, `30s`, `500ms`, or `off` for 0. */
function durationText(ms: number): string {
  if (ms === 0) return "off";
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A default size as `--help` shows it: `1MiB`, `64KiB`, or bytes. */
function sizeText(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return String(bytes);
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

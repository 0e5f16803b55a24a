/**
 * `linesock repl`: an interactive client with line editing, history, completion, JSON mode and
 * automatic reconnection; with stdin not a terminal it behaves like `send`: the same conversation
 * engine ({@linkcode runExchange}, lib/client/conversation.ts) in its stream mode.
 *
 * @module
 */
import type { CommandSpec, Parsed } from "./_cli/spec.ts";
import { hostPort } from "../lib/address.ts";
import type { ConnectOptions, LineConnection } from "../lib/client/client.ts";
import { type ExchangeResult, runExchange } from "../lib/client/conversation.ts";
import { LineTooLongError, TimeoutError } from "../lib/errors.ts";
import { DEFAULT_HISTORY_SIZE, defaultHistoryPath, HistoryStore } from "./_repl/history_store.ts";
import { encodeJsonRequest, JsonInputError } from "./_repl/json_request.ts";
import { formatTimestamp } from "./_repl/render.ts";
import { colorWanted } from "./_cli/color.ts";
import type { ConversationRecorder } from "./_test/recorder.ts";
import { runInteractive } from "./_repl/session.ts";
import { connectMaybeDescribed } from "./_repl/connection_details.ts";
import { exchangeHooks, NORMAL, TRACE, VERBOSE, verbosityOf, WireTrace } from "./_verbosity.ts";
import {
  connectTimeoutOption,
  ExitCode,
  ExitError,
  parseCount,
  replyTimeoutOption,
  UsageError,
} from "./_cli.ts";
import {
  takeTarget,
  TARGET_ALIASES,
  TARGET_ARGUMENT,
  TARGET_PORT_ARGUMENT,
  targetFromFlags,
  targetOptions,
} from "./_client_target.ts";
import { resolveTls, TLS_OPTIONS, type TlsFlags } from "./_tls.ts";

interface ReplCliOptions extends TlsFlags {
  host: string;
  port: number;
  unix?: string;
  connectTimeout: number;
  greetingLines?: number;
  json?: boolean;
  timestamps?: boolean;
  time: boolean;
  reconnect: boolean;
  probe: boolean;
  history: boolean;
  historySize: number;
  timeout: number;
  raw?: boolean;
  record?: string;
  quiet?: boolean;
  verbose?: number;
}

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock repl`. */
export const spec: CommandSpec = {
  name: "repl",
  summary: "Interactive client: line editing, history, completion, reconnection",
  args: [TARGET_ARGUMENT, TARGET_PORT_ARGUMENT],
  options: [
    ...targetOptions(),
    ...TLS_OPTIONS,
    connectTimeoutOption(),
    {
      long: "protocol",
      value: "NAME",
      help: 'what to speak: text, or json (`add a=1 b=2` sends {"command":"add",…})',
      choices: ["text", "json"],
      default: "text",
    },
    { long: "json", help: "JSON mode, the same as --protocol json" },
    {
      long: "greeting-lines",
      value: "N",
      help: "lines each new connection receives before it sends (printed, not counted as replies)",
      parse: parseCount,
    },
    { long: "timestamps", help: "prefix shown lines with the time" },
    { long: "time", negatable: true, default: true, help: "show round-trip times where known" },
    {
      long: "reconnect",
      negatable: true,
      default: true,
      help: "reconnect with backoff when the connection is lost (:reconnect works either way)",
    },
    {
      long: "probe",
      negatable: true,
      default: true,
      help: "ask the server for its commands (HELP) on connect",
    },
    {
      long: "history",
      negatable: true,
      default: true,
      help: "read and write the history file",
    },
    {
      long: "raw",
      help: "print the server's control characters and escape sequences as they are (by default " +
        "they are shown escaped, e.g. \\x1b, so a hostile server cannot drive the terminal)",
    },
    {
      long: "history-size",
      value: "N",
      help: "history entries kept",
      parse: parseCount,
      default: DEFAULT_HISTORY_SIZE,
    },
    replyTimeoutOption("without a terminal: after stdin ended, until the server closes", 0),
    {
      long: "record",
      value: "FILE",
      help: "write the session as a conversation file that linesock test replays",
      complete: "file",
    },
  ],
  aliases: TARGET_ALIASES,
  examples: [
    ["linesock repl", "talk to tcp://127.0.0.1:1991"],
    ["linesock repl tcp://[::1]:7000", "another server"],
    ["linesock repl unix:///run/app.sock --protocol json", "JSON commands over a Unix socket"],
    ["printf 'PING\\n' | linesock repl", "without a terminal: like send"],
  ],
  notes: `Meta-commands (interactive): :help :quit :reconnect :json on|off :send FILE :time on|off
  :timestamps on|off :history [TEXT] :commands; start a line with :: to send a line beginning with ':'.
  A line typed with a leading space is sent but kept out of history.
History: $XDG_STATE_HOME/linesock/history (default ~/.local/state/linesock/history).
Without a terminal on stdin: lines go out as they are read, replies are printed as they arrive, and
  the exit status is 1 when a reply was an error (ERR …; with --json a status that is not 0, or a
  line that is not a JSON response).

Saying less or more:
  -q    none of its own notices ("connected to …", "reconnecting…") but warnings and errors
  -v    also the connection's details after each connect (time, addresses, TLS) and a time on
        every reply: the round trip where the request is known, else the time since the last
        line sent; without a terminal: the details and, at the end, the counts, on stderr
  -vv   also the HELP probe and its reply, and every failed reconnection; without a terminal:
        each line sent and each reply on stderr, with its time and size`,
};

/**
 * Runs `linesock repl`.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const options = parsed.options as unknown as ReplCliOptions & { protocol: string };
  const rest = takeTarget(options, parsed.args);
  if (rest.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(rest[0])} (repl reads lines from stdin)`,
    );
  }
  if (options.protocol === "json") options.json = true;
  return await repl(options);
}

async function repl(options: ReplCliOptions): Promise<number> {
  const target = targetFromFlags(options);
  const tls = await resolveTls(options, "path" in target);
  const connectOptions: ConnectOptions = { connectTimeoutMs: options.connectTimeout, ...target };
  if (tls) connectOptions.tls = tls;
  const where = "path" in target ? `unix:${target.path}` : hostPort(target.hostname, target.port);
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const recorder = options.record === undefined
    ? undefined
    : new (await import("./_test/recorder.ts")).ConversationRecorder(where);
  const verbosity = verbosityOf(options);
  try {
    if (!interactive) {
      // Byte for byte, as `send` prints.
      const { connection, details } = await connectMaybeDescribed(
        { ...connectOptions, stripCR: false },
        verbosity >= VERBOSE,
      );
      if (details !== undefined) console.error(`linesock: ${connection.remote}: ${details}`);
      try {
        return await scripted(connection, options, verbosity, recorder);
      } finally {
        await connection[Symbol.asyncDispose]();
      }
    }
    return await interactiveSession(options, verbosity, connectOptions, where, recorder);
  } finally {
    if (recorder) await Deno.writeTextFile(options.record!, recorder.text());
  }
}

async function interactiveSession(
  options: ReplCliOptions,
  verbosity: number,
  connectOptions: ConnectOptions,
  where: string,
  recorder: ConversationRecorder | undefined,
): Promise<number> {
  const { connection: conn, details } = await connectMaybeDescribed(
    connectOptions,
    verbosity >= VERBOSE,
  );
  const history = new HistoryStore(
    options.history ? defaultHistoryPath() : undefined,
    options.historySize,
  );
  await history.load();
  return await runInteractive(conn, {
    connect: connectOptions,
    where,
    json: options.json ?? false,
    render: {
      color: colorWanted(true),
      timestamps: options.timestamps ?? false,
      roundTrip: options.time,
      raw: options.raw ?? false,
    },
    reconnect: options.reconnect,
    probe: options.probe,
    greetingLines: options.greetingLines ?? 0,
    history,
    verbosity,
    ...(details !== undefined ? { details } : {}),
    ...(recorder ? { record: recorder } : {}),
  });
}

/**
 * The repl without a terminal: `send`'s stream mode — lines go out as they are read (with `--json`
 * encoded as typed commands), replies are printed as they arrive, then a half-close and the replies
 * until the server closes; `--timeout` bounds each wait for a reply after stdin ended.
 */
async function scripted(
  conn: LineConnection,
  options: ReplCliOptions,
  verbosity: number,
  recorder: ConversationRecorder | undefined,
): Promise<number> {
  const warn = (message: string) => console.error(`linesock: ${message}`);
  const note = (message: string) => {
    if (verbosity >= NORMAL) warn(message);
  };
  // -vv: each line sent and each reply, with times (stream mode: no round-trip times).
  const trace = verbosity >= TRACE ? new WireTrace() : undefined;
  const decoder = new TextDecoder();
  let invalidInput = false;
  let id = 1;
  const encodeLine = (bytes: Uint8Array): string | undefined => {
    const line = decoder.decode(bytes).replace(/\r$/, "");
    try {
      return encodeJsonRequest(line, id++).line;
    } catch (error) {
      if (!(error instanceof JsonInputError)) throw error;
      warn(`not sent: ${error.message}`);
      invalidInput = true;
      return undefined;
    }
  };
  let result: ExchangeResult;
  try {
    result = await runExchange(conn, {
      input: Deno.stdin.readable,
      output: Deno.stdout,
      json: options.json ?? false,
      // Every response is printed whole, as it came.
      jsonLockstep: false,
      raw: true,
      greetingLines: options.greetingLines,
      ...(options.json ? { encodeLine } : {}),
      ...(options.timestamps ? { prefix: () => `${formatTimestamp(new Date())} ` } : {}),
      // Into a pipe or a file replies go as received; only a terminal needs protecting.
      escapeControls: !options.raw && Deno.stdout.isTerminal(),
      awaitClose: true,
      waitMs: 0,
      timeoutMs: options.timeout,
      onTooLong: (error) => warn(error.message),
      ...exchangeHooks(
        [recorder, trace],
        (reply) =>
          reply.error instanceof LineTooLongError ? "(a reply too long: left out)" : undefined,
      ),
    });
    if (recorder && result.ending === "closed") recorder.closed();
  } catch (error) {
    if (error instanceof TimeoutError) {
      throw new ExitError(
        ExitCode.timeout,
        `no reply for ${options.timeout} ms after the input ended`,
      );
    }
    throw error;
  }
  if (verbosity >= VERBOSE) {
    note(
      `sent ${result.linesSent} line(s), received ${result.replies} repl${
        result.replies === 1 ? "y" : "ies"
      }; ended: ${result.ending === "closed" ? "the server closed the connection" : result.ending}`,
    );
  }
  if (!result.inputComplete && result.ending === "closed") {
    note("the server closed the connection before all input was sent");
  }
  if (result.remoteErrors > 0 || result.tooLong > 0) return ExitCode.remoteError;
  return invalidInput ? ExitCode.usage : ExitCode.ok;
}

/**
 * `linesock repl`: an interactive client with line editing, history, completion, JSON mode and
 * automatic reconnection; with stdin not a terminal it behaves like `send`: the same conversation
 * engine ({@linkcode runExchange}, lib/client/conversation.ts) in its stream mode.
 *
 * @module
 */
import { Command, Option } from "commander";
import { hostPort } from "../lib/address.ts";
import { connect, type ConnectOptions, type LineConnection } from "../lib/client/client.ts";
import { runExchange } from "../lib/client/conversation.ts";
import { TimeoutError } from "../lib/errors.ts";
import { DEFAULT_HISTORY_SIZE, defaultHistoryPath, HistoryStore } from "./_repl/history_store.ts";
import { encodeJsonRequest, JsonInputError } from "./_repl/json_request.ts";
import { formatTimestamp, wantsColor } from "./_repl/render.ts";
import { runInteractive } from "./_repl/session.ts";
import {
  connectTimeoutOption,
  ExitCode,
  ExitError,
  parseCount,
  replyTimeoutOption,
} from "./_cli.ts";
import { addTargetOptions, resolveTarget } from "./_target.ts";
import { addTlsOptions, resolveTls, type TlsFlags } from "./_tls.ts";

interface ReplCliOptions extends TlsFlags {
  host: string;
  port: number;
  unix?: string;
  connectTimeout: number;
  json?: boolean;
  timestamps?: boolean;
  time: boolean;
  reconnect: boolean;
  probe: boolean;
  history: boolean;
  historySize: number;
  timeout: number;
  raw?: boolean;
}

/** Builds the `repl` subcommand. */
export function replCommand(): Command {
  return addTlsOptions(addTargetOptions(
    new Command("repl")
      .description(
        "Interactive client: line editing, history, Tab completion, JSON mode, replies shown as they " +
          "arrive, automatic reconnection. With stdin not a terminal it behaves like `send`.",
      ),
  ))
    .addOption(connectTimeoutOption())
    .option("--json", 'JSON mode: `add a=1 b=2` sends {"command":"add","args":{"a":1,"b":2}}')
    .option("--timestamps", "prefix shown lines with the time")
    .option("--no-time", "do not show round-trip times")
    .option("--reconnect", "reconnect with backoff when the connection is lost", true)
    .option("--no-reconnect", "do not reconnect by itself (:reconnect still works)")
    .option("--no-probe", "do not ask the server for its commands (HELP) on connect")
    .option("--no-history", "do not read or write the history file")
    .option(
      "--raw",
      "print the server's control characters and escape sequences as they are (by default they " +
        "are shown escaped, e.g. \\x1b, so a hostile server cannot drive the terminal)",
    )
    .addOption(
      new Option("--history-size <n>", "history entries kept").argParser(parseCount).default(
        DEFAULT_HISTORY_SIZE,
      ),
    )
    .addOption(
      replyTimeoutOption("without a terminal: after stdin ended, until the server closes", 0),
    )
    .addHelpText(
      "after",
      `
Meta-commands (interactive): :help :quit :reconnect :json on|off :send FILE :time on|off
  :timestamps on|off :history [TEXT] :commands; start a line with :: to send a line beginning with ':'.
  A line typed with a leading space is sent but kept out of history.
History: $XDG_STATE_HOME/linesock/history (default ~/.local/state/linesock/history).
Without a terminal on stdin: lines go out as they are read, replies are printed as they arrive, and
  the exit status is 1 when a reply was an error (ERR …; with --json a status that is not 0, or a
  line that is not a JSON response).`,
    )
    .action(async (options: ReplCliOptions) => {
      const status = await repl(options);
      if (status !== ExitCode.ok) throw new ExitError(status);
    });
}

async function repl(options: ReplCliOptions): Promise<number> {
  const target = resolveTarget(options);
  const tls = await resolveTls(options, "path" in target);
  const connectOptions: ConnectOptions = { connectTimeoutMs: options.connectTimeout, ...target };
  if (tls) connectOptions.tls = tls;
  const where = "path" in target ? `unix:${target.path}` : hostPort(target.hostname, target.port);
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  if (!interactive) {
    // Byte for byte, as `send` prints.
    const conn = await connect({ ...connectOptions, stripCR: false });
    try {
      return await scripted(conn, options);
    } finally {
      await conn[Symbol.asyncDispose]();
    }
  }
  const conn = await connect(connectOptions);
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
      color: wantsColor(true, Deno.env.get("NO_COLOR")),
      timestamps: options.timestamps ?? false,
      roundTrip: options.time,
      raw: options.raw ?? false,
    },
    reconnect: options.reconnect,
    probe: options.probe,
    history,
  });
}

/**
 * The repl without a terminal: `send`'s stream mode — lines go out as they are read (with `--json`
 * encoded as typed commands), replies are printed as they arrive, then a half-close and the replies
 * until the server closes; `--timeout` bounds each wait for a reply after stdin ended.
 */
async function scripted(conn: LineConnection, options: ReplCliOptions): Promise<number> {
  const warn = (message: string) => console.error(`linesock: ${message}`);
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
  let result;
  try {
    result = await runExchange(conn, {
      input: Deno.stdin.readable,
      output: Deno.stdout,
      json: options.json ?? false,
      // Every response is printed whole, as it came.
      jsonLockstep: false,
      raw: true,
      ...(options.json ? { encodeLine } : {}),
      ...(options.timestamps ? { prefix: () => `${formatTimestamp(new Date())} ` } : {}),
      // Into a pipe or a file replies go as received; only a terminal needs protecting.
      escapeControls: !options.raw && Deno.stdout.isTerminal(),
      awaitClose: true,
      waitMs: 0,
      timeoutMs: options.timeout,
      onTooLong: (error) => warn(error.message),
    });
  } catch (error) {
    if (error instanceof TimeoutError) {
      throw new ExitError(
        ExitCode.timeout,
        `no reply for ${options.timeout} ms after the input ended`,
      );
    }
    throw error;
  }
  if (!result.inputComplete && result.ending === "closed") {
    warn("the server closed the connection before all input was sent");
  }
  if (result.remoteErrors > 0 || result.tooLong > 0) return ExitCode.remoteError;
  return invalidInput ? ExitCode.usage : ExitCode.ok;
}

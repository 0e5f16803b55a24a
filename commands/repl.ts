/**
 * `linesock repl`: an interactive client with line editing, history, completion, JSON mode and
 * automatic reconnection; with stdin not a terminal it behaves like `send`.
 *
 * @module
 */
import { Command, Option } from "commander";
import { hostPort } from "../lib/address.ts";
import { connect, type ConnectOptions } from "../lib/client/client.ts";
import { DEFAULT_HISTORY_SIZE, defaultHistoryPath, HistoryStore } from "./_repl/history_store.ts";
import { wantsColor } from "./_repl/render.ts";
import { runScripted, type ScriptedOutcome } from "./_repl/scripted.ts";
import { runInteractive } from "./_repl/session.ts";
import { ExitCode, ExitError, parseCount, parseDuration } from "./_cli.ts";
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

const OUTCOME_STATUS: Record<ScriptedOutcome, number> = {
  "ok": ExitCode.ok,
  "remote-error": ExitCode.remoteError,
  "invalid-input": ExitCode.usage,
  "timeout": ExitCode.timeout,
  "connection-lost": ExitCode.connectionLost,
};

/** Builds the `repl` subcommand. */
export function replCommand(): Command {
  return addTlsOptions(addTargetOptions(
    new Command("repl")
      .description(
        "Interactive client: line editing, history, Tab completion, JSON mode, replies shown as they " +
          "arrive, automatic reconnection. With stdin not a terminal it behaves like `send`.",
      ),
  ))
    .addOption(
      new Option("--connect-timeout <duration>", "give up connecting after this long")
        .argParser(parseDuration).default(10_000, "10s"),
    )
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
    .option(
      "--timeout <duration>",
      "without a terminal: after stdin ends, give up when no reply came for this long (0 waits " +
        "until the server closes)",
      parseDuration,
      0,
    )
    .addHelpText(
      "after",
      `
Meta-commands (interactive): :help :quit :reconnect :json on|off :send FILE :time on|off
  :timestamps on|off :history [TEXT] :commands; start a line with :: to send a line beginning with ':'.
  A line typed with a leading space is sent but kept out of history.
History: $XDG_STATE_HOME/linesock/history (default ~/.local/state/linesock/history).
Without a terminal on stdin: lines go out as they are read, replies are printed as they arrive, and
  the exit status is 1 when a reply was an error (ERR …, or a JSON status that is not 0).`,
    )
    .action(async (options: ReplCliOptions) => {
      const status = await repl(options);
      if (status !== ExitCode.ok) throw new ExitError(status);
    });
}

async function repl(options: ReplCliOptions): Promise<number> {
  const target = resolveTarget(options);
  const tls = await resolveTls(options, "path" in target);
  const connectOptions: ConnectOptions = {
    connectTimeoutMs: options.connectTimeout || 10_000,
    ...target,
  };
  if (tls) connectOptions.tls = tls;
  const where = "path" in target ? `unix:${target.path}` : hostPort(target.hostname, target.port);
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const conn = await connect(connectOptions);
  if (!interactive) {
    const encoder = new TextEncoder();
    const outcome = await runScripted(
      conn,
      Deno.stdin.readable,
      async (text) => {
        const bytes = encoder.encode(text);
        for (let written = 0; written < bytes.length;) {
          written += await Deno.stdout.write(bytes.subarray(written));
        }
      },
      (message) => console.error(`linesock: ${message}`),
      {
        json: options.json ?? false,
        timestamps: options.timestamps ?? false,
        idleTimeoutMs: options.timeout,
        // Into a pipe or a file replies go as received; only a terminal needs protecting.
        escapeControls: !options.raw && Deno.stdout.isTerminal(),
      },
    );
    if (outcome === "timeout") {
      throw new ExitError(
        ExitCode.timeout,
        `no reply for ${options.timeout} ms after the input ended`,
      );
    }
    return OUTCOME_STATUS[outcome];
  }
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

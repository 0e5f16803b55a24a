/**
 * `linesock send`: sends lines (arguments, a file, or standard input as it arrives), prints the
 * replies as they arrive, and stops by one explicit rule (see docs/send.md). The exchange itself is
 * {@linkcode runExchange} in lib/client/conversation.ts (the engine the repl uses too); this file
 * only turns options into calls.
 *
 * @module
 */
import { argsFromPairs } from "./_json_args.ts";
import type { CommandSpec, Parsed } from "./_cli/spec.ts";
import { connect, type ConnectOptions, type LineConnection } from "../lib/client/client.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../lib/framing/line_framer.ts";
import { LineTooLongError, type RemoteError, TimeoutError } from "../lib/errors.ts";
import { escapeControls } from "../lib/client/_terminal_escape.ts";
import type { ClientTlsOptions } from "../lib/client/transport.ts";
import { type ExchangeResult, type Reply, runExchange } from "../lib/client/conversation.ts";
import { DEFAULT_REPLY_TIMEOUT_MS } from "../lib/client/_defaults.ts";
import { isDisconnect } from "../lib/_disconnect.ts";
import {
  connectTimeoutOption,
  ExitCode,
  InvalidArgumentError,
  parseByteSize,
  parseCount,
  parseDuration,
  parsePositive,
  replyTimeoutOption,
  UsageError,
} from "./_cli.ts";
import {
  takeTarget,
  TARGET_ALIASES,
  TARGET_ARGUMENT,
  targetFromFlags,
  targetOptions,
} from "./_client_target.ts";
import { resolveTls, TLS_OPTIONS, type TlsFlags } from "./_tls.ts";
import { startTimer } from "../lib/_timer.ts";
import { exchangeHooks, NORMAL, TRACE, VERBOSE, verbosityOf, WireTrace } from "./_verbosity.ts";

/** Parsed options of `send`. */
interface SendOptions extends TlsFlags {
  host?: string;
  port?: number;
  unix?: string;
  connectTimeout: number;
  retry: number;
  file?: string;
  replies?: number;
  greetingLines?: number;
  until?: RegExp;
  wait: number;
  timeout: number;
  deadline: number;
  halfClose: boolean;
  json?: boolean;
  args?: Record<string, unknown>;
  raw?: boolean;
  maxLine: number;
  record?: string;
  jsonOutput?: boolean;
  quiet?: boolean;
  verbose?: number;
}

const encoder = new TextEncoder();
const READ_CHUNK_BYTES = 64 * 1024;

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock send`. */
export const spec: CommandSpec = {
  name: "send",
  summary: "Send lines (arguments, --file or stdin) and print the replies as they arrive",
  args: [
    TARGET_ARGUMENT,
    {
      name: "LINE",
      help: "lines to send; with --protocol json: COMMAND key=value …",
      variadic: true,
    },
  ],
  options: [
    ...targetOptions(),
    ...TLS_OPTIONS,
    connectTimeoutOption(),
    {
      long: "retry",
      value: "N",
      help: "retry connecting N times with backoff (server starting)",
      parse: parseCount,
      default: 0,
    },
    {
      long: "file",
      short: "f",
      value: "PATH",
      help: "send the lines of a file (- for standard input)",
      complete: "file",
    },
    {
      long: "replies",
      value: "N",
      help: "lockstep: after each line wait for N replies; exit when the last one arrives",
      parse: parsePositive,
    },
    { long: "until", value: "REGEX", help: "stop when a reply matches", parse: parseRegex },
    {
      long: "greeting-lines",
      value: "N",
      help: "lines each new connection receives before it sends (printed, not counted as replies)",
      parse: parseCount,
    },
    {
      long: "wait",
      value: "DURATION",
      help: "after the input, stop after this much silence unless the server closes (0: wait for " +
        "the close)",
      parse: parseDuration,
      default: 2000,
      defaultText: "2s",
    },
    replyTimeoutOption("--replies, --until, --protocol json", DEFAULT_REPLY_TIMEOUT_MS),
    {
      long: "deadline",
      value: "DURATION",
      help: "limit on the whole run, connecting included; exit 4 when it passes (0: no limit)",
      parse: parseDuration,
      default: 0,
      defaultText: "none",
    },
    {
      long: "half-close",
      negatable: true,
      default: true,
      help: "half-close after the input (--no-half-close: for servers that take it as a hang-up)",
    },
    {
      long: "protocol",
      value: "NAME",
      help: "what to speak: text, or json (COMMAND key=value … become JSON requests)",
      choices: ["text", "json"],
      default: "text",
    },
    {
      long: "json",
      help:
        'print each reply as one JSON object: {"line", "bytes", "rttMs"} (rttMs with --replies)',
    },
    {
      long: "args",
      value: "JSON",
      help: "JSON mode: arguments as a JSON object (key=value pairs add to it)",
      parse: parseArgs,
    },
    {
      long: "raw",
      help: "print replies unescaped even on a terminal (where control characters are shown as " +
        "\\x1b …); in JSON mode, print each whole response line",
    },
    {
      long: "record",
      value: "FILE",
      help: "write the session as a conversation file that linesock test replays",
      complete: "file",
    },
    {
      long: "max-line",
      value: "SIZE",
      help: "longest reply (and lockstep input) line",
      parse: parseByteSize,
      default: DEFAULT_MAX_LINE_BYTES,
      defaultText: "1MiB",
    },
  ],
  aliases: [...TARGET_ALIASES, { name: "-n", of: "replies" }],
  examples: [
    ["linesock send PING 'ECHO hi'", "two lines to tcp://127.0.0.1:1991"],
    ["linesock send tcp://127.0.0.1:7000 PING", "another server (exactly what serve prints)"],
    ["linesock send --replies 1 PING", "wait for one reply, exit as soon as it arrives"],
    ["linesock send tls://localhost:7000 --ca ca.pem PING", "TLS, trusting a private CA"],
    ["printf 'a\\nb\\n' | linesock send -p 7000", "lines from a pipe, as they arrive"],
    ["linesock send -f requests.txt --until '^Done'", "stop when a reply matches"],
    ["linesock send --greeting-lines 1 --replies 1 HELO", "a server that greets first"],
    ["linesock send --protocol json echo text=hi count=3", "a JSON request"],
    ["linesock send --protocol json sum --args '{\"values\": [1, 2]}'", "JSON arguments"],
  ],
  notes: `Ending (after the last input line):
  default          half-close, print replies until the server closes or --wait of silence (exit 0)
  --replies N      wait for N replies to each line; exit as soon as the last one arrives
  --until REGEX    stop as soon as a reply matches
  --protocol json  one response per request; exit as soon as the last one arrives
  --deadline D     in any mode: stop after D in all, connecting included (exit 4)
  --timeout D      where replies are awaited: at most D for each one, from the line or the
                   previous reply (exit 4)

Saying less or more (on stderr; the replies on stdout are the same):
  -q    errors only: stderr says nothing but why the exit status is 2 to 5
  -v    also where it connected, then the lines and replies counted and why the exchange ended
  -vv   also each line sent (> LINE) and each reply (< LINE) as it goes, with the time since
        connecting and its size; with --replies or --protocol json, a line's first reply shows
        its round-trip time (rtt)

Exit statuses: 0 ok, 1 the server answered with an error (ERR … / JSON status not 0), 2 usage,
3 cannot connect (also: TLS certificate not accepted), 4 timed out, 5 connection lost before the
expected replies, 130 interrupted.`,
};

/**
 * Runs `linesock send`.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const options = parsed.options as unknown as SendOptions & { protocol: string };
  const lines = takeTarget(options, parsed.args);
  // --json is output for machines; the wire protocol is --protocol (SendOptions.json below).
  options.jsonOutput = options.json === true;
  options.json = options.protocol === "json";
  const deadline = startDeadline(options.deadline);
  try {
    return await runSend(lines, options, deadline);
  } finally {
    deadline.clear();
  }
}

function parseRegex(text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (error) {
    throw new InvalidArgumentError(`not a valid regular expression: ${(error as Error).message}`);
  }
}

function parseArgs(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`expected a JSON object such as '{"key": [1, 2]}'`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`expected a JSON object such as '{"key": [1, 2]}'`);
  }
  return value as Record<string, unknown>;
}

/** One JSON request line from `COMMAND key=value …` and `--args`. */
function jsonRequest(words: string[], baseArgs: Record<string, unknown> = {}): string {
  const [command, ...pairs] = words;
  const args = argsFromPairs(pairs, {
    badPair: (pair) => new UsageError(`expected key=value after the command, got '${pair}'`),
  }, baseArgs);
  return JSON.stringify({ command, args });
}

/** Where the input comes from, as chunks of bytes. */
interface InputSource {
  chunks: AsyncIterator<Uint8Array>;
  /** For the "nothing to send" message. */
  emptyMessage: string;
}

function chooseInput(lines: string[], options: SendOptions): InputSource {
  if (options.file !== undefined && lines.length > 0 && !options.json) {
    throw new UsageError("give lines as arguments or with --file, not both");
  }
  if (options.json && lines.length > 0) {
    if (options.file !== undefined) {
      throw new UsageError("give a command as arguments or JSON lines with --file, not both");
    }
    const request = jsonRequest(lines, options.args);
    return { chunks: once(encoder.encode(request + "\n")), emptyMessage: "" };
  }
  if (lines.length > 0) {
    return {
      chunks: once(encoder.encode(lines.map((line) => line + "\n").join(""))),
      emptyMessage: "",
    };
  }
  const noInput = "nothing to send: give lines as arguments, use --file PATH, or pipe lines in" +
    (options.json ? " (with --protocol json: COMMAND key=value …)" : "");
  if (options.file !== undefined && options.file !== "-") {
    return {
      chunks: readFile(options.file),
      emptyMessage: `nothing to send: ${options.file} is empty`,
    };
  }
  if (options.file === undefined && Deno.stdin.isTerminal()) throw new UsageError(noInput);
  return {
    chunks: readChunks(Deno.stdin),
    emptyMessage: "nothing to send: standard input was empty",
  };
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function* readFile(path: string): AsyncGenerator<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    yield* readChunks(file);
  } finally {
    file.close();
  }
}

/**
 * Chunks as they arrive: a pipe's line is forwarded as soon as it is written. Each chunk is a view of
 * one reused buffer, valid until the next is requested (the session copies what it keeps).
 */
async function* readChunks(
  reader: { read(buffer: Uint8Array): Promise<number | null> },
): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(READ_CHUNK_BYTES);
  for (;;) {
    const count = await reader.read(buffer);
    if (count === null) return;
    if (count > 0) yield buffer.subarray(0, count);
  }
}

/** `first`, then the rest; waiting for the rest ends with `stop`'s error (the deadline passed). */
async function* prepend(
  first: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
  stop: Promise<never>,
): AsyncGenerator<Uint8Array> {
  yield first;
  for (let next; !(next = await Promise.race([rest.next(), stop])).done;) yield next.value;
}

/** `--deadline`: one timer over the whole run. */
interface Deadline {
  /** Rejects with {@linkcode Deadline.error} when the deadline passes; never without a deadline. */
  readonly passed: Promise<never>;
  /** The error of exit status 4, once the deadline has passed. */
  readonly error: TimeoutError | undefined;
  /** Called when it passes: wakes what the run waits for (closes the connection). */
  onPass: () => void;
  /** Stops the timer. */
  clear(): void;
}

function startDeadline(ms: number): Deadline {
  const passed = Promise.withResolvers<never>();
  passed.promise.catch(() => {});
  let error: TimeoutError | undefined;
  // The runtime's own timer: the global setTimeout's first use costs milliseconds of start-up.
  const timer = ms > 0
    ? startTimer(ms, () => {
      error = new TimeoutError("the whole run (--deadline)", ms);
      deadline.onPass();
      passed.reject(error);
    })
    : undefined;
  const deadline: Deadline = {
    passed: passed.promise,
    get error() {
      return error;
    },
    onPass: () => {},
    clear: () => timer?.cancel(),
  };
  return deadline;
}

function validate(options: SendOptions): void {
  targetFromFlags(options);
  if (!options.json && options.args !== undefined) {
    throw new UsageError("--args needs --protocol json");
  }
}

/**
 * Runs `send`.
 * @param lines The positional arguments.
 * @param options The parsed options.
 * @param deadline The `--deadline` timer, started before anything else.
 * @returns The exit status.
 */
async function runSend(lines: string[], options: SendOptions, deadline: Deadline): Promise<number> {
  validate(options);
  const verbosity = verbosityOf(options);
  const note = (message: string) => {
    if (verbosity >= NORMAL) console.error(`linesock: ${message}`);
  };
  const detail = (message: string) => {
    if (verbosity >= VERBOSE) console.error(`linesock: ${message}`);
  };
  // -vv: each line sent and each reply, with times (lockstep: a line's first reply is its answer).
  const trace = verbosity >= TRACE
    ? new WireTrace({ lockstep: options.json || options.replies !== undefined })
    : undefined;
  const tls = await resolveTls(options, options.unix !== undefined);
  const input = chooseInput(lines, options);

  // Connect while the first input is awaited: a slow pipe does not delay connection errors, and
  // empty input is a usage error before anything is sent.
  const firstRead = input.chunks.next();
  const connecting = connect(connectOptions(options, tls, note));
  connecting.catch(() => {});
  deadline.onPass = () => connecting.then((connection) => connection.close(), () => {});
  const first = await Promise.race([firstRead, connecting.then(() => firstRead), deadline.passed]);
  if (first.done) {
    connecting.then((connection) => connection.close(), () => {});
    throw new UsageError(input.emptyMessage);
  }
  const connection = await Promise.race([connecting, deadline.passed]);
  // From now on a passing deadline closes the connection: every wait of the session ends, and what
  // arrived so far has been printed.
  deadline.onPass = () => connection.close();
  detail(`connected to ${connection.remote}`);
  trace?.connected();
  let result: ExchangeResult;
  const recorder = options.record === undefined
    ? undefined
    : new (await import("./_test/recorder.ts")).ConversationRecorder(connection.remote);
  try {
    result = await runExchange(connection, {
      input: prepend(first.value, input.chunks, deadline.passed),
      output: stdoutWriter,
      // Into a pipe or a file, replies go byte for byte; only a terminal needs protecting.
      escapeControls: !options.raw && Deno.stdout.isTerminal(),
      replies: options.replies,
      greetingLines: options.greetingLines,
      until: options.until,
      json: options.json,
      jsonOutput: options.jsonOutput,
      raw: options.raw,
      halfClose: options.halfClose,
      waitMs: options.wait,
      timeoutMs: options.timeout,
      maxLineBytes: options.maxLine,
      onRemoteError: options.json ? (error) => note(describeRemoteError(error)) : undefined,
      onTooLong: (error) =>
        note(`a reply was longer than --max-line (${error.limit} bytes) and was left out`),
      ...exchangeHooks([recorder, trace], tooLongNote),
    });
    if (recorder) {
      if (result.ending === "closed") recorder.closed();
      await Deno.writeTextFile(options.record!, recorder.text());
    }
  } catch (error) {
    if (deadline.error) throw deadline.error;
    // Whoever reads our output went away (`send … | head -1`): nothing more to do or say.
    if (error instanceof OutputClosed) return ExitCode.ok;
    throw error;
  } finally {
    await closeConnection(connection);
  }
  // The closed connection may have looked like a normal end.
  if (deadline.error) throw deadline.error;
  detail(
    `sent ${result.linesSent} line(s), received ${result.replies} repl${
      result.replies === 1 ? "y" : "ies"
    }; ended: ${describeEnding(result, options)}`,
  );
  if (!result.inputComplete && result.ending === "closed") {
    note("the server closed the connection before all input was sent");
  }
  if (result.remoteErrors === 0) return result.tooLong === 0 ? ExitCode.ok : ExitCode.remoteError;
  if (!options.json) {
    const more = result.remoteErrors > 1 ? ` (and ${result.remoteErrors - 1} more)` : "";
    note(
      `the server answered with an error: ${
        escapeControls(result.firstRemoteError?.message ?? "")
      }${more}`,
    );
  }
  return ExitCode.remoteError;
}

/** For the trace: a reply over `--max-line` is shown as what became of it. */
function tooLongNote(reply: Reply): string | undefined {
  return reply.error instanceof LineTooLongError
    ? `(a reply over --max-line, ${reply.error.limit} bytes: left out)`
    : undefined;
}

function connectOptions(
  options: SendOptions,
  tls: ClientTlsOptions | undefined,
  note: (message: string) => void,
): ConnectOptions {
  return {
    ...(tls ? { tls } : {}),
    ...targetFromFlags(options),
    connectTimeoutMs: options.connectTimeout,
    retries: options.retry,
    stripCR: false,
    maxLineBytes: options.maxLine,
    onRetry: (attempt, error, delayMs) =>
      note(`${error.message}; retry ${attempt} of ${options.retry} in ${delayMs} ms`),
  };
}

/** Standard output went away (a closed pipe: `send … | head -1`). */
class OutputClosed extends Error {}

/** Standard output, with the reader going away told apart from other failures. */
const stdoutWriter = {
  async write(bytes: Uint8Array): Promise<number> {
    try {
      return await Deno.stdout.write(bytes);
    } catch (error) {
      if (isDisconnect(error)) throw new OutputClosed("standard output closed", { cause: error });
      throw error;
    }
  },
};

async function closeConnection(connection: LineConnection): Promise<void> {
  await connection[Symbol.asyncDispose]();
}

function describeRemoteError(error: RemoteError): string {
  // The server's words on stderr: escaped, a diagnostic stays one harmless line.
  const extra = error.extra === undefined || error.extra === null
    ? ""
    : ` (extra: ${escapeControls(JSON.stringify(error.extra))})`;
  return `remote error (status ${error.status}): ${escapeControls(error.message)}${extra}`;
}

function describeEnding(result: ExchangeResult, options: SendOptions): string {
  switch (result.ending) {
    case "closed":
      return "the server closed the connection";
    case "silence":
      return `no reply for ${options.wait} ms after the input`;
    case "replies":
      return "the last expected reply arrived";
    case "until":
      return `a reply matched ${options.until}`;
  }
}

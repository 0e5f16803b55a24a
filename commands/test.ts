/**
 * `linesock test`: runs conversation files (docs/test.md) against a line server, several at once
 * with `-j`, and reports a line per file (or JSON, JUnit XML, TAP). `--update` rewrites the
 * expectations from what the server answers now; `--serve` starts a linesock server in-process for
 * the run.
 *
 * @module
 */
import type { CommandSpec, Parsed } from "./_cli/spec.ts";
import { UsageError } from "./_cli/spec.ts";
import { readTargetArgs } from "./_cli/address_args.ts";
import { connectTimeoutOption, ExitCode, parseDuration, parsePositive } from "./_cli.ts";
import { TARGET_ALIASES, TARGET_ARGUMENT, targetOptions } from "./_client_target.ts";
import { resolveTls, TLS_OPTIONS } from "./_tls.ts";
import { NORMAL, TRACE, VERBOSE, verbosityOf } from "./_verbosity.ts";
import { DEFAULT_HOST, DEFAULT_PORT } from "../lib/address.ts";
import { type Conversation, escapeBytes } from "./_test/conversation.ts";
import type { ConversationEvent, ConversationResult } from "./_test/runner.ts";

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock test`. */
export const spec: CommandSpec = {
  name: "test",
  summary: "Run scripted conversations (> send, < expect) against a line server",
  args: [
    TARGET_ARGUMENT,
    { name: "FILE", help: "conversation files", variadic: true, complete: "file" },
  ],
  options: [
    ...targetOptions(),
    ...TLS_OPTIONS,
    connectTimeoutOption(),
    {
      long: "jobs",
      short: "j",
      value: "N",
      help: "files run at once",
      parse: parsePositive,
      default: 1,
    },
    {
      long: "timeout",
      value: "DURATION",
      help: "how long each expectation may wait",
      parse: parseDuration,
      default: 5000,
      defaultText: "5s",
    },
    { long: "update", help: "rewrite the files' expectations from the server's answers (a diff)" },
    { long: "json", help: "one JSON object with every result" },
    { long: "junit", value: "FILE", help: "also write JUnit XML to FILE", complete: "file" },
    { long: "tap", help: "TAP output instead of the table" },
    {
      long: "serve",
      value: "ARGS",
      help: 'start "linesock serve ARGS" in-process for the run (it picks its port)',
    },
  ],
  examples: [
    ["linesock test tcp://127.0.0.1:7000 ping.conv", "one conversation against a server"],
    ["linesock test -j 4 tests/*.conv", "every file, four at once, against 127.0.0.1:1991"],
    [
      "linesock test --serve '--routes proto.json' t/*.conv",
      "a routes file and its conversations in one command",
    ],
    ["linesock test --junit report.xml t/*.conv", "JUnit XML for CI"],
    ["linesock test --update t/ping.conv", "take the server's current answers as expected"],
  ],
  // --target was test's own spelling of --host (0.2).
  aliases: [...TARGET_ALIASES, { name: "--target", of: "host" }],
  notes: `A conversation file has a step per line: "> LINE" sends, "< LINE" expects a line exactly,
"<re REGEX", "<json {…}", "<any N", "<set LINE", silence D, pause D, timeout D, halfclose, closed,
">raw BYTES"; NAME> and NAME< talk on a named connection. See docs/test.md.

Saying less or more:
  -q    only the failures: no PASS lines, no totals
  -v    the transcript of each conversation on stderr as it runs: connections, lines sent (>),
        lines received (<), half-closes and closes, each line prefixed with its file
  -vv   the transcript with times (since the file began) and sizes, and each step's outcome

Exit statuses: 0 every file passed, 1 a file failed, 2 usage or a malformed file (file:line).`,
};

/**
 * Runs `linesock test`.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const options = parsed.options as {
    host?: string;
    port?: number;
    unix?: string;
    tls?: boolean;
    ca?: string[];
    servername?: string;
    insecure?: boolean;
    connectTimeout: number;
    jobs: number;
    timeout: number;
    update?: boolean;
    json?: boolean;
    junit?: string;
    tap?: boolean;
    serve?: string;
    quiet?: boolean;
    verbose?: number;
  };
  const verbosity = verbosityOf(options);
  const { parseConversation, ConversationSyntaxError } = await import("./_test/conversation.ts");
  const { runConversation } = await import("./_test/runner.ts");
  const report = await import("./_test/report.ts");
  const { transcriptLine } = await import("./_test/transcript.ts");

  const embedded = options.serve !== undefined;
  if (embedded && (options.host !== undefined || options.port !== undefined || options.unix)) {
    throw new UsageError("--serve starts the server: drop --host, --port and --unix");
  }
  const resolved = readTargetArgs(options, parsed.args, {
    hostname: DEFAULT_HOST,
    port: DEFAULT_PORT,
  });
  if (embedded && resolved.explicit) {
    throw new UsageError("--serve starts the server: give no target");
  }
  const files = resolved.rest;
  if (files.length === 0) throw new UsageError("no conversation file given");
  if (options.update && (options.jobs > 1 || options.json || options.junit || options.tap)) {
    throw new UsageError("--update rewrites files one at a time: drop -j, --json, --junit, --tap");
  }

  const conversations: { conversation: Conversation; text: string }[] = [];
  for (const path of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(`${path}: cannot read it: ${(error as Error).message}`);
    }
    try {
      conversations.push({ conversation: parseConversation(path, text), text });
    } catch (error) {
      if (error instanceof ConversationSyntaxError) throw new UsageError(error.message);
      throw error;
    }
  }

  let server: { url: string; stop(): Promise<void> } | undefined;
  let target = resolved.target;
  if (embedded) {
    const { startEmbedded } = await import("./serve.ts");
    server = await startEmbedded(splitArgs(options.serve!));
    target =
      readTargetArgs({}, [server.url], { hostname: DEFAULT_HOST, port: DEFAULT_PORT }).target;
  }
  try {
    const tls = await resolveTls(
      { ...options, tls: options.tls || (target.kind === "tcp" && target.tls) },
      target.kind === "unix",
    );
    const transport = target.kind === "unix"
      ? { path: target.path }
      : { hostname: target.hostname, port: target.port, ...(tls ? { tls } : {}) };
    const connection = { ...transport, connectTimeoutMs: options.connectTimeout };
    const results: ConversationResult[] = new Array(conversations.length);
    let next = 0;
    const worker = async () => {
      while (next < conversations.length) {
        const index = next++;
        const { conversation, text } = conversations[index]!;
        const result = await runConversation(conversation, {
          target: connection,
          timeoutMs: options.timeout,
          ...(options.update ? { update: true } : {}),
          // -v: the transcript on stderr as it runs (-vv: with times, sizes and each step).
          ...(verbosity >= VERBOSE
            ? {
              trace: (event: ConversationEvent) => {
                const line = transcriptLine(conversation.path, event, verbosity >= TRACE);
                if (line !== undefined) console.error(line);
              },
            }
            : {}),
        });
        results[index] = result;
        if (options.update && result.updates.length > 0) {
          console.log(await rewrite(conversation.path, text, result.updates));
        } else if (!options.json && !options.tap && (verbosity >= NORMAL || !result.passed)) {
          // -q: the failures only.
          for (const line of report.formatResult(result)) console.log(line);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.jobs, conversations.length) }, worker));
    if (options.json) console.log(report.jsonReport(results));
    if (options.tap) Deno.stdout.writeSync(new TextEncoder().encode(report.tapReport(results)));
    if (options.junit) await Deno.writeTextFile(options.junit, report.junitReport(results));
    const failed = results.filter((result) => !result.passed && result.updates.length === 0);
    if (!options.json && !options.tap && verbosity >= NORMAL && results.length > 1) {
      console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.remoteError;
  } finally {
    await server?.stop();
  }
}

/** Replaces the expectations that did not hold with what arrived; returns the diff shown. */
async function rewrite(
  path: string,
  text: string,
  updates: readonly { line: number; received: string[] }[],
): Promise<string> {
  const lines = text.split("\n");
  const diff = [`--- ${path}`, `+++ ${path} (from the server's answers)`];
  for (const update of [...updates].sort((a, b) => b.line - a.line)) {
    const old = lines[update.line - 1]!;
    const name = /^([A-Za-z][\w-]*)(?=<)/.exec(old)?.[1] ?? "";
    const replacement = update.received.map((line) =>
      `${name}< ${escapeBytes(new TextEncoder().encode(line))}`
    );
    lines.splice(update.line - 1, 1, ...replacement);
    diff.push(`@@ line ${update.line} @@`, `- ${old}`, ...replacement.map((line) => `+ ${line}`));
  }
  await Deno.writeTextFile(path, lines.join("\n"));
  return diff.join("\n");
}

/** Splits `--serve`'s value into arguments (spaces separate; quotes group). */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  for (const match of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    args.push(match[1] ?? match[2] ?? match[3]!);
  }
  return args;
}

/**
 * `linesock bench`'s requests and expected replies from its options: lines from `-m` (round-robin),
 * a file (one request a line) or a `linesock test` conversation file (its `>` lines and the `<`
 * lines after each), or echo-test's generated lines (`--echo` alone); expected replies from
 * `--expect`, `--expect-re`, `--expect-json`, `--expect-lines` or `--echo`, either one for every
 * request or one per `-m` in order. Every mistake is a {@linkcode UsageError} saying what to write.
 *
 * @example Two messages, each with its own expected reply
 * ```ts
 * import { workloadFromOptions } from "./sources.ts";
 * import assert from "node:assert/strict";
 *
 * const workload = await workloadFromOptions({
 *   message: ["PING", "ECHO hi"],
 *   expect: ["PONG", "hi"],
 * });
 * assert.equal(workload.requests.length, 2);
 * assert.equal(workload.requests[1]!.line.source, "ECHO hi");
 * assert.deepEqual(workload.requests[1]!.reply.map((check) => check.kind), ["exact"]);
 * ```
 *
 * @module
 */
import { UsageError } from "../_cli/spec.ts";
import {
  type Conversation,
  ConversationSyntaxError,
  expand,
  parseConversation,
} from "../_test/conversation.ts";
import type { LineCheck, RequestSpec } from "./expectation.ts";
import { LineTemplate } from "./template.ts";
import type { Workload } from "./workload.ts";
import type { LineSizeRange } from "../_echo_test/_load_tape.ts";

/** The options that say what to send and expect. */
export interface SourceOptions {
  /** `-m`: request lines, round-robin. */
  message?: string[];
  /** `-f`: a file of request lines. */
  file?: string;
  /** `--conversation`: a conversation file. */
  conversation?: string;
  /** `--echo`: every reply is the line sent (alone: generated lines). */
  echo?: boolean;
  /** `-s`: sizes of the generated lines. */
  size?: LineSizeRange;
  /** `--expect`: exact lines. */
  expect?: string[];
  /** `--expect-re`: regular expressions. */
  expectRe?: string[];
  /** `--expect-json`: JSON subsets. */
  expectJson?: string[];
  /** `--expect-lines`: N lines, whatever they say. */
  expectLines?: number;
  /** `--crlf`: `\r\n` line endings. */
  crlf?: boolean;
  /** `--greeting-lines`: lines each connection receives first. */
  greetingLines?: number;
}

const SEQ_MARK = "\u{10FFFD}seq\u{10FFFD}";
const CONN_MARK = "\u{10FFFD}conn\u{10FFFD}";
const encoder = new TextEncoder();
const MARKERS = { seq: encoder.encode(SEQ_MARK), conn: encoder.encode(CONN_MARK) };

/**
 * Reads what to send and expect.
 * @param options The parsed options.
 * @returns The workload.
 * @throws {UsageError} On conflicting or missing options, a file that cannot be read, or a bad
 * expected reply.
 */
export async function workloadFromOptions(options: SourceOptions): Promise<Workload> {
  const sources = [
    options.message !== undefined ? "-m" : undefined,
    options.file !== undefined ? "--file" : undefined,
    options.conversation !== undefined ? "--conversation" : undefined,
  ].filter((name) => name !== undefined);
  if (sources.length > 1) {
    throw new UsageError(
      `give requests with one of -m, --file or --conversation, not ${sources.join(" and ")}`,
    );
  }
  if (options.size !== undefined && !(options.echo && sources.length === 0)) {
    throw new UsageError(
      "--size sets the generated lines of --echo (without -m, --file or --conversation)",
    );
  }
  const crlf = options.crlf ?? false;
  if (crlf && options.echo) {
    throw new UsageError("--crlf does not go with --echo: an echo comes back as it was sent");
  }
  const greeting: LineCheck[] = Array.from(
    { length: options.greetingLines ?? 0 },
    () => ({ kind: "any" }),
  );
  if (options.conversation !== undefined) {
    if (expectationKinds(options).length > 0) {
      throw new UsageError(
        "--conversation has the expected replies in it: leave out --expect, --expect-re, " +
          "--expect-json, --expect-lines and --echo",
      );
    }
    const fromFile = fromConversation(await readConversation(options.conversation));
    if (fromFile.greeting.length > 0 && greeting.length > 0) {
      throw new UsageError(
        `${options.conversation} has a greeting (< lines before the first >): leave out --greeting-lines`,
      );
    }
    return {
      requests: fromFile.requests,
      greeting: fromFile.greeting.length > 0 ? fromFile.greeting : greeting,
      crlf,
    };
  }
  if (sources.length === 0) {
    if (options.echo) {
      if (expectationKinds(options).length > 1) throw conflicting(options);
      return {
        requests: [],
        greeting,
        crlf: false,
        echoSizes: options.size ?? { min: 64, max: 64 },
      };
    }
    throw new UsageError(
      "nothing to send: give -m LINE (such as -m PING --expect PONG), --file PATH, " +
        "--conversation FILE, or --echo",
    );
  }
  const lines = options.message ?? await readRequestLines(options.file!, crlf);
  const replies = expectedReplies(options, lines.length, options.file !== undefined);
  return {
    requests: lines.map((line, index) => ({
      line: LineTemplate.fromText(line),
      reply: replies[replies.length === 1 ? 0 : index]!,
    })),
    greeting,
    crlf,
  };
}

function expectationKinds(options: SourceOptions): string[] {
  return [
    options.expect !== undefined ? "--expect" : undefined,
    options.expectRe !== undefined ? "--expect-re" : undefined,
    options.expectJson !== undefined ? "--expect-json" : undefined,
    options.expectLines !== undefined ? "--expect-lines" : undefined,
    options.echo ? "--echo" : undefined,
  ].filter((name): name is string => name !== undefined);
}

function conflicting(options: SourceOptions): UsageError {
  return new UsageError(
    `give one kind of expected reply, not ${expectationKinds(options).join(" and ")} ` +
      "(a conversation file, --conversation, can mix them request by request)",
  );
}

/** The expected replies: one for every request, or one per request in order. */
function expectedReplies(
  options: SourceOptions,
  requests: number,
  fromFile: boolean,
): (readonly LineCheck[])[] {
  const kinds = expectationKinds(options);
  if (kinds.length > 1) throw conflicting(options);
  let replies: (readonly LineCheck[])[];
  if (options.expect !== undefined) {
    replies = options.expect.map((line) => [{ kind: "exact", line: LineTemplate.fromText(line) }]);
  } else if (options.expectRe !== undefined) {
    replies = options.expectRe.map((source) => {
      try {
        new RegExp(source.replaceAll("${seq}", "1").replaceAll("${conn}", "1"));
      } catch (error) {
        throw new UsageError(
          `--expect-re ${JSON.stringify(source)}: not a valid regular expression: ${
            (error as Error).message
          }`,
        );
      }
      return [{ kind: "regex", source }];
    });
  } else if (options.expectJson !== undefined) {
    replies = options.expectJson.map((source) => {
      try {
        JSON.parse(source.replaceAll("${seq}", "1").replaceAll("${conn}", "1"));
      } catch {
        throw new UsageError(
          `--expect-json ${JSON.stringify(source)}: expected JSON such as '{"status": 0}'`,
        );
      }
      return [{ kind: "json", source }];
    });
  } else if (options.echo) {
    replies = [[{ kind: "echo" }]];
  } else {
    const count = options.expectLines ?? 1;
    replies = [Array.from({ length: count }, () => ({ kind: "any" }) as const)];
  }
  if (replies.length !== 1 && (fromFile || replies.length !== requests)) {
    throw new UsageError(
      fromFile
        ? `give one ${kinds[0]} for every line of --file (or use --conversation for one per line)`
        : `${replies.length} ${kinds[0]} for ${requests} -m: give one for all, or one per -m`,
    );
  }
  return replies;
}

async function readRequestLines(path: string, crlf: boolean): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new UsageError(`nothing to send: ${path} is empty`);
  return crlf ? lines.map((line) => line.endsWith("\r") ? line.slice(0, -1) : line) : lines;
}

async function readConversation(path: string): Promise<Conversation> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return parseConversation(path, text);
  } catch (error) {
    if (error instanceof ConversationSyntaxError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * A conversation's requests and their expected replies: each `>` line is a request and the `<`
 * lines after it are its reply; `<` lines before the first `>` are the greeting.
 * @param conversation The parsed file.
 * @returns The requests and the greeting.
 * @throws {UsageError} For steps bench cannot repeat under load (named connections, `>raw`,
 * `silence`, `pause`, `halfclose`, `closed`) and requests without an expected reply.
 */
export function fromConversation(
  conversation: Conversation,
): { requests: RequestSpec[]; greeting: LineCheck[] } {
  const requests: { line: LineTemplate; reply: LineCheck[]; at: number }[] = [];
  const greeting: LineCheck[] = [];
  const where = (line: number) => `${conversation.path}:${line}`;
  for (const { connection, line, source, step } of conversation.steps) {
    const fail = (message: string) => new UsageError(`${where(line)}: ${message}`);
    if (connection !== "main") {
      throw fail(`bench runs one conversation per connection; "${connection}" names another`);
    }
    const template = (text: string) => {
      try {
        const bytes = expand(text, new Map([["seq", SEQ_MARK], ["conn", CONN_MARK]]));
        return LineTemplate.fromMarkedBytes(bytes, MARKERS, text);
      } catch (error) {
        throw fail(`${(error as Error).message} (bench has \${seq} and \${conn})`);
      }
    };
    const reply = requests.at(-1)?.reply ?? greeting;
    switch (step.kind) {
      case "send":
        if (!step.newline) throw fail(">raw sends bytes without a line end: bench sends lines");
        requests.push({ line: template(step.text), reply: [], at: line });
        break;
      case "expect":
        reply.push({ kind: "exact", line: template(step.text) });
        break;
      case "regex":
        reply.push({ kind: "regex", source: step.source, flags: "v" });
        break;
      case "json":
        reply.push({ kind: "json", source: step.source });
        break;
      case "any":
        for (let i = 0; i < step.count; i++) reply.push({ kind: "any" });
        break;
      case "set":
        reply.push({ kind: "set", lines: step.lines.map(template) });
        break;
      case "timeout":
        // The time each reply may take is --timeout.
        break;
      default:
        throw fail(
          `bench repeats requests and their replies; ${JSON.stringify(source.trim())} is not one ` +
            "(it takes >, <, <re, <json, <any and <set lines)",
        );
    }
  }
  if (requests.length === 0) {
    throw new UsageError(`${conversation.path}: no requests (> lines) to send`);
  }
  for (const request of requests) {
    if (request.reply.length === 0) {
      throw new UsageError(
        `${where(request.at)}: a request with no expected reply: bench times each request's ` +
          "reply (add < LINE, or <any, after it)",
      );
    }
  }
  return { requests: requests.map(({ line, reply }) => ({ line, reply })), greeting };
}

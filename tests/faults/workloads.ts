/**
 * The client workloads the fault scenarios run, each a real `linesock` command in the client's
 * namespace, each with the check that says whether a line was lost, duplicated or corrupted:
 *
 * - `send` of a 100,000-line file with half-close (`ECHO <n>:<hash>` → `<n>:<hash>`, so a reply
 *   out of order, missing, repeated or garbled is caught at its index); from the file itself, or
 *   fed through stdin in two parts with a gate between them, so that a fault can be started at a
 *   known point of the stream;
 * - the echo conformance suite (`echo-test`, every case);
 * - the repl without a terminal (stdin piped), driven in lockstep: a line, its reply, the next;
 * - a fixed-rate load (`echo-test --load --rate`), which checks every byte of every echo.
 *
 * @module
 */
import { type ClientExit, ClientProcess } from "./client_process.ts";

/** Where a workload connects. */
export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Lines in the send workload's file. */
export const SEND_LINES = 100_000;

/** The reply the text server gives to the n-th line of the file: the line's own text. */
export function expectedReply(index: number): string {
  // A hash of the index makes a reply that belongs to another line (or a garbled one) differ.
  return `${index}:${(Math.imul(index, 2654435761) >>> 0).toString(16)}`;
}

function sendLines(from: number, to: number): string {
  let text = "";
  for (let index = from; index < to; index++) text += `ECHO ${expectedReply(index)}\n`;
  return text;
}

/** Writes the send workload's file. */
export async function writeSendFile(path: string): Promise<void> {
  await Deno.writeTextFile(path, sendLines(0, SEND_LINES));
}

/** What the replies of a send run show. */
export interface ReplyCheck {
  /** Replies that arrived. */
  readonly answered: number;
  /** The first reply that is not the expected one, with its index; `undefined` when none. */
  readonly firstWrong: string | undefined;
}

/** Checks that `lines` are exactly the first replies of the file, in order. */
export function checkReplies(lines: readonly string[]): ReplyCheck {
  for (let index = 0; index < lines.length; index++) {
    if (lines[index] !== expectedReply(index)) {
      return {
        answered: lines.length,
        firstWrong: `reply ${index} is ${JSON.stringify(lines[index]?.slice(0, 80))}, ` +
          `expected ${JSON.stringify(expectedReply(index))}`,
      };
    }
  }
  return { answered: lines.length, firstWrong: undefined };
}

/** The arguments that point a client at a target. */
function at(target: Target): string[] {
  return ["--host", target.host, "--port", String(target.port)];
}

/** `send -f FILE --wait 0`: half-close after the file, print replies until the server closes. */
export function startSendFile(target: Target, file: string, wrapper: string[]): ClientProcess {
  return ClientProcess.start("send", [...at(target), "-f", file, "--wait", "0"], { wrapper });
}

/** A send run fed through stdin, a part at a time. */
export interface GatedSend {
  readonly process: ClientProcess;
  /** Feeds the lines up to (not including) `to`. */
  feed(to: number): Promise<void>;
  /** Feeds the rest of the lines and ends stdin (the half-close follows). */
  release(): Promise<void>;
}

/**
 * `send -f - --wait 0` with the file's lines fed through stdin: the first `gateAt` at once, more
 * with {@linkcode GatedSend.feed}, the rest with {@linkcode GatedSend.release}.
 */
export async function startGatedSend(
  target: Target,
  wrapper: string[],
  gateAt: number,
): Promise<GatedSend> {
  const process = ClientProcess.start("send", [...at(target), "-f", "-", "--wait", "0"], {
    wrapper,
    stdin: true,
  });
  let fed = 0;
  const feed = async (to: number) => {
    while (fed < to) {
      const end = Math.min(to, fed + 5_000);
      if (!await process.write(sendLines(fed, end))) return;
      fed = end;
    }
  };
  await feed(gateAt);
  return {
    process,
    feed,
    async release() {
      await feed(SEND_LINES);
      await process.closeStdin();
    },
  };
}

/** The repl without a terminal, in lockstep: one line, its reply, the next. */
export class ScriptedRepl {
  readonly process: ClientProcess;
  /** Lines written so far. */
  sent = 0;

  constructor(target: Target, wrapper: string[]) {
    this.process = ClientProcess.start("repl", [...at(target), "--reconnect"], {
      wrapper,
      stdin: true,
    });
  }

  /** The reply to the n-th line. */
  static reply(index: number): string {
    return `repl-${index}`;
  }

  /**
   * Sends `count` lines, each after the reply to the one before.
   * @returns `false` when a reply did not come (the process ended).
   */
  async exchange(count: number, ms: number): Promise<boolean> {
    for (let step = 0; step < count; step++) {
      const index = this.sent++;
      if (!await this.process.write(`ECHO ${ScriptedRepl.reply(index)}\n`)) return false;
      await this.process.waitForLines(index + 1, ms, `the repl's reply to line ${index}`);
      if (this.process.lines.length <= index) return false;
    }
    return true;
  }

  /** Ends stdin and waits for the exit. */
  async finish(): Promise<ClientExit> {
    await this.process.closeStdin();
    return await this.process.exit;
  }

  /** The first reply that is not the expected one; `undefined` when all are right. */
  static check(lines: readonly string[]): string | undefined {
    const wrong = lines.findIndex((line, index) => line !== ScriptedRepl.reply(index));
    return wrong === -1
      ? undefined
      : `repl reply ${wrong} is ${JSON.stringify(lines[wrong])}, expected ${
        ScriptedRepl.reply(wrong)
      }`;
  }
}

/** `echo-test` conformance, every case, each with `timeout` as its budget. */
export function startConformance(
  target: Target,
  wrapper: string[],
  timeout: string,
): ClientProcess {
  return ClientProcess.start("echo-test", [...at(target), "--timeout", timeout], { wrapper });
}

/** The summary line of a conformance run, when every case passed. */
export function conformancePassed(exit: ClientExit): boolean {
  return exit.code === 0 && exit.lines.some((line) => /^PASSED: \d+ passed, 0 failed/.test(line));
}

/** The figures of a fixed-rate load run (`echo-test --load --json`). */
export interface LoadReport {
  readonly passed: boolean;
  readonly linesSent: number;
  readonly linesReceived: number;
  readonly linesLost: number;
  readonly linesMismatched: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** Fixed-rate load settings. */
export interface LoadSettings {
  /** Lines per second in total. */
  readonly rate: number;
  /** How long it sends (a duration, e.g. `10s`). */
  readonly duration: string;
  /** The longest wait for an echo before its line counts as lost. */
  readonly timeout: string;
}

/** `echo-test --load`: 2 connections, up to 32 lines in flight each, paced to `rate`. */
export function startLoad(
  target: Target,
  wrapper: string[],
  settings: LoadSettings,
): ClientProcess {
  return ClientProcess.start("echo-test", [
    ...at(target),
    "--load",
    "-c",
    "2",
    "-P",
    "32",
    "--rate",
    String(settings.rate),
    "-d",
    settings.duration,
    "--timeout",
    settings.timeout,
    "--json",
  ], { wrapper });
}

/** The load's report, or `undefined` when it printed none. */
export function loadReport(exit: ClientExit): LoadReport | undefined {
  const line = exit.lines.find((text) => text.startsWith("{"));
  return line === undefined ? undefined : JSON.parse(line) as LoadReport;
}

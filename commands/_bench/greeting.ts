/**
 * {@linkcode readGreeting}: the lines a server sends each new connection before it is asked anything
 * (`serve --greeting`, SMTP's 220, a conversation file's `<` lines before its first `>`), read and
 * checked before a connection joins the load, so that they are neither timed nor taken for replies.
 *
 * @module
 */
import type { Transport } from "../../lib/client/transport.ts";
import { checkLine, replyLines, show } from "./expectation.ts";
import type { LoadPlan } from "./workload.ts";
import { describeDisconnect } from "../../lib/_disconnect.ts";

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder();

/** The greeting did not come (the connection was closed, or it took longer than allowed). */
export class GreetingError extends Error {
  /** Whether it took longer than allowed. */
  readonly timedOut: boolean;
  /**
   * @param message What happened.
   * @param timedOut Whether it took longer than allowed.
   */
  constructor(message: string, timedOut = false) {
    super(message);
    this.timedOut = timedOut;
  }
}

/**
 * Reads and checks the greeting of a new connection.
 * @param conn The connection.
 * @param plan The plan (its greeting checks and line ending).
 * @param connection The connection's number (1-based, for messages).
 * @param timeoutMs The longest wait.
 * @param maxLineBytes The longest greeting.
 * @param onWrong Called for each wrong greeting line.
 * @returns The bytes that arrived after the greeting.
 * @throws {GreetingError} When the greeting does not arrive in time or the connection ends first.
 */
export async function readGreeting(
  conn: Transport,
  plan: LoadPlan,
  connection: number,
  timeoutMs: number,
  maxLineBytes: number,
  onWrong: (message: string) => void,
): Promise<Uint8Array> {
  const wanted = replyLines(plan.greeting);
  if (wanted === 0) return new Uint8Array(0);
  let buffer = new Uint8Array(4096);
  let length = 0;
  const lines: Uint8Array[] = [];
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  try {
    while (lines.length < wanted) {
      if (length === buffer.length) {
        if (buffer.length >= maxLineBytes * wanted) {
          throw new GreetingError(`the greeting is longer than ${maxLineBytes} bytes a line`);
        }
        const grown = new Uint8Array(buffer.length * 2);
        grown.set(buffer);
        buffer = grown;
      }
      let count: number | null;
      try {
        count = await conn.read(buffer.subarray(length));
      } catch (error) {
        if (timedOut) break;
        throw new GreetingError(
          `the connection failed before its greeting: ${describeDisconnect(error)}`,
        );
      }
      if (count === null) {
        throw new GreetingError(
          `the server closed the connection after ${lines.length} of ${wanted} greeting lines`,
        );
      }
      length += count;
      // Take the complete lines off the front.
      const view = buffer.subarray(0, length);
      let start = 0;
      for (
        let at = view.indexOf(LF);
        at !== -1 && lines.length < wanted;
        at = view.indexOf(LF, start)
      ) {
        lines.push(view.slice(start, at));
        start = at + 1;
      }
      if (lines.length === wanted) {
        return buffer.slice(start, length);
      }
      buffer.copyWithin(0, start, length);
      length -= start;
    }
    throw new GreetingError(
      `no greeting within ${timeoutMs} ms (${lines.length} of ${wanted} lines arrived)`,
      true,
    );
  } finally {
    clearTimeout(timer);
    checkGreeting(plan, lines, connection, onWrong);
  }
}

function checkGreeting(
  plan: LoadPlan,
  lines: Uint8Array[],
  connection: number,
  onWrong: (message: string) => void,
): void {
  const context = { request: new Uint8Array(0), seq: 0, conn: connection };
  let index = 0;
  for (const check of plan.greeting) {
    const count = check.kind === "set" ? check.lines.length : 1;
    for (let i = 0; i < count && index < lines.length; i++, index++) {
      let line = lines[index]!;
      if (plan.crlf && line[line.length - 1] === CR) line = line.subarray(0, -1);
      const problem = checkLine(check, line, context);
      if (problem !== undefined) {
        onWrong(
          `connection ${connection}, greeting line ${index + 1}: expected ${problem}, got ${
            show(decoder.decode(line))
          }`,
        );
      }
    }
  }
}

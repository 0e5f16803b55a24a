/**
 * The repl when stdin is not a terminal: it behaves like `send`, so it can be scripted. Lines from
 * stdin go to the server as they come (JSON mode encodes them), replies are printed as they arrive
 * with no prompt, markers or colour, and after stdin ends the socket is half-closed and the replies
 * are read until the server closes the connection.
 *
 * @module
 */
import type { LineConnection } from "../../lib/client/client.ts";
import { LineTooLongError } from "../../lib/errors.ts";
import { describeJsonResponse, encodeJsonRequest, JsonInputError } from "./json_request.ts";
import { escapeControls } from "../../lib/client/_terminal_escape.ts";
import { formatTimestamp } from "./render.ts";

/** Options of {@linkcode runScripted}. */
export interface ScriptedOptions {
  /** Encode lines as JSON requests (`add a=1` → `{"command":"add","args":{"a":1}}`). */
  json: boolean;
  /** Prefix each printed reply with the time. */
  timestamps: boolean;
  /** After stdin ended, give up when no reply came for this long (ms); 0 waits for the server to close. */
  idleTimeoutMs: number;
  /**
   * Show control characters in replies escaped (`\x1b`): for a terminal on stdout, where a hostile
   * server's escape sequences would otherwise drive it. @default {false}
   */
  escapeControls?: boolean;
}

/** How a scripted run ended. */
export type ScriptedOutcome =
  | "ok"
  | "remote-error"
  | "invalid-input"
  | "timeout"
  | "connection-lost";

/**
 * Pipes `input` lines to the server and prints the replies.
 * @param conn The open connection (closed when this returns).
 * @param input The lines to send (stdin).
 * @param write Prints text (stdout).
 * @param warn Prints a message for people (stderr).
 * @param options JSON mode, timestamps, the wait after the input ended.
 * @returns How it ended: `remote-error` when a reply was an error (`ERR …`, or a non-zero JSON status).
 */
export async function runScripted(
  conn: LineConnection,
  input: ReadableStream<Uint8Array>,
  write: (text: string) => Promise<void>,
  warn: (message: string) => void,
  options: ScriptedOptions,
): Promise<ScriptedOutcome> {
  let sawRemoteError = false;
  let invalidInput = false;
  let inputDone = false;
  const inputEnded = new AbortController();
  const decoder = new TextDecoder();

  const printing = (async (): Promise<ScriptedOutcome | undefined> => {
    for (;;) {
      let bytes: Uint8Array | null;
      const waitingForInput = !inputDone;
      try {
        // The idle timeout starts when the input ends, so a read begun before then is woken up.
        bytes = await conn.readRawLine(
          options.idleTimeoutMs <= 0
            ? {}
            : waitingForInput
            ? { signal: inputEnded.signal }
            : { timeoutMs: options.idleTimeoutMs },
        );
      } catch (error) {
        if (waitingForInput && inputEnded.signal.aborted) continue;
        if (error instanceof LineTooLongError) {
          warn(error.message);
          sawRemoteError = true;
          continue;
        }
        if ((error as { code?: string }).code === "TIMEOUT") return "timeout";
        warn(`connection lost: ${(error as Error).message}`);
        return "connection-lost";
      }
      if (bytes === null) return undefined;
      const line = decoder.decode(bytes);
      if (/^ERR\b/.test(line) || (options.json && describeJsonResponse(line).kind === "error")) {
        sawRemoteError = true;
      }
      const shown = options.escapeControls ? escapeControls(line) : line;
      await write(`${options.timestamps ? `${formatTimestamp(new Date())} ` : ""}${shown}\n`);
    }
  })();

  const sending = (async (): Promise<ScriptedOutcome | undefined> => {
    const text = new TextDecoder();
    let rest = "";
    let id = 1;
    const push = (line: string) => {
      if (!options.json) return conn.enqueue(line);
      if (line.trim() === "") return;
      try {
        conn.enqueue(encodeJsonRequest(line, id++).line);
      } catch (error) {
        if (!(error instanceof JsonInputError)) throw error;
        warn(`not sent: ${error.message}`);
        invalidInput = true;
      }
    };
    try {
      for await (const chunk of input) {
        rest += text.decode(chunk, { stream: true });
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const line of lines) push(line.replace(/\r$/, ""));
        await conn.flush();
      }
      rest += text.decode();
      if (rest !== "") push(rest.replace(/\r$/, ""));
      await conn.closeWrite();
    } catch (error) {
      warn(`connection lost while sending: ${(error as Error).message}`);
      return "connection-lost";
    } finally {
      inputDone = true;
      inputEnded.abort();
    }
    return undefined;
  })();

  try {
    const sent = await sending;
    if (sent) {
      conn.close();
      await printing;
      return sent;
    }
    const printed = await printing;
    if (printed) return printed;
    if (sawRemoteError) return "remote-error";
    return invalidInput ? "invalid-input" : "ok";
  } finally {
    conn.close();
  }
}

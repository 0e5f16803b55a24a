/**
 * `linesock test -v`: the transcript of each conversation as it runs, on stderr, one line per thing
 * that happened, in the file's own notation (`> PING`, `< PONG`, `alice> JOIN`); `-vv` adds when it
 * happened (since the file began), the sizes, and each step's outcome and time.
 *
 * @example
 * ```ts
 * import { transcriptLine } from "./transcript.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("PONG");
 * const event = { kind: "received", bytes, connection: "main", atMs: 1.5 } as const;
 * assert.equal(transcriptLine("ping.conv", event, false), "linesock: ping.conv: < PONG");
 * assert.equal(
 *   transcriptLine("ping.conv", { ...event, connection: "bob" }, true),
 *   "linesock: ping.conv: bob< PONG  [+1.50 ms, 4 bytes]",
 * );
 * ```
 *
 * @module
 */
import type { ConversationEvent } from "./runner.ts";
import { previewLine, traceMs } from "../_verbosity.ts";
import { escapeControls } from "../../lib/client/_terminal_escape.ts";

/**
 * One transcript line.
 * @param path The conversation file.
 * @param event What happened.
 * @param detailed `-vv`: times, sizes and the steps' outcomes.
 * @returns The line, or `undefined` for what only `-vv` shows.
 */
export function transcriptLine(
  path: string,
  event: ConversationEvent,
  detailed: boolean,
): string | undefined {
  // The file's notation: `> LINE` on the main connection, `alice> LINE` on a named one.
  const name = event.connection === "main" ? "" : event.connection;
  const who = name === "" ? "" : `${name}: `;
  const at = `+${traceMs(event.atMs)}`;
  const head = `linesock: ${path}: `;
  switch (event.kind) {
    case "connected":
      return `${head}${who}connected to ${event.target}` +
        (detailed ? `  [${at}, in ${traceMs(event.connectMs)}]` : "");
    case "sent": {
      // Sizes without the `\n`, as everywhere in the traces.
      return `${head}${name}${event.newline ? ">" : ">raw"} ${previewLine(event.bytes)}` +
        (detailed ? `  [${at}, ${event.bytes.length} bytes]` : "");
    }
    case "received":
      return `${head}${name}< ${previewLine(event.bytes)}` +
        (detailed ? `  [${at}, ${event.bytes.length} bytes]` : "");
    case "halfclosed":
      return `${head}${who}half-closed` + (detailed ? `  [${at}]` : "");
    case "ended":
      return `${head}${who}${event.reason}` + (detailed ? `  [${at}]` : "");
    case "step":
      if (!detailed) return undefined;
      return `linesock: ${path}:${event.step.line}: ${event.passed ? "ok" : "FAILED"} in ${
        traceMs(event.durationMs)
      }: ${escapeControls(event.step.source)}`;
  }
}

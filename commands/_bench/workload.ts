/**
 * What a bench run sends and expects ({@linkcode Workload}: requests with their expected replies,
 * or echo-test's generated lines), and the plan the engine runs it from ({@linkcode planWorkload}):
 * the requests as a cycle each connection walks from its own starting point, and, where the lines
 * are fixed bytes, the tapes that let requests leave and replies be verified a chunk at a time.
 *
 * Three ways to verify, chosen once for the run:
 * - `tape`: every expected line is fixed bytes (an exact line, or the echo of a fixed request);
 *   whole chunks are compared with the expected tape, and only a chunk that differs is walked.
 * - `count`: every expected line is "any line"; replies are only counted (`\n` bytes).
 * - `lines`: anything else (regular expressions, JSON, placeholders, sets); each line is checked.
 *
 * @example PING, expecting PONG: both tapes, verified a chunk at a time
 * ```ts
 * import { planWorkload } from "./workload.ts";
 * import { LineTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = planWorkload({
 *   requests: [{
 *     line: LineTemplate.fromText("PING"),
 *     reply: [{ kind: "exact", line: LineTemplate.fromText("PONG") }],
 *   }],
 *   greeting: [],
 *   crlf: false,
 * }, { connections: 4, overhang: 1024 });
 * assert.equal(plan.verify, "tape");
 * assert.ok(plan.sendTape && plan.expectTape);
 * assert.equal(plan.expectTape.lines.period, 5);
 * ```
 *
 * @module
 */
import { isFixed, type LineCheck, replyLines, type RequestSpec } from "./expectation.ts";
import { PeriodicIndex } from "./periodic_index.ts";
import { buildTape, type Tape, tapeOfLoadTape } from "./tape.ts";
import { LineTemplate } from "./template.ts";
import { buildLoadTape, type LineSizeRange } from "../_echo_test/_load_tape.ts";

/** What a run sends and expects. */
export interface Workload {
  /** The requests, sent round-robin (ignored with `echoSizes`). */
  readonly requests: readonly RequestSpec[];
  /** Lines every new connection receives before it sends (not timed). */
  readonly greeting: readonly LineCheck[];
  /** End requests with `\r\n` and expect replies ending in `\r\n`. */
  readonly crlf: boolean;
  /** Generated random lines of these sizes, each to be echoed exactly (echo-test's load). */
  readonly echoSizes?: LineSizeRange;
}

/** How replies are verified (see the module's notes). */
export type VerifyMode = "tape" | "count" | "lines";

/** A workload ready to run. */
export interface LoadPlan {
  /** Requests per cycle. */
  readonly cycle: number;
  /** The first request (cycle position) of a connection. */
  phase(connection: number): number;
  /** The request at a cycle position (any number: taken modulo the cycle). */
  request(position: number): RequestSpec;
  /** The line ending of requests. */
  readonly terminator: Uint8Array;
  /** The requests with their line endings, when every one is fixed bytes. */
  readonly sendTape: Tape | undefined;
  /** The expected reply lines with their line endings, in `tape` mode. */
  readonly expectTape: Tape | undefined;
  /** Reply lines per request over the cycle; `undefined` when every reply is one line. */
  readonly replyLineIndex: PeriodicIndex | undefined;
  /** How replies are verified. */
  readonly verify: VerifyMode;
  /** Echo-test's generated lines: differences are told by stream byte, lines by byte count. */
  readonly byteAligned: boolean;
  /** What each connection receives first. */
  readonly greeting: readonly LineCheck[];
  /** Strip a `\r` before the `\n` of replies (checks in `lines` mode). */
  readonly crlf: boolean;
  /** The longest request line, its line ending included. */
  readonly longestRequest: number;
}

const LF = new Uint8Array([0x0a]);
const CRLF = new Uint8Array([0x0d, 0x0a]);

/**
 * Plans a workload.
 * @param workload The requests and expected replies.
 * @param sizing `connections` (to spread their starting points) and `overhang` (the longest
 * contiguous slice the engine takes of a tape, besides one line).
 * @returns The plan.
 */
export function planWorkload(
  workload: Workload,
  sizing: { connections: number; overhang: number },
): LoadPlan {
  if (workload.echoSizes) return planEcho(workload, workload.echoSizes, sizing);
  const requests = workload.requests;
  if (requests.length === 0) throw new RangeError("A workload needs at least one request");
  for (const request of requests) {
    if (request.reply.length === 0) throw new RangeError("Every request needs an expected reply");
  }
  const terminator = workload.crlf ? CRLF : LF;
  const cycle = requests.length;
  const allFixedRequests = requests.every((request) => request.line.fixed !== undefined);
  const withEnding = (line: Uint8Array) => concat(line, terminator);
  const requestLines = allFixedRequests
    ? requests.map((request) => withEnding(request.line.fixed!))
    : undefined;
  const longestRequest = Math.max(
    ...requests.map((request) =>
      (request.line.fixed?.length ?? request.line.source.length + 32) + terminator.length
    ),
  );
  const overhang = sizing.overhang + longestRequest;
  const sendTape = requestLines ? buildTape(requestLines, overhang) : undefined;
  const lineCounts = requests.map((request) => replyLines(request.reply));
  const replyLineIndex = lineCounts.every((count) => count === 1)
    ? undefined
    : new PeriodicIndex(lineCounts);
  let verify: VerifyMode = "lines";
  let expectTape: Tape | undefined;
  if (requests.every((request) => request.reply.every((check) => check.kind === "any"))) {
    verify = "count";
  } else if (allFixedRequests && requests.every((request) => request.reply.every(isFixed))) {
    const expected: Uint8Array[] = [];
    for (const request of requests) {
      for (const check of request.reply) {
        expected.push(
          withEnding(check.kind === "exact" ? check.line.fixed! : request.line.fixed!),
        );
      }
    }
    const longestReply = Math.max(...expected.map((line) => line.length));
    expectTape = buildTape(expected, sizing.overhang + longestReply);
    verify = "tape";
  }
  return {
    cycle,
    phase: (connection) => spread(connection, sizing.connections, cycle),
    request: (position) => requests[position % cycle]!,
    terminator,
    sendTape,
    expectTape,
    replyLineIndex,
    verify,
    byteAligned: false,
    greeting: workload.greeting,
    crlf: workload.crlf,
    longestRequest,
  };
}

function planEcho(
  workload: Workload,
  sizes: LineSizeRange,
  sizing: { connections: number; overhang: number },
): LoadPlan {
  const tape = tapeOfLoadTape(
    buildLoadTape(sizes, sizing.connections, sizing.overhang + sizes.max),
  );
  const cycle = tape.lines.items;
  const echo: readonly LineCheck[] = [{ kind: "echo" }];
  return {
    cycle,
    phase: (connection) => spread(connection, sizing.connections, cycle),
    request: (position) => {
      const line = position % cycle;
      const start = tape.lines.starts[line]!;
      // Without its `\n`: the request as a line; the line ending is the plan's terminator.
      const bytes = tape.bytes.slice(start, start + tape.lines.size(line) - 1);
      return { line: new LineTemplate([bytes], ""), reply: echo };
    },
    terminator: LF,
    sendTape: tape,
    expectTape: tape,
    replyLineIndex: undefined,
    verify: "tape",
    byteAligned: true,
    greeting: workload.greeting,
    crlf: false,
    longestRequest: sizes.max,
  };
}

/** Spreads the connections over the cycle, so that no two (of up to `cycle`) share a stream. */
function spread(connection: number, connections: number, cycle: number): number {
  return Math.floor((connection * cycle) / Math.max(1, connections)) % cycle;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

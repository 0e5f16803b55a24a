/**
 * {@linkcode runEchoConformance}: a conformance suite for any line-echo server. Each named case sends
 * exact bytes (one buffer, several buffers plus a remainder, 1 MiB, UTF-8 characters split across
 * buffer boundaries, `\r\n`, one byte at a time, a final line without `\n` before a half-close, many
 * clients at once, …) and checks that exactly those bytes come back. A failure says where: the first
 * differing byte with expected and received values, how much arrived before the connection closed, or
 * how far it got before the per-case timeout.
 *
 * Cases are in two classes. `text` cases use valid UTF-8 only; every echo server must pass them.
 * The `bytes` class (invalid UTF-8) is optional: a server that only handles text may reject such
 * input, so a failure there is reported as `warn` and does not fail the run, unless `strictBytes` is
 * set, which turns it into `fail`.
 *
 * @example Testing linesock's own echo server
 * ```ts
 * import { runEchoConformance } from "./conformance.ts";
 * import { startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const report = await runEchoConformance({
 *   target: echo.target,
 *   cases: ["empty-line", "crlf-preserved", "unterminated-final-line"],
 * });
 * assert.ok(report.passed);
 * assert.deepEqual(report.results.map((result) => result.status), ["pass", "pass", "pass"]);
 * ```
 *
 * @module
 */
import { countNewlines as countAll } from "../../lib/framing/_count_newlines.ts";
import { describeDisconnect } from "../../lib/_disconnect.ts";
import { firstDifference } from "./_byte_compare.ts";
import { invalidUtf8Lines, numberedLines, patternLine, utf8AcrossBoundaries } from "./_payloads.ts";
import { type EchoTarget, openEchoConnection } from "./echo_target.ts";
import type { Transport } from "../../lib/client/transport.ts";

/** The names of the conformance cases, in the order they run. */
export const ECHO_CASE_NAMES = [
  "empty-line",
  "short-line",
  "one-buffer",
  "buffer-multiple",
  "buffers-plus-remainder",
  "one-mebibyte",
  "utf8-across-boundaries",
  "crlf-preserved",
  "invalid-utf8",
  "many-lines-one-write",
  "unterminated-final-line",
  "one-byte-at-a-time",
  "concurrent-clients",
  "reconnect",
] as const;

/** The name of a conformance case. */
export type EchoCaseName = typeof ECHO_CASE_NAMES[number];

/**
 * A case's class: `text` (valid UTF-8; required) or `bytes` (invalid UTF-8; optional unless
 * `strictBytes`).
 */
export type EchoCaseClass = "text" | "bytes";

/** A case as listed by {@linkcode describeEchoCases}. */
export interface EchoCaseInfo {
  /** The case's name. */
  readonly name: EchoCaseName;
  /** Its class. */
  readonly class: EchoCaseClass;
  /** What it sends and checks, in one sentence. */
  readonly description: string;
}

/** Options of {@linkcode runEchoConformance}. */
export interface EchoConformanceOptions {
  /** The server to test. */
  target: EchoTarget;
  /** The buffer size the cases are built around (lines of one buffer, multiples, boundaries). @default {4096} */
  bufferSize?: number;
  /** Each case's time budget in ms (connecting included). @default {5000} */
  timeoutMs?: number;
  /** How many clients `concurrent-clients` opens at once. @default {8} */
  clients?: number;
  /** Only these cases (in suite order). @default {all} */
  cases?: readonly string[];
  /** Leave these cases out. */
  skip?: readonly string[];
  /** Count a failing `bytes` case as a failure (otherwise it is a warning). @default {false} */
  strictBytes?: boolean;
  /** The longest wait for each connection, in ms; 0 for no limit (a case's budget still holds). @default {timeoutMs} */
  connectTimeoutMs?: number;
  /** Give each result its {@linkcode EchoCaseDetail} (`echo-test -v`). @default {false} */
  detail?: boolean;
  /** Called after each case, for live output. */
  onResult?: (result: EchoCaseResult) => void;
}

/** How a case ended: `warn` is a failed `bytes` case that does not fail the run. */
export type EchoCaseStatus = "pass" | "fail" | "warn";

/** The outcome of one case. */
export interface EchoCaseResult {
  /** The case's name. */
  name: EchoCaseName;
  /** Its class. */
  class: EchoCaseClass;
  /** How it ended. */
  status: EchoCaseStatus;
  /** Why it did not pass, in one line; empty when it passed. */
  reason: string;
  /** How long it took, in ms. */
  durationMs: number;
  /** What it did, when asked for ({@linkcode EchoConformanceOptions.detail}). */
  detail?: EchoCaseDetail;
}

/** What a case did: what it checks, and each connection's figures. */
export interface EchoCaseDetail {
  /** What the case sends and checks, in one sentence. */
  description: string;
  /** Each connection it opened, in the order it opened them. */
  connections: EchoConnectionFigures[];
}

/** What went over one connection of a case. */
export interface EchoConnectionFigures {
  /** How long connecting took, in ms (a TLS handshake included). */
  connectMs: number;
  /** Bytes written, and in how many writes. */
  bytesSent: number;
  writes: number;
  /** Bytes read, and in how many reads. */
  bytesReceived: number;
  reads: number;
  /** When the last byte arrived, in ms after the connection was made; `null` when none did. */
  lastByteMs: number | null;
}

/** The outcome of a run. */
export interface EchoConformanceReport {
  /** The results of the selected cases, in suite order. */
  results: EchoCaseResult[];
  /** Whether no selected case failed (warnings allowed). */
  passed: boolean;
}

const MIB = 1024 * 1024;
/** The smallest buffer size the cases can be laid out for. */
export const MIN_BUFFER_SIZE = 64;
const READ_BUFFER_BYTES = 256 * 1024;
const encoder = new TextEncoder();

/** What a case can use while it runs. */
interface CaseContext {
  readonly bufferSize: number;
  readonly clients: number;
  /** Opens a connection that is closed when the case ends (or times out). */
  connect(): Promise<Transport>;
  /** Describes how far the case got, for a timeout message. */
  progress: () => string;
  /** Registers work that must settle before the case is over (a write still in flight). */
  background(work: Promise<unknown>): void;
}

/** A case's body: resolves to `undefined` when it passed, or to the reason it failed. */
type CaseBody = (context: CaseContext) => Promise<string | undefined>;

interface EchoCase extends EchoCaseInfo {
  readonly run: CaseBody;
}

/**
 * Lists the conformance cases.
 * @param bufferSize The buffer size the descriptions refer to.
 * @returns Name, class and description of each case, in suite order.
 * @example Listing
 * ```ts
 * import { describeEchoCases } from "./conformance.ts";
 * import assert from "node:assert/strict";
 *
 * const cases = describeEchoCases();
 * assert.equal(cases[0]?.name, "empty-line");
 * assert.equal(cases.find((c) => c.name === "invalid-utf8")?.class, "bytes");
 * ```
 */
export function describeEchoCases(bufferSize = 4096): EchoCaseInfo[] {
  return buildCases(bufferSize).map(({ name, class: kind, description }) => ({
    name,
    class: kind,
    description,
  }));
}

/**
 * Runs the selected conformance cases one after another against `target`.
 * @param options The target, case selection, sizes and time budget.
 * @returns Each case's result, and whether the run passed.
 * @throws {ConnectError} When the target cannot be reached before the first case.
 * @throws {RangeError} When `cases` or `skip` name an unknown case.
 * @example One case, by name
 * ```ts
 * import { runEchoConformance } from "./conformance.ts";
 * import { startEmbeddedEcho } from "./echo_target.ts";
 * import assert from "node:assert/strict";
 *
 * await using echo = await startEmbeddedEcho();
 * const report = await runEchoConformance({ target: echo.target, cases: ["one-mebibyte"] });
 * assert.equal(report.results[0]?.status, "pass");
 * ```
 */
export async function runEchoConformance(
  options: EchoConformanceOptions,
): Promise<EchoConformanceReport> {
  const bufferSize = options.bufferSize ?? 4096;
  if (!Number.isInteger(bufferSize) || bufferSize < MIN_BUFFER_SIZE) {
    throw new RangeError(
      `The buffer size must be a whole number >= ${MIN_BUFFER_SIZE}, not ${bufferSize}`,
    );
  }
  const selected = selectCases(buildCases(bufferSize), options.cases, options.skip);
  const timeoutMs = options.timeoutMs ?? 5000;
  const connectTimeoutMs = options.connectTimeoutMs ?? timeoutMs;
  // Unreachable servers are an error of the run (exit 3 on the CLI), not a failure of each case.
  (await openEchoConnection(options.target, connectTimeoutMs)).close();
  const results: EchoCaseResult[] = [];
  for (const testCase of selected) {
    const outcome = await runCase(testCase, options, bufferSize, timeoutMs);
    const result: EchoCaseResult = {
      name: testCase.name,
      class: testCase.class,
      status: outcome.reason === undefined
        ? "pass"
        : testCase.class === "bytes" && !options.strictBytes
        ? "warn"
        : "fail",
      reason: outcome.reason ?? "",
      durationMs: Math.round(outcome.durationMs),
      ...(options.detail
        ? { detail: { description: testCase.description, connections: outcome.figures } }
        : {}),
    };
    results.push(result);
    options.onResult?.(result);
  }
  return { results, passed: results.every((result) => result.status !== "fail") };
}

function selectCases(
  all: EchoCase[],
  only: readonly string[] | undefined,
  skip: readonly string[] | undefined,
): EchoCase[] {
  const known = new Set<string>(ECHO_CASE_NAMES);
  for (const name of [...(only ?? []), ...(skip ?? [])]) {
    if (!known.has(name)) {
      throw new RangeError(`Unknown case "${name}"; the cases are: ${ECHO_CASE_NAMES.join(", ")}`);
    }
  }
  return all.filter((testCase) =>
    (only === undefined || only.length === 0 || only.includes(testCase.name)) &&
    !(skip ?? []).includes(testCase.name)
  );
}

async function runCase(
  testCase: EchoCase,
  options: EchoConformanceOptions,
  bufferSize: number,
  timeoutMs: number,
): Promise<{ reason: string | undefined; durationMs: number; figures: EchoConnectionFigures[] }> {
  const started = performance.now();
  const conns = new Set<Transport>();
  const figures: EchoConnectionFigures[] = [];
  const pending: Promise<unknown>[] = [];
  let over = false;
  const context: CaseContext = {
    bufferSize,
    clients: options.clients ?? 8,
    async connect() {
      const connecting = performance.now();
      const opened = await openEchoConnection(
        options.target,
        options.connectTimeoutMs ?? timeoutMs,
      );
      if (over) {
        opened.close();
        throw new Error("the case is over");
      }
      const conn = options.detail
        ? counted(opened, performance.now() - connecting, figures)
        : opened;
      conns.add(conn);
      return conn;
    },
    progress: () => "",
    background(work) {
      pending.push(work);
    },
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = testCase.run(context).catch((error) => describeDisconnect(error));
  const expired = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      const progress = context.progress();
      resolve(`timeout after ${timeoutMs} ms${progress ? `: ${progress}` : ""}`);
    }, timeoutMs);
  });
  const reason = await Promise.race([body, expired]);
  const durationMs = performance.now() - started;
  clearTimeout(timer);
  over = true;
  // Closing the case's connections ends its pending reads and writes, so nothing outlives it.
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // The case closed it already.
    }
  }
  await body;
  await Promise.allSettled(pending);
  return { reason, durationMs, figures };
}

/** A connection that counts what goes over it (`detail`), adding its figures to `all`. */
function counted(conn: Transport, connectMs: number, all: EchoConnectionFigures[]): Transport {
  const opened = performance.now();
  const figures: EchoConnectionFigures = {
    connectMs: Math.round(connectMs * 100) / 100,
    bytesSent: 0,
    writes: 0,
    bytesReceived: 0,
    reads: 0,
    lastByteMs: null,
  };
  all.push(figures);
  return {
    async read(buffer) {
      const count = await conn.read(buffer);
      if (count !== null && count > 0) {
        figures.reads++;
        figures.bytesReceived += count;
        figures.lastByteMs = Math.round((performance.now() - opened) * 100) / 100;
      }
      return count;
    },
    async write(bytes) {
      const count = await conn.write(bytes);
      figures.writes++;
      figures.bytesSent += count;
      return count;
    },
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
  };
}

/** The plan of one exchange on one connection. */
interface Exchange {
  /** What to write, one `write` (or more, for big chunks) per element. */
  writes: Uint8Array[];
  /** The bytes that must come back. */
  expected: Uint8Array;
  /** Half-close after the last write. */
  halfClose?: boolean;
  /** After the expected bytes, require end of input with nothing more. */
  expectEnd?: boolean;
  /** Names the connection in messages (`client 3`). */
  label?: string;
}

/**
 * Writes the plan while reading the echo, comparing each chunk with the expected bytes as it arrives
 * (so a wrong byte fails at once, without waiting for bytes that will never come).
 */
async function exchange(
  context: CaseContext,
  conn: Transport,
  plan: Exchange,
): Promise<string | undefined> {
  const prefix = plan.label ? `${plan.label}: ` : "";
  let writeError: unknown;
  const writing = (async () => {
    for (const chunk of plan.writes) await writeAll(conn, chunk);
    if (plan.halfClose) await conn.closeWrite();
  })().catch((error) => writeError = error);
  context.background(writing);
  const expected = plan.expected;
  const buffer = new Uint8Array(Math.min(READ_BUFFER_BYTES, Math.max(expected.length + 64, 4096)));
  let received = 0;
  context.progress = () => `${prefix}received ${describeProgress(expected, received)}`;
  while (received < expected.length) {
    let count: number | null;
    try {
      count = await conn.read(buffer);
    } catch (error) {
      return `${prefix}${describeDisconnect(error)} after ${describeProgress(expected, received)}`;
    }
    if (count === null) {
      const cause = writeError === undefined
        ? ""
        : ` (write failed: ${describeDisconnect(writeError)})`;
      return `${prefix}connection closed after ${describeProgress(expected, received)}${cause}`;
    }
    const got = buffer.subarray(0, count);
    const want = expected.subarray(received, received + count);
    const at = firstDifference(got, want);
    if (at !== -1) return prefix + describeMismatch(expected, received + at, got[at]!);
    if (count > want.length) {
      return `${prefix}${
        count - want.length
      } unexpected bytes after the expected ${expected.length}: ${
        preview(got.subarray(want.length))
      }`;
    }
    received += count;
  }
  if (plan.expectEnd) {
    context.progress = () => `${prefix}all ${expected.length} bytes echoed; no end of input`;
    let count: number | null;
    try {
      count = await conn.read(buffer);
    } catch (error) {
      return `${prefix}${describeDisconnect(error)} after all ${expected.length} bytes`;
    }
    if (count !== null) {
      return `${prefix}${count} unexpected bytes after the expected ${expected.length}: ${
        preview(buffer.subarray(0, count))
      }`;
    }
  }
  await writing;
  if (writeError !== undefined) return `${prefix}write failed: ${describeDisconnect(writeError)}`;
  return undefined;
}

async function writeAll(conn: Transport, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/** Sends `payload` in one write on a new connection and expects it back. */
async function echoOnce(context: CaseContext, payload: Uint8Array): Promise<string | undefined> {
  const conn = await context.connect();
  return await exchange(context, conn, { writes: [payload], expected: payload });
}

function buildCases(bufferSize: number): EchoCase[] {
  const B = bufferSize;
  const cases: EchoCase[] = [
    {
      name: "empty-line",
      class: "text",
      description: "a line with nothing but its \\n",
      run: (context) => echoOnce(context, encoder.encode("\n")),
    },
    {
      name: "short-line",
      class: "text",
      description: `a line shorter than one buffer (${Math.floor(B / 2)} bytes with its \\n)`,
      run: (context) => echoOnce(context, patternLine(Math.floor(B / 2), 1)),
    },
    {
      name: "one-buffer",
      class: "text",
      description: `a line of exactly one buffer (${B} bytes with its \\n)`,
      run: (context) => echoOnce(context, patternLine(B, 2)),
    },
    {
      name: "buffer-multiple",
      class: "text",
      description: `a line of exactly four buffers (${4 * B} bytes with its \\n)`,
      run: (context) => echoOnce(context, patternLine(4 * B, 3)),
    },
    {
      name: "buffers-plus-remainder",
      class: "text",
      description: `a line of three buffers plus a remainder (${3 * B + Math.floor(B / 3)} bytes)`,
      run: (context) => echoOnce(context, patternLine(3 * B + Math.floor(B / 3), 4)),
    },
    {
      name: "one-mebibyte",
      class: "text",
      description: "a line of 1 MiB (with its \\n), written and echoed at the same time",
      run: (context) => echoOnce(context, patternLine(MIB, 5)),
    },
    {
      name: "utf8-across-boundaries",
      class: "text",
      description:
        "2-, 3- and 4-byte UTF-8 characters split across buffer boundaries, written one buffer per write",
      run: async (context) => {
        const stream = utf8AcrossBoundaries(B);
        const writes: Uint8Array[] = [];
        for (let at = 0; at < stream.length; at += B) writes.push(stream.subarray(at, at + B));
        const conn = await context.connect();
        return await exchange(context, conn, { writes, expected: stream });
      },
    },
    {
      name: "crlf-preserved",
      class: "text",
      description: "lines ending in \\r\\n, an empty \\r\\n line and a \\r inside a line come back",
      run: (context) => echoOnce(context, encoder.encode("first\r\n\r\nin\rside\r\nlast\n")),
    },
    {
      name: "invalid-utf8",
      class: "bytes",
      description: "bytes that are not UTF-8 (0xff, overlong, surrogate, truncated, NUL) come back",
      run: (context) => echoOnce(context, invalidUtf8Lines()),
    },
    {
      name: "many-lines-one-write",
      class: "text",
      description: "1000 numbered lines in one write come back complete and in order",
      run: (context) => echoOnce(context, numberedLines("line", 1000, 7)),
    },
    {
      name: "unterminated-final-line",
      class: "text",
      description: "a last line without \\n, then a half-close: it comes back, then end of input",
      run: async (context) => {
        const payload = encoder.encode("complete line\nfinal line without newline");
        const conn = await context.connect();
        return await exchange(context, conn, {
          writes: [payload],
          expected: payload,
          halfClose: true,
          expectEnd: true,
        });
      },
    },
    {
      name: "one-byte-at-a-time",
      class: "text",
      description: "a line with multi-byte characters, written one byte per write",
      run: async (context) => {
        const payload = encoder.encode(
          "one byte at a time: h\u00e9llo \u20ac\nsecond \u{1F600} line\n",
        );
        const conn = await context.connect();
        const writes = Array.from(payload, (_, i) => payload.subarray(i, i + 1));
        return await exchange(context, conn, { writes, expected: payload });
      },
    },
    {
      name: "concurrent-clients",
      class: "text",
      description:
        "several clients at once, each with its own numbered lines of varied length: no cross-talk",
      run: async (context) => {
        const conns = await Promise.all(
          Array.from({ length: context.clients }, () => context.connect()),
        );
        const progress: (() => string)[] = [];
        context.progress = () => progress.map((describe) => describe()).join("; ");
        const outcomes = conns.map((conn, client) => {
          const payload = numberedLines(`client ${client + 1}`, 40, 100 + client, B);
          const writes: Uint8Array[] = [];
          // Several writes per client, so the clients' data interleaves at the server.
          const step = Math.max(1, Math.ceil(payload.length / 4));
          for (let at = 0; at < payload.length; at += step) {
            writes.push(payload.subarray(at, at + step));
          }
          const own: CaseContext = { ...context, progress: () => "" };
          progress.push(() => own.progress());
          return exchange(own, conn, { writes, expected: payload, label: `client ${client + 1}` });
        });
        // The first client to fail decides; the others are cut off when the case ends.
        const firstFailure = new Promise<string>((resolve) => {
          for (const outcome of outcomes) {
            outcome.then((failure) => failure !== undefined && resolve(failure), () => {});
          }
        });
        const all = Promise.all(outcomes).then((list) => list.find((failure) => failure));
        return await Promise.race([firstFailure, all]);
      },
    },
    {
      name: "reconnect",
      class: "text",
      description: "three connections one after another, each closed by the client after its echo",
      run: async (context) => {
        for (let round = 1; round <= 3; round++) {
          const conn = await context.connect();
          const payload = encoder.encode(`connection ${round}\n`);
          const failure = await exchange(context, conn, {
            writes: [payload],
            expected: payload,
            label: `connection ${round}`,
          });
          if (failure !== undefined) return failure;
          conn.close();
        }
        return undefined;
      },
    },
  ];
  return cases;
}

function countNewlines(bytes: Uint8Array, end: number): number {
  return countAll(bytes.subarray(0, end));
}

/** `14 of 40 bytes`, or `3 of 1000 lines (300 of 100000 bytes)` when several lines are expected. */
function describeProgress(expected: Uint8Array, received: number): string {
  const lines = countNewlines(expected, expected.length);
  const bytes = `${received} of ${expected.length} bytes`;
  if (lines <= 1) return bytes;
  return `${countNewlines(expected, received)} of ${lines} lines (${bytes})`;
}

function describeMismatch(expected: Uint8Array, offset: number, got: number): string {
  const lineStart = offset === 0 ? 0 : expected.lastIndexOf(0x0a, offset - 1) + 1;
  const line = countNewlines(expected, offset) + 1;
  return `byte ${offset} (line ${line}, column ${offset - lineStart + 1}) differs: expected ${
    describeByte(expected[offset]!)
  }, got ${describeByte(got)}`;
}

function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, "0")}`;
  const shown = byte === 0x0a
    ? "\\n"
    : byte === 0x0d
    ? "\\r"
    : byte >= 0x20 && byte < 0x7f
    ? String.fromCharCode(byte)
    : "";
  return shown ? `${hex} "${shown}"` : hex;
}

function preview(bytes: Uint8Array): string {
  const text = JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 24)));
  return bytes.length > 24 ? `${text}…` : text;
}

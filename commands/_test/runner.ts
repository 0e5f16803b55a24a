/**
 * Runs a conversation (commands/_test/conversation.ts) against a server: each step in file order,
 * each named connection opened on first use, every expectation bounded by the step timeout. The
 * result names the failing step, what was expected and what arrived, so that a report can show a
 * diff; in update mode, mismatches are collected instead, to rewrite the file.
 *
 * @module
 */
import {
  describeTransportTarget,
  openTransport,
  type Transport,
  type TransportOptions,
} from "../../lib/client/transport.ts";
import { LineFramer } from "../../lib/framing/line_framer.ts";
import {
  type Conversation,
  expand,
  jsonContains,
  type PlacedStep,
  type Step,
} from "./conversation.ts";

/** How a conversation went. */
export interface ConversationResult {
  /** The file. */
  readonly path: string;
  /** Whether every step held. */
  readonly passed: boolean;
  /** How many steps ran (the failing one included). */
  readonly stepsRun: number;
  /** Every step in the file. */
  readonly steps: number;
  /** How long it took. */
  readonly durationMs: number;
  /** The first step that failed. */
  readonly failure?: StepFailure;
  /** Update mode: each expectation that did not hold, with the lines that arrived instead. */
  readonly updates: readonly { line: number; received: string[] }[];
}

/** A step that did not hold. */
export interface StepFailure {
  /** Its line in the file. */
  readonly line: number;
  /** The step as written. */
  readonly source: string;
  /** What went wrong, in a sentence. */
  readonly message: string;
  /** The lines expected (for a diff; empty when none applies). */
  readonly expected: readonly string[];
  /** The lines that arrived instead. */
  readonly received: readonly string[];
  /** How long the step waited. */
  readonly waitedMs: number;
}

/** Options of {@linkcode runConversation}. */
export interface RunOptions {
  /** Where every connection goes. */
  readonly target: TransportOptions;
  /** How long each expectation may wait, unless the file says otherwise. @default {5000} */
  readonly timeoutMs?: number;
  /** Longest line accepted from the server. @default {1048576} */
  readonly maxLineBytes?: number;
  /** Go on past mismatches and report them as updates. */
  readonly update?: boolean;
  /** Told what happens as it happens (`linesock test -v`: the transcript). */
  readonly trace?: (event: ConversationEvent) => void;
}

/**
 * What happens during a conversation, for a transcript: on connection `connection` (`main` unless
 * the file names one), at `atMs` since the conversation began.
 */
export type ConversationEvent =
  & { readonly connection: string; readonly atMs: number }
  & Happening;

/** What happened, in a {@linkcode ConversationEvent}. */
export type Happening =
  | { readonly kind: "connected"; readonly target: string; readonly connectMs: number }
  /** A `>` step's bytes (without the `\n` it adds, when it adds one). */
  | { readonly kind: "sent"; readonly bytes: Uint8Array; readonly newline: boolean }
  /** A line from the server (without its `\n`), as it arrives. */
  | { readonly kind: "received"; readonly bytes: Uint8Array }
  | { readonly kind: "halfclosed" }
  | { readonly kind: "ended"; readonly reason: string }
  /** A step done: whether it held, and how long it took. */
  | {
    readonly kind: "step";
    readonly step: PlacedStep;
    readonly passed: boolean;
    readonly durationMs: number;
  };

const decoder = new TextDecoder();

/** Tells the transcript about one connection (nothing without one). */
type PeerTrace = ((happening: Happening) => void) | undefined;

/** A connection of the conversation: lines as they arrive, and the end. */
class Peer {
  readonly lines: Uint8Array[] = [];
  ended = false;
  error: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #transport: Transport;
  readonly #reading: Promise<void>;
  readonly #trace: PeerTrace;
  /** The conversation closes it: its end is not the server's doing. */
  #closing = false;

  constructor(transport: Transport, maxLineBytes: number, trace?: PeerTrace) {
    this.#transport = transport;
    this.#trace = trace;
    const framer = new LineFramer({ maxLineBytes, stripCR: false, emitUnterminated: true }, {
      onLine: (bytes: Uint8Array) => {
        const line = bytes.slice();
        this.lines.push(line);
        trace?.({ kind: "received", bytes: line });
        this.#notify();
      },
      onTooLong: () => {
        this.error = new Error(`a line longer than ${maxLineBytes} bytes arrived`);
        this.#notify();
      },
    });
    this.#reading = (async () => {
      const buffer = new Uint8Array(64 * 1024);
      try {
        for (let count; (count = await transport.read(buffer)) !== null;) {
          framer.push(buffer.subarray(0, count));
        }
        framer.end();
      } catch (error) {
        this.error = error as Error;
      }
      this.ended = true;
      trace?.({
        kind: "ended",
        reason: this.#closing
          ? "closed (the conversation is over)"
          : this.error
          ? `failed: ${this.error.message}`
          : "closed by the server",
      });
      this.#notify();
    })();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits until a line or the end arrives, at most `ms`; returns whether anything changed. */
  async waitForChange(ms: number): Promise<boolean> {
    if (this.lines.length > 0 || this.ended) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const changed = await Promise.race([
      new Promise<boolean>((resolve) => this.#wake = () => resolve(true)),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
    clearTimeout(timer);
    this.#wake = undefined;
    return changed;
  }

  async write(bytes: Uint8Array, newline: boolean): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.#transport.write(bytes.subarray(offset));
    }
    this.#trace?.({ kind: "sent", bytes: newline ? bytes.subarray(0, -1) : bytes, newline });
  }

  async halfClose(): Promise<void> {
    await this.#transport.closeWrite();
    this.#trace?.({ kind: "halfclosed" });
  }

  async close(): Promise<void> {
    this.#closing = true;
    try {
      this.#transport.close();
    } catch {
      // Closed already.
    }
    await this.#reading;
  }
}

/**
 * Runs one conversation.
 * @param conversation The parsed file.
 * @param options Where, and how long to wait.
 * @returns How it went (never throws for a server's doing: that is a failed step).
 */
export async function runConversation(
  conversation: Conversation,
  options: RunOptions,
): Promise<ConversationResult> {
  const started = performance.now();
  const trace = options.trace;
  const traceOf = (connection: string): PeerTrace =>
    trace &&
    ((happening) => trace({ ...happening, connection, atMs: performance.now() - started }));
  const peers = new Map<string, Peer>();
  const captures = new Map<string, string>();
  const updates: { line: number; received: string[] }[] = [];
  let timeoutMs = options.timeoutMs ?? 5000;
  let stepsRun = 0;
  let failure: StepFailure | undefined;
  const finish = (): ConversationResult => ({
    path: conversation.path,
    passed: failure === undefined && updates.length === 0,
    stepsRun,
    steps: conversation.steps.length,
    durationMs: performance.now() - started,
    ...(failure ? { failure } : {}),
    updates,
  });
  try {
    for (const placed of conversation.steps) {
      stepsRun++;
      const stepStarted = performance.now();
      const fail = (message: string, expected: string[], received: string[]): StepFailure => ({
        line: placed.line,
        source: placed.source,
        message,
        expected,
        received,
        waitedMs: performance.now() - stepStarted,
      });
      if (placed.step.kind === "timeout") {
        timeoutMs = placed.step.ms;
        continue;
      }
      if (placed.step.kind === "pause") {
        await new Promise((resolve) => setTimeout(resolve, (placed.step as { ms: number }).ms));
        continue;
      }
      let peer = peers.get(placed.connection);
      if (peer === undefined) {
        const connectStarted = performance.now();
        let transport: Transport;
        try {
          transport = await openTransport(options.target);
        } catch (error) {
          failure = fail(`cannot connect: ${(error as Error).message}`, [], []);
          return finish();
        }
        const peerTrace = traceOf(placed.connection);
        peerTrace?.({
          kind: "connected",
          target: describeTransportTarget(options.target),
          connectMs: performance.now() - connectStarted,
        });
        peer = new Peer(transport, options.maxLineBytes ?? 1048576, peerTrace);
        peers.set(placed.connection, peer);
      }
      const outcome = await runStep(placed, peer, captures, timeoutMs);
      traceOf(placed.connection)?.({
        kind: "step",
        step: placed,
        passed: outcome === undefined,
        durationMs: performance.now() - stepStarted,
      });
      if (outcome === undefined) continue;
      if (options.update && outcome.updatable) {
        updates.push({ line: placed.line, received: outcome.received });
        continue;
      }
      failure = fail(outcome.message, outcome.expected, outcome.received);
      return finish();
    }
    return finish();
  } finally {
    await Promise.all([...peers.values()].map((peer) => peer.close()));
  }
}

interface Mismatch {
  message: string;
  expected: string[];
  received: string[];
  /** Whether `--update` may write what arrived in place of the step. */
  updatable: boolean;
}

/** Takes the next `count` lines (waiting for each at most `ms`), or fewer at the end or timeout. */
async function take(peer: Peer, count: number, ms: number): Promise<Uint8Array[]> {
  const lines: Uint8Array[] = [];
  const deadline = performance.now() + ms;
  while (lines.length < count) {
    if (peer.lines.length > 0) {
      lines.push(peer.lines.shift()!);
      continue;
    }
    if (peer.ended || peer.error) break;
    const left = deadline - performance.now();
    if (left <= 0 || !(await peer.waitForChange(left))) break;
  }
  return lines;
}

function shortfall(peer: Peer, ms: number): string {
  if (peer.error) return `the connection failed: ${peer.error.message}`;
  return peer.ended ? "the server closed the connection" : `no line within ${ms} ms`;
}

async function runStep(
  placed: PlacedStep,
  peer: Peer,
  captures: Map<string, string>,
  ms: number,
): Promise<Mismatch | undefined> {
  const step: Step = placed.step;
  switch (step.kind) {
    case "send": {
      let bytes: Uint8Array;
      try {
        bytes = expand(step.text, captures);
      } catch (error) {
        return { message: (error as Error).message, expected: [], received: [], updatable: false };
      }
      try {
        await peer.write(step.newline ? concat(bytes, NEWLINE) : bytes, step.newline);
      } catch (error) {
        return {
          message: `cannot send: ${(error as Error).message}`,
          expected: [],
          received: [],
          updatable: false,
        };
      }
      return undefined;
    }
    case "halfclose":
      await peer.halfClose().catch(() => {});
      return undefined;
    case "expect":
    case "regex":
    case "json": {
      const [line] = await take(peer, 1, ms);
      const expected = step.kind === "expect"
        ? decoder.decode(expandOrRaw(step.text, captures))
        : step.source;
      if (line === undefined) {
        return {
          message: shortfall(peer, ms),
          expected: [expected],
          received: [],
          updatable: true,
        };
      }
      const text = decoder.decode(line);
      if (matches(step, line, text, captures)) return undefined;
      return {
        message: "a different line arrived",
        expected: [expected],
        received: [text],
        updatable: true,
      };
    }
    case "any": {
      const lines = await take(peer, step.count, ms);
      if (lines.length === step.count) return undefined;
      return {
        message: `${shortfall(peer, ms)} after ${lines.length} of ${step.count} lines`,
        expected: Array.from({ length: step.count }, () => "(any line)"),
        received: lines.map((line) => decoder.decode(line)),
        updatable: false,
      };
    }
    case "set": {
      const lines = (await take(peer, step.lines.length, ms)).map((line) => decoder.decode(line));
      const wanted = step.lines.map((line) => decoder.decode(expandOrRaw(line, captures)));
      const sorted = (list: string[]) => [...list].sort();
      if (JSON.stringify(sorted(lines)) === JSON.stringify(sorted(wanted))) return undefined;
      return {
        message: lines.length < wanted.length
          ? `${shortfall(peer, ms)} after ${lines.length} of ${wanted.length} lines`
          : "the lines that arrived are not the set expected (in any order)",
        expected: wanted,
        received: lines,
        updatable: true,
      };
    }
    case "silence": {
      const [line] = await take(peer, 1, step.ms);
      if (line === undefined && !peer.error) return undefined;
      return {
        message: line === undefined
          ? `the connection failed during the silence: ${peer.error?.message}`
          : `a line arrived within ${step.ms} ms of silence`,
        expected: [],
        received: line === undefined ? [] : [decoder.decode(line)],
        updatable: false,
      };
    }
    case "closed": {
      const [line] = await take(peer, 1, ms);
      if (line === undefined && peer.ended) return undefined;
      return {
        message: line === undefined
          ? `the server did not close within ${ms} ms`
          : "a line arrived where the server should have closed",
        expected: ["(the server closes)"],
        received: line === undefined ? [] : [decoder.decode(line)],
        updatable: false,
      };
    }
    default:
      return undefined;
  }
}

function matches(
  step: Extract<Step, { kind: "expect" | "regex" | "json" }>,
  line: Uint8Array,
  text: string,
  captures: Map<string, string>,
): boolean {
  if (step.kind === "expect") return equalBytes(line, expandOrRaw(step.text, captures));
  if (step.kind === "regex") {
    const match = step.pattern.exec(text);
    if (!match) return false;
    for (const [name, value] of Object.entries(match.groups ?? {})) {
      if (value !== undefined) captures.set(name, value);
    }
    return true;
  }
  try {
    return jsonContains(JSON.parse(text), step.subset);
  } catch {
    return false;
  }
}

/** The expected line as bytes; a `${name}` not captured yet stays as written. */
function expandOrRaw(text: string, captures: Map<string, string>): Uint8Array {
  try {
    return expand(text, captures);
  } catch {
    return new TextEncoder().encode(text);
  }
}

const NEWLINE = new Uint8Array([0x0a]);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/**
 * What `-q` and `-v`/`-vv` mean in the client subcommands (docs/cli.md, "Saying less or more"):
 * {@linkcode verbosityOf} reads the flags into one number, and {@linkcode WireTrace} is `-vv` of
 * `send` and the piped `repl`: each line sent and each reply received, on stderr, with its time and
 * size (and, where the reply is known to answer a line, its round-trip time).
 *
 * Nothing here runs unless asked: without `-vv` no trace is made and the exchange gets no hooks.
 *
 * @example A lockstep exchange, traced
 * ```ts
 * import { WireTrace } from "./_verbosity.ts";
 * import assert from "node:assert/strict";
 *
 * const shown: string[] = [];
 * const trace = new WireTrace({ lockstep: true, write: (line) => shown.push(line) });
 * const encoder = new TextEncoder();
 * trace.sent(encoder.encode("PING\nPI"));
 * trace.sent(encoder.encode("NG\n"));
 * trace.received(encoder.encode("PONG"));
 * assert.equal(shown.length, 3);
 * assert.match(shown[0]!, /^linesock: > PING  \[\+\d+\.\d\d ms, 4 bytes\]$/);
 * assert.match(shown[1]!, /^linesock: > PING  /);
 * assert.match(shown[2]!, /^linesock: < PONG  \[\+\d+\.\d\d ms, 4 bytes, rtt \d+\.\d\d ms\]$/);
 * ```
 *
 * @module
 */
import { escapeControls } from "../lib/client/_terminal_escape.ts";
import type { Reply } from "../lib/client/conversation.ts";

/** `-q`: errors only. */
export const QUIET = -1;
/** Neither `-q` nor `-v`. */
export const NORMAL = 0;
/** `-v`. */
export const VERBOSE = 1;
/** `-vv` (and more `v`s). */
export const TRACE = 2;

/**
 * The verbosity the flags ask for: `-q` wins over `-v` (as in `serve` and `bench`).
 * @param flags The parsed `quiet` and `verbose` (a count; `true` is one).
 * @returns {@linkcode QUIET}, {@linkcode NORMAL}, {@linkcode VERBOSE} or {@linkcode TRACE}.
 * @example
 * ```ts
 * import { QUIET, TRACE, verbosityOf } from "./_verbosity.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(verbosityOf({ quiet: true, verbose: 2 }), QUIET);
 * assert.equal(verbosityOf({ verbose: 3 }), TRACE);
 * assert.equal(verbosityOf({}), 0);
 * ```
 */
export function verbosityOf(flags: { quiet?: boolean; verbose?: number | boolean }): number {
  if (flags.quiet) return QUIET;
  return Math.min(TRACE, Number(flags.verbose ?? 0));
}

/**
 * A duration as the traces show it: `0.42 ms`, `1234.50 ms`.
 * @param ms Milliseconds.
 * @returns The text.
 */
export function traceMs(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

/** The most of a line a trace shows; the rest is counted. */
export const PREVIEW_CHARACTERS = 200;

const lenient = new TextDecoder();

/**
 * A line from the wire as a trace shows it: decoded (bad UTF-8 replaced), control characters
 * escaped (`\x1b`, so the terminal is safe whatever the peer sent), cut after
 * {@linkcode PREVIEW_CHARACTERS} characters.
 * @param bytes The line without its `\n`.
 * @returns The text.
 */
export function previewLine(bytes: Uint8Array): string {
  // Enough bytes for the characters shown: decoding a 50 MB line to show 200 characters is waste.
  const head = bytes.length > PREVIEW_CHARACTERS * 4
    ? bytes.subarray(0, PREVIEW_CHARACTERS * 4)
    : bytes;
  const text = lenient.decode(head);
  const cut = text.length > PREVIEW_CHARACTERS || head !== bytes;
  return escapeControls(text.slice(0, PREVIEW_CHARACTERS)) + (cut ? "…" : "");
}

/** Options of {@linkcode WireTrace}. */
export interface WireTraceOptions {
  /**
   * Lockstep (`--replies`, `--protocol json`): one line at a time, so the first reply after a line
   * answers it and shows its round-trip time. In stream mode replies show no round-trip time.
   */
  lockstep?: boolean;
  /** Where each trace line goes. @default {a line on stderr} */
  write?: (line: string) => void;
}

/**
 * `-vv` of a scripted client: each line sent (`> LINE`) and each reply (`< LINE`) on stderr, with
 * the time since the connection was made, its size (without the `\n`, as `send --json` counts),
 * and for the first reply to a
 * lockstep line its round-trip time.
 */
export class WireTrace {
  readonly #lockstep: boolean;
  readonly #write: (line: string) => void;
  #start = performance.now();
  /** The start of a line sent in pieces (at most what the preview shows), and its size so far. */
  #partial: Uint8Array[] = [];
  #partialKept = 0;
  #partialBytes = 0;
  /** When the last whole line went out, until its first reply (lockstep). */
  #awaitingSince: number | undefined;

  /** @param options Lockstep or stream, and where the lines go. */
  constructor(options: WireTraceOptions = {}) {
    this.#lockstep = options.lockstep ?? false;
    this.#write = options.write ?? ((line) => console.error(line));
  }

  /** Times from now on count from here (the connection was made). */
  connected(): void {
    this.#start = performance.now();
  }

  /**
   * Bytes handed to the connection: each line they finish is shown (a chunk may hold many lines,
   * or part of one).
   * @param bytes What was sent.
   */
  sent(bytes: Uint8Array): void {
    let from = 0;
    for (let newline; (newline = bytes.indexOf(0x0a, from)) !== -1; from = newline + 1) {
      this.#keep(bytes.subarray(from, newline));
      this.#line(">", this.#takePartial(), this.#partialBytes, undefined);
      this.#partialBytes = 0;
      this.#awaitingSince = performance.now();
    }
    if (from < bytes.length) this.#keep(bytes.subarray(from));
  }

  /**
   * A reply received.
   * @param bytes The reply without its `\n`.
   * @param note Instead of the line, what became of it (a reply over `--max-line`).
   */
  received(bytes: Uint8Array, note?: string): void {
    const since = this.#awaitingSince;
    this.#awaitingSince = undefined;
    const rtt = this.#lockstep && since !== undefined ? performance.now() - since : undefined;
    this.#line(
      "<",
      note ?? previewLine(bytes),
      note === undefined ? bytes.length : undefined,
      rtt,
    );
  }

  /** The sending side was half-closed (end of input). */
  halfClosed(): void {
    this.#write(`linesock: half-closed (end of input)  [+${traceMs(this.#elapsed())}]`);
  }

  #elapsed(): number {
    return performance.now() - this.#start;
  }

  #line(
    direction: string,
    text: string,
    bytes: number | undefined,
    rttMs: number | undefined,
  ): void {
    const size = bytes === undefined ? "" : `, ${bytes} bytes`;
    const rtt = rttMs === undefined ? "" : `, rtt ${traceMs(rttMs)}`;
    this.#write(
      `linesock: ${direction} ${text}  [+${traceMs(this.#elapsed())}${size}${rtt}]`,
    );
  }

  /** Keeps the start of a line sent in pieces, up to what the preview shows. */
  #keep(piece: Uint8Array): void {
    this.#partialBytes += piece.length;
    const room = PREVIEW_CHARACTERS * 4 + 1 - this.#partialKept;
    if (room <= 0 || piece.length === 0) return;
    const kept = piece.slice(0, room);
    this.#partial.push(kept);
    this.#partialKept += kept.length;
  }

  #takePartial(): string {
    const whole = new Uint8Array(this.#partialKept);
    let at = 0;
    for (const piece of this.#partial) {
      whole.set(piece, at);
      at += piece.length;
    }
    this.#partial = [];
    this.#partialKept = 0;
    return previewLine(whole);
  }
}

/** What watches an exchange's bytes: a trace (`-vv`) or a conversation recorder (`--record`). */
export interface ExchangeWatcher {
  /** Bytes handed to the connection. */
  sent(bytes: Uint8Array): void;
  /** A reply line; `note` says what became of one over the line limit. */
  received(bytes: Uint8Array, note?: string): void;
  /** The client half-closed. */
  halfClosed(): void;
}

/**
 * The exchange hooks (`onSent`, `onReply`, `onHalfClose`) that feed each watcher given, in order;
 * none at all when there is no watcher, so an unwatched exchange pays nothing per line.
 * @param watchers The watchers (absent ones skipped).
 * @param tooLongNote What to say of a reply over the line limit.
 * @returns The hooks to spread into the exchange's options.
 */
export function exchangeHooks(
  watchers: readonly (ExchangeWatcher | undefined)[],
  tooLongNote: (reply: Reply) => string | undefined,
): {
  onSent?: (bytes: Uint8Array) => void;
  onReply?: (reply: Reply) => void;
  onHalfClose?: () => void;
} {
  const present = watchers.filter((watcher) => watcher !== undefined);
  if (present.length === 0) return {};
  return {
    onSent: (bytes) => {
      for (const watcher of present) watcher.sent(bytes);
    },
    onReply: (reply) => {
      const note = tooLongNote(reply);
      for (const watcher of present) watcher.received(reply.bytes, note);
    },
    onHalfClose: () => {
      for (const watcher of present) watcher.halfClosed();
    },
  };
}

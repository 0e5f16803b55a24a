/**
 * Internal: {@linkcode ExecSession}, the program of one `execProtocol` connection, between its
 * pipes and the connection: lines in to its stdin, its stdout lines out, its stderr to the log,
 * both directions paused by backpressure, the half-closes passed on, and its end (exit, timeout,
 * an over-long line, the client gone) turned into one close of the connection and one kill of its
 * process group.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { LineFramer } from "../framing/line_framer.ts";
import type { ConnectionContext } from "../server/connection_context.ts";
import type { ExecSlot } from "../routes/program_runner.ts";
import { killGroup, killProcessGroup } from "../routes/_program_process.ts";
import { escapeControls } from "../_control_escape.ts";

const logger = getLogger(["linesock", "exec"]);

/** Output queued for the client beyond which the program's stdout is not read (it then blocks). */
const OUTPUT_HIGH_WATER = 64 * 1024;
/** Input the program has not taken beyond which the connection is not read. */
const INPUT_HIGH_WATER = 64 * 1024;
/** A stderr line is logged up to this many bytes; a longer one is reported, not logged. */
const STDERR_LINE_BYTES = 4096;
/** Stderr logged per connection; beyond it stderr is read and dropped (one line says so). */
const STDERR_LOG_BYTES = 64 * 1024;
/** How long the close waits for the exit status once stdout has ended, to name it in the log. */
const EXIT_WAIT_MS = 1000;
const LF = 0x0a;

/** The limits of a connection's program. */
export interface ExecLimits {
  /** Kill the program after this long (`Infinity`: never). */
  readonly timeoutMs: number;
  /** The longest output line sent on; a longer one kills the program. */
  readonly maxLineBytes: number;
  /**
   * While the connection waits on the program (the client has half-closed, or the program is not
   * taking its input), end it and kill the program after this long with no bytes either way; 0:
   * never. (The rest of the time the server's own idle timeout watches the connection.)
   */
  readonly idleTimeoutMs: number;
}

/** One connection's running program. */
export class ExecSession {
  /** Settles once the program's output has been sent and the connection's close asked for. */
  readonly done: Promise<void>;
  readonly #argv: readonly string[];
  readonly #child: Deno.ChildProcess;
  readonly #context: ConnectionContext;
  readonly #limits: ExecLimits;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: ReadableStreamDefaultReader<Uint8Array>;
  readonly #stderr: ReadableStreamDefaultReader<Uint8Array>;
  readonly #status: Promise<Deno.CommandStatus>;
  #exited = false;
  /** Why the program was stopped by us (a line for the client), if it was. */
  #failure: string | undefined;
  /** The connection is gone: nothing more to send. */
  #aborted = false;
  #resolveAborted!: () => void;
  readonly #abortedPromise = new Promise<void>((resolve) => this.#resolveAborted = resolve);
  #timer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** When bytes last moved: a line from the client, or output from the program. */
  #lastActivity = performance.now();
  /** The latest send's promise: it settles once everything queued so far is with the socket. */
  #lastSend: Promise<void> | undefined;
  // Input: lines copied here until the stdin writer takes them.
  #input: Uint8Array[] = [];
  /** Input bytes not yet taken by the pipe (queued and in the write under way). */
  #inputBytes = 0;
  #writing = false;
  #inputEnded = false;
  #stdinClosed = false;
  #inputWaiters: (() => void)[] = [];

  /**
   * Takes charge of a started program for a connection.
   * @param argv What runs (for the log).
   * @param child The program, started with its streams piped.
   * @param context Its connection.
   * @param slot Its `--max-exec` slot, released when it has exited.
   * @param limits Its timeout and output line limit.
   */
  constructor(
    argv: readonly string[],
    child: Deno.ChildProcess,
    context: ConnectionContext,
    slot: ExecSlot,
    limits: ExecLimits,
  ) {
    this.#argv = argv;
    this.#child = child;
    this.#context = context;
    this.#limits = limits;
    this.#stdin = child.stdin.getWriter();
    this.#stdout = child.stdout.getReader();
    this.#stderr = child.stderr.getReader();
    this.#status = child.status.then((status) => this.#onExit(status, slot));
    logger.info("Connection {id} from {peer}: started {program} (pid {pid})", {
      id: context.id,
      peer: context.peer,
      program: argv[0],
      pid: child.pid,
    });
    if (Number.isFinite(limits.timeoutMs)) {
      this.#timer = setTimeout(
        () => this.#fail(`program timed out after ${limits.timeoutMs} ms`),
        limits.timeoutMs,
      );
    }
    if (limits.idleTimeoutMs > 0) this.#watchIdleness(limits.idleTimeoutMs);
    const signal = context.signal;
    signal.addEventListener("abort", () => this.#abort(), { once: true });
    if (signal.aborted) this.#abort();
    void this.#pumpStderr();
    this.done = this.#pumpOutput();
  }

  /**
   * Passes one line (and its `\n`) to the program's stdin.
   * @param line The line's bytes (only valid during the call: copied).
   * @returns A promise when the program has not taken enough of its input yet (the connection is
   * then not read until it settles), else nothing.
   */
  write(line: Uint8Array): Promise<void> | undefined {
    if (this.#stdinClosed) return undefined;
    this.#lastActivity = performance.now();
    const chunk = new Uint8Array(line.length + 1);
    chunk.set(line);
    chunk[line.length] = LF;
    this.#input.push(chunk);
    this.#inputBytes += chunk.length;
    if (!this.#writing) void this.#pumpInput();
    if (this.#inputBytes <= INPUT_HIGH_WATER) return undefined;
    return new Promise((resolve) => this.#inputWaiters.push(resolve));
  }

  /**
   * The client half-closed: once its input is written, the program's stdin is closed.
   * @returns {@linkcode ExecSession.done}: the program's output is then sent on until it ends.
   */
  endInput(): Promise<void> {
    this.#inputEnded = true;
    if (!this.#writing) this.#closeStdin();
    return this.done;
  }

  async #pumpInput(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#input.length > 0 && !this.#stdinClosed) {
        const batch = join(this.#input);
        this.#input = [];
        await this.#stdin.write(batch);
        if (this.#stdinClosed) break;
        this.#inputBytes -= batch.length;
        if (this.#inputBytes <= INPUT_HIGH_WATER) this.#wakeInput();
      }
    } catch {
      // BrokenPipe: the program closed its stdin or ended; what it did not take is dropped.
      this.#closeStdin();
    } finally {
      this.#writing = false;
    }
    if (this.#inputEnded) this.#closeStdin();
  }

  /** No more input reaches the program: its stdin is closed (it reads end of input). */
  #closeStdin(): void {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    this.#input = [];
    this.#inputBytes = 0;
    this.#wakeInput();
    this.#stdin.close().catch(() => {});
  }

  #wakeInput(): void {
    const waiters = this.#inputWaiters;
    this.#inputWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Sends the program's stdout lines to the client until it ends (or is stopped), then the reason
   * we stopped it, if we did, and asks for the connection's close.
   */
  async #pumpOutput(): Promise<void> {
    const framer = new LineFramer({ maxLineBytes: this.#limits.maxLineBytes, stripCR: false }, {
      onLine: (bytes) => {
        if (this.#failure === undefined && !this.#aborted) this.#send(bytes);
      },
      onTooLong: (error) => this.#fail(`program output line too long (limit ${error.limit} bytes)`),
    });
    try {
      for (;;) {
        const { value, done } = await this.#stdout.read();
        if (done || this.#aborted || this.#failure !== undefined) break;
        this.#lastActivity = performance.now();
        framer.push(value);
        // The client reads slower than the program writes: stop reading its stdout (the pipe
        // fills and the program blocks in its write) until what is queued has left.
        if (this.#context.queuedBytes > OUTPUT_HIGH_WATER && this.#lastSend !== undefined) {
          await Promise.race([this.#lastSend.catch(() => {}), this.#abortedPromise]);
        }
      }
      // A last line without `\n` is sent with one.
      if (!this.#aborted && this.#failure === undefined) framer.end();
    } catch {
      // Cancelled: the program was stopped.
    }
    this.#closeStdin();
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    if (this.#aborted) return;
    if (this.#failure !== undefined) {
      this.#context.countError();
      this.#send(`ERR ${this.#failure}`);
    }
    if (this.#lastSend !== undefined) {
      await Promise.race([this.#lastSend.catch(() => {}), this.#abortedPromise]);
    }
    this.#context.close(this.#failure ?? await this.#endReason());
  }

  /** Why the connection closes after the program's output ended: its exit, if it came soon. */
  async #endReason(): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.#status,
      new Promise<undefined>((resolve) =>
        timer = setTimeout(() => resolve(undefined), EXIT_WAIT_MS)
      ),
      this.#abortedPromise.then(() => undefined),
    ]);
    clearTimeout(timer);
    return status === undefined ? "program closed its output" : `program ${describeExit(status)}`;
  }

  /**
   * Ends the connection when it has waited on the program for `idleMs` with no bytes either way.
   * The server's idle timeout does not see such a connection (it is busy in its handler), so a
   * client that half-closed, or filled a program that does not read, would hold a `--max-exec`
   * slot until the program's timeout. One timer, moved on only when it fires.
   */
  #watchIdleness(idleMs: number): void {
    const check = () => {
      const waiting = this.#inputEnded || this.#inputWaiters.length > 0;
      const idleFor = performance.now() - this.#lastActivity;
      if (waiting && idleFor >= idleMs) {
        this.#fail(`idle timeout (nothing sent either way for ${idleMs} ms)`);
        return;
      }
      this.#idleTimer = setTimeout(check, waiting ? idleMs - idleFor : idleMs);
    };
    this.#idleTimer = setTimeout(check, idleMs);
  }

  /** Queues a line for the client; a failed send means the client is gone. */
  #send(line: Uint8Array | string): void {
    const sent = this.#context.send(line);
    if (sent === this.#lastSend) return;
    this.#lastSend = sent;
    sent.catch(() => {
      if (this.#aborted) return;
      // The socket failed: stop the program and let the connection end.
      this.#abort();
      this.#context.close("client gone");
    });
  }

  /** Logs the program's stderr, bounded per connection, as lines prefixed with the connection. */
  async #pumpStderr(): Promise<void> {
    const { id, peer } = this.#context;
    const decoder = new TextDecoder();
    let logged = 0;
    let budgetSpent = false;
    const spend = (bytes: number): boolean => {
      if (logged + bytes <= STDERR_LOG_BYTES) {
        logged += bytes;
        return true;
      }
      if (!budgetSpent) {
        budgetSpent = true;
        logger.warn(
          "Connection {id} from {peer}: program stderr beyond {limit} bytes is not logged",
          { id, peer, limit: STDERR_LOG_BYTES },
        );
      }
      return false;
    };
    const framer = new LineFramer({ maxLineBytes: STDERR_LINE_BYTES }, {
      onLine: (bytes) => {
        if (!spend(bytes.length + 1)) return;
        logger.warn("Connection {id} from {peer}: program stderr: {line}", {
          id,
          peer,
          line: escapeControls(decoder.decode(bytes)),
        });
      },
      onTooLong: () => {
        if (!spend(STDERR_LINE_BYTES)) return;
        logger.warn(
          "Connection {id} from {peer}: program stderr: a line longer than {limit} bytes (not logged)",
          { id, peer, limit: STDERR_LINE_BYTES },
        );
      },
    });
    try {
      for (;;) {
        const { value, done } = await this.#stderr.read();
        if (done) break;
        framer.push(value);
      }
      framer.end();
    } catch {
      // Cancelled: the connection is gone.
    }
  }

  /** Stops the program for a reason the client is told (a timeout, an over-long line). */
  #fail(message: string): void {
    if (this.#failure !== undefined || this.#aborted) return;
    this.#failure = message;
    logger.warn("Connection {id} from {peer}: {reason}: killing {program} (pid {pid})", {
      id: this.#context.id,
      peer: this.#context.peer,
      reason: message,
      program: this.#argv[0],
      pid: this.#child.pid,
    });
    this.#kill();
  }

  /** The connection is gone (closed, reset, timed out, the server stopped): stop the program. */
  #abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#resolveAborted();
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    this.#kill();
    this.#stderr.cancel().catch(() => {});
    this.#closeStdin();
  }

  /**
   * Kills the program's process group, and stops reading its stdout: a descendant that left the
   * group with the pipe must not keep the connection waiting.
   */
  #kill(): void {
    if (!this.#exited) killGroup(this.#child, false);
    this.#stdout.cancel().catch(() => {});
  }

  /** The program exited (and is reaped): log it, kill what it left in its group, free the slot. */
  #onExit(status: Deno.CommandStatus, slot: ExecSlot): Deno.CommandStatus {
    this.#exited = true;
    const leftovers = killProcessGroup(this.#child.pid);
    if (leftovers === undefined) slot.release();
    else leftovers.finally(() => slot.release());
    logger.info("Connection {id} from {peer}: {program} (pid {pid}) {how}", {
      id: this.#context.id,
      peer: this.#context.peer,
      program: this.#argv[0],
      pid: this.#child.pid,
      how: describeExit(status),
    });
    return status;
  }
}

/** `exited with status 0`, `was killed by SIGKILL`. */
function describeExit(status: Deno.CommandStatus): string {
  return status.signal ? `was killed by ${status.signal}` : `exited with status ${status.code}`;
}

/** Joins chunks into one (the one itself when there is one). */
function join(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

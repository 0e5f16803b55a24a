/**
 * Internal: the session of one connection: its phase ({@linkcode Phase}) and the requests that
 * change it (close, drain, refuse, destroy), what its protocol may do through its context, the
 * framer's sink (no closure per connection), and the facts the server's sweeper reads for the
 * timeouts. Its read loop is `runSession` (session_loop.ts); its replies are made by
 * {@linkcode SessionReplies} and written by {@linkcode SessionOutput}.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { describePeer } from "../address.ts";
import type { LineTooLongError } from "../errors.ts";
import type { LineFramerOptions } from "../framing/line_framer.ts";
import { type ConnectionContext, SessionContext } from "./connection_context.ts";
import { DRAIN_QUIET_MS, LINGER_MS, REFUSAL_TIMEOUT_MS, SERVE_DEFAULTS } from "./defaults.ts";
import type { LineProtocol, ReplyLine, ServerErrorKind } from "./protocol.ts";
import type { ServeOptions, ServerStats } from "./serve.ts";
import { SessionOutput, type SocketConn } from "./session_io.ts";
import { canTransition, Phase, transition } from "./session_phase.ts";
import { SessionReplies } from "./session_replies.ts";
import type { CountedErrorKind, LatencyHistogram } from "./metrics.ts";
import { countKind } from "./_stats.ts";
import { traceChunk, traceEnabled, traceReceived, traceReply } from "./session_trace.ts";

const logger = getLogger(["linesock", "server"]);

/** What a session needs of its server (a line server, or the socket-free harness). */
export interface SessionHost {
  readonly protocol: LineProtocol;
  readonly options: ServeOptions;
  readonly stats: ServerStats;
  /** Unsent reply bytes beyond which a connection stops being read (writeBufferBytes). */
  readonly highWater: number;
  /** Lines after which a connection is closed (closeAfterLines). */
  readonly closeAfter: number;
  /** The framing options every connection shares. */
  readonly framerOptions: LineFramerOptions;
  /**
   * Counts a connection against its address's limit.
   * @returns `undefined` when it may go on, else why not (it is then refused).
   */
  claimAddress(session: Session): string | undefined;
  /** The session's run is over (its slot is free). */
  ended(session: Session): void;
  /** A protocol asked for the server's shutdown. */
  requestShutdown(): void;
  /** Errors by kind, for metrics (a line server keeps them; the socket-free harness does not). */
  readonly errorsByKind?: Record<string, number>;
  /** Refused connections by kind, for metrics. */
  readonly refusedByKind?: Record<string, number>;
  /** Times the handling of lines, when metrics are on (`ServeOptions.metrics`). */
  readonly latency?: LatencyHistogram | undefined;
}

/** What every session of a host shares, from its protocol and options (see SessionHost). */
export function sessionSettings(
  protocol: LineProtocol,
  options: ServeOptions,
): Pick<SessionHost, "highWater" | "closeAfter" | "framerOptions"> {
  return {
    highWater: options.writeBufferBytes ?? SERVE_DEFAULTS.writeBufferBytes,
    closeAfter: options.closeAfterLines ?? SERVE_DEFAULTS.closeAfterLines,
    framerOptions: {
      maxLineBytes: options.maxLineBytes ?? SERVE_DEFAULTS.maxLineBytes,
      stripCR: protocol.stripCR ?? true,
    },
  };
}

/** One connection's session; protocols see it only through its {@linkcode SessionContext}. */
export class Session implements ConnectionContext {
  readonly id: number;
  /** Replaced by the PROXY header's source, when the server expects one. */
  peer: string;
  remoteAddr: Deno.Addr;
  lineNumber = 0;
  /** Lines received. */
  linesIn = 0;
  /** Counted against its address's limit (see SessionHost.claimAddress). */
  addressClaimed = false;
  /** What the read loop reads through, once it runs: its bytes so far, for live metrics. */
  reader: { readonly bytesRead: number } | undefined;
  /** When input last arrived. */
  lastActivity = performance.now();
  /** When the line being received began (`undefined` between lines), for the line timeout. */
  lineStartedAt: number | undefined;
  readonly startedAt = performance.now();
  readonly host: SessionHost;
  readonly conn: SocketConn;
  readonly output: SessionOutput;
  /** Trace-level logs of each line and reply (`serve -vv`): decided once, here, per session. */
  readonly trace: boolean;
  /** What the protocol gets: made on first use. */
  #context: SessionContext | undefined;
  #replies: SessionReplies | undefined;
  #phase: Phase = Phase.Queued;
  /** A close was asked for (by the protocol, the line budget, a refusal), and why: see Phase. */
  #closeReason: string | undefined;
  /** The server is shutting down: finish what was received, then close (see Phase). */
  #draining = false;
  /** The peer half-closed: nothing more to read or watch (see Phase). */
  #inputEnded = false;
  /** The pause between drain() and its FIN (see #finishDrain). */
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bounds the linger after our FIN while the loop waited for input (#finThenLinger). */
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  #abort: AbortController | undefined;
  #resolveClosed: (() => void) | undefined;
  #closedPromise: Promise<void> | undefined;

  constructor(host: SessionHost, conn: SocketConn, id: number) {
    this.host = host;
    this.conn = conn;
    this.id = id;
    this.remoteAddr = conn.remoteAddr;
    this.peer = describePeer(conn.remoteAddr);
    this.output = new SessionOutput(conn);
    this.trace = traceEnabled();
    if (this.trace) {
      this.output.onTrace = (line) => traceReply(this, line);
      this.output.onTraceRaw = (bytes) => traceChunk(this, "out", bytes);
    }
  }

  /** The context the protocol gets. */
  get context(): ConnectionContext {
    return this.#context ??= new SessionContext(this);
  }

  /** Handlers, replies and the pending one (made on first use). */
  get replies(): SessionReplies {
    return this.#replies ??= new SessionReplies(this);
  }

  /** The replies, if a line or a greeting made them already. */
  get repliesIfAny(): SessionReplies | undefined {
    return this.#replies;
  }

  /** Where the session is in its life (a method: TypeScript must not narrow it across awaits). */
  phase(): Phase {
    return this.#phase;
  }

  /**
   * Goes to phase `to`.
   * @throws {Error} When the transition table does not allow it.
   */
  advance(to: Phase): void {
    this.#phase = transition(this.#phase, to);
  }

  /** Why the connection closes (or closed); `undefined` while no close was asked for. */
  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** Whether the server asked this session to finish what it received and close. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Whether the peer half-closed before the connection ended. */
  get inputEnded(): boolean {
    return this.#inputEnded;
  }

  /** The peer half-closed. */
  endInput(): void {
    this.#inputEnded = true;
    this.lineStartedAt = undefined;
  }

  /** Whether lines are still handled: no close was asked for. */
  get open(): boolean {
    return this.#closeReason === undefined;
  }

  get connections(): number {
    // This one counts even where nothing keeps the count (runLines).
    return Math.max(1, this.host.stats.open);
  }

  /** The protocol's farewell at shutdown (`onShutdown`), queued after the replies so far. */
  sayFarewell(): void {
    const farewell = this.host.protocol.onShutdown?.(this.context);
    if (farewell === undefined) return;
    if (typeof farewell === "string" || farewell instanceof Uint8Array) {
      this.output.enqueue(farewell);
    } else {
      for (const line of farewell as readonly ReplyLine[]) this.output.enqueue(line);
    }
  }

  get queuedBytes(): number {
    return this.output.queuedBytes;
  }

  get signal(): AbortSignal {
    // Made on first use: most connections never need one.
    this.#abort ??= new AbortController();
    if (this.#phase === Phase.Closed) this.#abort.abort();
    return this.#abort.signal;
  }

  /**
   * Settles when the connection is destroyed, so that no wait outlives it. Made on first use: an
   * idle connection does not need one.
   */
  get whenClosed(): Promise<void> {
    if (this.#phase === Phase.Closed) return Promise.resolve();
    return this.#closedPromise ??= new Promise((resolve) => this.#resolveClosed = resolve);
  }

  /**
   * How long this connection has been idle at `now`: neither sending nor reading its replies. A
   * connection waiting for its handler is not idle.
   */
  idleMs(now: number): number {
    const phase = this.#phase;
    if (
      phase === Phase.Reading ||
      ((phase === Phase.Working || phase === Phase.Closing) && this.output.writing)
    ) {
      return now - Math.max(this.lastActivity, this.output.lastWriteAt);
    }
    return 0;
  }

  /** How long the line being received has been arriving at `now` (0 between lines). */
  lineMs(now: number): number {
    return this.lineStartedAt === undefined || this.#phase !== Phase.Reading
      ? 0
      : now - this.lineStartedAt;
  }

  /** How long a write to the socket has been stuck at `now` (0 when none is). */
  writeStalledMs(now: number): number {
    return this.#phase === Phase.Closed ? 0 : this.output.stalledMs(now);
  }

  /** Says goodbye to a client whose line did not arrive whole in time, and closes it. */
  lineTimeout(ms: number): void {
    this.lineStartedAt = undefined;
    void this.refuse("line_timeout", `line timeout (a line must arrive within ${ms} ms)`, false);
  }

  /** Says goodbye to a connection that was idle too long, and closes it. */
  idleTimeout(): void {
    void this.refuse("idle_timeout", "idle timeout", false);
  }

  /** Drops a client whose replies made no progress for `ms`. */
  writeTimeout(ms: number): void {
    const reason = `write timeout after ${ms} ms`;
    this.countError("write_timeout");
    logger.warn("Connection {id} from {peer} failed: {reason}", {
      id: this.id,
      peer: this.peer,
      reason,
    });
    this.destroy(reason);
  }

  /** Gives back the reply buffers of a quiet connection. */
  shrink(): void {
    this.output.shrink();
  }

  send(line: ReplyLine): Promise<void> {
    if (this.#phase === Phase.Closed) {
      return Promise.reject(new Deno.errors.BadResource("closed"));
    }
    this.output.enqueue(line);
    return this.output.flush();
  }

  sendRaw(bytes: Uint8Array): void {
    this.output.sendRaw(bytes);
  }

  sendError(kind: ServerErrorKind, message: string): void {
    this.countError(kind);
    const protocol = this.host.protocol;
    const line = protocol.formatError
      ? protocol.formatError(kind, message, this.context)
      : `ERR ${message}`;
    if (typeof line === "string") this.output.enqueue(line);
    else if (line !== undefined) { for (const each of line) this.output.enqueue(each); }
  }

  /** Counts an error: in the server's total, and by kind for its metrics. */
  countError(kind: CountedErrorKind = "protocol"): void {
    const host = this.host;
    host.stats.errors++;
    if (host.errorsByKind !== undefined) countKind(host.errorsByKind, kind);
  }

  close(reason = "closed by handler"): void {
    if (this.#closeReason !== undefined) return;
    this.#closeReason = reason;
    // Asked for outside the reply flow (a timer, a program that ended) while the read loop waits
    // for input, the close would wait for that input: carry it out now, as shutdown does.
    if (this.#phase === Phase.Reading) this.#closeWhileReading();
  }

  abort(reason = "aborted by handler"): void {
    this.destroy(reason);
  }

  #closeWhileReading(): void {
    this.output.flushAll().catch(() => {}).finally(() => {
      // Input came meanwhile: the read loop sees the close and finishes the connection itself.
      if (this.#phase !== Phase.Reading) return;
      this.#finThenLinger(false);
    });
  }

  /**
   * While the read loop waits for input: our FIN (after the protocol's farewell, if asked for), then
   * the lingering close, in which the loop discards input until the peer closes; a peer that neither
   * sends nor closes is dropped after LINGER_MS.
   */
  #finThenLinger(farewell: boolean): void {
    this.#phase = transition(this.#phase, Phase.Lingering);
    if (farewell) {
      // The farewell goes out before the FIN.
      this.sayFarewell();
      this.output.flushAll().catch(() => {}).finally(() => this.conn.closeWrite().catch(() => {}));
    } else {
      this.conn.closeWrite().catch(() => {});
    }
    this.#lingerTimer = setTimeout(() => this.destroy("linger timeout"), LINGER_MS);
  }

  requestShutdown(): void {
    this.host.requestShutdown();
  }

  /** Refuses a connection with one error line, without serving it. */
  reject(kind: ServerErrorKind, message: string): Promise<void> {
    return this.refuse(kind, message, true);
  }

  /** Server shutdown: finish what was received, then close. */
  drain(): void {
    this.#draining = true;
    // A session blocked in read has answered everything it received: close it once replies are out.
    if (this.#phase === Phase.Reading || this.#phase === Phase.Queued) {
      this.output.flushAll().catch(() => {}).finally(() => {
        // Input that arrived before the shutdown may be in the socket while its read has not
        // completed yet (the event loop polls sockets when it has nothing else to do): give it a
        // moment to come in and be answered before the FIN. A timer, because Deno cannot tell
        // whether a socket holds unread input; the risk it leaves is measured in
        // docs/reliability.md ("Shutdown and input on its way").
        if (this.#phase !== Phase.Closed) {
          this.#drainTimer = setTimeout(() => this.#finishDrain(), DRAIN_QUIET_MS);
        }
      });
    }
  }

  #finishDrain(): void {
    this.#drainTimer = undefined;
    if (this.#phase === Phase.Reading) {
      // FIN after the replies (and the farewell), then the linger: not kept until the grace ends.
      this.#finThenLinger(this.host.protocol.onShutdown !== undefined);
    } else if (this.#phase === Phase.Queued) {
      this.destroy("server shutting down");
    }
    // Otherwise the read loop took a chunk meanwhile: it answers it, then flushes and closes itself.
  }

  /**
   * Sends one error line, then closes: the flush is bounded (a client that does not read must not
   * keep the connection), and it happens once however often it is asked for.
   */
  async refuse(kind: ServerErrorKind, message: string, announce: boolean): Promise<void> {
    // Once: not again while refusing, nor after our FIN or the close.
    if (!canTransition(this.#phase, Phase.Refusing)) return;
    this.#phase = transition(this.#phase, Phase.Refusing);
    if (announce) {
      if (this.host.refusedByKind !== undefined) countKind(this.host.refusedByKind, kind);
      logger.info("Refused connection {id} from {peer}: {reason}", {
        id: this.id,
        peer: this.peer,
        reason: message,
      });
    }
    this.sendError(kind, message);
    this.close(message);
    const timer = setTimeout(() => this.destroy(message), REFUSAL_TIMEOUT_MS);
    try {
      await Promise.race([this.output.flushAll(), this.whenClosed]);
      if (this.#phase !== Phase.Closed) await this.conn.closeWrite();
    } catch {
      // The client went away first; nothing to tell it.
    } finally {
      clearTimeout(timer);
      this.destroy(message);
    }
  }

  destroy(reason: string): void {
    this.#closeReason ??= reason;
    if (this.#phase === Phase.Closed) return;
    this.#phase = transition(this.#phase, Phase.Closed);
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#abort?.abort();
    this.#resolveClosed?.();
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  /** The framer's sink (internal): handles one line; `false` pauses framing. */
  onLine(bytes: Uint8Array, lineNumber: number): boolean {
    if (this.#closeReason !== undefined) return false;
    this.lineNumber = lineNumber;
    this.linesIn++;
    if (this.trace) traceReceived(this, lineNumber, bytes);
    const replies = this.replies;
    replies.handle(bytes);
    const closeAfter = this.host.closeAfter;
    if (this.linesIn >= closeAfter) this.close(`closed after ${closeAfter} lines`);
    // Pause while a reply is pending (the lines behind it wait unframed in the read buffer), once
    // the unsent replies pass the cap, and after the last line.
    return replies.pending === undefined && this.#closeReason === undefined &&
      this.output.queuedBytes <= this.host.highWater;
  }

  /** The framer's sink (internal): an over-long line (never while a reply is pending). */
  onTooLong(error: LineTooLongError): void {
    if (this.#closeReason !== undefined) return;
    this.lineNumber = error.lineNumber;
    this.linesIn++;
    this.sendError("line_too_long", `line too long (limit ${error.limit} bytes)`);
  }

  /**
   * Waits until the replies are out. A client that stops reading is dropped by the sweeper (write
   * and idle timeouts), which ends this wait.
   */
  async flushWithTimeout(): Promise<void> {
    await Promise.race([this.output.flushAll(), this.whenClosed]);
  }
}

/**
 * {@linkcode ChurnLoad}: connection churn, a new connection for every request (tcpkali's connection
 * rate, a server's accept path and per-connection set-up under load). Each transaction connects,
 * reads the greeting if there is one, sends one request, checks its reply, and closes.
 *
 * Closed loop: `connections` transactions run at once, each starting when the last one ends. Open
 * loop (`rate`): transactions start on a fixed schedule, at most `connections` at once; a transaction
 * that has to wait for a free slot is timed from when it was due. Latency is the whole transaction,
 * connecting included; connect times are recorded on their own too.
 *
 * @module
 */
import {
  openTransport,
  type Transport,
  type TransportOptions,
} from "../../lib/client/transport.ts";
import { describeDisconnect } from "../../lib/_disconnect.ts";
import type { LoadWorker, RunContext } from "./connection_load.ts";
import { GreetingError, readGreeting } from "./greeting.ts";
import { LineVerifier } from "./verifiers.ts";

/** Scheduled transactions due within this many ms start now. */
const PACING_LOOKAHEAD_MS = 1;
const READ_BUFFER_BYTES = 16 * 1024;

/** A stream of one-request connections. */
export class ChurnLoad implements LoadWorker {
  readonly #run: RunContext;
  readonly #target: TransportOptions;
  #quota: number;
  sent = 0;
  answered = 0;
  bytesSent = 0;
  bytesReceived = 0;
  finishedAt = 0;
  /** Connections opened. */
  opened = 0;
  /** Transactions started. */
  #issued = 0;
  #active = 0;
  #stopped = false;
  #aborted: "interrupted" | "deadline" | undefined;
  readonly #open = new Set<Transport>();
  #wake: (() => void) | undefined;

  /**
   * @param run What the run shares (`connections`: transactions at once).
   * @param target Where to connect, with `connectTimeoutMs`.
   * @param quota Transactions in all (`Infinity` until stopped).
   */
  constructor(run: RunContext, target: TransportOptions, quota: number) {
    this.#run = run;
    this.#target = target;
    this.#quota = quota;
  }

  measureMore(count: number): void {
    this.#quota = this.#issued + count;
  }

  async run(): Promise<void> {
    if (this.#run.rate > 0) {
      await this.#schedule();
    } else {
      await Promise.all(Array.from({ length: this.#run.connections }, () => this.#loop()));
    }
    this.finishedAt = performance.now();
  }

  stop(): void {
    this.#stopped = true;
    this.#wakeUp();
  }

  abort(reason: "interrupted" | "deadline"): void {
    this.#aborted = reason;
    this.stop();
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  }

  checkStall(): void {
    // Each transaction has its own timer.
  }

  #more(): boolean {
    return !this.#stopped && this.#issued < this.#quota;
  }

  async #loop(): Promise<void> {
    while (this.#more()) await this.#transaction(this.#issued++, undefined);
  }

  async #schedule(): Promise<void> {
    const run = this.#run;
    const running = new Set<Promise<void>>();
    while (this.#more()) {
      const ticket = this.#issued;
      const due = run.startedAt + (ticket * 1000) / run.rate;
      const wait = due - PACING_LOOKAHEAD_MS - performance.now();
      if (wait > 0) {
        await this.#sleep(wait);
        continue;
      }
      if (this.#active >= run.connections) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const lag = performance.now() - due;
      if (lag > run.stats.scheduleLagMs) run.stats.scheduleLagMs = lag;
      this.#issued++;
      this.#active++;
      const transaction = this.#transaction(ticket, due).finally(() => {
        this.#active--;
        running.delete(transaction);
        this.#wakeUp();
      });
      running.add(transaction);
    }
    await Promise.all(running);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** One connection, one request. */
  async #transaction(ticket: number, due: number | undefined): Promise<void> {
    const run = this.#run;
    const stats = run.stats;
    const number = ticket + 1;
    const startedAt = performance.now();
    const from = due === undefined ? startedAt : Math.min(due, startedAt);
    const measured = from >= stats.measureFrom;
    let conn: Transport;
    try {
      conn = await openTransport(this.#target);
    } catch (error) {
      if (this.#aborted === undefined) {
        stats.connectFailure(`connection ${number}: ${(error as Error).message}`);
      }
      return;
    }
    this.opened++;
    if (measured) stats.connect?.record((performance.now() - startedAt) * 1000, 1);
    this.#open.add(conn);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, run.timeoutMs);
    let inFlight = false;
    try {
      const leftover = await readGreeting(
        conn,
        run.plan,
        number,
        run.timeoutMs,
        run.maxLineBytes,
        (message) => stats.mismatch(message),
      );
      let done = false;
      const verifier = new LineVerifier(
        { ...run.plan, phase: () => ticket },
        ticket,
        {
          sent: 1,
          mismatch: (message) => stats.mismatch(message),
          fatal: (message) => {
            throw new TransactionFailure("protocol", message);
          },
        },
        run.maxLineBytes,
      );
      const line = run.plan.request(ticket).line.render(1, number);
      const request = new Uint8Array(line.length + run.plan.terminator.length);
      request.set(line);
      request.set(run.plan.terminator, line.length);
      this.sent++;
      inFlight = true;
      this.bytesSent += request.length;
      for (let offset = 0; offset < request.length;) {
        offset += await conn.write(request.subarray(offset));
      }
      if (leftover.length > 0) {
        this.bytesReceived += leftover.length;
        done = verifier.consume(leftover) > 0;
      }
      const buffer = new Uint8Array(READ_BUFFER_BYTES);
      while (!done) {
        const count = await conn.read(buffer);
        if (count === null) {
          throw new TransactionFailure(
            "closed",
            "connection closed by the server before its reply",
          );
        }
        this.bytesReceived += count;
        done = verifier.consume(buffer.subarray(0, count)) > 0;
      }
      inFlight = false;
      this.answered++;
      if (measured) stats.record(performance.now() - from, 1);
    } catch (error) {
      if (this.#aborted === "interrupted") {
        if (inFlight) stats.interrupted++;
      } else if (this.#aborted === "deadline") {
        stats.failure(
          "timeout",
          `connection ${number}: still unanswered when the run ended at its deadline`,
          inFlight ? 1 : 0,
        );
      } else if (timedOut) {
        stats.failure(
          "timeout",
          `connection ${number}: no ${run.words.reply} for ${run.timeoutMs} ms`,
          inFlight ? 1 : 0,
        );
      } else if (error instanceof TransactionFailure) {
        stats.failure(error.kind, `connection ${number}: ${error.message}`, inFlight ? 1 : 0);
      } else if (error instanceof GreetingError) {
        stats.failure("closed", `connection ${number}: ${error.message}`, 0);
      } else {
        stats.failure(
          "closed",
          `connection ${number}: ${describeDisconnect(error)}`,
          inFlight ? 1 : 0,
        );
      }
    } finally {
      clearTimeout(timer);
      this.#open.delete(conn);
      try {
        conn.close();
      } catch {
        // Closed already (by the timer).
      }
    }
  }
}

/** A transaction that cannot go on. */
class TransactionFailure extends Error {
  readonly kind: "closed" | "protocol";
  constructor(kind: "closed" | "protocol", message: string) {
    super(message);
    this.kind = kind;
  }
}

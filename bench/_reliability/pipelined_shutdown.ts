/**
 * SIGTERM during a pipelined load: clients keep sending `ECHO <n>` lines without waiting for the
 * answers, the server gets its signal in the middle, and every client counts the answers it got
 * (each one checked: the n-th answer of a connection must be `n`). A graceful shutdown answers
 * every line it fully received, so the answers counted by the clients must equal the server's own
 * count of lines in and lines out.
 *
 * @module
 */

/** Options of {@linkcode runPipelinedShutdown}. */
export interface PipelinedShutdownOptions {
  /** The server's TCP port on 127.0.0.1. */
  port: number;
  /** Pipelining clients. */
  connections: number;
  /** Send the signal once the clients got this many answers in total. */
  repliesBeforeSignal: number;
  /** Called once to stop the server (for example: send SIGTERM to it). */
  signal(): void;
  /** No client sends more lines than this. @default {10000000} */
  maxLinesPerConnection?: number;
  /** Give up after this long. @default {120000} */
  timeoutMs?: number;
}

/** What the clients counted. */
export interface PipelinedShutdownResult {
  /** Lines written completely to the sockets. */
  sent: number;
  /** Answers received, all connections. */
  answered: number;
  /** Answers received before the signal was sent. */
  answeredBeforeSignal: number;
  /** Answers that were not the expected one (out of order, lost or garbled). */
  wrong: number;
  /** Connections whose last bytes were a partial line (a reply cut off). */
  cutOff: number;
}

const BATCH_LINES = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Runs the load, sends the signal in the middle, and waits until the server closed every connection.
 * @returns The clients' counts.
 */
export async function runPipelinedShutdown(
  options: PipelinedShutdownOptions,
): Promise<PipelinedShutdownResult> {
  const deadline = performance.now() + (options.timeoutMs ?? 120_000);
  const maxLines = options.maxLinesPerConnection ?? 10_000_000;
  const result: PipelinedShutdownResult = {
    sent: 0,
    answered: 0,
    answeredBeforeSignal: 0,
    wrong: 0,
    cutOff: 0,
  };
  let signalled = false;
  let wakeSignal!: () => void;
  const thresholdReached = new Promise<void>((resolve) => wakeSignal = resolve);
  const conns = await Promise.all(
    Array.from(
      { length: options.connections },
      () => Deno.connect({ hostname: "127.0.0.1", port: options.port }),
    ),
  );
  const onAnswer = () => {
    result.answered++;
    if (!signalled && result.answered >= options.repliesBeforeSignal) wakeSignal();
  };
  const clients = conns.map((conn) => runClient(conn, maxLines, deadline, result, onAnswer));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      thresholdReached,
      Promise.all(clients).then(() => {
        throw new Error("every client ended before the signal");
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`only ${result.answered} answers before the time limit`)),
          Math.max(0, deadline - performance.now()),
        );
      }),
    ]);
    signalled = true;
    result.answeredBeforeSignal = result.answered;
    options.signal();
    await Promise.all(clients);
    return result;
  } finally {
    clearTimeout(timer);
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }
}

/** One client: a writer that pipelines batches and a reader that checks every answer. */
async function runClient(
  conn: Deno.Conn,
  maxLines: number,
  deadline: number,
  result: PipelinedShutdownResult,
  onAnswer: () => void,
): Promise<void> {
  let readerDone = false;
  const writing = (async () => {
    let next = 0;
    try {
      while (!readerDone && next < maxLines && performance.now() < deadline) {
        let batch = "";
        const end = Math.min(maxLines, next + BATCH_LINES);
        for (let n = next; n < end; n++) batch += `ECHO ${n}\n`;
        const bytes = encoder.encode(batch);
        for (let offset = 0; offset < bytes.length;) {
          offset += await conn.write(bytes.subarray(offset));
        }
        result.sent += end - next;
        next = end;
      }
    } catch {
      // The server closed: writing stops, the reader counts what was answered.
    }
  })();
  let expected = 0;
  let pending = "";
  const buffer = new Uint8Array(64 * 1024);
  let ended = false;
  try {
    for (;;) {
      let n: number | null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // Bounded: a server that neither answers nor closes must not hang the scenario.
        n = await Promise.race([
          conn.read(buffer),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error("the server did not close in time")),
              Math.max(0, deadline - performance.now()),
            );
          }),
        ]);
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionReset) break;
        throw error;
      } finally {
        clearTimeout(timer);
      }
      if (n === null) break;
      if (performance.now() > deadline) throw new Error("the server did not close in time");
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      let newline: number;
      let start = 0;
      while ((newline = pending.indexOf("\n", start)) !== -1) {
        if (pending.slice(start, newline) !== String(expected)) result.wrong++;
        expected++;
        onAnswer();
        start = newline + 1;
      }
      pending = pending.slice(start);
    }
    if (pending !== "") result.cutOff++;
    ended = true;
  } finally {
    readerDone = true;
    // A failed reader closes the connection so that a writer blocked on a full socket wakes up.
    if (!ended) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await writing;
  }
}

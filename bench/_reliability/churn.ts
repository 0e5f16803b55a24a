/**
 * Connection churn: many connect/close cycles, and abrupt resets in the middle of a line.
 *
 * A real reset (RST) needs SO_LINGER with a zero timeout, which `Deno.Conn` does not offer: its
 * `close()` sends a FIN first even when unread data makes the kernel add an RST after it, so the
 * server just sees the end of input. Node's `socket.resetAndDestroy()`, which Deno's `node:net`
 * implements with `setsockopt(SO_LINGER, {on, 0})` before `close()` (checked with strace), sends an
 * RST alone: the server's pending read fails with ECONNRESET, exactly what a crashed client or a
 * middlebox produces.
 *
 * @module
 */
import net from "node:net";

/** Options of {@linkcode connectCloseCycles}. */
export interface CycleOptions {
  /** The server's TCP port on 127.0.0.1. */
  port: number;
  /** How many connect/close cycles. */
  cycles: number;
  /** Cycles in flight at once. @default {8} */
  concurrency?: number;
  /** Give up after this long. @default {300000} */
  timeoutMs?: number;
}

/**
 * Connects and closes at once, `cycles` times.
 * @returns How long it took, in ms.
 */
export async function connectCloseCycles(options: CycleOptions): Promise<number> {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 300_000);
  let next = 0;
  const worker = async () => {
    while (next < options.cycles) {
      next++;
      if (performance.now() > deadline) throw new Error(`cycles timed out after ${next}`);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return performance.now() - started;
}

/** Options of {@linkcode resetsMidLine}. */
export interface ResetOptions {
  /** The server's TCP port on 127.0.0.1. */
  port: number;
  /** How many connections to reset. */
  resets: number;
  /** A complete request line the server answers, then the start of a line that never ends. */
  request: string;
  /** The start of a line that is never finished. */
  partial: string;
  /** Resets in flight at once. @default {8} */
  concurrency?: number;
  /** Give up after this long. @default {300000} */
  timeoutMs?: number;
}

/**
 * Opens connections that send a full request line and the start of another, wait for the answer
 * to the first (so the server has surely read the partial line too), then reset with an RST.
 * @returns How long it took, in ms.
 */
export async function resetsMidLine(options: ResetOptions): Promise<number> {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 300_000);
  let next = 0;
  const worker = async () => {
    while (next < options.resets) {
      next++;
      if (performance.now() > deadline) throw new Error(`resets timed out after ${next}`);
      await resetOne(options.port, `${options.request}\n${options.partial}`, deadline);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return performance.now() - started;
}

function resetOne(port: number, payload: string, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer before the reset"));
    }, Math.max(0, deadline - performance.now()));
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.once("connect", () => socket.write(payload));
    socket.once("data", () => {
      clearTimeout(timer);
      socket.resetAndDestroy();
      socket.once("close", () => resolve());
    });
  });
}

/**
 * The load driver of the server benchmark: the same client for every server measured, so ratios
 * compare servers, not clients.
 *
 * It learns what a server answers to one request line (calibration), then either pipelines that line
 * (a window of whole batches in flight per connection) or makes lockstep request/response round trips,
 * and verifies every reply byte against the calibrated answer with native `Buffer.compare`.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** A workload. */
export interface Workload {
  /** The request line without `\n`. */
  request: Uint8Array;
  /** Concurrent connections. */
  connections: number;
  /** `pipeline`: many lines in flight; `lockstep`: one request, one reply, repeat. */
  mode: "pipeline" | "lockstep";
  /** How long to run, in ms. */
  durationMs: number;
}

/** What a run measured. */
export interface LoadResult {
  /** Lines answered per second (all connections). */
  linesPerSecond: number;
  /** Request megabytes per second sent (10^6 bytes). */
  mbPerSecondOut: number;
  /** Reply megabytes per second received. */
  mbPerSecondIn: number;
  /** Latency percentiles in microseconds (lockstep only). */
  latencyUs?: { p50: number; p99: number; max: number };
  /** Lines answered. */
  lines: number;
  /** Reply bytes that did not match. */
  mismatches: number;
}

const BATCH_BYTES = 64 * 1024;
const WINDOW_BATCHES = 4;

/**
 * Runs one workload against `port` on 127.0.0.1.
 * @returns The measurements.
 */
export async function runLoad(port: number, workload: Workload): Promise<LoadResult> {
  const reply = await calibrate(port, workload.request);
  const deadline = performance.now() + workload.durationMs;
  const started = performance.now();
  const latencies: number[] = [];
  const results = await Promise.all(
    Array.from(
      { length: workload.connections },
      () =>
        workload.mode === "pipeline"
          ? pipeline(port, workload.request, reply, deadline)
          : lockstep(port, workload.request, reply, deadline, latencies),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const lines = results.reduce((sum, r) => sum + r.lines, 0);
  const mismatches = results.reduce((sum, r) => sum + r.mismatches, 0);
  const result: LoadResult = {
    linesPerSecond: lines / seconds,
    mbPerSecondOut: (lines * (workload.request.length + 1)) / seconds / 1e6,
    mbPerSecondIn: (lines * reply.length) / seconds / 1e6,
    lines,
    mismatches,
  };
  if (latencies.length > 0) {
    const sorted = Float64Array.from(latencies).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    result.latencyUs = { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
  }
  return result;
}

/** How long calibration may take before the run fails (a server that never answers). */
const CALIBRATE_TIMEOUT_MS = 10_000;

/** Sends one request and returns the full reply line, with its `\n` (bounded in time). */
async function calibrate(port: number, request: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // Closing the connection ends a read that would otherwise wait forever.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, CALIBRATE_TIMEOUT_MS);
  try {
    return await calibrateOn(conn, request);
  } catch (error) {
    if (timedOut) throw new Error(`no calibration reply within ${CALIBRATE_TIMEOUT_MS} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

async function calibrateOn(conn: Deno.Conn, request: Uint8Array): Promise<Uint8Array> {
  await writeAll(conn, withNewline(request, 1));
  const buffer = new Uint8Array(request.length * 2 + 4096);
  let length = 0;
  for (;;) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) throw new Error("server closed during calibration");
    length += n;
    const newline = buffer.subarray(0, length).indexOf(0x0a);
    if (newline !== -1) return buffer.slice(0, newline + 1);
    if (length === buffer.length) throw new Error("calibration reply too long");
  }
}

/** `count` copies of `line` + `\n`, back to back. */
function withNewline(line: Uint8Array, count: number): Uint8Array {
  const unit = line.length + 1;
  const out = new Uint8Array(unit * count);
  for (let i = 0; i < count; i++) {
    out.set(line, i * unit);
    out[i * unit + line.length] = 0x0a;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

async function pipeline(
  port: number,
  request: Uint8Array,
  reply: Uint8Array,
  deadline: number,
): Promise<{ lines: number; mismatches: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / (request.length + 1)));
  const batch = withNewline(request, perBatch);
  // The expected reply stream is periodic: compare against a long repetition of one reply.
  const expected = withNewline(reply.subarray(0, reply.length - 1), perBatch);
  let sentBatches = 0;
  let receivedBytes = 0;
  let mismatches = 0;
  let wake: (() => void) | undefined;
  let readerDone = false;
  const replyBytesPerBatch = expected.length;
  const receivedBatches = () => Math.floor(receivedBytes / replyBytesPerBatch);

  const writer = (async () => {
    while (!readerDone && performance.now() < deadline) {
      while (!readerDone && sentBatches - receivedBatches() >= WINDOW_BATCHES) {
        await new Promise<void>((resolve) => wake = resolve);
      }
      await writeAll(conn, batch);
      sentBatches++;
    }
    // The server answers what it has, then sees the end of input and closes.
    if (!readerDone) await conn.closeWrite();
  })();
  const buffer = new Uint8Array(256 * 1024);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      // Compare the chunk against the expected stream at the same phase.
      let offset = 0;
      while (offset < n) {
        const phase = receivedBytes % replyBytesPerBatch;
        const take = Math.min(n - offset, replyBytesPerBatch - phase);
        if (
          Buffer.compare(
            buffer.subarray(offset, offset + take),
            expected.subarray(phase, phase + take),
          ) !== 0
        ) mismatches++;
        offset += take;
        receivedBytes += take;
      }
      wake?.();
      wake = undefined;
    }
    readerDone = true;
    wake?.();
    await writer.catch(() => {});
  } finally {
    conn.close();
  }
  return { lines: Math.floor(receivedBytes / reply.length), mismatches };
}

async function lockstep(
  port: number,
  request: Uint8Array,
  reply: Uint8Array,
  deadline: number,
  latencies: number[],
): Promise<{ lines: number; mismatches: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const line = withNewline(request, 1);
  const buffer = new Uint8Array(Math.max(4096, reply.length));
  let lines = 0;
  let mismatches = 0;
  try {
    while (performance.now() < deadline) {
      const start = performance.now();
      await writeAll(conn, line);
      let length = 0;
      while (length < reply.length) {
        const n = await conn.read(buffer.subarray(length));
        if (n === null) throw new Error("server closed the connection during the run");
        length += n;
      }
      latencies.push((performance.now() - start) * 1000);
      if (Buffer.compare(buffer.subarray(0, length), reply) !== 0) mismatches++;
      lines++;
    }
  } finally {
    conn.close();
  }
  return { lines, mismatches };
}

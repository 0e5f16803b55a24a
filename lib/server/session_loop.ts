/**
 * Internal: {@linkcode runSession}, the read loop of one connection. It reads the PROXY header when
 * the server expects one, then reads chunks and frames them into lines (the session is the framer's
 * sink) or relays them (echo: the chunk is lent to the protocol, which may write it back without a
 * copy), until a close is asked for, the input ends, or the server shuts down; then the last
 * replies, the FIN, and the linger that keeps them from being destroyed by an RST. With metrics on,
 * it times the lines of each read for the latency histogram.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { describePeer } from "../address.ts";
import { isDisconnect } from "../_disconnect.ts";
import { ConnectionReader } from "../framing/connection_reader.ts";
import { LineFramer } from "../framing/line_framer.ts";
import { RelayReader } from "../framing/_relay_reader.ts";
import { countNewlines, endOfLine } from "../framing/_count_newlines.ts";
import { MAX_READ_BUFFER_BYTES } from "../framing/_read_buffer.ts";
import { LINGER_MS, MIN_READ_BUFFER_BYTES } from "./defaults.ts";
import type { LatencyHistogram } from "./metrics.ts";
import type { Session } from "./session.ts";
import { Phase } from "./session_phase.ts";
import { readProxyHeader } from "./_proxy_header_reader.ts";
import { traceChunk } from "./session_trace.ts";
import { describeEnd } from "./_socket_errors.ts";

const logger = getLogger(["linesock", "server"]);

/** What the loop reads from: the line reader, or the relay's two buffers. */
type Reader = ConnectionReader | RelayReader;

/**
 * Serves a connection until it closes, then adds its counters to the host's and tells the host.
 * Never rejects.
 */
export async function runSession(session: Session): Promise<void> {
  const host = session.host;
  const relay = host.protocol.onData !== undefined;
  const reader = relay
    ? new RelayReader(session.conn, MIN_READ_BUFFER_BYTES, MAX_READ_BUFFER_BYTES)
    : new ConnectionReader(session.conn, {
      minBufferBytes: MIN_READ_BUFFER_BYTES,
      maxBufferBytes: MAX_READ_BUFFER_BYTES,
    });
  // The session is the framer's sink: no closures per connection (idle ones should cost little).
  const framer = relay ? undefined : new LineFramer(host.framerOptions, session);
  session.reader = reader;
  let endReason = "closed by client";
  try {
    // Destroyed while it waited for a slot (the server was aborted): nothing to serve.
    if (session.phase() === Phase.Closed) return;
    let early: Uint8Array | undefined;
    if (host.options.proxyProtocol) {
      session.advance(Phase.Reading);
      early = await takeProxyHeader(session, reader);
      if (early === undefined) return;
    }
    logger.info("Connection {id} from {peer} opened", { id: session.id, peer: session.peer });
    // Shutdown's FIN, a timeout or a reset may have come while the PROXY header was read.
    if (session.phase() === Phase.Queued || session.phase() === Phase.Reading) {
      session.advance(Phase.Working);
      // The read loop is in this function: one suspended frame per idle connection, not two.
      const protocol = host.protocol;
      const output = session.output;
      if (host.options.greeting !== undefined) output.enqueue(host.options.greeting);
      if (protocol.onConnect) {
        const connected = session.replies.emit(protocol.onConnect(session.context));
        await Promise.race([connected, session.whenClosed]);
      }
      // Until a close is asked for, the input ends, or the server shuts down; a refusal (a
      // timeout's farewell) or a destroy ends the loop where it finds it.
      while (session.open && !session.draining && session.phase() === Phase.Working) {
        session.advance(Phase.Reading);
        output.startFlush();
        let chunk: Uint8Array | null;
        // The read made while a reply was pending, if any, is this loop's next read.
        const watch = early === undefined ? session.repliesIfAny?.takeWatch() : undefined;
        if (early !== undefined) {
          // Bytes that came in the same read as the PROXY header.
          chunk = early;
          early = undefined;
        } else if (watch !== undefined) {
          chunk = await watch;
        } else {
          try {
            chunk = await reader.read();
          } catch (error) {
            if (session.phase() === Phase.Closed) break;
            throw error;
          }
        }
        // Closed or refused meanwhile, or shutdown's FIN went out while we waited (Lingering):
        // input read after that FIN came after the shutdown began and can no longer be answered.
        if (session.phase() !== Phase.Reading) break;
        session.advance(Phase.Working);
        session.lastActivity = performance.now();
        if (chunk === null) {
          session.endInput();
          framer?.end();
          await session.repliesIfAny?.settle();
          if (session.open && protocol.onEnd) {
            await session.replies.emit(protocol.onEnd(session.context));
          }
          break;
        }
        if (framer) {
          await frame(session, framer, chunk);
        } else {
          relayChunk(session, chunk);
          if (output.direct !== undefined) (reader as RelayReader).hold(output.direct);
        }
        if (output.error !== undefined) throw output.error;
        if (output.queuedBytes > host.highWater) await session.flushWithTimeout();
      }
    }
    if (session.closeReason !== undefined) endReason = session.closeReason;
    else if (session.draining) {
      endReason = "server shutting down";
      if (session.phase() === Phase.Working) session.sayFarewell();
    }
    await wrapUp(session, reader);
  } catch (error) {
    endReason = describeEnd(error);
    if (error instanceof Deno.errors.InvalidData || error instanceof Deno.errors.TimedOut) {
      // A failed TLS handshake (a plain-text client, an untrusted certificate) or a corrupt
      // record: the peer's doing, worth one line, not a stack trace.
      session.countError(error instanceof Deno.errors.TimedOut ? "tls_handshake_timeout" : "tls");
      logger.warn("Connection {id} from {peer} failed: TLS: {reason}", {
        id: session.id,
        peer: session.peer,
        reason: endReason,
      });
    } else if (!isDisconnect(error)) {
      session.countError("connection");
      logger.warn("Connection {id} from {peer} failed: {error}", {
        id: session.id,
        peer: session.peer,
        error,
      });
    }
  } finally {
    session.destroy(endReason);
    const bytesIn = reader.bytesRead + (session.repliesIfAny?.watchedBytes ?? 0);
    const { linesIn } = session;
    const { linesOut, bytesWritten: bytesOut } = session.output;
    const stats = host.stats;
    stats.linesIn += linesIn;
    stats.linesOut += linesOut;
    stats.bytesIn += bytesIn;
    stats.bytesOut += bytesOut;
    host.ended(session);
    logger.info(
      "Connection {id} from {peer} closed after {durationMs} ms: {linesIn} lines in, {linesOut} out, {bytesIn} bytes in, {bytesOut} out ({reason})",
      {
        id: session.id,
        peer: session.peer,
        durationMs: Math.round(performance.now() - session.startedAt),
        linesIn,
        linesOut,
        bytesIn,
        bytesOut,
        reason: session.closeReason ?? endReason,
      },
    );
  }
}

/**
 * Frames a chunk. When framing pauses (a reply went async, or the unsent replies passed the cap),
 * the rest of the chunk stays where it is, in the read buffer, which is not read into again until
 * the rest is framed: waiting lines cost no memory of their own.
 */
async function frame(session: Session, framer: LineFramer, chunk: Uint8Array): Promise<void> {
  const output = session.output;
  const highWater = session.host.highWater;
  // With metrics only; then two clock reads per push, none per line.
  const latency = session.host.latency;
  let rest = chunk;
  for (;;) {
    const started = latency === undefined ? 0 : performance.now();
    const linesBefore = session.linesIn;
    const consumed = framer.push(rest);
    if (latency !== undefined) timeLines(latency, session, started, linesBefore);
    const replies = session.repliesIfAny;
    if (replies?.pending !== undefined) {
      await replies.settle();
      output.startFlush();
    }
    if (consumed === rest.length) {
      // A line begun and not finished: its time starts (the line timeout); none: it stops.
      if (!framer.midLine) session.lineStartedAt = undefined;
      else session.lineStartedAt ??= session.lastActivity;
      return;
    }
    if (!session.open || session.phase() === Phase.Closed) return;
    rest = rest.subarray(consumed);
    if (output.error !== undefined) throw output.error;
    if (output.queuedBytes > highWater) await session.flushWithTimeout();
    if (session.phase() === Phase.Closed) return;
  }
}

/**
 * Metrics: times the lines one push handled. Lines answered at once share the push's time (a burst
 * of pipelined lines is timed as a whole); a reply still pending (a program's) is timed on its own,
 * until it settles.
 */
function timeLines(
  latency: LatencyHistogram,
  session: Session,
  started: number,
  linesBefore: number,
): void {
  const lines = session.linesIn - linesBefore;
  if (lines === 0) return;
  const now = performance.now();
  const each = (now - started) / lines;
  const replies = session.repliesIfAny;
  const pending = replies?.pending;
  if (pending === undefined) {
    latency.observeMany(each, lines);
    return;
  }
  // The pending reply is the push's last line: framing pauses behind it.
  if (lines > 1) latency.observeMany(each, lines - 1);
  const since = now - each;
  replies!.pending = pending.then(() => latency.observe(performance.now() - since));
}

/** Relay mode: counts lines, honours the line budget, and hands the chunk to the protocol. */
function relayChunk(session: Session, chunk: Uint8Array): void {
  const closeAfter = session.host.closeAfter;
  let lines = countNewlines(chunk);
  let data = chunk;
  if (session.linesIn + lines >= closeAfter) {
    // The budget ends in this chunk: cut it after the line where it does.
    lines = closeAfter - session.linesIn;
    data = chunk.subarray(0, endOfLine(chunk, lines));
    session.close(`closed after ${closeAfter} lines`);
  }
  session.linesIn += lines;
  if (session.trace) traceChunk(session, "in", data);
  const output = session.output;
  output.linesOut += lines;
  output.lend(data);
  try {
    session.host.protocol.onData!(data, session.context);
  } finally {
    output.unlend();
  }
}

/** After the loop: the last replies, the FIN and the linger; or the refusal under way. */
async function wrapUp(session: Session, reader: Reader): Promise<void> {
  if (session.phase() === Phase.Working) {
    session.advance(Phase.Closing);
    await session.flushWithTimeout();
    // Unless it was destroyed meanwhile, or a refusal took over (which closes by itself).
    if (session.phase() === Phase.Closing) {
      await session.conn.closeWrite().catch(() => {});
      if (session.phase() === Phase.Closing) session.advance(Phase.Lingering);
    }
  }
  const phase = session.phase();
  if (phase === Phase.Lingering) await linger(session, reader);
  else if (phase === Phase.Refusing) await session.whenClosed;
}

/**
 * After our FIN, reads and discards until the peer closes (bounded): closing with unread input
 * makes the kernel send an RST, which destroys the replies still in flight.
 */
async function linger(session: Session, reader: Reader): Promise<void> {
  const timer = setTimeout(() => session.destroy("linger timeout"), LINGER_MS);
  try {
    const watch = session.repliesIfAny?.takeWatch();
    if (watch !== undefined && (await watch) === null) return;
    while ((await reader.read()) !== null) {
      // Discard.
    }
  } catch {
    // Reset or closed: nothing left to protect.
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads the PROXY header and takes the client address from it.
 * @returns Bytes read past the header (possibly empty), or `undefined` when the connection was
 * refused for a missing or bad header, or closed.
 */
async function takeProxyHeader(session: Session, reader: Reader): Promise<Uint8Array | undefined> {
  const read = await readProxyHeader(reader, session.host.options.proxyHeaderTimeoutMs);
  if (read.kind === "ended") {
    session.destroy("closed by client before its PROXY header");
    return undefined;
  }
  if (read.kind === "refused") {
    await session.refuse("invalid_proxy_header", read.message, true);
    return undefined;
  }
  if (read.source !== undefined) {
    session.remoteAddr = read.source;
    session.peer = describePeer(read.source);
  }
  const refusal = session.host.claimAddress(session);
  if (refusal !== undefined) {
    await session.refuse("too_many_connections", refusal, true);
    return undefined;
  }
  return read.rest;
}

/**
 * The server's numbers in one table: what {@linkcode serve} uses for an option that is not given
 * ({@linkcode SERVE_DEFAULTS}), what `linesock serve` uses instead where it differs
 * ({@linkcode CLI_SERVE_DEFAULTS}: the line protocols, text and json, and echo side by side), and the
 * engine's fixed limits, which are not options.
 *
 * | option                      | `serve()`              | `linesock serve` text, json | `linesock serve` echo |
 * | --------------------------- | ---------------------- | --------------------------- | --------------------- |
 * | `hostname` / `--host`       | `127.0.0.1`            | same                        | same                  |
 * | `port` / `--port`           | `1991`                 | same                        | same                  |
 * | `socketMode`                | `0o600`                | same                        | same                  |
 * | `maxLineBytes`              | 1 MiB                  | same                        | (no lines)            |
 * | `idleTimeoutMs`             | `0` (off)              | 5 min                       | `0` (off)             |
 * | `lineTimeoutMs`             | `0` (off)              | 30 s                        | `0` (off)             |
 * | `queueTimeoutMs`            | the idle timeout       | same                        | same                  |
 * | `maxClients`                | no limit               | same                        | same                  |
 * | `queue`                     | 64                     | same                        | same                  |
 * | `maxConnections`            | 16384                  | same                        | same                  |
 * | `maxConnectionsPerAddress`  | no limit               | same                        | same                  |
 * | `graceMs`                   | 5 s                    | same                        | same                  |
 * | `writeBufferBytes`          | 1 MiB                  | same                        | same                  |
 * | `writeTimeoutMs`            | 30 s                   | same                        | same                  |
 * | `tlsHandshakeTimeoutMs`     | 10 s                   | same                        | same                  |
 * | `proxyHeaderTimeoutMs`      | 5 s                    | same                        | same                  |
 * | `metrics`                   | `false`                | `true` with `--metrics`     | same                  |
 * | `invalidReply`              | `ERR invalid encoding` | same                        | (no lines)            |
 *
 * `linesock serve` reads its option defaults and the defaults its `--help` shows from here.
 *
 * @example Reading the defaults
 * ```ts
 * import { CLI_SERVE_DEFAULTS, SERVE_DEFAULTS } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(SERVE_DEFAULTS.writeBufferBytes, 1024 * 1024);
 * assert.equal(SERVE_DEFAULTS.idleTimeoutMs, 0);
 * assert.equal(CLI_SERVE_DEFAULTS.line.idleTimeoutMs, 5 * 60_000);
 * assert.equal(CLI_SERVE_DEFAULTS.echo.idleTimeoutMs, 0);
 * ```
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT } from "../address.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../framing/line_framer.ts";
import type { ServeOptions } from "./serve.ts";

/** The options of {@linkcode serve} that have a fixed default, with their values. */
export type ServeDefaults = Readonly<
  Required<
    Pick<
      ServeOptions,
      | "hostname"
      | "port"
      | "socketMode"
      | "tlsHandshakeTimeoutMs"
      | "maxLineBytes"
      | "idleTimeoutMs"
      | "lineTimeoutMs"
      | "maxConnectionsPerAddress"
      | "maxClients"
      | "queue"
      | "maxConnections"
      | "closeAfterLines"
      | "graceMs"
      | "writeBufferBytes"
      | "writeTimeoutMs"
      | "invalidReply"
      | "proxyProtocol"
      | "proxyHeaderTimeoutMs"
      | "metrics"
    >
  >
>;

/**
 * What {@linkcode serve} uses for each option that is not given (`queueTimeoutMs` defaults to the
 * idle timeout). `Infinity` is no limit; a timeout of 0 is off.
 */
export const SERVE_DEFAULTS: ServeDefaults = Object.freeze({
  hostname: DEFAULT_HOST,
  port: DEFAULT_PORT,
  socketMode: 0o600,
  tlsHandshakeTimeoutMs: 10_000,
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
  idleTimeoutMs: 0,
  lineTimeoutMs: 0,
  maxConnectionsPerAddress: Infinity,
  maxClients: Infinity,
  queue: 64,
  // Enough for 10,000 idle connections and more; each needs a descriptor (see `ulimit -n`).
  maxConnections: 16384,
  closeAfterLines: Infinity,
  graceMs: 5000,
  writeBufferBytes: 1024 * 1024,
  writeTimeoutMs: 30_000,
  invalidReply: "ERR invalid encoding",
  proxyProtocol: false,
  proxyHeaderTimeoutMs: 5000,
  metrics: false,
});

/** The options whose default `linesock serve` chooses by protocol. */
export type ProtocolDefaults = Readonly<
  Required<Pick<ServeOptions, "idleTimeoutMs" | "lineTimeoutMs">>
>;

/**
 * Where `linesock serve` differs from {@linkcode SERVE_DEFAULTS}: the line protocols (text and json)
 * close a silent connection after 5 minutes and want a begun line whole within 30 s; echo, a byte
 * relay, has neither unless asked. Every other option has the library's default.
 */
export const CLI_SERVE_DEFAULTS: Readonly<{ line: ProtocolDefaults; echo: ProtocolDefaults }> =
  Object.freeze({
    line: Object.freeze({ idleTimeoutMs: 5 * 60_000, lineTimeoutMs: 30_000 }),
    echo: Object.freeze({ idleTimeoutMs: 0, lineTimeoutMs: 0 }),
  });

// The engine's fixed limits (not options).

/**
 * Refusals (an error line, then close) under way at once. Beyond it, a refused connection is
 * closed without the line, so that a flood cannot pile up descriptors in refusals.
 */
export const MAX_REFUSALS_IN_FLIGHT = 64;
/** How long a refusal's error line may take to leave before the connection is closed anyway. */
export const REFUSAL_TIMEOUT_MS = 1000;
/** The sweeper of timeouts runs at least this often (also when no timeout is set). */
export const SWEEP_MAX_INTERVAL_MS = 1000;
/** A connection idle this long gives back its reply buffers (busy ones keep and reuse them). */
export const SHRINK_AFTER_MS = 1000;
/**
 * A connection's read buffer starts this small (an idle connection costs little) and doubles while
 * reads fill it, up to the framing's `MAX_READ_BUFFER_BYTES`.
 */
export const MIN_READ_BUFFER_BYTES = 256;
/** How much input a connection whose reply is pending may read ahead (to notice the client go). */
export const WATCH_BYTES = 4096;
/** After a failed accept, the pause before the next attempt doubles from the min to the max. */
export const ACCEPT_PAUSE_MIN_MS = 10;
/** See {@linkcode ACCEPT_PAUSE_MIN_MS}. */
export const ACCEPT_PAUSE_MAX_MS = 1000;
/** At shutdown, how long a connection waiting for input may still receive some before its FIN. */
export const DRAIN_QUIET_MS = 50;
/** How long a closing connection keeps discarding the peer's input (see the session's linger). */
export const LINGER_MS = 2000;

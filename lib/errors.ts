/**
 * Typed errors for the conditions a caller of linesock must tell apart. Each class carries a stable
 * {@linkcode LinesockError.code} that scripts and tests can match on; messages are for people.
 *
 * @example Telling errors apart by code
 * ```ts
 * import { LineTooLongError, LinesockError } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const error: unknown = new LineTooLongError(1024, 7);
 * assert.ok(error instanceof LinesockError);
 * assert.equal(error.code, "LINE_TOO_LONG");
 * assert.equal(error.message, "Line 7 is longer than the limit of 1024 bytes");
 * ```
 *
 * @module
 */

/** The stable codes of {@linkcode LinesockError}. */
export type LinesockErrorCode =
  | "LINE_TOO_LONG"
  | "INVALID_ENCODING"
  | "CANNOT_CONNECT"
  | "TIMEOUT"
  | "REMOTE_ERROR"
  | "CONNECTION_LOST"
  | "PROGRAM_START_FAILED"
  | "PROGRAM_TIMEOUT"
  | "PROGRAM_FAILED"
  | "PROGRAM_OUTPUT_LIMIT"
  | "PROGRAM_INVALID_OUTPUT"
  | "EXEC_QUEUE_FULL"
  | "INVALID_ROUTES"
  | "INVALID_PROXY_HEADER"
  | "ADDRESS_IN_USE"
  | "CANNOT_LISTEN";

/** Base class of every error linesock raises on purpose. */
export class LinesockError extends Error {
  /** A stable, machine-readable code. */
  readonly code: LinesockErrorCode;

  /**
   * Creates the instance.
   * @param code The stable code.
   * @param message A sentence for people.
   * @param options Standard error options (`cause`).
   */
  constructor(code: LinesockErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A line exceeded the configured byte limit; the rest of that line was discarded. */
export class LineTooLongError extends LinesockError {
  /** The limit in bytes that was exceeded. */
  readonly limit: number;
  /** The 1-based number of the offending line in its stream. */
  readonly lineNumber: number;

  /**
   * Creates the instance.
   * @param limit The limit in bytes.
   * @param lineNumber The 1-based line number.
   */
  constructor(limit: number, lineNumber: number) {
    super("LINE_TOO_LONG", `Line ${lineNumber} is longer than the limit of ${limit} bytes`);
    this.limit = limit;
    this.lineNumber = lineNumber;
  }
}

/** A line was not valid UTF-8. */
export class InvalidEncodingError extends LinesockError {
  /** The 1-based number of the offending line, or 0 when unknown. */
  readonly lineNumber: number;
  /** The undecodable bytes. */
  readonly bytes: Uint8Array;

  /**
   * Creates the instance.
   * @param bytes The line's bytes.
   * @param lineNumber The 1-based line number, 0 when unknown.
   */
  constructor(bytes: Uint8Array, lineNumber = 0) {
    super(
      "INVALID_ENCODING",
      lineNumber > 0 ? `Line ${lineNumber} is not valid UTF-8` : "Line is not valid UTF-8",
    );
    this.bytes = bytes;
    this.lineNumber = lineNumber;
  }
}

/** A connection could not be established. */
export class ConnectError extends LinesockError {
  /** Where we tried to connect, e.g. `127.0.0.1:1991` or `/run/x.sock`. */
  readonly target: string;

  /**
   * Creates the instance.
   * @param target The address tried.
   * @param reason Why, in a few words ("connection refused").
   * @param options Standard error options (`cause`).
   */
  constructor(target: string, reason: string, options?: ErrorOptions) {
    super("CANNOT_CONNECT", `Cannot connect to ${target}: ${reason}`, options);
    this.target = target;
  }
}

/** An operation did not finish in its time budget. */
export class TimeoutError extends LinesockError {
  /** The budget in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the instance.
   * @param what What timed out ("connect to 127.0.0.1:1991").
   * @param timeoutMs The budget in milliseconds.
   */
  constructor(what: string, timeoutMs: number) {
    super("TIMEOUT", `Timed out after ${timeoutMs} ms: ${what}`);
    this.timeoutMs = timeoutMs;
  }
}

/** The server answered with an error (an `ERR …` line, or a JSON reply whose status is not 0). */
export class RemoteError extends LinesockError {
  /** The JSON status, or 1 for a text `ERR` line. */
  readonly status: number;
  /** The JSON `extra` field, when any. */
  readonly extra: unknown;

  /**
   * Creates the instance.
   * @param message The server's message.
   * @param status The server's status (non-zero).
   * @param extra The server's `extra` field.
   */
  constructor(message: string, status = 1, extra?: unknown) {
    super("REMOTE_ERROR", message);
    this.status = status;
    this.extra = extra;
  }
}

/** The connection closed before the expected replies arrived. */
export class ConnectionLostError extends LinesockError {
  /**
   * Creates the instance.
   * @param message What was lost.
   */
  constructor(message = "Connection closed by the server before the expected replies") {
    super("CONNECTION_LOST", message);
  }
}

/** A server could not listen on its address. */
export class ListenError extends LinesockError {
  /** The address, e.g. `tcp://127.0.0.1:1991` or `unix:///run/x.sock`. */
  readonly address: string;

  /**
   * Creates the instance.
   * @param address The address as a URL (`tcp://host:port`, `unix://path`).
   * @param reason Why, in a few words ("address already in use").
   * @param options Standard error options (`cause`).
   */
  constructor(address: string, reason: string, options?: ErrorOptions) {
    super("CANNOT_LISTEN", `Cannot listen on ${address}: ${reason}`, options);
    this.address = address;
  }
}

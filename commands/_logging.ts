/**
 * Logging on the command line: `--log-level` parsing and sending linesock's logs (logtape) to stderr.
 * Only `serve` logs, so only it loads this module and logtape.
 *
 * @module
 */
import { InvalidArgumentError } from "./_cli.ts";
import {
  configureSync,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogLevel,
  type LogRecord,
  parseLogLevel,
} from "@logtape/logtape";

/** Parses a log level name. */
export function parseLevel(text: string): LogLevel {
  try {
    return parseLogLevel(text);
  } catch {
    throw new InvalidArgumentError("expected trace, debug, info, warning, error or fatal");
  }
}

/** How logs are written (to stderr). */
export interface LoggingOptions {
  /** Lowest level written. */
  level: LogLevel;
  /** `text` for people, `json` for machines (one JSON object per line). */
  format: "text" | "json";
}

const stderrEncoder = new TextEncoder();

/**
 * Sends linesock's logs to stderr, synchronously (nothing is lost when the process exits).
 * @param options Level and format.
 */
export function setUpLogging(options: LoggingOptions): void {
  const format = options.format === "json"
    ? getJsonLinesFormatter()
    : getTextFormatter({ timestamp: "date-time-tz", category: ".", value: "bare" });
  configureSync({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => Deno.stderr.writeSync(stderrEncoder.encode(format(record))),
    },
    loggers: [
      { category: ["linesock"], lowestLevel: options.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

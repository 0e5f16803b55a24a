/**
 * linesock's log records in a test: captured in this process (through logtape), rendered, with a
 * bounded wait for a line.
 *
 * @module
 */
import { configure, type LogLevel, type LogRecord, reset } from "@logtape/logtape";
import { WAIT_MS, within } from "./timeouts.ts";

/** The log records of the server in this process, rendered, with a way to wait for one. */
export class Logs {
  readonly lines: string[] = [];
  #waiters = new Set<() => void>();

  /** Takes one record (a logtape sink). */
  add(record: LogRecord): void {
    this.lines.push(record.message.map((part) => String(part)).join(""));
    for (const wake of this.#waiters) wake();
  }

  /** Resolves with the first line that matches (bounded). */
  waitFor(pattern: RegExp, ms = WAIT_MS): Promise<string> {
    const found = () => this.lines.find((line) => pattern.test(line));
    const now = found();
    if (now !== undefined) return Promise.resolve(now);
    let wake!: () => void;
    const seen = new Promise<string>((resolve) => {
      wake = () => {
        const line = found();
        if (line !== undefined) resolve(line);
      };
      this.#waiters.add(wake);
    });
    return within(seen, ms, `a log line matching ${pattern}`).finally(() =>
      this.#waiters.delete(wake)
    );
  }
}

/**
 * Runs `body` with linesock's logs under `category`, down to `level`, captured in a {@linkcode Logs}.
 * @param category The logger category (`["linesock"]`, `["linesock", "server"]`).
 * @param level The lowest level kept.
 * @param body The test.
 */
export async function withLogs(
  category: string[],
  level: LogLevel,
  body: (logs: Logs) => Promise<void>,
): Promise<void> {
  const logs = new Logs();
  await configure({
    sinks: { memory: (record) => logs.add(record) },
    loggers: [
      { category, lowestLevel: level, sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    await body(logs);
  } finally {
    await reset();
  }
}

/**
 * The result of a `linesock bench` run as `--json` prints it ({@linkcode BenchResult}: the engine's
 * report with what was run, against what, and when), and reading such files back for
 * `--compare` ({@linkcode readResult}).
 *
 * @module
 */
import { UsageError } from "../_cli/spec.ts";
import type { BenchReport } from "./engine.ts";

/** The version of the result's format; a reader refuses newer ones. */
export const RESULT_FORMAT = 1;

/** A run, as `--json` prints it and `--compare` reads it. */
export interface BenchResult extends BenchReport {
  /** Always `"linesock bench"`. */
  tool: "linesock bench";
  /** {@linkcode RESULT_FORMAT}. */
  format: number;
  /** The run's name in reports (`--label`). */
  label: string;
  /** The server, as `serve` prints it. */
  target: string;
  /** Whether the connections used TLS. */
  tls: boolean;
  /** When the run started (ISO 8601). */
  startedAt: string;
  /** What was sent: the first few request lines, how many there are, their expected reply. */
  workload: { requests: string[]; requestCount: number; reply: string; greetingLines: number };
}

/**
 * Reads a result written by `linesock bench --json`.
 * @param path The file.
 * @returns The result.
 * @throws {UsageError} When the file cannot be read or is not such a result.
 */
export async function readResult(path: string): Promise<BenchResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not JSON (write it with linesock bench --json > ${path})`);
  }
  const result = value as Partial<BenchResult> | null;
  if (
    typeof result !== "object" || result === null || result.tool !== "linesock bench" ||
    !Array.isArray(result.intervals) || !Array.isArray(result.distribution) ||
    typeof result.latencyMs !== "object"
  ) {
    throw new UsageError(`${path} is not a result of linesock bench --json`);
  }
  if (typeof result.format !== "number" || result.format > RESULT_FORMAT) {
    throw new UsageError(
      `${path} was written by a newer linesock (result format ${result.format}): upgrade to read it`,
    );
  }
  return result as BenchResult;
}

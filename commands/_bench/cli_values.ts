/**
 * Option values of the load commands (`bench`, `echo-test --load`): line sizes or ranges of them,
 * rates, and durations that must be above zero. Each parser throws an
 * {@linkcode InvalidArgumentError} whose message says what was expected.
 *
 * @example Values
 * ```ts
 * import { parseRate, parseSizeRange } from "./cli_values.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSizeRange("16..1KiB"), { min: 16, max: 1024 });
 * assert.equal(parseRate("2.5k"), 2500);
 * assert.throws(() => parseRate("0"), /above 0/);
 * ```
 *
 * @module
 */
import { InvalidArgumentError, parseByteSize, parseDuration } from "../_cli.ts";
import type { LineSizeRange } from "../_echo_test/_load_tape.ts";

/**
 * A line size, or a range such as `16..1024`.
 * @param text The value.
 * @returns The smallest and largest size, `\n` included.
 */
export function parseSizeRange(text: string): LineSizeRange {
  const [low, high, ...rest] = text.split("..");
  if (rest.length > 0 || low === undefined) {
    throw new InvalidArgumentError("expected a size or a range such as 16..1024");
  }
  const min = parseByteSize(low);
  const max = high === undefined ? min : parseByteSize(high);
  if (min < 1) throw new InvalidArgumentError("a line has at least 1 byte (its \\n)");
  if (max < min) throw new InvalidArgumentError("the range's end is below its start");
  return { min, max };
}

/**
 * A rate per second: a number above 0, with an optional `k` (thousands) or `M` (millions).
 * @param text The value.
 * @returns The rate.
 */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  const rate = match ? Number(match[1]) * ({ k: 1e3, m: 1e6 }[match[2]!.toLowerCase()] ?? 1) : NaN;
  if (!(rate > 0)) {
    throw new InvalidArgumentError("expected a rate per second above 0, such as 5000 or 10k");
  }
  return rate;
}

/**
 * A duration above zero.
 * @param text The value.
 * @returns Milliseconds.
 */
export function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms <= 0) throw new InvalidArgumentError("expected a duration above 0, such as 500ms or 5s");
  return ms;
}

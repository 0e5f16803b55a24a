/**
 * Internal: the counters of a server's life, zeroed and added up (one server, or the workers of a
 * pool), and counted by kind.
 *
 * @module
 */
import type { ServerStats } from "./serve.ts";

/** Counters that are all zero. */
export function emptyStats(): ServerStats {
  return {
    connections: 0,
    open: 0,
    linesIn: 0,
    linesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    errors: 0,
    acceptErrors: 0,
    workerRestarts: 0,
  };
}

/**
 * Adds `more` to `total`, in place.
 * @returns `total`.
 */
export function addStats(total: ServerStats, more: Readonly<ServerStats>): ServerStats {
  total.connections += more.connections;
  total.open += more.open;
  total.linesIn += more.linesIn;
  total.linesOut += more.linesOut;
  total.bytesIn += more.bytesIn;
  total.bytesOut += more.bytesOut;
  total.errors += more.errors;
  total.acceptErrors += more.acceptErrors;
  total.workerRestarts += more.workerRestarts;
  return total;
}

/** Adds one to `counts[kind]` (errors or refusals by kind). */
export function countKind(counts: Record<string, number>, kind: string): void {
  counts[kind] = (counts[kind] ?? 0) + 1;
}

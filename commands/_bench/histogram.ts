/**
 * Latency histograms for the load engine: HdrHistogram (`hdr-histogram-js`, loaded only when a
 * load runs) recording microseconds with 3 significant digits up to an hour, read back as
 * percentiles in milliseconds, and written in HdrHistogram's percentile distribution format (the
 * `.hgrm` text its plotter and wrk2 use, values in milliseconds).
 *
 * @example Record, summarise, distribute
 * ```ts
 * import { loadHistograms } from "./histogram.ts";
 * import assert from "node:assert/strict";
 *
 * const create = await loadHistograms();
 * const histogram = create();
 * for (let us = 1; us <= 1000; us++) histogram.record(us, 1);
 * const summary = histogram.summary();
 * assert.equal(summary.count, 1000);
 * assert.equal(summary.p50, 0.5);
 * assert.equal(summary.max, 1);
 * assert.match(histogram.hgrm(), /^       Value     Percentile TotalCount 1\/\(1-Percentile\)\n\n/);
 * assert.deepEqual(histogram.distribution().at(-1), [1, 1, 1000]);
 * histogram.destroy();
 * ```
 *
 * @module
 */

/** Latency percentiles in milliseconds (0 when nothing was recorded). */
export interface LatencySummary {
  /** How many latencies were recorded. */
  count: number;
  /** The smallest. */
  min: number;
  /** The mean. */
  mean: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** The largest. */
  max: number;
}

/** One row of a percentile distribution: value in ms, percentile from 0 to 1, count up to it. */
export type DistributionRow = [valueMs: number, percentile: number, totalCount: number];

/** A latency histogram. */
export interface LatencyHistogram {
  /** Records `count` latencies of `us` microseconds (clamped to 1 µs … 1 h). */
  record(us: number, count: number): void;
  /** How many latencies were recorded. */
  readonly count: number;
  /** The percentiles. */
  summary(): LatencySummary;
  /** The percentile distribution (HdrHistogram's rows, 5 ticks per half distance). */
  distribution(): DistributionRow[];
  /** The distribution in HdrHistogram's `.hgrm` format, values in milliseconds. */
  hgrm(): string;
  /** Adds every latency of another histogram. */
  add(other: LatencyHistogram): void;
  /** Forgets every latency. */
  reset(): void;
  /** Frees it. */
  destroy(): void;
}

/** Microseconds; latencies up to an hour are tracked. */
const HIGHEST_TRACKABLE_US = 3_600_000_000;

/** The part of an hdr-histogram-js histogram used here. */
interface HdrHistogram {
  recordValueWithCount(value: number, count: number): void;
  getValueAtPercentile(percentile: number): number;
  outputPercentileDistribution(ticks?: number, scaling?: number): string;
  readonly maxValue: number;
  readonly minNonZeroValue: number;
  readonly mean: number;
  readonly totalCount: number;
  add(other: HdrHistogram): void;
  reset(): void;
  destroy(): void;
}

/**
 * Loads the histogram library.
 * @returns A function that makes histograms.
 */
export async function loadHistograms(): Promise<() => LatencyHistogram> {
  const { build } = await import("hdr-histogram-js");
  return () =>
    wrap(
      build({
        lowestDiscernibleValue: 1,
        highestTrackableValue: HIGHEST_TRACKABLE_US,
        numberOfSignificantValueDigits: 3,
      }) as unknown as HdrHistogram,
    );
}

const ms = (us: number) => Math.round(us) / 1000;

const inner = new WeakMap<LatencyHistogram, HdrHistogram>();

function wrap(h: HdrHistogram): LatencyHistogram {
  const histogram: LatencyHistogram = {
    record(us, count) {
      h.recordValueWithCount(Math.min(HIGHEST_TRACKABLE_US, Math.max(1, Math.round(us))), count);
    },
    get count() {
      return h.totalCount;
    },
    summary() {
      if (h.totalCount === 0) {
        return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
      }
      return {
        count: h.totalCount,
        min: ms(h.minNonZeroValue),
        mean: ms(h.mean),
        p50: ms(h.getValueAtPercentile(50)),
        p90: ms(h.getValueAtPercentile(90)),
        p99: ms(h.getValueAtPercentile(99)),
        p999: ms(h.getValueAtPercentile(99.9)),
        max: ms(h.maxValue),
      };
    },
    distribution() {
      if (h.totalCount === 0) return [];
      const rows: DistributionRow[] = [];
      for (const line of h.outputPercentileDistribution(5, 1000).split("\n")) {
        const match = /^\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+)/.exec(line);
        if (match) rows.push([Number(match[1]), Number(match[2]), Number(match[3])]);
      }
      return rows;
    },
    hgrm() {
      return h.outputPercentileDistribution(5, 1000);
    },
    add(other) {
      h.add(inner.get(other)!);
    },
    reset() {
      h.reset();
    },
    destroy() {
      h.destroy();
    },
  };
  inner.set(histogram, h);
  return histogram;
}

/**
 * `linesock echo-test`: the conformance suite ({@linkcode runEchoConformance}) or, with `--load` or
 * any load option, a verified load ({@linkcode runEchoLoad}: `linesock bench`'s engine with echo
 * verification, the same as `linesock bench --echo`) against an echo server; with no target, against
 * linesock's own echo server started in-process. This file only parses options and prints.
 *
 * @module
 */
import type { CommandSpec, Parsed } from "./_cli/spec.ts";
import { colorWanted } from "./_cli/color.ts";
import { DEFAULT_HOST, formatAddress } from "../lib/address.ts";
import {
  ECHO_CASE_NAMES,
  type EchoCaseResult,
  type EchoConformanceReport,
  MIN_BUFFER_SIZE,
  runEchoConformance,
} from "./_echo_test/conformance.ts";
import {
  describeEchoTarget,
  type EchoTarget,
  type EmbeddedEcho,
  openEchoConnection,
  startEmbeddedEcho,
} from "./_echo_test/echo_target.ts";
import {
  type EchoLoadProgress,
  type EchoLoadReport,
  type LineSizeRange,
  runEchoLoad,
} from "./_echo_test/load_generator.ts";
import {
  connectTimeoutOption,
  ExitCode,
  InvalidArgumentError,
  parseByteSize,
  parsePositive,
  UsageError,
} from "./_cli.ts";
import { NORMAL, QUIET, TRACE, traceMs, VERBOSE, verbosityOf } from "./_verbosity.ts";
import type { BenchResult } from "./_bench/result.ts";
import { parsePositiveDuration, parseRate, parseSizeRange } from "./_bench/cli_values.ts";
import {
  hasTarget,
  takeTarget,
  TARGET_ALIASES,
  TARGET_ARGUMENT,
  TARGET_PORT_ARGUMENT,
  targetFromFlags,
  targetOptions,
} from "./_client_target.ts";
import { resolveTls, TLS_OPTIONS, type TlsFlags } from "./_tls.ts";

/** Parsed options of `echo-test`. */
interface EchoTestOptions extends TlsFlags {
  host?: string;
  port?: number;
  unix?: string;
  case: string[];
  skip: string[];
  bufferSize: number;
  clients: number;
  strictBytes?: boolean;
  timeout: number;
  load?: boolean;
  connections?: number;
  lines?: number;
  duration?: number;
  size?: LineSizeRange;
  pipeline?: number;
  rate?: number;
  json?: boolean;
  /** The --connect-timeout, or else the --timeout. */
  connectTimeout: number;
  quiet?: boolean;
  verbose?: number;
}

const LOAD_OPTIONS = ["connections", "lines", "duration", "size", "pipeline", "rate"] as const;

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock echo-test`. */
export const spec: CommandSpec = {
  name: "echo-test",
  summary: "Test a line-echo server: conformance cases, or a verified load (--load)",
  args: [TARGET_ARGUMENT, TARGET_PORT_ARGUMENT],
  options: [
    ...targetOptions("test the echo server on this Unix socket"),
    ...TLS_OPTIONS,
    // As in the other clients, but by default the --timeout, which bounded connecting before.
    { ...connectTimeoutOption(), default: undefined, defaultText: "the --timeout" },
    {
      long: "case",
      value: "NAMES",
      help: "run only these cases (comma-separated, repeatable)",
      parse: caseNames,
      multiple: true,
      complete: ECHO_CASE_NAMES,
    },
    {
      long: "skip",
      value: "NAMES",
      help: "leave these cases out (comma-separated, repeatable)",
      parse: caseNames,
      multiple: true,
      complete: ECHO_CASE_NAMES,
    },
    {
      long: "buffer-size",
      value: "SIZE",
      help: "the buffer size the cases are built around",
      parse: parseBufferSize,
      default: 4096,
    },
    {
      long: "clients",
      value: "N",
      help: "clients of the concurrent-clients case",
      parse: parsePositive,
      default: 8,
    },
    { long: "strict-bytes", help: "a failing invalid-utf8 case fails the run (otherwise: WARN)" },
    {
      long: "timeout",
      value: "DURATION",
      help: "time budget of each case; in load mode, longest wait for an echo before lines count " +
        "as lost",
      parse: parsePositiveDuration,
      default: 5000,
      defaultText: "5s",
    },
    { long: "load", help: "load mode: measure throughput and latency, verifying every byte" },
    {
      long: "connections",
      short: "c",
      value: "N",
      help: "load: connections (default: 4)",
      parse: parsePositive,
    },
    {
      long: "count",
      short: "n",
      value: "N",
      help: "load: lines in total (default: 100000)",
      parse: parsePositive,
    },
    {
      long: "duration",
      short: "d",
      value: "DURATION",
      help: "load: send for this long instead",
      parse: parsePositiveDuration,
    },
    {
      long: "size",
      short: "s",
      value: "SIZE",
      help: "load: bytes per line with its \\n, or a range such as 16..1024 (default: 64)",
      parse: parseSizeRange,
    },
    {
      long: "pipeline",
      short: "P",
      value: "N",
      help: "load: lines in flight per connection; 1 is request/response (default: 1)",
      parse: parsePositive,
    },
    {
      long: "rate",
      short: "r",
      value: "LINES/S",
      help: "load: pace sending to this many lines per second in total",
      parse: parseRate,
    },
    { long: "json", help: "print one JSON object (for machines)" },
  ],
  aliases: [...TARGET_ALIASES, { name: "--lines", of: "count" }, { name: "-k", of: "pipeline" }],
  examples: [],
  notes: `Cases: ${ECHO_CASE_NAMES.join(", ")}.
invalid-utf8 is the optional "bytes" class: a failure is WARN (exit 0) unless --strict-bytes.

Saying less or more (not with --json, whose report is the same):
  -q    only what failed: the FAIL rows (load: the FAILED line and its errors); a pass: nothing
  -v    under each case, what it sends and checks, its connections and bytes (load: the run
        second by second)
  -vv   also each connection of each case: connect time, bytes and writes sent, bytes and reads
        received, when the last byte came (load: the latency distribution too)

Exit statuses: 0 every selected case passed (load: every line came back exactly), 1 a case failed
(load: lines lost or corrupted), 2 usage, 3 cannot connect (also: TLS certificate not accepted).

Examples:
  linesock echo-test                              conformance of linesock's own echo server
  linesock echo-test --port 7000 --case crlf-preserved,one-byte-at-a-time
  linesock echo-test --unix /run/echo.sock --json
  linesock echo-test --host localhost --port 7000 --ca ca.pem   over TLS, trusting a private CA
  linesock echo-test --port 7000 --load -c 8 -P 64 -d 10s -s 16..1024
  linesock echo-test --port 7000 --rate 10000 -d 30s   latency under a fixed load`,
};

/**
 * Runs `linesock echo-test`.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const options = parsed.options as unknown as Omit<EchoTestOptions, "connectTimeout"> & {
    connectTimeout?: number;
    count?: number;
    case?: string[][];
    skip?: string[][];
  };
  const rest = takeTarget(options, parsed.args);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  return await runEchoTest({
    ...options,
    connectTimeout: options.connectTimeout ?? options.timeout,
    case: (options.case ?? []).flat(),
    skip: (options.skip ?? []).flat(),
    ...(options.count !== undefined ? { lines: options.count } : {}),
  });
}

function caseNames(value: string): string[] {
  const names = value.split(",").map((name) => name.trim()).filter((name) => name !== "");
  const known = new Set<string>(ECHO_CASE_NAMES);
  for (const name of names) {
    if (!known.has(name)) {
      throw new InvalidArgumentError(
        `unknown case "${name}"; the cases are: ${ECHO_CASE_NAMES.join(", ")}`,
      );
    }
  }
  return names;
}

function parseBufferSize(text: string): number {
  const size = parseByteSize(text);
  if (size < MIN_BUFFER_SIZE) {
    throw new InvalidArgumentError(`expected at least ${MIN_BUFFER_SIZE} bytes`);
  }
  return size;
}

async function runEchoTest(options: EchoTestOptions): Promise<number> {
  const loadMode = options.load === true ||
    LOAD_OPTIONS.some((name) => options[name] !== undefined);
  if (loadMode && (options.case.length > 0 || options.skip.length > 0)) {
    throw new UsageError("--case and --skip select conformance cases; they do not apply to --load");
  }
  if (options.lines !== undefined && options.duration !== undefined) {
    throw new UsageError("give --count or --duration, not both");
  }
  const remote = hasTarget(options);
  const resolved = targetFromFlags(options);
  const tls = await resolveTls(options, "path" in resolved);
  if (tls && !remote) {
    throw new UsageError(
      "TLS needs a target (--host/--port): linesock's own in-process echo server is plain TCP",
    );
  }
  let embedded: EmbeddedEcho | undefined;
  let target: EchoTarget;
  if ("path" in resolved) {
    target = { path: resolved.path };
  } else if (remote) {
    target = { ...resolved, ...(tls ? { tls } : {}) };
  } else {
    embedded = await startEmbeddedEcho();
    target = embedded.target;
  }
  try {
    return loadMode
      ? await runLoad(options, target, embedded !== undefined)
      : await runConformance(options, target, embedded !== undefined);
  } finally {
    await embedded?.[Symbol.asyncDispose]();
  }
}

function targetUrl(target: EchoTarget): string {
  return target.path !== undefined ? `unix://${target.path}` : formatAddress({
    transport: "tcp",
    hostname: target.hostname ?? DEFAULT_HOST,
    port: target.port,
  });
}

/** How the connections are secured, for the heading: empty for plain connections. */
function tlsNote(target: EchoTarget): string {
  if (!target.tls) return "";
  return target.tls !== true && target.tls.insecure
    ? " over TLS (certificate NOT verified)"
    : " over TLS";
}

async function runConformance(
  options: EchoTestOptions,
  target: EchoTarget,
  embedded: boolean,
): Promise<number> {
  const nameWidth = Math.max(...ECHO_CASE_NAMES.map((name) => name.length));
  const color = !options.json && colorWanted(Deno.stdout.isTerminal());
  // --json is one report whatever the verbosity; for people, -q leaves the failures only.
  const verbosity = options.json ? NORMAL : verbosityOf(options);
  // A server that cannot be reached is one error line (exit 3), not a table header and then that.
  if (!embedded) (await openEchoConnection(target, options.connectTimeout)).close();
  if (!options.json && verbosity >= NORMAL) {
    console.log(
      `echo-test ${targetUrl(target)}${tlsNote(target)}${
        embedded ? " (linesock's own echo server)" : ""
      }, ` +
        `buffer size ${options.bufferSize}, timeout ${options.timeout} ms per case`,
    );
    console.log(
      `${"RESULT".padEnd(6)}  ${"CASE".padEnd(nameWidth)}  ${"TIME".padStart(8)}  REASON`,
    );
  }
  const report: EchoConformanceReport = await runEchoConformance({
    target,
    bufferSize: options.bufferSize,
    timeoutMs: options.timeout,
    clients: options.clients,
    cases: options.case,
    skip: options.skip,
    strictBytes: options.strictBytes ?? false,
    connectTimeoutMs: options.connectTimeout,
    detail: verbosity >= VERBOSE,
    ...(options.json ? {} : {
      onResult: (result: EchoCaseResult) => {
        if (verbosity === QUIET && result.status !== "fail") return;
        console.log(formatRow(result, nameWidth, color));
        for (const line of formatDetail(result, verbosity)) console.log(line);
      },
    }),
  });
  const counts = { pass: 0, fail: 0, warn: 0 };
  for (const result of report.results) counts[result.status]++;
  if (options.json) {
    console.log(JSON.stringify({
      mode: "conformance",
      target: targetUrl(target),
      tls: Boolean(target.tls),
      embedded,
      bufferSize: options.bufferSize,
      timeoutMs: options.timeout,
      strictBytes: options.strictBytes ?? false,
      passed: report.passed,
      counts,
      results: report.results,
    }));
  } else if (verbosity >= NORMAL) {
    console.log(
      `${report.passed ? "PASSED" : "FAILED"}: ${counts.pass} passed, ${counts.fail} failed, ` +
        `${counts.warn} warned (of ${report.results.length} cases, against ${
          describeEchoTarget(target)
        })`,
    );
  }
  return report.passed ? ExitCode.ok : 1;
}

/** The lines under a case's row: `-v` what it did, `-vv` each connection too. */
function formatDetail(result: EchoCaseResult, verbosity: number): string[] {
  const detail = result.detail;
  if (detail === undefined || verbosity < VERBOSE) return [];
  const indent = " ".repeat(8);
  const sum = (key: "bytesSent" | "bytesReceived") =>
    detail.connections.reduce((total, connection) => total + connection[key], 0);
  const count = detail.connections.length;
  const lines = [
    `${indent}${detail.description}; ${count} connection${count === 1 ? "" : "s"}, ` +
    `${sum("bytesSent")} bytes sent, ${sum("bytesReceived")} received`,
  ];
  if (verbosity >= TRACE) {
    for (const [index, connection] of detail.connections.entries()) {
      lines.push(
        `${indent}  connection ${index + 1}: connected in ${traceMs(connection.connectMs)}; ` +
          `${connection.bytesSent} bytes in ${connection.writes} write(s); ` +
          `${connection.bytesReceived} bytes in ${connection.reads} read(s)` +
          (connection.lastByteMs === null
            ? "; nothing came back"
            : `; last byte ${traceMs(connection.lastByteMs)} after connecting`),
      );
    }
  }
  return lines;
}

function formatRow(result: EchoCaseResult, nameWidth: number, color: boolean): string {
  const label = result.status.toUpperCase();
  const painted = !color
    ? label.padEnd(6)
    : `\x1b[${result.status === "pass" ? 32 : result.status === "fail" ? 31 : 33}m${
      label.padEnd(6)
    }\x1b[0m`;
  return `${painted}  ${result.name.padEnd(nameWidth)}  ${
    `${result.durationMs} ms`.padStart(8)
  }  ${result.reason}`.trimEnd();
}

async function runLoad(
  options: EchoTestOptions,
  target: EchoTarget,
  embedded: boolean,
): Promise<number> {
  const size = options.size ?? { min: 64, max: 64 };
  const verbosity = options.json ? NORMAL : verbosityOf(options);
  const progressLine = Deno.stderr.isTerminal() && !options.quiet;
  const encoder = new TextEncoder();
  const stopping = new AbortController();
  const onInterrupt = () => stopping.abort();
  Deno.addSignalListener("SIGINT", onInterrupt);
  let report: EchoLoadReport;
  try {
    report = await runEchoLoad({
      target,
      connections: options.connections ?? 4,
      ...(options.duration !== undefined
        ? { durationMs: options.duration }
        : { lines: options.lines ?? 100_000 }),
      size,
      pipeline: options.pipeline ?? 1,
      rate: options.rate ?? 0,
      timeoutMs: options.timeout,
      connectTimeoutMs: options.connectTimeout,
      signal: stopping.signal,
      ...(progressLine
        ? {
          onProgress: (progress: EchoLoadProgress) =>
            Deno.stderr.writeSync(encoder.encode(`\r${formatProgress(progress)}\x1b[K`)),
        }
        : {}),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    if (progressLine) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
  }
  if (options.json) {
    // Its figures as they were; the per-second and distribution tables are for people (-v, -vv).
    const { intervals: _intervals, distribution: _distribution, ...figures } = report;
    console.log(JSON.stringify({
      mode: "load",
      target: targetUrl(target),
      tls: Boolean(target.tls),
      embedded,
      ...figures,
    }));
  } else if (verbosity === QUIET) {
    // Errors only: nothing when every line came back exactly.
    if (!report.passed) console.log(formatLoadFailure(report));
  } else {
    const { formatDistribution, formatIntervals } = await import("./_bench/table.ts");
    // The tables read only these fields of a bench result.
    const tables = {
      intervals: report.intervals,
      distribution: report.distribution,
    } as BenchResult;
    console.log(
      formatLoadReport(report, targetUrl(target) + tlsNote(target), embedded) +
        (verbosity >= VERBOSE ? `\n${formatIntervals(tables)}` : "") +
        (verbosity >= TRACE ? `\n${formatDistribution(tables)}` : ""),
    );
  }
  return report.passed ? ExitCode.ok : 1;
}

function formatProgress(progress: EchoLoadProgress): string {
  const width = 24;
  const filled = Math.round(progress.fraction * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  return `[${bar}] ${Math.floor(progress.fraction * 100)}%  ${
    Math.round(progress.currentLinesPerSecond).toLocaleString("en-US")
  } lines/s  ${progress.linesReceived.toLocaleString("en-US")} echoed  ${progress.errors} errors`;
}

/** `-q` and a failed load: the one line of counts, then the errors. */
function formatLoadFailure(report: EchoLoadReport): string {
  return [
    `FAILED: ${report.linesLost} lost, ${report.linesMismatched} mismatched of ` +
    `${report.linesSent} lines sent; ${report.errorCount} errors`,
    ...report.errors.map((error) => `  ${error}`),
  ].join("\n");
}

function formatLoadReport(report: EchoLoadReport, url: string, embedded: boolean): string {
  const sizes = report.size.min === report.size.max
    ? `${report.size.min}-byte lines`
    : `${report.size.min}..${report.size.max}-byte lines`;
  const latency = report.latencyMs;
  const lines = [
    `echo load ${url}${embedded ? " (linesock's own echo server)" : ""}: ${report.connections} ` +
    `connections, pipeline ${report.pipeline}, ${sizes}, ${
      report.rate > 0 ? `paced at ${report.rate} lines/s` : "unpaced"
    }`,
    `lines     ${report.linesSent} sent, ${report.linesReceived} echoed, ${report.linesMismatched} ` +
    `mismatched, ${report.linesLost} lost, in ${(report.elapsedMs / 1000).toFixed(3)} s`,
    `rate      ${report.linesPerSecond.toLocaleString("en-US")} lines/s, ${
      report.sentMBps.toFixed(2)
    } MB/s sent, ${report.receivedMBps.toFixed(2)} MB/s received`,
    `latency   p50 ${latency.p50} ms, p90 ${latency.p90} ms, p99 ${latency.p99} ms, p99.9 ${latency.p999} ms, max ${latency.max} ms`,
    `errors    ${report.errorCount}`,
    ...report.errors.map((error) => `  ${error}`),
    report.passed ? "PASSED" : "FAILED",
  ];
  return lines.join("\n");
}

/**
 * `linesock bench`: load and latency for any line server (docs/bench.md). It sends request lines
 * (`-m`, a file, a `linesock test` conversation file, or echo-test's generated lines), verifies every
 * reply against what is expected, and reports throughput, latency percentiles and errors by kind:
 * as a table, as JSON with per-second intervals (`--json`), in HdrHistogram's percentile format
 * (`--hgrm`), and as a self-contained HTML page (`--report`), also for saved runs side by side
 * (`--compare`). The load itself is the engine of commands/_bench/engine.ts; this file turns
 * options into a call of it and writes what it returns.
 *
 * @module
 */
import type { CommandSpec, Parsed } from "./_cli/spec.ts";
import {
  connectTimeoutOption,
  ExitCode,
  parseByteSize,
  parseCount,
  parsePositive,
} from "./_cli.ts";
import { UsageError } from "./_cli/spec.ts";
import { formatTarget } from "./_cli/address_args.ts";
import {
  takeTarget,
  TARGET_ALIASES,
  TARGET_ARGUMENT,
  targetFromFlags,
  targetOptions,
} from "./_client_target.ts";
import { resolveTls, TLS_OPTIONS, type TlsFlags } from "./_tls.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../lib/framing/line_framer.ts";
import { parsePositiveDuration, parseRate, parseSizeRange } from "./_bench/cli_values.ts";
import type { LineSizeRange } from "./_echo_test/_load_tape.ts";

/** Parsed options of `bench`. */
interface BenchFlags extends TlsFlags {
  host?: string;
  port?: number;
  unix?: string;
  connectTimeout: number;
  message?: string[];
  file?: string;
  conversation?: string;
  echo?: boolean;
  size?: LineSizeRange;
  crlf?: boolean;
  greetingLines?: number;
  expect?: string[];
  expectRe?: string[];
  expectJson?: string[];
  expectLines?: number;
  connections: number;
  pipeline: number;
  rate?: number;
  churn?: boolean;
  count?: number;
  duration?: number;
  warmup: number;
  timeout: number;
  maxLine: number;
  json?: boolean;
  hgrm?: string;
  report?: string;
  label?: string;
  compare?: boolean;
  quiet?: boolean;
  verbose?: number;
}

/** The options that make sense with `--compare` (which runs no load). */
const COMPARE_OPTIONS = new Set(["compare", "report", "quiet", "verbose"]);

/** The runner main.ts calls (this module's own copy in the bundled build). */
export { runSubcommand } from "./_cli/run_subcommand.ts";

/** The definition of `linesock bench`. */
export const spec: CommandSpec = {
  name: "bench",
  summary: "Load and latency for any line server: every reply verified, tables, JSON, HTML reports",
  args: [
    TARGET_ARGUMENT,
    {
      name: "RESULT",
      help: "with --compare: result files written by --json",
      variadic: true,
      complete: "file",
    },
  ],
  options: [
    ...targetOptions(),
    ...TLS_OPTIONS,
    connectTimeoutOption(),
    {
      long: "message",
      short: "m",
      value: "LINE",
      help: "a request line (repeatable: round-robin); see ${seq} and ${conn} below",
      multiple: true,
    },
    {
      long: "file",
      short: "f",
      value: "PATH",
      help: "request lines from a file, one a line (round-robin)",
      complete: "file",
    },
    {
      long: "conversation",
      value: "FILE",
      help: "requests and their expected replies from a linesock test file",
      complete: "file",
    },
    {
      long: "echo",
      help: "each reply is the line sent; alone: random lines of --size",
    },
    {
      long: "size",
      short: "s",
      value: "SIZE",
      help: "--echo alone: bytes per line, or a range such as 16..1024 (default: 64)",
      parse: parseSizeRange,
    },
    { long: "crlf", help: "end requests with \\r\\n and expect replies that end in \\r\\n" },
    {
      long: "greeting-lines",
      value: "N",
      help: "lines each new connection receives before it sends (not timed)",
      parse: parseCount,
    },
    {
      long: "expect",
      value: "LINE",
      help: "the reply is exactly this line (one for all, or one per -m)",
      multiple: true,
    },
    {
      long: "expect-re",
      value: "REGEX",
      help: "the reply matches this regular expression (one for all, or one per -m)",
      multiple: true,
    },
    {
      long: "expect-json",
      value: "JSON",
      help: "the reply is JSON with (at least) these fields (one for all, or one per -m)",
      multiple: true,
    },
    {
      long: "expect-lines",
      value: "N",
      help: "the reply is N lines, whatever they say (default: 1, any one line)",
      parse: parsePositive,
    },
    {
      long: "connections",
      short: "c",
      value: "N",
      help: "connections (--churn: connections at once)",
      parse: parsePositive,
      default: 4,
    },
    {
      long: "pipeline",
      short: "P",
      value: "N",
      help: "requests in flight per connection, at most; 1 is request/response",
      parse: parsePositive,
      default: 1,
    },
    {
      long: "rate",
      short: "r",
      value: "N",
      help: "open loop: N requests/s in all (--churn: connections/s), timed from when due",
      parse: parseRate,
    },
    { long: "churn", help: "a new connection for every request (connect, request, reply, close)" },
    {
      long: "count",
      short: "n",
      value: "N",
      help: "requests to measure (default: 100000, unless --duration)",
      parse: parsePositive,
    },
    {
      long: "duration",
      short: "d",
      value: "DURATION",
      help: "measure for this long instead of --count",
      parse: parsePositiveDuration,
    },
    {
      long: "warmup",
      short: "w",
      value: "DURATION",
      help: "run the load this long first, without measuring it",
      parse: (text) => parseDurationOrZero(text),
      default: 0,
      defaultText: "none",
    },
    {
      long: "timeout",
      value: "DURATION",
      help: "no reply for this long with requests in flight: stalled (exit 4)",
      parse: parsePositiveDuration,
      default: 5000,
      defaultText: "5s",
    },
    {
      long: "max-line",
      value: "SIZE",
      help: "longest reply line",
      parse: parseByteSize,
      default: DEFAULT_MAX_LINE_BYTES,
      defaultText: "1MiB",
    },
    {
      long: "json",
      help: "print the result as one JSON object, with per-second intervals",
    },
    {
      long: "hgrm",
      value: "FILE",
      help: "write the latency distribution in HdrHistogram's percentile format (ms)",
      complete: "file",
    },
    {
      long: "report",
      value: "FILE",
      help: "write an HTML report: one page, no network, charts",
      complete: "file",
    },
    { long: "label", value: "NAME", help: "this run's name in reports (default: its settings)" },
    {
      long: "compare",
      help: "no load: saved results (RESULT …) side by side, as a table and --report",
    },
  ],
  aliases: TARGET_ALIASES,
  examples: [
    ["linesock bench -m PING --expect PONG", "closed loop against tcp://127.0.0.1:1991"],
    ["linesock bench -c 8 -P 32 -d 10s -m PING --expect PONG", "8 connections, 32 in flight each"],
    ["linesock bench -r 20k -d 30s -m PING --expect PONG", "fixed rate: latency without omission"],
    ["linesock bench --conversation login.conv --churn -r 200", "connection churn"],
    ["linesock bench --echo -s 16..1024 -P 64 -d 10s", "an echo server, every byte verified"],
    ["linesock bench -m PING -d 10s --json > a.json", "a result to compare later"],
    ["linesock bench --compare a.json b.json --report ab.html", "two runs side by side"],
  ],
  notes: `Requests: -m (repeatable, round-robin), --file, --conversation, or --echo alone. Expected
replies: --expect, --expect-re, --expect-json, --expect-lines or --echo; one for every request, or
one per -m in order; a conversation file mixes them request by request. Every reply is verified;
wrong ones are counted and the first few shown. In requests and expected replies, \${seq} and
\${conn} are the request's and the connection's number (1, 2, …):
  linesock bench -m '{"command":"ping","id":\${seq}}' --expect-json '{"id":\${seq}}'

Closed loop (default): each connection keeps up to -P requests in flight. Open loop (-r): requests
leave on a fixed schedule whatever the server does, and latency counts from when each was due
(coordinated omission corrected, as in wrk2). Churn (--churn): a new connection per request.

Exit statuses: 0 every reply right, 1 wrong replies or failed connections, 2 usage, 3 cannot
connect, 4 a connection stalled (timed out), 130 interrupted (Ctrl-C: the partial results and
files are still written).`,
};

function parseDurationOrZero(text: string): number {
  return text.trim() === "0" ? 0 : parsePositiveDuration(text);
}

/**
 * Runs `linesock bench`.
 * @param parsed The parsed command line.
 * @returns The exit status.
 */
export async function run(parsed: Parsed): Promise<number> {
  const flags = parsed.options as unknown as BenchFlags;
  if (flags.compare) return await runCompare(parsed, flags);
  const rest = takeTarget(flags, parsed.args);
  if (rest.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(rest[0])} (result files go with --compare; ` +
        "request lines with -m)",
    );
  }
  return await runLoad(parsed, flags);
}

async function runLoad(parsed: Parsed, flags: BenchFlags): Promise<number> {
  if (flags.count !== undefined && flags.duration !== undefined) {
    throw new UsageError("give --count or --duration, not both");
  }
  if (flags.churn && parsed.given.has("pipeline")) {
    throw new UsageError("--churn sends one request per connection: -P does not apply");
  }
  for (const option of ["report", "hgrm"] as const) {
    if (flags[option] !== undefined) await checkWritable(flags[option], `--${option}`);
  }
  const [{ workloadFromOptions }, { runBench }, { describeReply, replyLines }] = await Promise.all([
    import("./_bench/sources.ts"),
    import("./_bench/engine.ts"),
    import("./_bench/expectation.ts"),
  ]);
  const workload = await workloadFromOptions(flags);
  const resolved = targetFromFlags(flags);
  const tls = await resolveTls(flags, "path" in resolved);
  const target = "path" in resolved ? { path: resolved.path } : {
    hostname: resolved.hostname,
    port: resolved.port,
    ...(tls ? { tls } : {}),
  };
  const url = "path" in resolved
    ? formatTarget({ kind: "unix", path: resolved.path })
    : formatTarget({ kind: "tcp", hostname: resolved.hostname, port: resolved.port, tls: !!tls });

  const stopping = new AbortController();
  const aborting = new AbortController();
  let interrupts = 0;
  let grace: ReturnType<typeof setTimeout> | undefined;
  const onInterrupt = () => {
    // First Ctrl-C: stop sending and give what is in flight a moment; a second one ends at once.
    if (interrupts++ === 0) {
      stopping.abort();
      grace = setTimeout(() => aborting.abort(), Math.min(flags.timeout, 1000));
    } else {
      aborting.abort();
    }
  };
  const progressLine = Deno.stderr.isTerminal() && !flags.quiet;
  const encoder = new TextEncoder();
  const { formatDistribution, formatErrors, formatIntervals, formatProgress, formatTable } =
    await import("./_bench/table.ts");
  Deno.addSignalListener("SIGINT", onInterrupt);
  const startedAt = new Date().toISOString();
  let outcome: Awaited<ReturnType<typeof runBench>>;
  try {
    outcome = await runBench({
      target,
      workload,
      connections: flags.connections,
      pipeline: flags.pipeline,
      ...(flags.rate !== undefined ? { rate: flags.rate } : {}),
      churn: flags.churn ?? false,
      ...(flags.count !== undefined ? { count: flags.count } : {}),
      ...(flags.duration !== undefined ? { durationMs: flags.duration } : {}),
      warmupMs: flags.warmup,
      timeoutMs: flags.timeout,
      connectTimeoutMs: flags.connectTimeout,
      maxLineBytes: flags.maxLine,
      signal: stopping.signal,
      abortSignal: aborting.signal,
      ...(progressLine
        ? {
          onProgress: (progress) =>
            Deno.stderr.writeSync(encoder.encode(`\r${formatProgress(progress)}\x1b[K`)),
        }
        : {}),
    });
  } finally {
    clearTimeout(grace);
    Deno.removeSignalListener("SIGINT", onInterrupt);
    if (progressLine) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
  }
  const { report, hgrm } = outcome;
  const echoLines = workload.echoSizes;
  const result = {
    tool: "linesock bench" as const,
    format: 1,
    label: flags.label ?? defaultLabel(flags),
    target: url,
    tls: !!tls,
    startedAt,
    workload: {
      requests: echoLines
        ? [
          `(random printable lines of ${
            echoLines.min === echoLines.max ? echoLines.min : `${echoLines.min}..${echoLines.max}`
          } bytes)`,
        ]
        : workload.requests.slice(0, 5).map((request) => request.line.source),
      requestCount: echoLines ? 1 : workload.requests.length,
      reply: echoLines
        ? "the line sent"
        : workload.requests.every((request) =>
            describeReply(request.reply) === describeReply(workload.requests[0]!.reply)
          )
        ? describeReply(workload.requests[0]!.reply)
        : "per request (see the conversation)",
      greetingLines: replyLines(workload.greeting),
    },
    ...report,
    wasInterrupted: interrupts > 0,
  };
  if (flags.hgrm !== undefined) await Deno.writeTextFile(flags.hgrm, hgrm);
  if (flags.report !== undefined) {
    const { renderReport } = await import("./_bench/report_html.ts");
    await Deno.writeTextFile(
      flags.report,
      renderReport([result], `linesock bench: ${result.label}`),
    );
  }
  if (flags.json) {
    console.log(JSON.stringify(result));
  } else if (flags.quiet) {
    // Errors only: a failed run still says why, on stderr.
    if (!result.passed) {
      for (const line of formatErrors(result).split("\n")) console.error(`linesock: ${line}`);
    }
  } else {
    const verbosity = flags.verbose ?? 0;
    console.log(
      formatTable(result) + (verbosity >= 1 ? `\n${formatIntervals(result)}` : "") +
        (verbosity >= 2 ? `\n${formatDistribution(result)}` : ""),
    );
  }
  if (result.wasInterrupted) return 130;
  if (report.passed) return ExitCode.ok;
  const { errors } = report;
  const onlyStalls = errors.mismatched === 0 && errors.connect === 0 &&
    errors.connections === errors.stalled;
  return onlyStalls ? ExitCode.timeout : 1;
}

/** A run's name from its settings: `-c 4 -P 16`, `-r 1000 -c 4`, `--churn -c 4`. */
function defaultLabel(flags: BenchFlags): string {
  const parts: string[] = [];
  if (flags.churn) parts.push("--churn");
  if (flags.rate !== undefined) parts.push(`-r ${flags.rate}`);
  parts.push(`-c ${flags.connections}`);
  if (!flags.churn) parts.push(`-P ${flags.pipeline}`);
  return parts.join(" ");
}

async function checkWritable(path: string, option: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const directory = slash === -1 ? "." : path.slice(0, slash) || "/";
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(directory);
  } catch {
    throw new UsageError(`${option} ${path}: the folder ${directory} does not exist`);
  }
  if (!info.isDirectory) throw new UsageError(`${option} ${path}: ${directory} is not a folder`);
}

async function runCompare(parsed: Parsed, flags: BenchFlags): Promise<number> {
  const extra = [...parsed.given].filter((name) => !COMPARE_OPTIONS.has(name));
  if (extra.length > 0) {
    throw new UsageError(
      `--compare reads saved results and runs no load: leave out --${
        extra[0]!.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)
      }`,
    );
  }
  if (parsed.args.length === 0) {
    throw new UsageError("--compare needs result files: linesock bench --compare a.json b.json");
  }
  if (flags.report !== undefined) await checkWritable(flags.report, "--report");
  const [{ readResult }, { formatComparison }] = await Promise.all([
    import("./_bench/result.ts"),
    import("./_bench/table.ts"),
  ]);
  const results = [];
  for (const path of parsed.args) results.push(await readResult(path));
  if (flags.report !== undefined) {
    const { renderReport } = await import("./_bench/report_html.ts");
    await Deno.writeTextFile(
      flags.report,
      renderReport(
        results,
        `linesock bench: ${results.map((result) => result.label).join(" vs ")}`,
      ),
    );
  }
  if (!flags.quiet) console.log(formatComparison(results));
  return ExitCode.ok;
}

/**
 * The server load benchmark (`deno task bench:load`): starts, in one run and with one load driver,
 * linesock `serve` in each protocol, a naive Deno server written the usual way, a Node.js
 * `net` + `readline` server, and socat's byte relay; runs each workload against a fresh server
 * process; and reports lines/s, MB/s, latency, peak RSS, and ratios to the naive server and to socat.
 *
 * Bounded: every run lasts `--seconds` (default 3), targets 127.0.0.1 only, and every process it
 * starts is stopped. `--write` puts the tables into docs/benchmarks.md.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { type LoadResult, runLoad, type Workload } from "./_load_driver.ts";
import { ensureSocat, startSocatEcho } from "./baselines/socat.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const args = Deno.args;
const seconds = Number(valueOf("--seconds") ?? 3);
const only = valueOf("--only");
const write = args.includes("--write");

function valueOf(flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

interface ServerSpec {
  name: string;
  /** Request line for this server's kind of answer. */
  request?: "echo" | "ping" | "json-ping";
  start(): Promise<RunningProcess>;
}

interface RunningProcess {
  port: number;
  /** Peak resident memory in MiB, when measurable. */
  peakRssMiB(): Promise<number | undefined>;
  stop(): Promise<void>;
}

function serveTaskFlags(): string[] {
  const words = denoJson.tasks.serve.command.trim().split(/\s+/);
  return words.slice(2, words.indexOf("main.ts"));
}

async function spawnListening(command: string, commandArgs: string[]): Promise<RunningProcess> {
  const child = new Deno.Command(command, {
    args: commandArgs,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${command} ${commandArgs.join(" ")} exited before listening`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const port = Number(/:(\d+)\s*$/m.exec(text.split("\n")[0]!)?.[1]);
  return {
    port,
    peakRssMiB: () => readPeakRss(child.pid),
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

async function readPeakRss(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
    return Number.isFinite(kib) ? kib / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const linesock = (protocol: string, extra: string[] = []): ServerSpec["start"] => () =>
  spawnListening(Deno.execPath(), [
    "run",
    ...serveTaskFlags(),
    "main.ts",
    "serve",
    "--protocol",
    protocol,
    "--port",
    "0",
    "--quiet",
    ...extra,
  ]);

const SERVERS: ServerSpec[] = [
  { name: "linesock echo", request: "echo", start: linesock("echo") },
  { name: "linesock text (PING)", request: "ping", start: linesock("text") },
  { name: "linesock json (ping)", request: "json-ping", start: linesock("json") },
  {
    name: "naive Deno echo",
    request: "echo",
    start: () =>
      spawnListening(Deno.execPath(), [
        "run",
        "--allow-net",
        "bench/baselines/naive_deno_echo.ts",
        "--port",
        "0",
      ]),
  },
  {
    name: "Node net+readline echo",
    request: "echo",
    start: () => spawnListening("node", ["bench/baselines/node_readline_echo.mjs", "--port", "0"]),
  },
  {
    name: "socat relay",
    request: "echo",
    async start() {
      const socat = await startSocatEcho();
      return { port: socat.port, peakRssMiB: () => Promise.resolve(undefined), stop: socat.close };
    },
  },
];

const encoder = new TextEncoder();
const REQUESTS = {
  echo64: encoder.encode("x".repeat(63)),
  echo64k: encoder.encode("y".repeat(64 * 1024 - 1)),
  ping: encoder.encode("PING"),
  jsonPing: encoder.encode('{"command":"ping"}'),
};

interface Case {
  name: string;
  servers: string[];
  workload: Omit<Workload, "request" | "durationMs"> & { request: "small" | "large" };
}

const ECHO_SERVERS = ["linesock echo", "naive Deno echo", "Node net+readline echo", "socat relay"];
const CASES: Case[] = [
  {
    name: "pipelined 64 B lines, 1 connection",
    servers: [...ECHO_SERVERS, "linesock text (PING)", "linesock json (ping)"],
    workload: { request: "small", connections: 1, mode: "pipeline" },
  },
  {
    name: "pipelined 64 B lines, 8 connections",
    servers: ECHO_SERVERS,
    workload: { request: "small", connections: 8, mode: "pipeline" },
  },
  {
    name: "pipelined 64 KiB lines, 1 connection",
    servers: ECHO_SERVERS,
    workload: { request: "large", connections: 1, mode: "pipeline" },
  },
  {
    name: "request/response, 1 connection",
    servers: ECHO_SERVERS,
    workload: { request: "small", connections: 1, mode: "lockstep" },
  },
  {
    name: "request/response, 16 connections",
    servers: ECHO_SERVERS,
    workload: { request: "small", connections: 16, mode: "lockstep" },
  },
];

function requestFor(server: ServerSpec, size: "small" | "large"): Uint8Array {
  if (server.request === "ping") return REQUESTS.ping;
  if (server.request === "json-ping") return REQUESTS.jsonPing;
  return size === "large" ? REQUESTS.echo64k : REQUESTS.echo64;
}

interface Row {
  case: string;
  server: string;
  result: LoadResult;
  peakRssMiB: number | undefined;
}

const socatMissing = await ensureSocat();
const rows: Row[] = [];
for (const testCase of CASES) {
  if (only && !testCase.name.includes(only)) continue;
  for (const serverName of testCase.servers) {
    const server = SERVERS.find((s) => s.name === serverName)!;
    if (serverName === "socat relay" && socatMissing) continue;
    let process: RunningProcess;
    try {
      process = await server.start();
    } catch (error) {
      console.error(`${serverName}: cannot start: ${(error as Error).message}`);
      continue;
    }
    try {
      const result = await runLoad(process.port, {
        ...testCase.workload,
        request: requestFor(server, testCase.workload.request),
        durationMs: seconds * 1000,
      });
      const peakRssMiB = await process.peakRssMiB();
      rows.push({ case: testCase.name, server: serverName, result, peakRssMiB });
      console.error(
        `${testCase.name} | ${serverName}: ${Math.round(result.linesPerSecond)} lines/s` +
          (result.mismatches ? ` (${result.mismatches} MISMATCHES)` : ""),
      );
    } finally {
      await process.stop();
    }
  }
}

const format = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function table(): string {
  const out: string[] = [];
  for (const testCase of CASES) {
    const caseRows = rows.filter((r) => r.case === testCase.name);
    if (caseRows.length === 0) continue;
    const naive = caseRows.find((r) => r.server === "naive Deno echo")?.result;
    const socat = caseRows.find((r) => r.server === "socat relay")?.result;
    const lockstep = testCase.workload.mode === "lockstep";
    out.push(`### ${testCase.name}`, "");
    out.push(
      lockstep
        ? "| server | lines/s | p50 µs | p99 µs | p99 vs naive | peak RSS MiB | errors |"
        : "| server | lines/s | MB/s out | MB/s in | vs naive | vs socat | peak RSS MiB | errors |",
    );
    out.push(
      lockstep ? "|---|---:|---:|---:|---:|---:|---:|" : "|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const row of caseRows) {
      const r = row.result;
      const rss = row.peakRssMiB === undefined ? "n/a" : format(row.peakRssMiB);
      if (lockstep) {
        const p99Ratio = naive?.latencyUs && r.latencyUs
          ? `${format(r.latencyUs.p99 / naive.latencyUs.p99, 2)}x`
          : "";
        out.push(
          `| ${row.server} | ${format(r.linesPerSecond)} | ${format(r.latencyUs?.p50 ?? 0)} | ${
            format(r.latencyUs?.p99 ?? 0)
          } | ${p99Ratio} | ${rss} | ${r.mismatches} |`,
        );
      } else {
        const vsNaive = naive ? `${format(r.linesPerSecond / naive.linesPerSecond, 1)}x` : "";
        const vsSocat = socat ? `${format(r.linesPerSecond / socat.linesPerSecond, 2)}x` : "";
        out.push(
          `| ${row.server} | ${format(r.linesPerSecond)} | ${format(r.mbPerSecondOut, 1)} | ${
            format(r.mbPerSecondIn, 1)
          } | ${vsNaive} | ${vsSocat} | ${rss} | ${r.mismatches} |`,
        );
      }
    }
    out.push("");
  }
  return out.join("\n");
}

const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
  /model name\s*:\s*(.+)/,
)?.[1] ?? "unknown CPU";
const header = `Measured ${
  new Date().toISOString().slice(0, 10)
} on ${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, Node ${(await new Deno
  .Command("node", { args: ["--version"], stdout: "piped" }).output().then(
    (o) => new TextDecoder().decode(o.stdout).trim(),
    () => "n/a",
  ))}; ${seconds} s per run, load driver and server sharing the same cores. Command: \`deno task bench:load${
  seconds === 3 ? "" : ` --seconds ${seconds}`
}\`.${socatMissing ? ` socat not measured: ${socatMissing}.` : ""}`;
const report = `${header}\n\n${table()}`;
console.log(report);

if (write) {
  const path = `${ROOT}docs/benchmarks.md`;
  const doc = await Deno.readTextFile(path).catch(() => "# Benchmarks\n");
  const start = "<!-- server-load:start -->";
  const end = "<!-- server-load:end -->";
  const block = `${start}\n${report}\n${end}`;
  const next = doc.includes(start)
    ? doc.replace(new RegExp(`${start}[\\s\\S]*?${end}`), block)
    : `${doc.trimEnd()}\n\n## Server load (deno task bench:load)\n\n${block}\n`;
  await Deno.writeTextFile(path, next);
  console.error(`wrote ${path}`);
}

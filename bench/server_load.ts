/**
 * The server load benchmark (`deno task bench:load`): starts, in one run and with one load driver,
 * linesock `serve` in each protocol, a naive Deno server written the usual way, a Node.js
 * `net` + `readline` server, and socat's byte relay; runs each workload against a fresh server
 * process; and reports lines/s, MB/s, latency, peak RSS, and ratios to the naive server and to socat.
 *
 * It also measures the server's and the driver's CPU use per run (to show which side is the
 * bottleneck), `serve --workers 2`, 10,000 idle connections (bench/idle_connections.ts) and the
 * start-up time of `linesock send PING` (bench/startup.ts).
 *
 * Bounded: every run lasts `--seconds` (default 3), targets 127.0.0.1 only, and every process it
 * starts is stopped. `--write` puts the tables into docs/benchmarks.md.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type LoadResult, runLoad, type Workload } from "./_load_driver.ts";
import { ensureSocat, startSocatEcho } from "./baselines/socat.ts";
import { cpuModel, cpuSeconds, memoryMiB } from "./_proc.ts";
import { measureIdle } from "./idle_connections.ts";
import { measureStartup } from "./startup.ts";
import { serveArgs, spawnListening } from "./_spawn.ts";

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
  request?: "echo" | "ping" | "json-ping" | "json-ping-id";
  start(): Promise<RunningProcess>;
}

interface RunningProcess {
  port: number;
  /** The process id, when there is one process to measure. */
  pid: number | undefined;
  /** Peak resident memory in MiB, when measurable. */
  peakRssMiB(): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function spawnServer(command: string, commandArgs: string[]): Promise<RunningProcess> {
  const { child, port, stop } = await spawnListening(command, commandArgs);
  return {
    port,
    pid: child.pid,
    peakRssMiB: () => memoryMiB(child.pid, "VmHWM"),
    stop: () => stop("SIGKILL"),
  };
}

const linesock = (protocol: string, extra: string[] = []): ServerSpec["start"] => () =>
  spawnServer(Deno.execPath(), serveArgs(protocol, ["--quiet", ...extra]));

const SERVERS: ServerSpec[] = [
  { name: "linesock echo", request: "echo", start: linesock("echo") },
  { name: "linesock text (PING)", request: "ping", start: linesock("text") },
  { name: "linesock json (ping)", request: "json-ping", start: linesock("json") },
  { name: "linesock json (ping with id)", request: "json-ping-id", start: linesock("json") },
  {
    name: "linesock echo, 2 workers",
    request: "echo",
    start: linesock("echo", ["--workers", "2"]),
  },
  {
    name: "linesock text (PING), 2 workers",
    request: "ping",
    start: linesock("text", ["--workers", "2"]),
  },
  {
    name: "naive Deno echo",
    request: "echo",
    start: () =>
      spawnServer(Deno.execPath(), [
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
    start: () => spawnServer("node", ["bench/baselines/node_readline_echo.mjs", "--port", "0"]),
  },
  {
    name: "socat relay",
    request: "echo",
    async start() {
      const socat = await startSocatEcho();
      return {
        port: socat.port,
        // socat forks one process per connection: its memory and CPU are not one process's.
        pid: undefined,
        peakRssMiB: () => Promise.resolve(undefined),
        stop: socat.close,
      };
    },
  },
];

const encoder = new TextEncoder();
const REQUESTS = {
  echo64: encoder.encode("x".repeat(63)),
  echo64k: encoder.encode("y".repeat(64 * 1024 - 1)),
  ping: encoder.encode("PING"),
  jsonPing: encoder.encode('{"command":"ping"}'),
  jsonPingId: encoder.encode('{"command":"ping","id":12345}'),
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
    servers: [
      ...ECHO_SERVERS,
      "linesock text (PING)",
      "linesock json (ping)",
      "linesock json (ping with id)",
    ],
    workload: { request: "small", connections: 1, mode: "pipeline" },
  },
  {
    name: "pipelined 64 B lines, 8 connections",
    servers: [
      ...ECHO_SERVERS,
      "linesock echo, 2 workers",
      "linesock text (PING)",
      "linesock text (PING), 2 workers",
    ],
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
    servers: [...ECHO_SERVERS, "linesock echo, 2 workers"],
    workload: { request: "small", connections: 16, mode: "lockstep" },
  },
];

function requestFor(server: ServerSpec, size: "small" | "large"): Uint8Array {
  if (server.request === "ping") return REQUESTS.ping;
  if (server.request === "json-ping") return REQUESTS.jsonPing;
  if (server.request === "json-ping-id") return REQUESTS.jsonPingId;
  return size === "large" ? REQUESTS.echo64k : REQUESTS.echo64;
}

interface Row {
  case: string;
  server: string;
  result: LoadResult;
  peakRssMiB: number | undefined;
  /** CPU time over wall time (1.0 = one core busy), of the server and of the load driver. */
  serverCpu: number | undefined;
  driverCpu: number | undefined;
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
      const serverBefore = process.pid === undefined ? undefined : await cpuSeconds(process.pid);
      const driverBefore = await cpuSeconds(Deno.pid);
      const started = performance.now();
      const result = await runLoad(process.port, {
        ...testCase.workload,
        request: requestFor(server, testCase.workload.request),
        durationMs: seconds * 1000,
      });
      const wall = (performance.now() - started) / 1000;
      const serverAfter = process.pid === undefined ? undefined : await cpuSeconds(process.pid);
      const driverAfter = await cpuSeconds(Deno.pid);
      const share = (before: number | undefined, after: number | undefined) =>
        before === undefined || after === undefined ? undefined : (after - before) / wall;
      const peakRssMiB = await process.peakRssMiB();
      rows.push({
        case: testCase.name,
        server: serverName,
        result,
        peakRssMiB,
        serverCpu: share(serverBefore, serverAfter),
        driverCpu: share(driverBefore, driverAfter),
      });
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
        ? "| server | lines/s | p50 µs | p99 µs | p99 vs naive | peak RSS MiB | server CPU | driver CPU | errors |"
        : "| server | lines/s | MB/s out | MB/s in | vs naive | vs socat | peak RSS MiB | server CPU | driver CPU | errors |",
    );
    out.push(
      lockstep
        ? "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        : "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const row of caseRows) {
      const r = row.result;
      const rss = row.peakRssMiB === undefined ? "n/a" : format(row.peakRssMiB);
      const cpu = (share: number | undefined) =>
        share === undefined ? "n/a" : `${format(share * 100)}%`;
      const cpus = `${cpu(row.serverCpu)} | ${cpu(row.driverCpu)}`;
      if (lockstep) {
        const p99Ratio = naive?.latencyUs && r.latencyUs
          ? `${format(r.latencyUs.p99 / naive.latencyUs.p99, 2)}x`
          : "";
        out.push(
          `| ${row.server} | ${format(r.linesPerSecond)} | ${format(r.latencyUs?.p50 ?? 0)} | ${
            format(r.latencyUs?.p99 ?? 0)
          } | ${p99Ratio} | ${rss} | ${cpus} | ${r.mismatches} |`,
        );
      } else {
        const vsNaive = naive ? `${format(r.linesPerSecond / naive.linesPerSecond, 1)}x` : "";
        const vsSocat = socat ? `${format(r.linesPerSecond / socat.linesPerSecond, 2)}x` : "";
        out.push(
          `| ${row.server} | ${format(r.linesPerSecond)} | ${format(r.mbPerSecondOut, 1)} | ${
            format(r.mbPerSecondIn, 1)
          } | ${vsNaive} | ${vsSocat} | ${rss} | ${cpus} | ${r.mismatches} |`,
        );
      }
    }
    out.push("");
  }
  return out.join("\n");
}

const cpu = await cpuModel();
const header = `Measured ${
  new Date().toISOString().slice(0, 10)
} on ${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, Node ${(await new Deno
  .Command("node", { args: ["--version"], stdout: "piped" }).output().then(
    (o) => new TextDecoder().decode(o.stdout).trim(),
    () => "n/a",
  ))}; ${seconds} s per run, load driver and server sharing the same cores. Command: \`deno task bench:load${
  seconds === 3 ? "" : ` --seconds ${seconds}`
}\`.${socatMissing ? ` socat not measured: ${socatMissing}.` : ""}`;
const IDLE_CONNECTIONS = 10_000;
const extras: string[] = [];
if (!only || "idle connections".includes(only)) {
  const server = await linesock("text")();
  try {
    const idle = await measureIdle(server.port, server.pid!, IDLE_CONNECTIONS);
    const mib = (value: number | undefined) => value === undefined ? "n/a" : format(value);
    extras.push(
      `### ${format(IDLE_CONNECTIONS)} idle connections`,
      "",
      "| connections answering PING | server RSS before, MiB | server RSS with all open, MiB |",
      "|---:|---:|---:|",
      `| ${format(idle.connections)} | ${mib(idle.baselineMiB)} | ${mib(idle.rssMiB)} |`,
      "",
    );
    console.error(`idle: ${idle.connections} connections, RSS ${mib(idle.rssMiB)} MiB`);
  } finally {
    await server.stop();
  }
}
if (!only || "start-up".includes(only)) {
  const server = await linesock("text")();
  try {
    const startup = await measureStartup(server.port);
    extras.push(
      "### Start-up",
      "",
      `Median wall time of ${startup.runs} alternating runs each (whole process, start to exit).`,
      "",
      "| process | median ms | vs empty script |",
      "|---|---:|---:|",
      `| \`deno run\` of an empty script | ${format(startup.emptyMs, 1)} | 1.00x |`,
      `| \`linesock send PING\` (installed: the bundled build, install task flags) | ${
        format(startup.installedMs, 1)
      } | ${format(startup.installedMs / startup.emptyMs, 2)}x |`,
      `| \`deno task send PING\` (main.ts from the sources, send task flags) | ${
        format(startup.sendMs, 1)
      } | ${format(startup.sendMs / startup.emptyMs, 2)}x |`,
      "",
    );
    console.error(
      `start-up: empty ${startup.emptyMs} ms, installed ${startup.installedMs} ms, ` +
        `send ${startup.sendMs} ms`,
    );
  } finally {
    await server.stop();
  }
}
const report = `${header}\n\n${table()}${extras.length ? `\n${extras.join("\n")}` : ""}`;
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
  // The generated tables must pass `deno fmt --check` like the rest of the docs.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  console.error(`wrote ${path}`);
}

/**
 * Is `linesock bench`'s engine the bottleneck? This script starts one `linesock serve --protocol
 * echo` (and one `--protocol text` for PING) as separate processes, the way `deno task bench:load`
 * does, and measures against the same server, with the same connections and depth, the load driver
 * of `bench:load` (bench/_load_driver.ts) and the engine of `linesock bench`
 * (commands/_bench/engine.ts), back to back and in alternating order, several rounds each. It
 * prints each one's median lines/s, the client's CPU share, and the ratio engine / driver; the
 * engine should reach at least 90% of the driver.
 *
 * Depth: the driver keeps 4 batches of 64 KiB in flight per connection when pipelining, so the
 * engine gets `-P` = 4 × the lines in 64 KiB; request/response is `-P 1` for both.
 *
 * Run it in a quiet window (it takes about `cases × rounds × 2 × seconds`):
 *
 * ```sh
 * deno task bench:vs-driver [--seconds 3] [--rounds 3] [--only TEXT]
 * ```
 *
 * @module
 */
import { runLoad, type Workload } from "./_load_driver.ts";
import { cpuModel, cpuSeconds } from "./_proc.ts";
import { serveArgs, spawnListening } from "./_spawn.ts";
import { runBench } from "../commands/_bench/engine.ts";
import { LineTemplate } from "../commands/_bench/template.ts";
import type { LineCheck } from "../commands/_bench/expectation.ts";

const args = Deno.args;
const seconds = Number(valueOf("--seconds") ?? 3);
const rounds = Number(valueOf("--rounds") ?? 3);
const only = valueOf("--only");

function valueOf(flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

interface Case {
  name: string;
  protocol: "echo" | "text";
  request: string;
  /** The reply the engine expects (the driver calibrates its own). */
  reply: string;
  connections: number;
  mode: Workload["mode"];
}

const small = "x".repeat(63);
const large = "y".repeat(64 * 1024 - 1);
const CASES: Case[] = [
  {
    name: "pipelined 64 B lines, 1 connection",
    protocol: "echo",
    request: small,
    reply: small,
    connections: 1,
    mode: "pipeline",
  },
  {
    name: "pipelined 64 B lines, 8 connections",
    protocol: "echo",
    request: small,
    reply: small,
    connections: 8,
    mode: "pipeline",
  },
  {
    name: "pipelined 64 KiB lines, 1 connection",
    protocol: "echo",
    request: large,
    reply: large,
    connections: 1,
    mode: "pipeline",
  },
  {
    name: "request/response, 1 connection",
    protocol: "echo",
    request: small,
    reply: small,
    connections: 1,
    mode: "lockstep",
  },
  {
    name: "request/response, 16 connections",
    protocol: "echo",
    request: small,
    reply: small,
    connections: 16,
    mode: "lockstep",
  },
  {
    name: "text PING pipelined, 1 connection",
    protocol: "text",
    request: "PING",
    reply: "PONG",
    connections: 1,
    mode: "pipeline",
  },
];

interface Server {
  port: number;
  stop(): Promise<void>;
}

async function startServer(protocol: string): Promise<Server> {
  const { port, stop } = await spawnListening(Deno.execPath(), serveArgs(protocol));
  return { port, stop: () => stop("SIGTERM") };
}

/** Lines in flight per connection that match the driver's window of 4 × 64 KiB. */
function depthOf(testCase: Case): number {
  if (testCase.mode === "lockstep") return 1;
  return 4 * Math.max(1, Math.floor((64 * 1024) / (testCase.request.length + 1)));
}

interface Measure {
  linesPerSecond: number;
  cpu: number | undefined;
  errors: number;
}

async function measured(run: () => Promise<{ lines: number; errors: number }>): Promise<Measure> {
  const cpuBefore = await cpuSeconds(Deno.pid);
  const started = performance.now();
  const { lines, errors } = await run();
  const wall = (performance.now() - started) / 1000;
  const cpuAfter = await cpuSeconds(Deno.pid);
  return {
    linesPerSecond: lines,
    cpu: cpuBefore === undefined || cpuAfter === undefined
      ? undefined
      : (cpuAfter - cpuBefore) / wall,
    errors,
  };
}

function driver(port: number, testCase: Case): Promise<Measure> {
  return measured(async () => {
    const result = await runLoad(port, {
      request: new TextEncoder().encode(testCase.request),
      connections: testCase.connections,
      mode: testCase.mode,
      durationMs: seconds * 1000,
    });
    return { lines: result.linesPerSecond, errors: result.mismatches };
  });
}

function engine(port: number, testCase: Case): Promise<Measure> {
  const reply: LineCheck = testCase.reply === testCase.request
    ? { kind: "echo" }
    : { kind: "exact", line: LineTemplate.fromText(testCase.reply) };
  return measured(async () => {
    const { report } = await runBench({
      target: { hostname: "127.0.0.1", port },
      workload: {
        requests: [{ line: LineTemplate.fromText(testCase.request), reply: [reply] }],
        greeting: [],
        crlf: false,
      },
      connections: testCase.connections,
      pipeline: depthOf(testCase),
      durationMs: seconds * 1000,
    });
    return { lines: report.requestsPerSecond, errors: report.errors.total };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const format = (n: number) => Math.round(n).toLocaleString("en-US");
const percent = (n: number | undefined) => n === undefined ? "?" : `${Math.round(n * 100)}%`;

console.log(
  `bench vs driver: ${await cpuModel()}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
    `${rounds} rounds of ${seconds} s each, alternating\n`,
);
console.log(
  "| case | driver lines/s | engine lines/s | engine / driver | driver CPU | engine CPU | errors |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
const servers = new Map<string, Server>();
let worst = Infinity;
try {
  for (const testCase of CASES) {
    if (only && !testCase.name.includes(only)) continue;
    let server = servers.get(testCase.protocol);
    if (!server) {
      server = await startServer(testCase.protocol);
      servers.set(testCase.protocol, server);
    }
    const driverRuns: Measure[] = [];
    const engineRuns: Measure[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        driverRuns.push(await driver(server.port, testCase));
        engineRuns.push(await engine(server.port, testCase));
      } else {
        engineRuns.push(await engine(server.port, testCase));
        driverRuns.push(await driver(server.port, testCase));
      }
    }
    const driverRate = median(driverRuns.map((run) => run.linesPerSecond));
    const engineRate = median(engineRuns.map((run) => run.linesPerSecond));
    const ratio = engineRate / driverRate;
    worst = Math.min(worst, ratio);
    const cpu = (runs: Measure[]) =>
      percent(
        runs.some((run) => run.cpu === undefined) ? undefined : median(runs.map((run) => run.cpu!)),
      );
    const errors = [...driverRuns, ...engineRuns].reduce((sum, run) => sum + run.errors, 0);
    console.log(
      `| ${testCase.name} (-c ${testCase.connections} -P ${depthOf(testCase)}) | ${
        format(driverRate)
      } | ${format(engineRate)} | ${percent(ratio)} | ${cpu(driverRuns)} | ${
        cpu(engineRuns)
      } | ${errors} |`,
    );
  }
} finally {
  for (const server of servers.values()) await server.stop();
}
console.log(`\nlowest ratio: ${percent(worst)} (the engine should reach at least 90%)`);

/**
 * The fan-out benchmark (`deno task bench:fanout`): lines delivered per second when 100 clients in
 * one room each say `--lines` lines at once, so that every line reaches the 99 others. It compares,
 * in one run and with one driver (this process, which opens the 100 connections):
 *
 * - `ncat --broker` (Debian's ncat: a byte relay in one process);
 * - `linesock serve --protocol chat --raw` (the same relay, one process);
 * - `linesock serve --protocol chat` (names, one process);
 * - the two above on two instances (50 clients each) sharing the room through a nats-server.
 *
 * Every delivered line is counted (chat: the lines that start with `<`, not the notices); a run
 * ends when every client has received all the lines of the others, and fails if one falls short.
 * `--write` puts the table into docs/benchmarks.md. Needs nats-server and ncat on PATH (a target
 * whose tool is missing is skipped, and the table says so).
 *
 * Options: `--clients N` (100), `--lines N` per client (200), `--bytes N` per line (64),
 * `--runs N` (3, the median is reported), `--only NAME`, `--write`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { cpuModel, memoryMiB } from "./_proc.ts";
import { serveArgs, spawnListening } from "./_spawn.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const args = Deno.args;
const clients = Number(valueOf("--clients") ?? 100);
const linesEach = Number(valueOf("--lines") ?? 200);
const lineBytes = Number(valueOf("--bytes") ?? 64);
const runs = Number(valueOf("--runs") ?? 3);
const only = valueOf("--only");
const write = args.includes("--write");
const LF = 0x0a;
const LT = 0x3c;

function valueOf(flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

/** A started process that listens somewhere. */
interface Running {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** What one target is: its servers, and whether its clients count chat lines. */
interface Target {
  name: string;
  /** Lines start with `<name> ` and notices are not counted. */
  chat: boolean;
  /** Why it cannot run here, if it cannot. */
  missing?: string;
  /** Starts its servers: the clients are spread over their ports in turn. */
  start(): Promise<Running[]>;
}

async function spawnServer(command: string, commandArgs: string[]): Promise<Running> {
  const { child, port, stop } = await spawnListening(command, commandArgs);
  return { port, pid: child.pid, stop: () => stop("SIGTERM", 5000) };
}

/** A port that was free a moment ago (for tools that cannot pick one themselves). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Spawns a tool that listens on `port` and waits until it accepts connections. */
async function spawnOnPort(command: string, commandArgs: string[], port: number): Promise<Running> {
  const child = new Deno.Command(command, {
    args: commandArgs,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (attempt > 100) throw new Error(`${command} does not listen on ${port}: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    port,
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Gone.
      }
      await child.status;
    },
  };
}

function missingTool(tool: string, versionArgs: string[]): string | undefined {
  try {
    new Deno.Command(tool, { args: versionArgs, stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return `${tool} is not installed`;
  }
}

const NCAT_MISSING = missingTool("ncat", ["--version"]);
const NATS_MISSING = missingTool("nats-server", ["--version"]);

function linesock(extra: string[]): Promise<Running> {
  return spawnServer(
    Deno.execPath(),
    serveArgs("chat", ["--chat-rate", "0", "--log-level", "error", ...extra]),
  );
}

/** Two linesock instances on one nats-server (stopped with them). */
async function onBus(extra: string[]): Promise<Running[]> {
  const natsPort = freePort();
  const nats = await spawnOnPort(
    "nats-server",
    ["-a", "127.0.0.1", "-p", String(natsPort)],
    natsPort,
  );
  const bus = ["--bus", `nats://127.0.0.1:${natsPort}`, "--bus-prefix", "fanout", ...extra];
  const instances = [await linesock(bus), await linesock(bus)];
  return instances.map((instance, index) => ({
    ...instance,
    async stop() {
      await instance.stop();
      if (index === instances.length - 1) await nats.stop();
    },
  }));
}

const TARGETS: Target[] = [
  {
    name: "ncat --broker",
    chat: false,
    ...(NCAT_MISSING !== undefined ? { missing: NCAT_MISSING } : {}),
    async start() {
      const port = freePort();
      return [
        await spawnOnPort(
          "ncat",
          ["-l", "127.0.0.1", String(port), "--broker", "--max-conns", String(clients + 10)],
          port,
        ),
      ];
    },
  },
  { name: "linesock --raw", chat: false, start: async () => [await linesock(["--raw"])] },
  { name: "linesock chat", chat: true, start: async () => [await linesock([])] },
  {
    name: "linesock --raw, 2 instances on NATS",
    chat: false,
    ...(NATS_MISSING !== undefined ? { missing: NATS_MISSING } : {}),
    start: () => onBus(["--raw"]),
  },
  {
    name: "linesock chat, 2 instances on NATS",
    chat: true,
    ...(NATS_MISSING !== undefined ? { missing: NATS_MISSING } : {}),
    start: () => onBus([]),
  },
];

/** One client: counts the lines it receives (chat: those that start with `<`). */
class Counter {
  count = 0;
  #atLineStart = true;
  /** Whether the line being received is a member's (chat). */
  #memberLine = false;
  #wake: (() => void) | undefined;
  #target = Infinity;
  readonly conn: Deno.Conn;
  readonly done: Promise<void>;

  constructor(conn: Deno.Conn, chat: boolean) {
    this.conn = conn;
    this.done = this.#read(chat);
  }

  async #read(chat: boolean): Promise<void> {
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const read = await this.conn.read(buffer);
        if (read === null) return;
        const bytes = buffer.subarray(0, read);
        if (!chat) {
          for (let at = bytes.indexOf(LF); at !== -1; at = bytes.indexOf(LF, at + 1)) this.count++;
        } else {
          for (let index = 0; index < read;) {
            if (this.#atLineStart) {
              this.#memberLine = bytes[index] === LT;
              this.#atLineStart = false;
            }
            const at = bytes.indexOf(LF, index);
            if (at === -1) break;
            if (this.#memberLine) this.count++;
            this.#atLineStart = true;
            index = at + 1;
          }
        }
        if (this.count >= this.#target) this.#wake?.();
      }
    } catch {
      // Closed.
    } finally {
      this.#wake?.();
    }
  }

  /** Resolves once `target` lines were counted (or the connection ended). */
  reach(target: number): Promise<void> {
    this.#target = target;
    if (this.count >= target) return Promise.resolve();
    return new Promise((resolve) => this.#wake = resolve);
  }
}

/** One run: connect, make sure all are in the room, then everyone talks at once. */
async function runOnce(target: Target): Promise<{ seconds: number; peakMiB: number }> {
  const servers = await target.start();
  const counters: Counter[] = [];
  try {
    for (let i = 0; i < clients; i++) {
      const server = servers[i % servers.length]!;
      counters.push(
        new Counter(await Deno.connect({ hostname: "127.0.0.1", port: server.port }), target.chat),
      );
    }
    // In the room: everyone else hears client 0 (a chat client's join waits for the bus).
    const encoder = new TextEncoder();
    for (let attempt = 0;; attempt++) {
      await counters[0]!.conn.write(encoder.encode("sync\n"));
      const all = Promise.all(counters.slice(1).map((counter) => counter.reach(1)));
      if (await within(all, 1000)) break;
      if (attempt > 30) throw new Error(`${target.name}: clients never all joined the room`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const baselines = counters.map((counter) => counter.count);
    const line = `${"x".repeat(lineBytes - 1)}\n`;
    const burst = encoder.encode(line.repeat(linesEach));
    const started = performance.now();
    const expected = linesEach * (clients - 1);
    const reached = counters.map((counter, index) => counter.reach(baselines[index]! + expected));
    await Promise.all(counters.map(async (counter) => {
      for (let offset = 0; offset < burst.length;) {
        offset += await counter.conn.write(burst.subarray(offset));
      }
    }));
    if (!(await within(Promise.all(reached), 120_000))) {
      throw new Error(`${target.name}: not every line arrived within 120 s`);
    }
    const seconds = (performance.now() - started) / 1000;
    for (const [index, counter] of counters.entries()) {
      if (counter.count < baselines[index]! + expected) {
        throw new Error(
          `${target.name}: client ${index} got ${counter.count - baselines[index]!} of ${expected}`,
        );
      }
    }
    let peakMiB = 0;
    for (const server of servers) {
      peakMiB = Math.max(peakMiB, (await memoryMiB(server.pid, "VmHWM")) ?? 0);
    }
    return { seconds, peakMiB };
  } finally {
    for (const counter of counters) {
      try {
        counter.conn.close();
      } catch {
        // Closed.
      }
    }
    await Promise.all(counters.map((counter) => counter.done));
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** Whether `promise` settled within `ms` (the timer does not outlive it). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const deliveries = clients * linesEach * (clients - 1);
const rows: string[] = [];
let baselineRate: number | undefined;
for (const target of TARGETS) {
  if (only !== undefined && !target.name.includes(only)) continue;
  if (target.missing !== undefined) {
    rows.push(`| ${target.name} | skipped: ${target.missing} | | | |`);
    continue;
  }
  const results = [];
  for (let run = 0; run < runs; run++) {
    const result = await runOnce(target);
    console.error(
      `${target.name}: run ${run + 1}: ${result.seconds.toFixed(3)} s, ` +
        `${Math.round(deliveries / result.seconds)} lines/s`,
    );
    results.push(result);
  }
  const seconds = median(results.map((result) => result.seconds));
  const rate = deliveries / seconds;
  baselineRate ??= target.name === "ncat --broker" ? rate : undefined;
  const ratio = baselineRate === undefined ? "" : `${(rate / baselineRate).toFixed(2)}x`;
  rows.push(
    `| ${target.name} | ${Math.round(rate).toLocaleString("en-US")} | ${
      (seconds * 1000).toFixed(0)
    } | ${ratio} | ${Math.max(...results.map((result) => result.peakMiB)).toFixed(0)} |`,
  );
}

const report = [
  `${clients} clients in one room, each saying ${linesEach} lines of ${lineBytes} bytes at once: ` +
  `${deliveries.toLocaleString("en-US")} lines delivered per run (median of ${runs} runs; ` +
  `\`deno task bench:fanout\`, ${await cpuModel()}, Deno ${Deno.version.deno}). Through NATS, ` +
  "the clients are split over two instances and one local nats-server.",
  "",
  "| target | lines delivered/s | ms per run | vs ncat --broker | peak RSS MiB (largest process) |",
  "|---|---:|---:|---:|---:|",
  ...rows,
].join("\n");
console.log(report);

if (write) {
  const path = `${ROOT}docs/benchmarks.md`;
  const doc = await Deno.readTextFile(path);
  const start = "<!-- fanout:start -->";
  const end = "<!-- fanout:end -->";
  const block = `${start}\n${report}\n${end}`;
  const next = doc.includes(start)
    ? doc.replace(new RegExp(`${start}[\\s\\S]*?${end}`), block)
    : `${doc.trimEnd()}\n\n## Fan-out (deno task bench:fanout)\n\n${block}\n`;
  await Deno.writeTextFile(path, next);
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  console.error(`wrote ${path}`);
}

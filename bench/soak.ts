/**
 * `deno task soak`: one linesock server process under a modest, mixed, never-ending load, sampled
 * for growth. The server process runs four `serve()` listeners with `linesock serve`'s defaults
 * (`CLI_SERVE_DEFAULTS`): text, json, echo, and text over TLS. The clients, in this process:
 *
 * - persistent clients, each checking every reply: 4 text (`PING`, `ECHO`, `HELLO`, `TIME`),
 *   2 json (`echo` with an id, `ping`), 2 echo (random lines of 1 byte to 16 KiB), 1 over TLS;
 * - churn: 10 connections a second (a `PING` and a clean close; every 5th closes without reading
 *   its answer, every 7th closes in the middle of a line) and 2 TLS connections a second;
 * - 50 idle connections (25 text: the 5-minute idle timeout closes them with `ERR idle timeout`,
 *   and they connect again; 25 echo, which has no idle timeout).
 *
 * Every `--interval` (10 s) it samples the server's resident memory (`VmRSS`), its open
 * descriptors (/proc/PID/fd) and its V8 heap (`heapUsed` after a full GC, asked of the server
 * process on its stdin). Pass: zero client errors, a clean exit, and no upward trend: over the
 * samples after the warm-up (the first 20 %, at least one interval), the least-squares line may
 * rise by at most 16 MiB of RSS, 4 MiB of heap and 8 descriptors in all.
 *
 * ```sh
 * deno task soak [--duration 30m] [--interval 10s] [--json FILE]
 * ```
 *
 * Needs Linux (/proc) and `openssl` for the TLS clients (left out, with a note, without it).
 *
 * @module
 */
import { CLI_SERVE_DEFAULTS, serve, type Server } from "../lib/server/mod.ts";
import { protocolFromConfig } from "../lib/protocols/mod.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../tests/_support/tls.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bounds on the fitted line's rise over the measured window. */
const BOUNDS = { rssMiB: 16, heapMiB: 4, fds: 8 } as const;
const SERVER_NAME = "soak";

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text} (like 90s, 30m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  return Number(match[1]) * unit;
}

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (value === undefined) throw new Error(`--${name} needs a value`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// The server process.

/** One process, four listeners; answers `sample` and `stop` on stdin with one JSON line each. */
async function runServer(args: string[]): Promise<void> {
  const cert = option(args, "cert");
  const key = option(args, "key");
  const line = CLI_SERVE_DEFAULTS.line;
  const hostname = "127.0.0.1";
  const servers: Record<string, Server> = {
    text: await serve(
      { hostname, port: 0, ...line },
      await protocolFromConfig({ protocol: "text", name: SERVER_NAME }),
    ),
    json: await serve(
      { hostname, port: 0, ...line },
      await protocolFromConfig({ protocol: "json", name: SERVER_NAME }),
    ),
    echo: await serve(
      { hostname, port: 0, ...CLI_SERVE_DEFAULTS.echo },
      await protocolFromConfig({ protocol: "echo" }),
    ),
  };
  if (cert && key) {
    servers.tls = await serve(
      {
        hostname,
        port: 0,
        ...line,
        tls: { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) },
      },
      await protocolFromConfig({ protocol: "text", name: SERVER_NAME }),
    );
  }
  const ports = Object.fromEntries(
    Object.entries(servers).map(([name, server]) => [name, (server.addr as Deno.NetAddr).port]),
  );
  console.log(JSON.stringify({ ports }));
  const stats = () =>
    Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, server.stats]));
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (command === "sample") {
        // A full collection first, so that the heap figure is what is alive, not what is garbage.
        (globalThis as { gc?: () => void }).gc?.();
        const memory = Deno.memoryUsage();
        console.log(JSON.stringify({ heapUsed: memory.heapUsed, stats: stats() }));
      } else if (command === "stop") {
        await Promise.all(Object.values(servers).map((server) => server.shutdown()));
        console.log(JSON.stringify({ stats: stats() }));
        return;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The clients.

/** A connection read line by line. */
class LineConn {
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  private constructor(readonly conn: Deno.Conn) {}

  static async open(port: number, caCert?: string): Promise<LineConn> {
    const conn = caCert === undefined
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
    return new LineConn(conn);
  }

  async write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += await this.conn.write(bytes.subarray(done));
  }

  /** The next line, or `null` at the end of input. */
  async readLine(): Promise<string | null> {
    for (;;) {
      const newline = this.#buffer.subarray(this.#start, this.#end).indexOf(0x0a);
      if (newline !== -1) {
        const line = decoder.decode(this.#buffer.subarray(this.#start, this.#start + newline));
        this.#start += newline + 1;
        return line;
      }
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) {
        const bigger = new Uint8Array(this.#buffer.length * 2);
        bigger.set(this.#buffer);
        this.#buffer = bigger;
      }
      const count = await this.conn.read(this.#buffer.subarray(this.#end));
      if (count === null) return null;
      this.#end += count;
    }
  }

  /** Sends one line and returns the reply line. */
  async request(line: string): Promise<string> {
    await this.write(`${line}\n`);
    const reply = await this.readLine();
    if (reply === null) {
      throw new Error(`connection closed before the reply to ${line.slice(0, 40)}`);
    }
    return reply;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** What the clients counted. */
interface ClientCounts {
  requests: number;
  connections: number;
  idleTimeouts: number;
  errors: number;
  /** The first few errors, for the report. */
  errorMessages: string[];
}

/** The pace of a loop: the workload's rate, not a synchronisation. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function randomText(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -_.:/ÄÖüé€";
  let text = "";
  for (let index = 0; index < length; index++) {
    text += alphabet[Math.floor(Math.random() * alphabet.length)];
  }
  return text.trim() === "" ? "x" : text;
}

function expect(what: string, got: string, ok: boolean): void {
  if (!ok) throw new Error(`${what}: unexpected reply ${JSON.stringify(got.slice(0, 120))}`);
}

/** A client loop: `step` on a connection, again and again; an error is counted, then a new one. */
async function persistent(
  counts: ClientCounts,
  running: () => boolean,
  open: () => Promise<LineConn>,
  step: (conn: LineConn) => Promise<void>,
  paceMs: number,
): Promise<void> {
  while (running()) {
    let conn: LineConn | undefined;
    try {
      conn = await open();
      counts.connections++;
      while (running()) {
        await step(conn);
        counts.requests++;
        await pause(paceMs);
      }
    } catch (error) {
      if (running()) countError(counts, error);
      await pause(paceMs);
    } finally {
      conn?.close();
    }
  }
}

function countError(counts: ClientCounts, error: unknown): void {
  counts.errors++;
  if (counts.errorMessages.length < 20) {
    counts.errorMessages.push(error instanceof Error ? error.message : String(error));
  }
}

async function textStep(conn: LineConn): Promise<void> {
  const pick = Math.floor(Math.random() * 4);
  if (pick === 0) {
    const reply = await conn.request("PING");
    expect("PING", reply, reply === "PONG");
  } else if (pick === 1) {
    const text = randomText(1 + Math.floor(Math.random() * 200));
    const reply = await conn.request(`ECHO ${text}`);
    expect("ECHO", reply, reply === text);
  } else if (pick === 2) {
    const reply = await conn.request("HELLO");
    expect("HELLO", reply, reply === SERVER_NAME);
  } else {
    const reply = await conn.request("TIME");
    expect("TIME", reply, /^\d{4}-\d\d-\d\dT/.test(reply));
  }
}

let jsonId = 0;
async function jsonStep(conn: LineConn): Promise<void> {
  const id = ++jsonId;
  if (id % 3 === 0) {
    const reply = JSON.parse(await conn.request(JSON.stringify({ command: "ping", id })));
    expect("ping", JSON.stringify(reply), reply.status === 0 && reply.message === "pong");
  } else {
    const text = randomText(1 + Math.floor(Math.random() * 200));
    const line = await conn.request(JSON.stringify({ command: "echo", args: { text }, id }));
    const reply = JSON.parse(line);
    expect("echo", line, reply.status === 0 && reply.message === text && reply.id === id);
  }
}

async function echoStep(conn: LineConn): Promise<void> {
  const text = randomText(1 + Math.floor(Math.random() * 16 * 1024));
  const reply = await conn.request(text);
  expect("echo", reply, reply === text);
}

/** Short connections: a PING and a clean close, or an abrupt end (every 5th, every 7th). */
async function churn(
  counts: ClientCounts,
  running: () => boolean,
  open: () => Promise<LineConn>,
  perSecond: number,
): Promise<void> {
  for (let round = 1; running(); round++) {
    let conn: LineConn | undefined;
    try {
      conn = await open();
      counts.connections++;
      if (round % 7 === 0) {
        await conn.write("PI"); // Closed in the middle of a line.
      } else if (round % 5 === 0) {
        await conn.write("PING\n"); // Closed without reading the answer.
      } else {
        const reply = await conn.request("PING");
        expect("PING", reply, reply === "PONG");
        counts.requests++;
      }
    } catch (error) {
      if (running()) countError(counts, error);
    } finally {
      conn?.close();
    }
    await pause(1000 / perSecond);
  }
}

/**
 * An idle connection: it sends nothing. On text the server closes it after its idle timeout with
 * `ERR idle timeout` (counted, then a new one); on echo it stays until the end.
 */
async function idle(
  counts: ClientCounts,
  running: () => boolean,
  stopped: Promise<void>,
  open: () => Promise<LineConn>,
): Promise<void> {
  while (running()) {
    let conn: LineConn | undefined;
    try {
      conn = await open();
      counts.connections++;
      const line = conn.readLine();
      // Closed at the end while still idle: the read then fails, and nobody waits for it.
      line.catch(() => {});
      const first = await Promise.race([line, stopped.then(() => undefined)]);
      if (first === undefined) return;
      expect("an idle connection", String(first), first === "ERR idle timeout");
      const after = await conn.readLine();
      expect("the close after the idle timeout", String(after), after === null);
      counts.idleTimeouts++;
    } catch (error) {
      if (running()) countError(counts, error);
      await pause(1000);
    } finally {
      conn?.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling and the verdict.

interface Sample {
  /** Seconds since the start. */
  t: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
  open: number;
  errors: number;
}

/** The least-squares line through (x, y): its slope. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((sum, p) => sum + p.x, 0) / n;
  const meanY = points.reduce((sum, p) => sum + p.y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const { x, y } of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? 0 : covariance / variance;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN) / 1024;
}

async function descriptors(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--serve")) {
    await runServer(args);
    return 0;
  }
  const durationMs = parseDuration(option(args, "duration") ?? "60s");
  const intervalMs = parseDuration(option(args, "interval") ?? "10s");
  const jsonFile = option(args, "json");
  await using certificates = OPENSSL_MISSING === undefined
    ? await makeTestCertificates()
    : undefined;
  if (!certificates) console.log(`note: no TLS clients: ${OPENSSL_MISSING}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "-A",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--serve",
      ...(certificates
        ? ["--cert", certificates.server.cert, "--key", certificates.server.key]
        : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pendingText = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const newline = pendingText.indexOf("\n");
      if (newline !== -1) {
        const line = pendingText.slice(0, newline);
        pendingText = pendingText.slice(newline + 1);
        return line;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error("the soak server exited");
      pendingText += value;
    }
  };
  const ask = async (command: string) => {
    await writer.write(encoder.encode(`${command}\n`));
    return JSON.parse(await nextLine());
  };
  const { ports } = JSON.parse(await nextLine()) as { ports: Record<string, number> };
  const caCert = certificates ? await Deno.readTextFile(certificates.caFile) : undefined;

  const counts: ClientCounts = {
    requests: 0,
    connections: 0,
    idleTimeouts: 0,
    errors: 0,
    errorMessages: [],
  };
  let on = true;
  const running = () => on;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => stop = resolve);
  const plain = (port: number) => () => LineConn.open(port);
  const secure = (port: number) => () => LineConn.open(port, caCert);
  const loops: Promise<void>[] = [];
  for (let index = 0; index < 4; index++) {
    loops.push(persistent(counts, running, plain(ports.text!), textStep, 100));
  }
  for (let index = 0; index < 2; index++) {
    loops.push(persistent(counts, running, plain(ports.json!), jsonStep, 100));
    loops.push(persistent(counts, running, plain(ports.echo!), echoStep, 100));
  }
  loops.push(churn(counts, running, plain(ports.text!), 10));
  if (caCert && ports.tls) {
    loops.push(persistent(counts, running, secure(ports.tls), textStep, 200));
    loops.push(churn(counts, running, secure(ports.tls), 2));
  }
  for (let index = 0; index < 25; index++) {
    loops.push(idle(counts, running, stopped, plain(ports.text!)));
    loops.push(idle(counts, running, stopped, plain(ports.echo!)));
  }

  const samples: Sample[] = [];
  const started = performance.now();
  const takeSample = async () => {
    const heap = await ask("sample") as {
      heapUsed: number;
      stats: Record<string, { open: number }>;
    };
    const sample: Sample = {
      t: Math.round((performance.now() - started) / 1000),
      rssMiB: Math.round((await rssMiB(child.pid)) * 10) / 10,
      heapMiB: Math.round(heap.heapUsed / 1048576 * 10) / 10,
      fds: await descriptors(child.pid),
      open: Object.values(heap.stats).reduce((sum, stats) => sum + stats.open, 0),
      errors: counts.errors,
    };
    samples.push(sample);
    console.log(
      `t=${sample.t}s rss=${sample.rssMiB} MiB heap=${sample.heapMiB} MiB fds=${sample.fds} ` +
        `open=${sample.open} requests=${counts.requests} connections=${counts.connections} ` +
        `errors=${counts.errors}`,
    );
  };
  await takeSample();
  while (performance.now() - started < durationMs) {
    await pause(Math.min(intervalMs, durationMs - (performance.now() - started)));
    await takeSample();
  }
  on = false;
  stop();
  await Promise.all(loops);
  const final = await ask("stop") as { stats: Record<string, unknown> };
  await writer.close().catch(() => {});
  const status = await child.status;

  // The trend, after the warm-up.
  const warmup = Math.max(intervalMs, durationMs * 0.2) / 1000;
  const measured = samples.filter((sample) => sample.t >= warmup);
  const window = measured.length < 2 ? 0 : measured.at(-1)!.t - measured[0]!.t;
  const trend = (key: "rssMiB" | "heapMiB" | "fds") =>
    slope(measured.map((sample) => ({ x: sample.t, y: sample[key] })));
  const rises = {
    rssMiB: trend("rssMiB") * window,
    heapMiB: trend("heapMiB") * window,
    fds: trend("fds") * window,
  };
  const verdicts = [
    { ok: counts.errors === 0, text: `client errors: ${counts.errors}` },
    { ok: status.code === 0, text: `server exit status: ${status.code}` },
    {
      ok: measured.length >= 2,
      text: `samples after the warm-up (${warmup} s): ${measured.length}`,
    },
    ...(["rssMiB", "heapMiB", "fds"] as const).map((key) => ({
      ok: rises[key] <= BOUNDS[key],
      text: `${key}: the fitted line rises ${rises[key].toFixed(2)} over ${window} s ` +
        `(${(trend(key) * 3600).toFixed(2)} per hour; bound ${BOUNDS[key]})`,
    })),
  ];
  for (const { ok, text } of verdicts) console.log(`${ok ? "PASS" : "FAIL"} ${text}`);
  for (const message of counts.errorMessages) console.log(`  error: ${message}`);
  console.log(
    `requests ${counts.requests}, connections ${counts.connections}, idle timeouts ` +
      `${counts.idleTimeouts}; server: ${JSON.stringify(final.stats)}`,
  );
  if (jsonFile) {
    await Deno.writeTextFile(
      jsonFile,
      JSON.stringify({ durationMs, intervalMs, counts, rises, samples, final }, null, 2) + "\n",
    );
  }
  return verdicts.every((verdict) => verdict.ok) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * A TCP proxy that misbehaves on purpose, for the faults the kernel here cannot make (it has no
 * netem): it delays every chunk (100 ms ± 20 ms, order kept), forwards byte by byte (one write and
 * so one TCP segment per byte), stalls every connection for a while, or resets the connections of
 * one route mid-stream (a real RST both ways, through `node:net`'s `resetAndDestroy`, which sets
 * SO_LINGER to 0 before the close). A half-close is passed on once the data before it is out, and
 * a reset from one side is passed on to the other.
 *
 * Each route is one listening port that forwards to one upstream, so that a fault can be aimed at
 * one client (the reset) while the others run on.
 *
 * Run as a process (the fault tests run it inside the client's network namespace):
 *
 * ```sh
 * deno run -A tests/faults/fault_proxy.ts --route send=10.213.0.1:7000 --delay 100 --jitter 20
 * ```
 *
 * It prints `listening NAME PORT` per route and then `ready`, and takes commands on stdin, one per
 * line, each answered with one line: `stall MS` → `stalled MS`, `reset NAME` → `reset NAME N` (N
 * connections reset). It exits when stdin ends.
 *
 * @module
 */
import net from "node:net";

/** Where a route forwards to. */
export interface Upstream {
  readonly hostname: string;
  readonly port: number;
}

/** How the proxy treats every byte it forwards. */
export interface FaultProxyOptions {
  /** Delay added to each chunk, in ms. @default {0} */
  delayMs?: number;
  /** The delay varies uniformly by up to this much either way (order is kept). @default {0} */
  jitterMs?: number;
  /** Forward each byte with its own write (no Nagle): the peer sees 1-byte segments. */
  slices?: boolean;
  /** The address the routes listen on. @default {"127.0.0.1"} */
  listenHost?: string;
}

/** Bytes a direction may hold before the proxy stops reading from its source (backpressure). */
const QUEUE_CAP_BYTES = 1024 * 1024;

/** One direction of one proxied connection: reads from `from`, writes to `to`. */
class Pump {
  readonly #queue: { bytes: Uint8Array; at: number }[] = [];
  #queued = 0;
  #lastAt = 0;
  #ended = false;
  #running = false;

  constructor(
    readonly proxy: FaultProxy,
    readonly from: net.Socket,
    readonly to: net.Socket,
  ) {}

  push(chunk: Uint8Array): void {
    // Each chunk leaves at its own delay, but never before the one in front of it.
    this.#lastAt = Math.max(this.#lastAt, performance.now() + this.proxy.nextDelay());
    this.#queue.push({ bytes: chunk, at: this.#lastAt });
    this.#queued += chunk.length;
    if (this.#queued > QUEUE_CAP_BYTES) this.from.pause();
    void this.#run();
  }

  end(): void {
    this.#ended = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0 && !this.to.destroyed) {
        const head = this.#queue[0]!;
        const wait = Math.max(this.proxy.stalledUntil, head.at) - performance.now();
        // The fault itself (a delay or a stall), not a synchronisation; checked again after it.
        if (wait > 0) {
          await new Promise((resolve) => setTimeout(resolve, wait));
          continue;
        }
        this.#queue.shift();
        if (this.proxy.slices) {
          for (let at = 0; at < head.bytes.length && !this.to.destroyed; at++) {
            this.proxy.writes++;
            await write(this.to, head.bytes.subarray(at, at + 1));
          }
        } else {
          this.proxy.writes++;
          await write(this.to, head.bytes);
        }
        this.#queued -= head.bytes.length;
        if (this.#queued <= QUEUE_CAP_BYTES / 2 && this.from.isPaused()) this.from.resume();
      }
      if (this.#ended && this.#queue.length === 0 && !this.to.destroyed) this.to.end();
    } finally {
      this.#running = false;
    }
  }
}

function write(socket: net.Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    // A failed write destroys the socket (the error handler passes it on); its callback may then
    // never come, but the close does.
    const done = () => {
      socket.off("close", done);
      resolve();
    };
    socket.once("close", done);
    socket.write(bytes, done);
  });
}

/** One proxied connection. */
interface Connection {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
}

/** The proxy: one listening port per route. */
export class FaultProxy {
  readonly #servers = new Map<string, net.Server>();
  readonly #connections = new Map<string, Set<Connection>>();
  readonly #delayMs: number;
  readonly #jitterMs: number;
  readonly slices: boolean;
  /** Until when (performance.now) every connection is stalled. */
  stalledUntil = 0;
  /** Connections accepted, per route. */
  readonly accepted = new Map<string, number>();
  /** Writes made to sockets, all connections, both ways. */
  writes = 0;

  private constructor(options: FaultProxyOptions) {
    this.#delayMs = options.delayMs ?? 0;
    this.#jitterMs = options.jitterMs ?? 0;
    this.slices = options.slices ?? false;
  }

  /**
   * Listens for every route (on a free port each).
   * @param routes Route name → upstream.
   */
  static async start(
    routes: Record<string, Upstream>,
    options: FaultProxyOptions = {},
  ): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    for (const [name, upstream] of Object.entries(routes)) {
      await proxy.#listen(name, upstream, options.listenHost ?? "127.0.0.1");
    }
    return proxy;
  }

  /** The port a route listens on. */
  port(name: string): number {
    const address = this.#servers.get(name)?.address();
    if (address === null || address === undefined || typeof address === "string") {
      throw new Error(`no route ${name}`);
    }
    return address.port;
  }

  /** The delay of the next chunk, in ms. */
  nextDelay(): number {
    return this.#delayMs + (Math.random() * 2 - 1) * this.#jitterMs;
  }

  /** Stops forwarding on every connection, both ways, for `ms` from now. */
  stall(ms: number): void {
    this.stalledUntil = Math.max(this.stalledUntil, performance.now() + ms);
  }

  /**
   * Resets every open connection of a route, both ways (RST to the client and to the upstream).
   * @returns How many connections were reset.
   */
  reset(name: string): number {
    const open = this.#connections.get(name) ?? new Set();
    const count = open.size;
    for (const { client, upstream } of open) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    open.clear();
    return count;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    for (const open of this.#connections.values()) {
      for (const { client, upstream } of open) {
        client.destroy();
        upstream.destroy();
      }
    }
    await Promise.all(
      [...this.#servers.values()].map((server) =>
        new Promise<void>((resolve) => server.close(() => resolve()))
      ),
    );
  }

  async #listen(name: string, upstream: Upstream, host: string): Promise<void> {
    const open = new Set<Connection>();
    this.#connections.set(name, open);
    this.accepted.set(name, 0);
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      this.accepted.set(name, (this.accepted.get(name) ?? 0) + 1);
      const outbound = net.connect({
        host: upstream.hostname,
        port: upstream.port,
        allowHalfOpen: true,
      });
      client.setNoDelay(true);
      outbound.setNoDelay(true);
      const connection = { client, upstream: outbound };
      open.add(connection);
      this.#join(client, outbound);
      this.#join(outbound, client);
      const forget = () => {
        if (client.destroyed && outbound.destroyed) open.delete(connection);
      };
      client.on("close", forget);
      outbound.on("close", forget);
    });
    this.#servers.set(name, server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => resolve());
    });
  }

  /** Forwards `from` → `to`: data through the pump, the end after the data, a reset as a reset. */
  #join(from: net.Socket, to: net.Socket): void {
    const pump = new Pump(this, from, to);
    from.on("data", (chunk: Uint8Array) => pump.push(chunk));
    from.on("end", () => pump.end());
    from.on("error", (error: NodeJS.ErrnoException) => {
      if (to.destroyed) return;
      if (error.code === "ECONNRESET") to.resetAndDestroy();
      else to.destroy();
    });
    from.on("close", () => {
      // Closed without its end (destroyed): the other side cannot be answered any more.
      if (!from.readableEnded && !to.destroyed) to.destroy();
    });
  }
}

function parseArgs(
  args: string[],
): { routes: Record<string, Upstream>; options: FaultProxyOptions } {
  const routes: Record<string, Upstream> = {};
  const options: FaultProxyOptions = {};
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    const value = () => {
      const next = args[++index];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === "--route") {
      const match = /^([\w-]+)=(.+):(\d+)$/.exec(value());
      if (!match) throw new Error("--route takes NAME=HOST:PORT");
      routes[match[1]!] = { hostname: match[2]!, port: Number(match[3]) };
    } else if (arg === "--delay") options.delayMs = Number(value());
    else if (arg === "--jitter") options.jitterMs = Number(value());
    else if (arg === "--slices") options.slices = true;
    else if (arg === "--listen") options.listenHost = value();
    else throw new Error(`unknown argument ${arg}`);
  }
  return { routes, options };
}

async function main(): Promise<void> {
  const { routes, options } = parseArgs(Deno.args);
  const proxy = await FaultProxy.start(routes, options);
  for (const name of Object.keys(routes)) console.log(`listening ${name} ${proxy.port(name)}`);
  console.log("ready");
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      const [command, argument = ""] = pending.slice(0, newline).trim().split(/\s+/);
      pending = pending.slice(newline + 1);
      if (command === "stall") {
        proxy.stall(Number(argument));
        console.log(`stalled ${argument}`);
      } else if (command === "reset") {
        console.log(`reset ${argument} ${proxy.reset(argument)}`);
      } else {
        console.log(`unknown command ${command}`);
      }
    }
  }
  await proxy.close();
  Deno.exit(0);
}

if (import.meta.main) await main();

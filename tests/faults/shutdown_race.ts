/**
 * Measures the one timing heuristic left in shutdown: a connection blocked in `read` gets a quiet
 * period (`DRAIN_QUIET_MS`, 50 ms) before its FIN, for input that reached the server's kernel
 * before the signal but whose read had not completed yet (docs/reliability.md, "Shutdown and
 * input on its way").
 *
 * Each round: a `linesock serve` process kept busy by pipelining clients; a probe connection
 * writes `PING`, and once the server's kernel has acknowledged every byte of it (the probe's
 * `tx_queue` in /proc/net/tcp is 0, so the line is in the server's receive queue or already read)
 * and no answer has arrived yet, the server gets SIGTERM. The round counts whether the probe got
 * `PONG` or only the close.
 *
 * ```sh
 * deno run -A --unstable-net tests/faults/shutdown_race.ts [--rounds 200] [--load 4]
 * ```
 *
 * To measure another quiet period, run a copy of the checkout with `DRAIN_QUIET_MS` changed.
 *
 * @module
 */
import { startServer } from "../_support/cli.ts";

const encoder = new TextEncoder();

function option(name: string, fallback: number): number {
  const index = Deno.args.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(Deno.args[index + 1]);
}

/** Bytes the probe wrote that the peer's kernel has not acknowledged yet (/proc/net/tcp). */
async function unacknowledged(localPort: number, remotePort: number): Promise<number | undefined> {
  const table = await Deno.readTextFile("/proc/net/tcp");
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  for (const row of table.split("\n").slice(1)) {
    const fields = row.trim().split(/\s+/);
    if (fields[1]?.endsWith(`:${hex(localPort)}`) && fields[2]?.endsWith(`:${hex(remotePort)}`)) {
      return parseInt(fields[4]!.split(":")[0]!, 16);
    }
  }
  return undefined;
}

/** A client that pipelines lines without reading them in order, until its connection ends. */
async function pipeline(conn: Deno.Conn): Promise<void> {
  const batch = encoder.encode("ECHO load\n".repeat(512));
  const sink = new Uint8Array(64 * 1024);
  const reading = (async () => {
    try {
      while ((await conn.read(sink)) !== null) {
        // Discard.
      }
    } catch {
      // Closed by the shutdown.
    }
  })();
  try {
    for (;;) await conn.write(batch);
  } catch {
    // Closed by the shutdown.
  }
  await reading;
  conn.close();
}

type Outcome = "answered before the signal" | "answered after the signal" | "not answered";

async function round(loadConnections: number): Promise<Outcome> {
  await using server = await startServer(["--port", "0", "--quiet"]);
  const loads = await Promise.all(
    Array.from({ length: loadConnections }, () => Deno.connect({ port: server.port })),
  );
  const loading = loads.map(pipeline);
  const probe = await Deno.connect({ port: server.port });
  const localPort = (probe.localAddr as Deno.NetAddr).port;
  let reply = "";
  const answered = (async () => {
    const buffer = new Uint8Array(64);
    for (;;) {
      const count = await probe.read(buffer).catch(() => null);
      if (count === null) return;
      reply += new TextDecoder().decode(buffer.subarray(0, count));
    }
  })();
  // Let the load get going (the server's loop is then busy), then the line.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await probe.write(encoder.encode("PING\n"));
  while ((await unacknowledged(localPort, server.port)) !== 0) {
    // The pause between two looks at the kernel's table, not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const early = reply !== "";
  server.process.kill("SIGTERM");
  await answered;
  probe.close();
  await Promise.all(loading);
  await server.stop();
  if (early) return "answered before the signal";
  return reply.includes("PONG") ? "answered after the signal" : "not answered";
}

const rounds = option("rounds", 200);
const counts = new Map<Outcome, number>();
for (let index = 0; index < rounds; index++) {
  const outcome = await round(option("load", 4));
  counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
}
console.log(JSON.stringify(Object.fromEntries(counts)));

/**
 * Idle connections: opens `count` connections to a running `linesock serve` (text protocol), checks
 * that every one of them is served (each answers `PING`), holds them open, and reads the server's
 * resident memory. Used by `bench/server_load.ts`; also runs alone:
 * `deno run -A bench/idle_connections.ts --port N [--count 10000]`.
 *
 * @module
 */
import { memoryMiB } from "./_proc.ts";

/** What the idle measurement found. */
export interface IdleResult {
  /** Connections opened and answered. */
  connections: number;
  /** The server's resident memory with all of them open, in MiB. */
  rssMiB: number | undefined;
  /** The server's resident memory before the first connection, in MiB. */
  baselineMiB: number | undefined;
}

const PING = new TextEncoder().encode("PING\n");
const CONCURRENCY = 250;

/**
 * Opens `count` connections to 127.0.0.1:`port`, each answering PING, and measures `pid`'s memory.
 * @returns The measurement; every connection is closed again.
 */
export async function measureIdle(port: number, pid: number, count: number): Promise<IdleResult> {
  const baselineMiB = await memoryMiB(pid, "VmRSS");
  const conns: Deno.Conn[] = [];
  try {
    let answered = 0;
    for (let start = 0; start < count; start += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, count - start) }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.push(conn);
        await conn.write(PING);
        const reply = new Uint8Array(16);
        let length = 0;
        while (length < 5) {
          const n = await conn.read(reply.subarray(length));
          if (n === null) throw new Error("the server closed an idle connection");
          length += n;
        }
        if (new TextDecoder().decode(reply.subarray(0, length)) !== "PONG\n") {
          throw new Error("unexpected reply");
        }
        answered++;
      });
      await Promise.all(batch);
    }
    return { connections: answered, rssMiB: await memoryMiB(pid, "VmRSS"), baselineMiB };
  } finally {
    for (const conn of conns) conn.close();
  }
}

if (import.meta.main) {
  const valueOf = (flag: string) => Deno.args[Deno.args.indexOf(flag) + 1];
  const port = Number(valueOf("--port"));
  const pid = Number(valueOf("--pid"));
  const count = Deno.args.includes("--count") ? Number(valueOf("--count")) : 10_000;
  console.log(await measureIdle(port, pid, count));
}

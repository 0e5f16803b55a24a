/**
 * The attacks of docs/security.md, each replayed against `linesock serve` on loopback: a burst of
 * connections reset before they are accepted, TLS handshakes that never finish (under a descriptor
 * limit), clients that reset while their program runs or waits for a slot, clients that drip a line
 * one byte at a time, and one address taking every connection. Each one failed before the fix it
 * pins (figures in the CHANGELOG and docs/security.md).
 *
 * The reset clients are a small Python script (tests/_support/reset_clients.py): Deno cannot set
 * SO_LINGER, so it cannot send a reset on purpose.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startServer, within } from "../_support/cli.ts";
import { exchange, LineSession } from "../_support/line_session.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";

const RESET_CLIENTS = fileURLToPath(new URL("../_support/reset_clients.py", import.meta.url));
const PYTHON_MISSING = probe("python3", ["--version"]) ? undefined : "python3 is not installed";
const PRLIMIT_MISSING = probe("prlimit", ["--version"]) ? undefined : "prlimit is not installed";

function probe(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, { args, stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** The pause between two polls of a condition the loop checks (not a synchronisation). */
function tick(ms = 10): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it holds; fails naming `what` after `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await tick();
  }
}

/** The reset clients' process, its stdout read line by line. */
function resetClients(args: string[]) {
  const child = new Deno.Command("python3", {
    args: [RESET_CLIENTS, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let printed = "";
  const reading = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) printed += text;
  })();
  const stdin = child.stdin.getWriter();
  return {
    /** Waits for the script to print the line `word`. */
    async expect(word: string): Promise<void> {
      await until(
        () => printed.split("\n").includes(word),
        15_000,
        `reset_clients.py printing ${word} (printed ${JSON.stringify(printed)})`,
      );
    },
    /** Tells the script to go on (to reset its connections). */
    async go(): Promise<void> {
      await stdin.write(new TextEncoder().encode("go\n"));
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await stdin.close().catch(() => {});
      await child.status;
      await reading;
    },
  };
}

/** The process ids whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const state = stat.charAt(stat.lastIndexOf(")") + 2);
      if (cmdline.includes(marker) && state !== "Z") pids.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function descriptors(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

Deno.test({
  name: "attack: a burst of connections reset before accept does not stall the accept loop",
  ignore: PYTHON_MISSING !== undefined,
  async fn() {
    await using server = await startServer(["--port", "0", "--log-level", "debug"]);
    await using clients = resetClients(["burst", String(server.port), "100"]);
    await clients.expect("reset");
    // Before: every reset doubled a pause up to 1 s; the PING after 60 of them waited 54 s.
    const started = performance.now();
    assert.deepEqual(await exchange(server.port, ["PING"], 1000), ["PONG"]);
    const ms = performance.now() - started;
    assert.ok(ms < 1000, `PING answered after ${ms} ms`);
    assert.doesNotMatch(server.stderr(), /Cannot accept connections/);
  },
});

Deno.test({
  name: "attack: TLS handshakes that never finish release their descriptors (limit 300)",
  ignore: OPENSSL_MISSING !== undefined || PRLIMIT_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const maxConnections = 20;
    await using server = await startServer([
      "--port",
      "0",
      "--tls-cert",
      certificates.server.cert,
      "--tls-key",
      certificates.server.key,
      "--tls-handshake-timeout",
      "1s",
      "--idle-timeout",
      "2s",
      "--max-connections",
      String(maxConnections),
    ], { wrapper: ["prlimit", "--nofile=300:300"] });
    const pid = server.process.pid;
    const base = descriptors(pid);
    // The first 11 bytes of a ClientHello, then nothing.
    const partialHello = new Uint8Array([0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]);
    const attackers: Deno.Conn[] = [];
    let peak = base;
    try {
      const sample = () => {
        const count = descriptors(pid);
        peak = Math.max(peak, count);
        return count;
      };
      for (let wave = 0; wave < 4; wave++) {
        for (let index = 0; index < 80; index++) {
          const conn = await Deno.connect({ port: server.port });
          attackers.push(conn);
          await conn.write(partialHello).catch(() => {});
          sample();
        }
        await until(() => sample() >= base + maxConnections, 5000, `wave ${wave} held`);
        // Each wave's connections time out (handshake timeout, or refused and closed).
        await until(() => sample() <= base + 2, 10_000, `wave ${wave} released`);
      }
      // Before: 25 → 105 → 185 → 265 → 300 descriptors, then "Too many open files".
      const bound = base + maxConnections + 64 + 8;
      assert.ok(peak <= bound, `peak ${peak} descriptors (base ${base}, bound ${bound})`);
      console.log(`descriptors: base ${base}, peak ${peak}`);
      // The attackers still hold their sockets open; a real TLS client is served.
      const caCerts = [await Deno.readTextFile(certificates.caFile)];
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: server.port, caCerts });
      try {
        await conn.write(new TextEncoder().encode("PING\n"));
        const reply = new Uint8Array(16);
        const count = await within(conn.read(reply), 5000, "a TLS client's PONG");
        assert.equal(new TextDecoder().decode(reply.subarray(0, count ?? 0)), "PONG\n");
      } finally {
        conn.close();
      }
      assert.doesNotMatch(server.stderr(), /Too many open files/);
    } finally {
      for (const conn of attackers) conn.close();
    }
  },
});

Deno.test({
  name: "attack: clients that reset while their program runs or waits leave no program behind",
  ignore: PYTHON_MISSING !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    const marker = `linesock-burn-${crypto.randomUUID()}`;
    const routes = `${dir}/routes.json`;
    await Deno.writeTextFile(
      routes,
      JSON.stringify({
        routes: [{
          match: { exact: "burn" },
          run: { argv: ["sh", "-c", "while :; do :; done", marker], timeout: "30s" },
        }],
      }),
    );
    try {
      await using server = await startServer([
        "--port",
        "0",
        "--routes",
        routes,
        "--max-exec",
        "2",
      ]);
      await using clients = resetClients(["line", String(server.port), "10", "burn"]);
      await clients.expect("sent");
      // Two programs burn; eight clients wait for a slot.
      await until(() => processesWith(marker).length === 2, 10_000, "two programs running");
      await clients.go();
      await clients.expect("reset");
      const reset = performance.now();
      // Before: the queue ran all ten programs, two at a time, for nobody (~15 s of CPU).
      await until(() => processesWith(marker).length === 0, 1000, "every program gone");
      // And none starts later for a client that is gone.
      const later = performance.now() - reset;
      assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
      assert.deepEqual(processesWith(marker), [], `a program started ${later} ms after`);
    } finally {
      for (const pid of processesWith(marker)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("attack: clients that drip a line byte by byte are dropped by --line-timeout", async () => {
  await using server = await startServer([
    "--port",
    "0",
    "--line-timeout",
    "1s",
    "--idle-timeout",
    "3s",
    "--max-connections",
    "5",
  ]);
  const drippers = await Promise.all(
    Array.from({ length: 5 }, () => LineSession.open(server.port)),
  );
  const started = performance.now();
  // The attack: one byte every 100 ms, never a newline (any byte resets the idle timeout).
  const drip = setInterval(() => {
    for (const session of drippers) session.write("x").catch(() => {});
  }, 100);
  try {
    const farewells = await Promise.all(
      drippers.map((session) => within(session.readLines(1), 5000, "the line timeout")),
    );
    const ms = performance.now() - started;
    for (const lines of farewells) {
      assert.deepEqual(lines, ["ERR line timeout (a line must arrive within 1000 ms)"]);
    }
    assert.ok(ms >= 900 && ms < 3000, `dropped after ${ms} ms (line timeout 1 s, idle 3 s)`);
    for (const session of drippers) {
      assert.deepEqual(await session.readAll(5000), []);
    }
  } finally {
    clearInterval(drip);
    for (const session of drippers) await session[Symbol.asyncDispose]();
  }
  assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
});

Deno.test("attack: one address holding every slot is refused by --max-per-address", async (t) => {
  await t.step("direct clients: the third from 127.0.0.1 is refused", async () => {
    await using server = await startServer(["--port", "0", "--max-per-address", "2"]);
    await using first = await LineSession.open(server.port);
    await using second = await LineSession.open(server.port);
    assert.deepEqual(await exchange(server.port, ["PING"]), [
      "ERR too many connections from 127.0.0.1",
    ]);
    await first.write("PING\n");
    assert.deepEqual(await first.readLines(1), ["PONG"]);
    second.close();
    // A slot of that address is free again once the server saw the close.
    await until(() => /Connection 2 from .* closed/.test(server.stderr()), 5000, "the close");
    assert.deepEqual(await exchange(server.port, ["PING"]), ["PONG"]);
  });

  await t.step("behind a balancer: the limit counts the PROXY header's address", async () => {
    await using server = await startServer([
      "--port",
      "0",
      "--max-per-address",
      "1",
      "--proxy-protocol",
    ]);
    const header = (source: string) => `PROXY TCP4 ${source} 127.0.0.1 40000 1991\r`;
    await using held = await LineSession.open(server.port);
    await held.write(`${header("192.0.2.1")}\nPING\n`);
    assert.deepEqual(await held.readLines(1), ["PONG"]);
    assert.deepEqual(await exchange(server.port, [header("192.0.2.1"), "PING"]), [
      "ERR too many connections from 192.0.2.1",
    ]);
    assert.deepEqual(await exchange(server.port, [header("192.0.2.2"), "PING"]), ["PONG"]);
  });
});

/**
 * The long reliability scenarios of docs/reliability.md, against the real `linesock serve` process:
 *
 * ```sh
 * deno run -A --unstable-net bench/reliability.ts [flood|drip|churn|sigterm|all] [options]
 * ```
 *
 * - `flood`: 1 GiB with no newline to each protocol (`--flood-size`), peak RSS, PINGs in between.
 * - `drip`: p99 of 10 lockstep clients alone, then with 1,000 clients dripping one byte per second
 *   (`--drippers`, `--seconds` per run); the drippers run in a child process of this script.
 * - `churn`: 20,000 connect/close cycles and 1,000 resets mid-line (`--cycles`, `--resets`); open
 *   descriptors of the server before and after.
 * - `sigterm`: SIGTERM during a pipelined load, five rounds (`--rounds`); answers vs lines in/out.
 *
 * Every loop is bounded in count and time, only 127.0.0.1 is used, and every process is stopped.
 *
 * @module
 */
import { type RunningServer, startServer, within } from "../tests/_support/cli.ts";
import { runLoad } from "./_load_driver.ts";
import { type Protocol, runFlood } from "./_reliability/flood.ts";
import { openDrippers } from "./_reliability/drippers.ts";
import { connectCloseCycles, resetsMidLine } from "./_reliability/churn.ts";
import { runPipelinedShutdown } from "./_reliability/pipelined_shutdown.ts";
import { countDescriptors, mib, settleDescriptors } from "./_reliability/process_probe.ts";

const args = Deno.args;
const scenario = args[0] && !args[0].startsWith("--") ? args[0] : "all";

function option(name: string, fallback: number): number {
  const index = args.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} needs a number`);
  return value;
}

/** The server's peak memory bound of docs/reliability.md, for a flood of any size. */
const PEAK_RSS_BOUND = 160 * 1024 * 1024;
const SUMMARY = /^summary: (\d+) connections, (\d+) lines in, (\d+) lines out/;
let failures = 0;

function verdict(ok: boolean, text: string): void {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${text}`);
}

async function flood(): Promise<void> {
  const bytes = option("flood-size", 1024) * 1024 * 1024;
  for (const protocol of ["text", "json", "echo"] as Protocol[]) {
    await using server = await startServer(["--port", "0", "--protocol", protocol, "--quiet"]);
    const result = await runFlood({ port: server.port, pid: server.process.pid, protocol, bytes });
    const errorOk = protocol === "echo"
      ? result.receivedBytes === bytes && result.foreignBytes === 0
      : result.replies.length === 1 && /line too long/.test(result.replies[0]!);
    verdict(
      errorOk && result.peakRssAfter < PEAK_RSS_BOUND,
      `flood ${protocol}: ${mib(bytes)} in ${(result.durationMs / 1000).toFixed(1)} s, ` +
        `peak RSS ${mib(result.peakRssBefore)} -> ${mib(result.peakRssAfter)} ` +
        `(bound ${mib(PEAK_RSS_BOUND)}), ${result.pings} PINGs answered during the flood, ` +
        (protocol === "echo"
          ? `${mib(result.receivedBytes)} echoed`
          : `reply ${JSON.stringify(result.replies)}`),
    );
  }
}

async function drip(): Promise<void> {
  const drippers = option("drippers", 1000);
  const seconds = option("seconds", 20);
  await using server = await startServer(["--port", "0", "--quiet"]);
  const request = new TextEncoder().encode("PING");
  const load = () =>
    runLoad(server.port, {
      request,
      connections: 10,
      mode: "lockstep",
      durationMs: seconds * 1000,
    });
  await runLoad(server.port, { request, connections: 10, mode: "lockstep", durationMs: 2000 });
  const alone = await load();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      import.meta.filename!,
      "dripper",
      "--port",
      String(server.port),
      "--drippers",
      String(drippers),
      "--seconds",
      String(seconds + 30),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const ready = await within(reader.read(), 60_000, "the drippers to connect");
    if (!ready.value?.startsWith("dripping")) throw new Error(`dripper said ${ready.value}`);
    const withDrippers = await load();
    const p99Alone = alone.latencyUs!.p99;
    const p99Drip = withDrippers.latencyUs!.p99;
    const ratio = p99Drip / p99Alone;
    verdict(
      ratio <= 2 && withDrippers.mismatches === 0,
      `drip: 10 lockstep clients, ${seconds} s each: p99 ${p99Alone.toFixed(0)} µs alone, ` +
        `${p99Drip.toFixed(0)} µs with ${drippers} drippers (ratio ${
          ratio.toFixed(2)
        }, limit 2); ` +
        `p50 ${alone.latencyUs!.p50.toFixed(0)} / ${withDrippers.latencyUs!.p50.toFixed(0)} µs; ` +
        `${Math.round(alone.linesPerSecond)} / ${Math.round(withDrippers.linesPerSecond)} lines/s`,
    );
  } finally {
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
  }
}

/** The child process of `drip`: connects the drippers, says so, drips until killed or timed out. */
async function dripper(): Promise<void> {
  const drippers = await openDrippers(option("port", 0), option("drippers", 1000));
  drippers.dripEvery(1000);
  console.log(`dripping ${drippers.count}`);
  const stop = new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGTERM", resolve);
    setTimeout(resolve, option("seconds", 60) * 1000);
  });
  await stop;
  await drippers.close();
  Deno.exit(0);
}

async function churn(): Promise<void> {
  const cycles = option("cycles", 20_000);
  const resets = option("resets", 1000);
  await using server = await startServer(["--port", "0"]);
  const pid = server.process.pid;
  await within(ping(server), 10_000, "a first PING");
  await server.waitForStderr("closed after");
  const before = await countDescriptors(pid);
  const cycleMs = await connectCloseCycles({ port: server.port, cycles });
  const resetMs = await resetsMidLine({
    port: server.port,
    resets,
    request: "PING",
    partial: "ECHO never finished",
  });
  const after = await settleDescriptors(pid, before);
  const resetLogs = server.stderr().match(/\("?connection reset by client"?\)/g)?.length ?? 0;
  await within(ping(server), 10_000, "a PING after the churn");
  const result = await server.stop("SIGTERM");
  const summary = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
  verdict(
    after.fds <= before.fds && after.sockets <= before.sockets && result.code === 0 &&
      Number(summary?.[1]) === cycles + resets + 2,
    `churn: ${cycles} connect/close cycles in ${(cycleMs / 1000).toFixed(1)} s, ${resets} RST ` +
      `mid-line in ${(resetMs / 1000).toFixed(1)} s (${resetLogs} logged as resets); server fds ` +
      `${before.fds} (${before.sockets} sockets) before, ${after.fds} (${after.sockets}) after; ` +
      `${summary?.[1]} connections counted, exit ${result.code}`,
  );
}

async function ping(server: RunningServer): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(new TextEncoder().encode("PING\n"));
    await conn.closeWrite();
    const reply = new TextDecoder().decode(await new Response(conn.readable).bytes());
    if (reply !== "PONG\n") throw new Error(`PING answered ${JSON.stringify(reply)}`);
  } catch (error) {
    conn.close();
    throw error;
  }
}

async function sigterm(): Promise<void> {
  const rounds = option("rounds", 5);
  const connections = option("connections", 8);
  for (let round = 1; round <= rounds; round++) {
    const server = await startServer(["--port", "0", "--quiet"]);
    const result = await runPipelinedShutdown({
      port: server.port,
      connections,
      repliesBeforeSignal: 200_000,
      signal: () => server.process.kill("SIGTERM"),
    });
    await within(server.process.status, 30_000, "the server's exit");
    const exit = await server.stop();
    const summary = SUMMARY.exec(server.stdoutLines.at(-1) ?? "");
    const linesIn = Number(summary?.[2]);
    const linesOut = Number(summary?.[3]);
    verdict(
      exit.code === 0 && result.wrong === 0 && result.cutOff === 0 &&
        result.answered === linesOut && linesOut === linesIn,
      `sigterm round ${round}: ${connections} pipelining clients sent ${result.sent} lines, got ` +
        `${result.answered} answers (${result.answeredBeforeSignal} before the signal; ` +
        `${result.wrong} wrong, ${result.cutOff} cut off); server ${linesIn} in, ${linesOut} out, ` +
        `exit ${exit.code}`,
    );
  }
}

const scenarios: Record<string, () => Promise<void>> = { flood, drip, churn, sigterm };
if (scenario === "dripper") {
  await dripper();
} else {
  const chosen = scenario === "all" ? Object.keys(scenarios) : [scenario];
  console.log(
    `linesock reliability on ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
  );
  for (const name of chosen) {
    const run = scenarios[name];
    if (!run) throw new Error(`unknown scenario ${name}; try flood, drip, churn, sigterm or all`);
    await run();
  }
  console.log(failures === 0 ? "all scenarios passed" : `${failures} scenario(s) failed`);
  Deno.exit(failures === 0 ? 0 : 1);
}

/**
 * `deno task faults`: linesock over a bad network. Two network namespaces joined by a veth pair
 * (netns.ts): the servers (`linesock serve`, text and echo) in one, every client in the other.
 * Faults are made by the kernel (nftables loss, tbf bandwidth, the link down, a small MTU) or by
 * the fault proxy (fault_proxy.ts, in the client's namespace: delay, 1-byte slices, a stall, a
 * reset), since this kernel has no netem.
 *
 * Under each fault, at the same time: `send` of a 100,000-line file with half-close, the echo
 * conformance suite, the repl without a terminal (lockstep), and a fixed-rate load (workloads.ts).
 * A fault that starts mid-stream (link down, stall, reset) starts once the first 30,000 replies of
 * the send are in, with the rest of the file still to be sent; the conformance suite then starts
 * under it. Pass: no line lost, duplicated or corrupted; endings and timeouts as documented; each
 * server's peak RSS under the documented bound, its descriptors back where they were, and a clean
 * exit on SIGTERM.
 *
 * Needs root, `ip`, `nft` and `tc` (ignored otherwise, with the reason); `tmux` for the
 * interactive repl's reconnection under the reset. Not part of `deno task test`: it takes a few
 * minutes and changes the machine's namespaces. Set `FAULTS_REPORT=FILE` to get the figures as
 * JSON; `FAULTS_ONLY=name,name` runs only some scenarios.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type RunningServer, startServer } from "../_support/cli.ts";
import { cliCommand, HAS_TMUX, ptyEnv, startPty } from "../_support/pty.ts";
import {
  countDescriptors,
  type DescriptorCount,
  peakRssBytes,
  settleDescriptors,
} from "../../bench/_reliability/process_probe.ts";
import { ClientProcess } from "./client_process.ts";
import { createLink, NETNS_MISSING, type NetnsLink, run, SERVER_ADDRESS } from "./netns.ts";
import { type ProxyFaults, type ProxyProcess, startProxy } from "./proxy_process.ts";
import {
  checkReplies,
  conformancePassed,
  loadReport,
  ScriptedRepl,
  SEND_LINES,
  startConformance,
  startGatedSend,
  startLoad,
  startSendFile,
  type Target,
  writeSendFile,
} from "./workloads.ts";

/** A server's peak RSS must stay under this (docs/reliability.md: the bound for any flood). */
const PEAK_RSS_BOUND = 160 * 1024 * 1024;
/** A mid-stream fault starts once this many replies of the send are in. */
const GATE = 30_000;
/** A fault while the lines flow: lines fed so far, and the replies in when it starts. */
const FLOWING_FED = 65_000;
const FLOWING_AT = 45_000;
/** Lines the scripted repl exchanges: half before a mid-stream fault, half under it. */
const REPL_LINES = 20;
/** How long the link stays down. */
const LINK_DOWN_MS = 20_000;
/** How long the proxy stalls. */
const STALL_MS = 10_000;
/** The fixed-rate load's pace (lines per second, in total). */
const LOAD_RATE = 200;

/** What a scenario can reach while it runs. */
interface ScenarioContext {
  readonly link: NetnsLink;
  readonly proxy: ProxyProcess | undefined;
  /** Words that run a command in the client's namespace. */
  readonly client: string[];
  /** Where each workload connects (the server, or the proxy's route to it). */
  readonly targets: Record<Route, Target>;
  /** Checks that failed, each one line. */
  readonly failures: string[];
}

type Route = "send" | "repl" | "conformance" | "load" | "probe" | "tty";

/** A fault that starts mid-stream: `start` applies it; `over` settles when it has ended. */
interface MidStreamFault {
  start(context: ScenarioContext): Promise<{ over: Promise<void> }>;
  /** More checks while the fault is on (documented timeouts). */
  during?(context: ScenarioContext): Promise<void>;
  /** The send and the scripted repl are reset: they end early, as documented. */
  resets?: boolean;
  /**
   * Start it while the send's lines flow (fed up to line 65,000, started at reply 45,000) instead
   * of at the gate (all 30,000 lines answered, the rest not yet fed).
   */
  flowing?: boolean;
}

interface Scenario {
  readonly name: string;
  readonly why: string;
  /** A kernel fault, on before the clients start. */
  kernel?(link: NetnsLink): Promise<void>;
  /** Through the fault proxy, with these faults. */
  proxy?: ProxyFaults;
  midStream?: MidStreamFault;
  /** The conformance suite's budget per case. */
  readonly caseTimeout: string;
  /** How long the fixed-rate load sends. */
  readonly loadDuration: string;
}

/** One scenario's figures. */
interface Figures {
  scenario: string;
  seconds: number;
  retransmits: number;
  /** When the mid-stream fault started, seconds from the start. */
  faultAt: number | undefined;
  /** When each workload ended, seconds from the start. */
  ends: Record<string, number>;
  sendSeconds: number;
  sendReplies: number;
  conformanceSeconds: number;
  replLines: number;
  loadLines: number;
  loadP99Ms: number;
  /** What send and the scripted repl said on stderr (the endings under a reset). */
  stderr: { send: string; repl: string };
  textPeakRssMiB: number;
  echoPeakRssMiB: number;
  failures: string[];
}

const SCENARIOS: Scenario[] = [
  {
    name: "no fault",
    why: "the control: the same workloads on a clean link, default budgets",
    caseTimeout: "5s",
    loadDuration: "5s",
  },
  {
    name: "loss 1%",
    why: "1% of the packets arriving in each namespace dropped (nftables numgen)",
    kernel: (link) => link.loss(1),
    caseTimeout: "60s",
    loadDuration: "5s",
  },
  {
    name: "loss 5%",
    why: "5% of the packets arriving in each namespace dropped",
    kernel: (link) => link.loss(5),
    caseTimeout: "60s",
    loadDuration: "5s",
  },
  {
    name: "bandwidth 1 Mbit/s",
    why: "tbf at 1 Mbit/s on both ends",
    kernel: (link) => link.bandwidth("1mbit"),
    caseTimeout: "60s",
    loadDuration: "10s",
  },
  {
    name: "MTU 576",
    why: "both ends at MTU 576 (segments of 536 bytes)",
    kernel: (link) => link.mtu(576),
    caseTimeout: "60s",
    loadDuration: "5s",
  },
  {
    name: "link down 20 s",
    why: "the server's end of the link down for 20 s mid-stream, then up",
    midStream: {
      async start({ link }) {
        await link.linkUp(false);
        // The fault's length, not a synchronisation.
        const over = (async () => {
          await new Promise((resolve) => setTimeout(resolve, LINK_DOWN_MS));
          await link.linkUp(true);
        })();
        return { over };
      },
      async during({ client, targets, failures }) {
        // A new connection cannot be made while the link is down: --connect-timeout ends it.
        const connect = await ClientProcess.start("send", [
          ...targetArgs(targets.probe),
          "--connect-timeout",
          "2s",
          "PING",
        ], { wrapper: client }).exit;
        if (connect.code !== 4 || !/--connect-timeout|Timed out/i.test(connect.stderr)) {
          failures.push(
            `send --connect-timeout 2s during the outage: exit ${connect.code}, ${connect.stderr}`,
          );
        }
      },
    },
    caseTimeout: "60s",
    loadDuration: "25s",
  },
  {
    name: "delay 100 ms ± 20 ms",
    why: "the proxy delays every chunk by 80 to 120 ms, both ways, order kept",
    proxy: { delayMs: 100, jitterMs: 20 },
    caseTimeout: "60s",
    loadDuration: "5s",
  },
  {
    name: "1-byte slices",
    why: "the proxy forwards every byte in its own write (1-byte TCP segments), both ways",
    proxy: { slices: true },
    caseTimeout: "60s",
    loadDuration: "5s",
  },
  {
    name: "stall 10 s",
    why: "the proxy forwards nothing, either way, for 10 s mid-stream",
    proxy: {},
    midStream: {
      async start({ proxy }) {
        await proxy!.stall(STALL_MS);
        return { over: new Promise((resolve) => setTimeout(resolve, STALL_MS)) };
      },
      async during({ client, targets, failures }) {
        const probe = targetArgs(targets.probe);
        const [silence, awaited] = await Promise.all([
          // Default ending: half-close, then --wait (2 s) of silence is a normal end, exit 0.
          ClientProcess.start("send", [...probe, "PING"], { wrapper: client }).exit,
          // An awaited reply: --timeout is exit 4.
          ClientProcess.start("send", [...probe, "--replies", "1", "--timeout", "3s", "PING"], {
            wrapper: client,
          }).exit,
        ]);
        // With the reply it would have ended by the close, after the stall: no reply means --wait.
        if (silence.code !== 0 || silence.lines.length !== 0) {
          failures.push(
            `send PING under the stall: exit ${silence.code}, replies ${silence.lines.length} ` +
              `(expected the --wait ending: exit 0, none)`,
          );
        }
        if (awaited.code !== 4 || awaited.lines.length !== 0) {
          failures.push(
            `send --replies 1 --timeout 3s under the stall: exit ${awaited.code}, ` +
              `${awaited.stderr.trim()} (expected exit 4)`,
          );
        }
      },
    },
    caseTimeout: "60s",
    loadDuration: "12s",
  },
  {
    name: "reset mid-stream",
    why: "the proxy resets the send's and the repl's connections (RST both ways) mid-stream",
    proxy: {},
    midStream: {
      resets: true,
      flowing: true,
      async start({ proxy, failures }) {
        for (const route of ["send", "repl"]) {
          const count = await proxy!.reset(route);
          if (count !== 1) failures.push(`reset ${route}: ${count} connections, expected 1`);
        }
        return { over: Promise.resolve() };
      },
    },
    caseTimeout: "60s",
    loadDuration: "5s",
  },
];

function targetArgs(target: Target): string[] {
  return ["--host", target.host, "--port", String(target.port)];
}

/** Starts a server in the server's namespace. */
function serveInside(link: NetnsLink, args: string[]): Promise<RunningServer> {
  return startServer(["--host", SERVER_ADDRESS, "--port", "0", "--quiet", ...args], {
    wrapper: link.wrapper(link.server),
  });
}

const MIB = 1024 * 1024;

async function runScenario(link: NetnsLink, scenario: Scenario, file: string): Promise<Figures> {
  await link.clear();
  const failures: string[] = [];
  await using text = await serveInside(link, []);
  await using echo = await serveInside(link, ["--protocol", "echo"]);
  const servers = { text, echo };
  const baseline: Record<string, DescriptorCount> = {
    text: await countDescriptors(text.process.pid),
    echo: await countDescriptors(echo.process.pid),
  };
  const textTarget = { host: SERVER_ADDRESS, port: text.port };
  const echoTarget = { host: SERVER_ADDRESS, port: echo.port };
  const upstream = (target: Target) => ({ hostname: target.host, port: target.port });
  await using proxy = scenario.proxy === undefined ? undefined : await startProxy(
    link.wrapper(link.client),
    {
      send: upstream(textTarget),
      repl: upstream(textTarget),
      probe: upstream(textTarget),
      tty: upstream(textTarget),
      conformance: upstream(echoTarget),
      load: upstream(echoTarget),
    },
    scenario.proxy,
  );
  const via = (route: Route, direct: Target): Target =>
    proxy === undefined ? direct : { host: "127.0.0.1", port: proxy.ports[route]! };
  const targets: Record<Route, Target> = {
    send: via("send", textTarget),
    repl: via("repl", textTarget),
    probe: via("probe", textTarget),
    tty: via("tty", textTarget),
    conformance: via("conformance", echoTarget),
    load: via("load", echoTarget),
  };
  const client = link.wrapper(link.client);
  const context: ScenarioContext = { link, proxy, client, targets, failures };
  await scenario.kernel?.(link);
  const retransmitsBefore = await link.retransmits();
  const started = performance.now();

  const load = startLoad(targets.load, client, {
    rate: LOAD_RATE,
    duration: scenario.loadDuration,
    timeout: scenario.caseTimeout,
  });
  const repl = new ScriptedRepl(targets.repl, client);
  const fault = scenario.midStream;
  const gated = fault ? await startGatedSend(targets.send, client, GATE) : undefined;
  const send = gated?.process ?? startSendFile(targets.send, file, client);
  let conformance = fault
    ? undefined
    : startConformance(targets.conformance, client, scenario.caseTimeout);
  let replOk = await repl.exchange(REPL_LINES / 2, 60_000);
  let faultOver: Promise<void> = Promise.resolve();
  let faultAt: number | undefined;
  let during: Promise<void> = Promise.resolve();
  let interactive: Promise<void> = Promise.resolve();
  if (fault) {
    // The load must be under way too (its 2 connections open), not still connecting.
    await waitForSockets(
      echo.process.pid,
      baseline.echo!.sockets + 2,
      60_000,
      "the load's connections",
    );
    await send.waitForLines(GATE, 120_000, "the send's replies before the fault");
    if (fault.flowing) {
      void gated!.feed(FLOWING_FED);
      await send.waitForLines(FLOWING_AT, 120_000, "the send's replies while its lines flow");
    }
    faultOver = (await fault.start(context)).over;
    faultAt = performance.now();
    conformance = startConformance(targets.conformance, client, scenario.caseTimeout);
    during = fault.during?.(context) ?? Promise.resolve();
    void gated!.release();
  }
  if (fault?.resets) {
    // The reset ended the scripted repl's connection: the next line has nowhere to go.
    interactive = interactiveReconnect(context);
  } else {
    replOk = await repl.exchange(REPL_LINES / 2, 120_000) && replOk;
  }
  const [sendExit, replExit, conformanceExit, loadExit] = await Promise.all([
    send.exit,
    repl.finish(),
    conformance!.exit,
    load.exit,
    faultOver,
    during,
    interactive,
  ]);
  const seconds = (performance.now() - started) / 1000;

  // send: every reply, in order (after a reset: a correct prefix, and the documented exit 5).
  const sendCheck = checkReplies(sendExit.lines);
  if (sendCheck.firstWrong) failures.push(`send: ${sendCheck.firstWrong}`);
  if (fault?.resets) {
    if (
      // Every line fed so far may be answered before the reset lands: send still waits for the
      // rest of its input then, and the reset still ends it with exit 5.
      sendExit.code !== 5 || sendCheck.answered < FLOWING_AT || sendCheck.answered > FLOWING_FED
    ) {
      failures.push(
        `send under the reset: exit ${sendExit.code} after ${sendCheck.answered} replies, ` +
          `expected exit 5 after ${FLOWING_AT} to ${FLOWING_FED}: ${sendExit.stderr.trim()}`,
      );
    }
    // The server carries on: the whole file again, through the same proxy.
    const again = await startSendFile(targets.send, file, client).exit;
    const againCheck = checkReplies(again.lines);
    if (again.code !== 0 || againCheck.answered !== SEND_LINES || againCheck.firstWrong) {
      failures.push(
        `send after the reset: exit ${again.code}, ${againCheck.answered} replies, ` +
          `${againCheck.firstWrong ?? "all right"}: ${again.stderr.trim()}`,
      );
    }
  } else if (sendExit.code !== 0 || sendCheck.answered !== SEND_LINES) {
    failures.push(
      `send: exit ${sendExit.code}, ${sendCheck.answered} of ${SEND_LINES} replies: ` +
        sendExit.stderr.trim(),
    );
  }

  // The scripted repl: its replies in order; after a reset it ends like send (exit 5).
  const replWrong = ScriptedRepl.check(replExit.lines);
  if (replWrong) failures.push(replWrong);
  if (fault?.resets) {
    if (replExit.code !== 5 || replExit.lines.length !== REPL_LINES / 2) {
      failures.push(
        `scripted repl under the reset: exit ${replExit.code}, ${replExit.lines.length} replies ` +
          `(expected exit 5 after ${REPL_LINES / 2}): ${replExit.stderr.trim()}`,
      );
    }
  } else if (!replOk || replExit.code !== 0 || replExit.lines.length !== REPL_LINES) {
    failures.push(
      `scripted repl: exit ${replExit.code}, ${replExit.lines.length} of ${REPL_LINES} replies: ` +
        replExit.stderr.trim(),
    );
  }

  if (!conformancePassed(conformanceExit)) {
    failures.push(
      `echo conformance failed (exit ${conformanceExit.code}):\n${
        conformanceExit.lines.join("\n")
      }\n${conformanceExit.stderr.trim()}`,
    );
  }

  const report = loadReport(loadExit);
  if (
    loadExit.code !== 0 || report === undefined || !report.passed || report.linesLost !== 0 ||
    report.linesMismatched !== 0 || report.linesReceived !== report.linesSent
  ) {
    failures.push(
      `fixed-rate load: exit ${loadExit.code}, ${loadExit.lines.join(" ")} ${loadExit.stderr}`,
    );
  }

  const retransmits = (await link.retransmits()) - retransmitsBefore;
  await link.clear();
  // Every client is gone: each server's descriptors are back where they were, its peak RSS is
  // under the bound, and it stops cleanly.
  const peaks: Record<string, number> = {};
  for (const [name, server] of Object.entries(servers)) {
    const pid = server.process.pid;
    const settled = await settleDescriptors(pid, baseline[name]!);
    if (settled.fds > baseline[name]!.fds) {
      const sockets = await run("ip", ["netns", "exec", link.server.namespace, "ss", "-tanH"])
        .catch((error) => String(error));
      failures.push(
        `${name} server: ${settled.fds} descriptors (${settled.sockets} sockets) after the ` +
          `scenario, ${baseline[name]!.fds} (${baseline[name]!.sockets}) before; sockets:\n` +
          sockets,
      );
    }
    peaks[name] = await peakRssBytes(pid);
    if (peaks[name]! >= PEAK_RSS_BOUND) {
      failures.push(`${name} server: peak RSS ${(peaks[name]! / MIB).toFixed(1)} MiB`);
    }
    const exit = await server.stop("SIGTERM", 15_000);
    if (exit.code !== 0) failures.push(`${name} server: exit ${exit.code} on SIGTERM`);
  }

  return {
    scenario: scenario.name,
    seconds: round(seconds),
    retransmits,
    faultAt: faultAt === undefined ? undefined : round((faultAt - started) / 1000),
    ends: {
      send: round((sendExit.endedAt - started) / 1000),
      repl: round((replExit.endedAt - started) / 1000),
      conformance: round((conformanceExit.endedAt - started) / 1000),
      load: round((loadExit.endedAt - started) / 1000),
    },
    sendSeconds: round(sendExit.elapsedMs / 1000),
    sendReplies: sendCheck.answered,
    conformanceSeconds: round(conformanceExit.elapsedMs / 1000),
    replLines: replExit.lines.length,
    loadLines: report?.linesReceived ?? 0,
    loadP99Ms: report?.latencyMs.p99 ?? 0,
    stderr: { send: sendExit.stderr.trim(), repl: replExit.stderr.trim() },
    textPeakRssMiB: round(peaks.text! / MIB),
    echoPeakRssMiB: round(peaks.echo! / MIB),
    failures,
  };
}

/** Polls until the process has at least `sockets` sockets open. */
async function waitForSockets(pid: number, sockets: number, ms: number, what: string) {
  const deadline = performance.now() + ms;
  while ((await countDescriptors(pid)).sockets < sockets) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${what}`);
    // The pause between two looks at /proc, not a synchronisation: the loop checks the count.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * The interactive repl (in a pseudo-terminal, with --reconnect) through the proxy: a reply, the
 * reset of its connection, the reconnection it announces, and a reply on the new connection.
 */
async function interactiveReconnect({ client, proxy, targets, failures }: ScenarioContext) {
  if (!HAS_TMUX) {
    console.log("interactive repl reconnection not checked: tmux is not installed");
    return;
  }
  const home = await Deno.makeTempDir({ prefix: "linesock-faults-home-" });
  try {
    await using pty = await startPty(
      [
        ...client,
        ...cliCommand("repl", [
          ...targetArgs(targets.tty),
          "--no-probe",
          "--no-history",
          "--no-time",
        ]),
      ],
      { columns: 100, rows: 30, env: ptyEnv(home, { NO_COLOR: "1" }) },
    );
    await pty.waitFor("connected to", 30_000);
    await pty.type("ECHO tty-before");
    await pty.press("Enter");
    await pty.waitFor(/^< tty-before$/m, 30_000);
    const count = await proxy!.reset("tty");
    if (count !== 1) failures.push(`reset tty: ${count} connections, expected 1`);
    await pty.waitFor("reconnected to", 30_000);
    await pty.type("ECHO tty-after");
    await pty.press("Enter");
    const screen = await pty.waitFor(/^< tty-after$/m, 30_000);
    const replies = screen.split("\n").filter((row) => row.startsWith("< "));
    if (replies.join("|") !== "< tty-before|< tty-after") {
      failures.push(`interactive repl: replies ${JSON.stringify(replies)}`);
    }
    await pty.type(":quit");
    await pty.press("Enter");
    const status = await pty.waitForExit(15_000);
    if (status !== 0) failures.push(`interactive repl: exit ${status} after :quit`);
  } catch (error) {
    failures.push(`interactive repl: ${(error as Error).message}`);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test({
  name: "faults: linesock over a bad network (network namespaces, nftables, tc, a fault proxy)",
  ignore: NETNS_MISSING !== undefined,
  async fn(t) {
    const only = Deno.env.get("FAULTS_ONLY")?.split(",").map((name) => name.trim());
    await using link = await createLink();
    const file = await Deno.makeTempFile({ prefix: "linesock-faults-", suffix: ".txt" });
    const all: Figures[] = [];
    try {
      await writeSendFile(file);
      for (const scenario of SCENARIOS) {
        if (only && !only.includes(scenario.name)) continue;
        await t.step(`${scenario.name}: ${scenario.why}`, async () => {
          const figures = await runScenario(link, scenario, file);
          all.push(figures);
          console.log(JSON.stringify(figures));
          assert.deepEqual(figures.failures, [], figures.failures.join("\n"));
        });
      }
    } finally {
      await Deno.remove(file);
      const report = Deno.env.get("FAULTS_REPORT");
      if (report) await Deno.writeTextFile(report, JSON.stringify(all, null, 2) + "\n");
    }
  },
});

if (NETNS_MISSING !== undefined) console.log(`faults ignored: ${NETNS_MISSING}`);

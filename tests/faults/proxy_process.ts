/**
 * Runs the fault proxy (fault_proxy.ts) as a process, inside a network namespace, and talks to it:
 * the ports it listens on, and its commands (`stall`, `reset`), each awaited until the proxy
 * confirms it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { within } from "../_support/cli.ts";
import type { Upstream } from "./fault_proxy.ts";

const PROXY = fileURLToPath(new URL("./fault_proxy.ts", import.meta.url));

/** A running fault proxy. */
export interface ProxyProcess extends AsyncDisposable {
  /** The port of each route (on 127.0.0.1 of the proxy's namespace). */
  readonly ports: Record<string, number>;
  /** Stalls every connection for `ms`; resolves once the proxy applied it. */
  stall(ms: number): Promise<void>;
  /** Resets the connections of a route; resolves with how many there were. */
  reset(route: string): Promise<number>;
}

/** The fault of a proxy run. */
export interface ProxyFaults {
  delayMs?: number;
  jitterMs?: number;
  slices?: boolean;
}

/**
 * Starts the proxy.
 * @param wrapper Words that run it in a namespace (`ip netns exec NAME`).
 * @param routes Route name → upstream.
 */
export async function startProxy(
  wrapper: string[],
  routes: Record<string, Upstream>,
  faults: ProxyFaults,
): Promise<ProxyProcess> {
  const args = [
    ...Object.entries(routes).flatMap(([name, up]) => [
      "--route",
      `${name}=${up.hostname}:${up.port}`,
    ]),
    ...(faults.delayMs === undefined ? [] : ["--delay", String(faults.delayMs)]),
    ...(faults.jitterMs === undefined ? [] : ["--jitter", String(faults.jitterMs)]),
    ...(faults.slices ? ["--slices"] : []),
  ];
  const [command, ...rest] = [...wrapper, Deno.execPath(), "run", "-A", PROXY, ...args];
  const child = new Deno.Command(command!, {
    args: rest,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let stdoutEnded = false;
  const reading = (async () => {
    let pending = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf("\n")) !== -1) {
        lines.push(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
      for (const wake of waiters) wake();
    }
    stdoutEnded = true;
    for (const wake of waiters) wake();
  })();
  // Waits for the first unread line matching `pattern`.
  let read = 0;
  const expect = async (pattern: RegExp, what: string): Promise<RegExpExecArray> => {
    const found = new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        while (read < lines.length) {
          const match = pattern.exec(lines[read++]!);
          if (match) {
            waiters.delete(check);
            return resolve(match);
          }
        }
        if (stdoutEnded) {
          waiters.delete(check);
          reject(new Error(`the fault proxy exited before ${what}`));
        }
      };
      waiters.add(check);
      check();
    });
    return await within(found, 15_000, what);
  };
  const writer = child.stdin.getWriter();
  const send = (line: string) => writer.write(new TextEncoder().encode(`${line}\n`));
  const ports: Record<string, number> = {};
  try {
    for (let count = 0; count < Object.keys(routes).length; count++) {
      const match = await expect(/^listening (\S+) (\d+)$/, "the proxy's ports");
      ports[match[1]!] = Number(match[2]);
    }
    await expect(/^ready$/, "the proxy to be ready");
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  return {
    ports,
    async stall(ms) {
      await send(`stall ${ms}`);
      await expect(/^stalled /, "the stall");
    },
    async reset(route) {
      await send(`reset ${route}`);
      return Number((await expect(/^reset \S+ (\d+)$/, "the reset"))[1]);
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await child.status;
      clearTimeout(timer);
      await reading;
    },
  };
}

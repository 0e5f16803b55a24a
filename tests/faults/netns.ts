/**
 * Two Linux network namespaces joined by a veth pair, for fault injection at the kernel level: the
 * server runs in one (`10.213.0.1`), the clients in the other (`10.213.0.2`); the addresses exist
 * only inside them. Faults are applied with the kernel's own tools:
 *
 * - random packet loss: nftables `numgen random mod 100 < N drop`, on the input hook of both
 *   namespaces (so both directions lose packets, and TCP really retransmits);
 * - bandwidth: a `tbf` qdisc on both ends' egress;
 * - a link that goes down: `ip link set … down` on the server's end, then `up`;
 * - MTU: on both ends.
 *
 * Needs root, `ip`, `nft` and `tc` ({@linkcode NETNS_MISSING} says why not). The namespaces are
 * named `linesock-faults-<pid>-srv`/`-cli`, so that {@linkcode removeStaleLinks} can remove the ones a
 * crashed run left behind (their pid no longer runs), with the processes still inside them.
 *
 * @module
 */
import { alive } from "../_support/process.ts";

/** The prefix of every namespace this harness makes. */
export const NAMESPACE_PREFIX = "linesock-faults-";
/** The server's address, inside the server namespace. */
export const SERVER_ADDRESS = "10.213.0.1";
/** The clients' address, inside the client namespace. */
export const CLIENT_ADDRESS = "10.213.0.2";

const decoder = new TextDecoder();

/** Why the fault tests cannot run here, or `undefined` when they can. */
export const NETNS_MISSING: string | undefined = probe();

function probe(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "fault injection needs root (ip netns, nft, tc)";
  for (const [tool, args] of [["ip", ["-V"]], ["nft", ["--version"]], ["tc", ["-V"]]] as const) {
    try {
      new Deno.Command(tool, { args: [...args], stdout: "null", stderr: "null" }).outputSync();
    } catch {
      return `${tool} is not installed (Debian: ${tool === "nft" ? "nftables" : "iproute2"})`;
    }
  }
  // Root in a container without CAP_SYS_ADMIN cannot make namespaces: say so instead of failing.
  const name = `${NAMESPACE_PREFIX}${Deno.pid}-probe`;
  const added = new Deno.Command("ip", { args: ["netns", "add", name], stderr: "piped" })
    .outputSync();
  if (!added.success) {
    return `cannot create a network namespace here: ${decoder.decode(added.stderr).trim()}`;
  }
  new Deno.Command("ip", { args: ["netns", "del", name], stderr: "null" }).outputSync();
  return undefined;
}

/**
 * Runs a command to completion.
 * @throws {Error} With its stderr, when it fails.
 */
export async function run(command: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${output.code}): ${
        decoder.decode(output.stderr).trim()
      }`,
    );
  }
  return decoder.decode(output.stdout);
}

/** One end of the link. */
export interface LinkEnd {
  /** The namespace's name. */
  readonly namespace: string;
  /** The veth device inside it. */
  readonly device: string;
  /** Its IPv4 address. */
  readonly address: string;
}

/** The two namespaces and what can be done to the link between them. */
export interface NetnsLink extends AsyncDisposable {
  readonly server: LinkEnd;
  readonly client: LinkEnd;
  /** The words that run a command inside a namespace (`ip netns exec NAME`). */
  wrapper(end: LinkEnd): string[];
  /** Drops `percent` % of the packets arriving in each namespace (nftables). */
  loss(percent: number): Promise<void>;
  /** Limits both directions to `rate` (tc tbf syntax, e.g. `1mbit`). */
  bandwidth(rate: string): Promise<void>;
  /** Sets the MTU of both ends. */
  mtu(bytes: number): Promise<void>;
  /** Takes the server's end of the link down, or brings it back up. */
  linkUp(up: boolean): Promise<void>;
  /** TCP segments retransmitted so far, by both namespaces (RetransSegs of /proc/net/snmp). */
  retransmits(): Promise<number>;
  /** Removes every fault (loss, bandwidth, MTU back to 1500, link up). */
  clear(): Promise<void>;
}

/**
 * Makes the two namespaces and the veth pair. `await using` removes them, with the processes
 * still running inside, even when the test fails.
 */
export async function createLink(): Promise<NetnsLink> {
  await removeStaleLinks();
  const base = `${NAMESPACE_PREFIX}${Deno.pid}`;
  const server: LinkEnd = {
    namespace: `${base}-srv`,
    device: `lsf${Deno.pid}s`,
    address: SERVER_ADDRESS,
  };
  const client: LinkEnd = {
    namespace: `${base}-cli`,
    device: `lsf${Deno.pid}c`,
    address: CLIENT_ADDRESS,
  };
  const ends = [server, client];
  const ip = (end: LinkEnd, ...args: string[]) => run("ip", ["-n", end.namespace, ...args]);
  const inside = (end: LinkEnd, command: string, ...args: string[]) =>
    run("ip", ["netns", "exec", end.namespace, command, ...args]);
  try {
    for (const end of ends) await run("ip", ["netns", "add", end.namespace]);
    // Made inside the namespaces: no name in the host's namespace, even for a moment.
    await run("ip", [
      "link",
      "add",
      server.device,
      "netns",
      server.namespace,
      "type",
      "veth",
      "peer",
      "name",
      client.device,
      "netns",
      client.namespace,
    ]);
    for (const end of ends) {
      await ip(end, "addr", "add", `${end.address}/24`, "dev", end.device);
      await ip(end, "link", "set", "lo", "up");
      // One TCP segment per packet: otherwise the stack hands 64 KiB super-packets (GSO) to the
      // hooks, and losing 1 % of a few dozen of them is no test of retransmission.
      await ip(end, "link", "set", end.device, "gso_max_segs", "1");
      await ip(end, "link", "set", end.device, "up");
    }
    // Each side knows the other's MAC for good: while the link is down, a new connection's SYN is
    // then lost and retried, as on a pulled cable, instead of failing at once for want of ARP.
    for (const [end, peer] of [[server, client], [client, server]] as const) {
      const [info] = JSON.parse(await ip(peer, "-j", "link", "show", "dev", peer.device));
      await ip(
        end,
        "neigh",
        "replace",
        peer.address,
        "lladdr",
        info.address,
        "dev",
        end.device,
        "nud",
        "permanent",
      );
    }
  } catch (error) {
    await removeNamespaces(ends.map((end) => end.namespace));
    throw error;
  }
  const nftTable = "linesock_faults";
  const clear = async () => {
    for (const end of ends) {
      await inside(end, "nft", "delete", "table", "inet", nftTable).catch(() => {});
      await ip(end, "link", "set", end.device, "up");
      await ip(end, "link", "set", end.device, "mtu", "1500");
      await run("tc", ["-n", end.namespace, "qdisc", "del", "dev", end.device, "root"])
        .catch(() => {});
    }
  };
  return {
    server,
    client,
    wrapper: (end) => ["ip", "netns", "exec", end.namespace],
    async loss(percent) {
      if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
        throw new RangeError(`loss must be a whole percentage, not ${percent}`);
      }
      const rules = `table inet ${nftTable} {
  chain input {
    type filter hook input priority 0; policy accept;
    numgen random mod 100 < ${percent} drop
  }
}
`;
      for (const end of ends) {
        await inside(end, "nft", "delete", "table", "inet", nftTable).catch(() => {});
        await run("ip", ["netns", "exec", end.namespace, "nft", "-f", "-"], rules);
      }
    },
    async bandwidth(rate) {
      for (const end of ends) {
        // burst: a few full-size packets; latency bounds the queue (and so the delay it adds).
        await run("tc", [
          "-n",
          end.namespace,
          "qdisc",
          "replace",
          "dev",
          end.device,
          "root",
          "tbf",
          "rate",
          rate,
          "burst",
          "16kb",
          "latency",
          "200ms",
        ]);
      }
    },
    async mtu(bytes) {
      for (const end of ends) await ip(end, "link", "set", end.device, "mtu", String(bytes));
    },
    async linkUp(up) {
      await ip(server, "link", "set", server.device, up ? "up" : "down");
    },
    async retransmits() {
      let total = 0;
      for (const end of ends) {
        const snmp = await inside(end, "cat", "/proc/net/snmp");
        total += retransSegs(snmp);
      }
      return total;
    },
    clear,
    async [Symbol.asyncDispose]() {
      await removeNamespaces(ends.map((end) => end.namespace));
    },
  };
}

/** RetransSegs from the text of /proc/net/snmp. */
export function retransSegs(snmp: string): number {
  const lines = snmp.split("\n").filter((line) => line.startsWith("Tcp:"));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const index = names.indexOf("RetransSegs");
  const value = Number(values[index]);
  if (index === -1 || !Number.isFinite(value)) throw new Error("no RetransSegs in /proc/net/snmp");
  return value;
}

/**
 * Removes namespaces of this harness whose run is over (the pid in their name no longer runs),
 * killing what still runs in them.
 * @returns The names removed.
 */
export async function removeStaleLinks(): Promise<string[]> {
  const listing = await run("ip", ["netns", "list"]);
  const stale = listing.split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => {
      const match = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-(srv|cli|probe)$`).exec(name);
      return match !== null && !alive(Number(match[1]));
    });
  await removeNamespaces(stale);
  return stale;
}

async function removeNamespaces(names: string[]): Promise<void> {
  for (const name of names) {
    const pids = await run("ip", ["netns", "pids", name]).catch(() => "");
    for (const pid of pids.split("\n").filter((word) => /^\d+$/.test(word))) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    // Deleting the namespace removes its end of the veth pair, and with it the other end.
    await run("ip", ["netns", "del", name]).catch(() => {});
  }
}

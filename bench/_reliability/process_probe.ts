/**
 * Reads a server process's resources from Linux's /proc: peak and current resident memory, open file
 * descriptors and sockets, and the child processes it started. The reliability scenarios use these
 * to show that bad clients leave nothing behind.
 *
 * @module
 */

/** The process's peak resident memory (`VmHWM`), in bytes. */
export async function peakRssBytes(pid: number): Promise<number> {
  return await statusField(pid, "VmHWM");
}

/** The process's resident memory now (`VmRSS`), in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  return await statusField(pid, "VmRSS");
}

async function statusField(pid: number, field: string): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

/** Open file descriptors of a process, and how many of them are sockets. */
export interface DescriptorCount {
  /** Every entry of /proc/PID/fd. */
  fds: number;
  /** Entries that link to `socket:[inode]`. */
  sockets: number;
}

/** Counts the open file descriptors of a process. */
export async function countDescriptors(pid: number): Promise<DescriptorCount> {
  let fds = 0;
  let sockets = 0;
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    fds++;
    try {
      if ((await Deno.readLink(`/proc/${pid}/fd/${entry.name}`)).startsWith("socket:")) sockets++;
    } catch {
      // Closed between the listing and the read: not open any more.
    }
  }
  return { fds, sockets };
}

/**
 * Polls the descriptor count until it is at most `limit`, for at most `ms`. Closing happens in the
 * server's own time after a client leaves, so the count is allowed to settle.
 * @returns The last count seen (which may still be above the limit when time ran out).
 */
export async function settleDescriptors(
  pid: number,
  limit: DescriptorCount,
  ms = 10_000,
): Promise<DescriptorCount> {
  const deadline = performance.now() + ms;
  for (let poll = 0;; poll++) {
    const count = await countDescriptors(pid);
    if (count.fds <= limit.fds && count.sockets <= limit.sockets) return count;
    if (performance.now() >= deadline) return count;
    await delay(Math.min(200, 10 * (poll + 1)));
  }
}

/** The pids of the living children of a process (zombies excluded). */
export async function childPids(pid: number): Promise<number[]> {
  const children: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
    } catch {
      continue;
    }
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[1]) === pid) children.push(Number(entry.name));
  }
  return children;
}

/**
 * Polls until the process has no living children, for at most `ms`.
 * @returns The children still alive when time ran out (empty on success).
 */
export async function settleChildren(pid: number, ms = 10_000): Promise<number[]> {
  const deadline = performance.now() + ms;
  for (let poll = 0;; poll++) {
    const children = await childPids(pid);
    if (children.length === 0 || performance.now() >= deadline) return children;
    await delay(Math.min(200, 10 * (poll + 1)));
  }
}

/** The pause between two polls of /proc (not a synchronisation: the poll checks the state). */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Formats bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * Reads Linux process facts for the benchmarks through `cat`, because Deno asks for `--allow-all` to
 * read files under /proc.
 *
 * @module
 */

/** The text of a file under /proc, or `undefined` when it cannot be read. */
export async function readProc(path: string): Promise<string | undefined> {
  try {
    const output = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    return output.success ? new TextDecoder().decode(output.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** A `Vm*` field of /proc/PID/status in MiB (`VmRSS` now, `VmHWM` the peak). */
export async function memoryMiB(
  pid: number,
  field: "VmRSS" | "VmHWM",
): Promise<number | undefined> {
  const status = await readProc(`/proc/${pid}/status`);
  const kib = Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status ?? "")?.[1]);
  return Number.isFinite(kib) ? kib / 1024 : undefined;
}

/** CPU seconds (user + system, all threads) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / 100 : undefined;
}

/** The CPU model name. */
export async function cpuModel(): Promise<string> {
  return /model name\s*:\s*(.+)/.exec(await readProc("/proc/cpuinfo") ?? "")?.[1] ?? "unknown CPU";
}

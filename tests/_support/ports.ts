/**
 * Ports in tests. A server under test listens on port 0 and the test reads the port it was given
 * (`startServer` returns it, `serve()` has `addr`): nothing to race for. Only a test that needs a
 * port with nothing on it (a refused connection, a server started later on a known port) takes
 * {@linkcode unusedPort}: a port below the kernel's ephemeral range, which port 0 and outgoing
 * connections never hand out, so tests running in parallel cannot be given it between the check and
 * its use. (Binding port 0, closing and reusing the number is racy: the next port-0 bind anywhere
 * may get it.)
 *
 * @module
 */

/** The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`). */
export function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range")
      .trim().split(/\s+/).map(Number);
    if (low && high) return { low, high };
  } catch {
    // Not Linux: the IANA range.
  }
  return { low: 49152, high: 65535 };
}

const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range (so no port-0 bind can
 * take it), different on each call in this process and spread by process id across processes.
 * @returns The port.
 */
export function unusedPort(): number {
  const { low } = ephemeralRange();
  const floor = 10_000;
  const span = Math.max(1000, low - floor);
  const start = (Deno.pid * 7919 + Math.floor(Math.random() * span)) % span;
  for (let offset = 0; offset < span; offset++) {
    const port = floor + (start + offset) % span;
    if (handedOut.has(port)) continue;
    try {
      // Free right now (the check binds only ports port 0 never gives out).
      using _probe = Deno.listen({ hostname: "127.0.0.1", port });
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) continue;
      throw error;
    }
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${floor} and ${floor + span}`);
}

/**
 * Asserts that nothing listens at `addr` any more: a TCP connection is refused, a Unix socket's
 * path is gone or refuses.
 * @param addr A listener's address.
 */
export async function assertNothingListens(addr: Deno.Addr): Promise<void> {
  const connecting = addr.transport === "unix"
    ? Deno.connect({ transport: "unix", path: addr.path })
    : Deno.connect({
      hostname: (addr as Deno.NetAddr).hostname,
      port: (addr as Deno.NetAddr).port,
    });
  try {
    const conn = await connecting;
    conn.close();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) {
      return;
    }
    throw error;
  }
  throw new Error(`something still listens at ${JSON.stringify(addr)}`);
}

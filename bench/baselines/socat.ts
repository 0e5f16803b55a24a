/**
 * socat echo server — a benchmark baseline.
 *
 * Runs `socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork EXEC:cat`, i.e.
 * a forked `cat` process per connection: a byte-level echo with no line
 * parsing at all, as a rough "how fast can the kernel shuffle bytes" ceiling.
 *
 * ```ts
 * const reason = await ensureSocat();
 * if (reason === undefined) {
 *   const echo = await startSocatEcho();
 *   // ... connect to 127.0.0.1:echo.port ...
 *   await echo.close();
 * }
 * ```
 *
 * @module
 */

const STARTUP_TIMEOUT_MS = 5_000;
const POLL_DELAY_MS = 20;

/** A running socat echo server. */
export interface SocatEcho {
  /** Port on 127.0.0.1 that socat listens on. */
  port: number;
  /** Terminates socat (SIGTERM) and waits for it to exit. */
  close(): Promise<void>;
}

/**
 * Returns `undefined` if `socat` can be run from PATH, otherwise a
 * human-readable reason why the socat baseline is unavailable.
 */
export async function ensureSocat(): Promise<string | undefined> {
  try {
    const { success, code } = await new Deno.Command("socat", {
      args: ["-V"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `"socat -V" exited with code ${code}`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "socat is not on PATH";
    return `cannot run socat: ${err instanceof Error ? err.message : err}`;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** How often a start is retried when socat cannot bind the port picked for it. */
const START_ATTEMPTS = 5;

class SocatExited extends Error {}

/**
 * Starts a socat echo server on a free 127.0.0.1 port and waits until ready. The port is picked
 * before socat binds it, so another program may take it meanwhile: then socat exits, and the start
 * is retried on another port.
 */
export async function startSocatEcho(): Promise<SocatEcho> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startSocatOn(freePort());
    } catch (error) {
      if (!(error instanceof SocatExited) || attempt >= START_ATTEMPTS) throw error;
    }
  }
}

async function startSocatOn(port: number): Promise<SocatEcho> {
  const child = new Deno.Command("socat", {
    args: [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, "EXEC:cat"],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();

  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
    }
    await child.status;
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let exited = false;
  child.status.then(() => exited = true);
  for (;;) {
    if (exited) {
      await close();
      throw new SocatExited(`socat exited before listening on port ${port}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return { port, close };
    } catch {
      if (Date.now() >= deadline) {
        await close();
        throw new Error(
          `socat did not accept connections on port ${port} within ${STARTUP_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_DELAY_MS));
    }
  }
}

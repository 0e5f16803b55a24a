/**
 * What a TLS port does with clients that never complete a handshake, counted in the server's own
 * descriptors (/proc/PID/fd): a silent client, a plain-TCP client that writes text, garbage records,
 * and handshakes cut short (half a ClientHello, or a whole one, then silence or a FIN). Every
 * descriptor must come back (after the handshake timeout, set small here, when the client stays
 * silent; at once when the peer's bytes cannot be TLS or its input ends), while the clients still
 * hold their sockets open, and a real TLS client must still be served after each wave.
 */
import assert from "node:assert/strict";
import { type RunningServer, startServer, within } from "../_support/cli.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";
import { ignoredName } from "../_support/tools.ts";

/** The pause between two polls of a condition the loop checks (not a synchronisation). */
function tick(ms = 10): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function descriptors(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/**
 * The server's descriptors that are TCP connections on `port` (not the listener): their sockets'
 * inodes from /proc/net/tcp and tcp6, matched against the links in /proc/PID/fd.
 */
function connectionDescriptors(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, state, inode] = [fields[1], fields[3], fields[9]];
      // 0A: LISTEN.
      if (local === undefined || inode === undefined || state === "0A") continue;
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) inodes.add(inode);
    }
  }
  let count = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const link = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      if (inodes.has(link.slice("socket:[".length, -1))) count++;
    } catch {
      // Closed meanwhile.
    }
  }
  return count;
}

/** Polls the server's descriptor count until `condition` holds; fails naming `what` after `ms`. */
async function untilDescriptors(
  pid: number,
  condition: (count: number) => boolean,
  ms: number,
  what: string,
): Promise<number> {
  const deadline = performance.now() + ms;
  for (;;) {
    const count = descriptors(pid);
    if (condition(count)) return count;
    if (performance.now() > deadline) assert.fail(`not within ${ms} ms: ${what} (${count} open)`);
    await tick();
  }
}

/** How many times `text` occurs in `haystack`. */
function occurrences(haystack: string, text: string): number {
  return haystack.split(text).length - 1;
}

/** A real TLS client's PING, answered. */
async function realClientPing(port: number, caCerts: string[]): Promise<void> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
  try {
    await conn.write(new TextEncoder().encode("PING\n"));
    const reply = new Uint8Array(16);
    const count = await within(conn.read(reply), 5000, "a TLS client's PONG");
    assert.equal(new TextDecoder().decode(reply.subarray(0, count ?? 0)), "PONG\n");
  } finally {
    conn.close();
  }
}

/**
 * The first record a real TLS client sends (its ClientHello), caught by a plain TCP listener that
 * a `Deno.connectTls` connects to.
 */
async function captureClientHello(caCerts: string[]): Promise<Uint8Array> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = Deno.connectTls({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    caCerts,
  });
  const raw = await listener.accept();
  const tls = await client;
  const handshake = tls.handshake().catch(() => {});
  let hello = new Uint8Array(0);
  try {
    const buffer = new Uint8Array(16 * 1024);
    // A record: type, version (2 bytes), length (2 bytes), then `length` bytes.
    while (hello.length < 5 || hello.length < 5 + ((hello[3]! << 8) | hello[4]!)) {
      const count = await within(raw.read(buffer), 5000, "the ClientHello");
      if (count === null) throw new Error("the TLS client closed before its ClientHello");
      hello = new Uint8Array([...hello, ...buffer.subarray(0, count)]);
    }
  } finally {
    raw.close();
    await handshake;
    tls.close();
  }
  assert.equal(hello[0], 0x16, "a handshake record");
  return hello.subarray(0, 5 + ((hello[3]! << 8) | hello[4]!));
}

/** A wave of raw TCP clients that each write `bytes` (if any), then stay, or half-close. */
async function wave(
  port: number,
  count: number,
  bytes: Uint8Array | undefined,
  then: "stay" | "fin" = "stay",
): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let index = 0; index < count; index++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(conn);
    if (bytes !== undefined) await conn.write(bytes).catch(() => {});
    if (then === "fin") await conn.closeWrite().catch(() => {});
  }
  return conns;
}

/** The clients see the server's close (an end of input or a reset), without closing themselves. */
async function closedByServer(conns: Deno.Conn[]): Promise<void> {
  await Promise.all(conns.map(async (conn) => {
    const buffer = new Uint8Array(4096);
    try {
      // TLS alerts and the server's first flight may come first; then the end.
      while (await within(conn.read(buffer), 10_000, "the server's close") !== null) {
        // Discard.
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
  }));
}

const WAVE = 20;
const HANDSHAKE_TIMEOUT_MS = 1000;

Deno.test({
  name: ignoredName(
    "TLS port: clients that never complete a handshake release every descriptor",
    OPENSSL_MISSING,
  ),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await using certificates = await makeTestCertificates();
    const caCerts = [await Deno.readTextFile(certificates.caFile)];
    const hello = await captureClientHello(caCerts);
    await using server: RunningServer = await startServer([
      "--port",
      "0",
      "--tls-cert",
      certificates.server.cert,
      "--tls-key",
      certificates.server.key,
      "--tls-handshake-timeout",
      `${HANDSHAKE_TIMEOUT_MS}ms`,
      // Far beyond the handshake timeout: what releases a silent client is the handshake timeout.
      "--idle-timeout",
      "5m",
    ]);
    const pid = server.process.pid;
    // The base: what stays open with no client (the listener, stdio, the runtime's own), taken
    // once a first TLS client came and went, so that whatever it opened for good is part of it.
    await realClientPing(server.port, caCerts);
    const deadline = performance.now() + 5000;
    while (connectionDescriptors(pid, server.port) > 0) {
      if (performance.now() > deadline) {
        assert.fail("the first client's descriptor was not released");
      }
      await tick();
    }
    const base = descriptors(pid);
    const timeouts = () =>
      occurrences(
        server.stderr(),
        `failed: TLS: TLS handshake not done within ${HANDSHAKE_TIMEOUT_MS} ms`,
      );
    const tlsFailures = () => occurrences(server.stderr(), "failed: TLS:");

    /**
     * Runs a wave: its clients are accepted (the server holds a descriptor each), then released
     * while they still hold their sockets; a real client is served after it.
     */
    const released = async (conns: Deno.Conn[], what: string) => {
      try {
        await closedByServer(conns);
        await untilDescriptors(pid, (count) => count <= base, 10_000, `${what}: released`);
        assert.equal(connectionDescriptors(pid, server.port), 0, `${what}: a connection left`);
        await realClientPing(server.port, caCerts);
        await untilDescriptors(pid, (count) => count <= base, 5000, `${what}: the real client`);
      } finally {
        for (const conn of conns) conn.close();
      }
    };

    await t.step("silent clients: released by the handshake timeout", async () => {
      const before = timeouts();
      const conns = await wave(server.port, WAVE, undefined);
      await untilDescriptors(pid, (count) => count >= base + WAVE, 10_000, "silent clients held");
      await released(conns, "silent clients");
      assert.equal(timeouts() - before, WAVE);
    });

    await t.step("plain-TCP clients writing text: released at once", async () => {
      const before = tlsFailures();
      const conns = await wave(server.port, WAVE, new TextEncoder().encode("PING\nHELLO\n"));
      await released(conns, "plain-text clients");
      assert.equal(tlsFailures() - before, WAVE);
    });

    await t.step("garbage records: released", async () => {
      const garbage = [
        // Random bytes.
        crypto.getRandomValues(new Uint8Array(512)),
        // A record longer than TLS allows (2^14 + 2048).
        new Uint8Array([0x16, 3, 1, 0xff, 0xff, ...new Uint8Array(64)]),
        // Application data before any handshake.
        new Uint8Array([0x17, 3, 3, 0, 16, ...crypto.getRandomValues(new Uint8Array(16))]),
        // An unknown record type.
        new Uint8Array([0x42, 3, 3, 0, 4, 1, 2, 3, 4]),
        // A handshake record whose message is not a ClientHello.
        new Uint8Array([0x16, 3, 1, 0, 8, 0x0b, 0, 0, 4, 0, 0, 0, 0]),
        // A ClientHello with its inner length and contents scrambled.
        (() => {
          const scrambled = hello.slice();
          for (let index = 9; index < scrambled.length; index += 3) {
            scrambled[index] = scrambled[index]! ^ 0x5a;
          }
          return scrambled;
        })(),
      ];
      const before = tlsFailures();
      const conns: Deno.Conn[] = [];
      for (const bytes of garbage) conns.push(...await wave(server.port, 3, bytes));
      await released(conns, "garbage records");
      // Each one failed as TLS (none waited for the handshake timeout).
      assert.equal(tlsFailures() - before, conns.length);
    });

    await t.step("truncated handshakes: released by the FIN or the timeout", async () => {
      const partial = hello.subarray(0, 11);
      const beforeTimeouts = timeouts();
      const conns = [
        // Half a ClientHello, then the end of input: released without waiting for the timeout.
        ...await wave(server.port, 5, partial, "fin"),
        // Half a ClientHello, then silence.
        ...await wave(server.port, 5, partial),
        // A whole ClientHello (the server answers it), then silence.
        ...await wave(server.port, 5, hello),
        // A whole ClientHello, then the end of input.
        ...await wave(server.port, 5, hello, "fin"),
        // A record header that announces more than comes.
        ...await wave(server.port, 5, new Uint8Array([0x16, 3, 1, 0x10, 0, 1, 0, 0x0f, 0xfc])),
      ];
      await released(conns, "truncated handshakes");
      // Only the silent ones needed the timeout.
      assert.equal(timeouts() - beforeTimeouts, 15);
    });

    assert.equal(descriptors(pid), base);
    assert.doesNotMatch(server.stderr(), /Too many open files|Accept loop failed/);
  },
});

/**
 * {@linkcode openTransport}: a connected byte stream to a server over TCP, a Unix socket, or TLS,
 * opened within a time budget. Every way of failing becomes one {@linkcode ConnectError} whose
 * reason is a short sentence a person can act on ({@linkcode describeConnectFailure}): "connection
 * refused", "certificate not trusted (unknown issuer) — use --ca FILE to trust a private CA", …
 *
 * TLS connections are verified with Deno's TLS (`Deno.startTls`: the system's roots plus `caCerts`,
 * against `serverName`). Deno has no per-connection way to skip verification, so `insecure: true`
 * uses `node:tls` with `rejectUnauthorized: false` instead, behind the same interface.
 *
 * @example Half-closing, then reading the server's last reply
 * ```ts
 * import { openTransport, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
 * const transport = await openTransport({ port: (server.addr as Deno.NetAddr).port });
 * await transport.write(new TextEncoder().encode("hi\n"));
 * await transport.closeWrite();
 * const buffer = new Uint8Array(16);
 * assert.equal(await transport.read(buffer), 3);
 * assert.equal(new TextDecoder().decode(buffer.subarray(0, 3)), "HI\n");
 * transport.close();
 * ```
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT, hostPort } from "../address.ts";
import { ConnectError, TimeoutError } from "../errors.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./_defaults.ts";
import { isDisconnect } from "../_disconnect.ts";
import { startTimer, type Timer } from "../_timer.ts";

/** A connected byte stream: the part of a `Deno.Conn` that linesock uses. */
export interface Transport {
  /**
   * Reads what arrived.
   * @param buffer Where to copy it.
   * @returns The byte count, or `null` once the server finished sending.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /**
   * Writes some of `bytes`.
   * @param bytes The bytes.
   * @returns How many were written.
   */
  write(bytes: Uint8Array): Promise<number>;
  /** Half-closes: the server reads the end; replies can still be read. */
  closeWrite(): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

/** TLS settings of a client connection. */
export interface ClientTlsOptions {
  /** PEM certificates of private CAs to trust, in addition to the system's. */
  caCerts?: string[] | undefined;
  /** The name to verify the server's certificate against and send as SNI. @default {the host} */
  serverName?: string | undefined;
  /** Do not verify the certificate at all (encrypted, but anyone can pose as the server). */
  insecure?: boolean | undefined;
}

/** Options of {@linkcode openTransport}. */
export interface TransportOptions {
  /** Server host. @default {"127.0.0.1"} */
  hostname?: string | undefined;
  /** Server port. @default {1991} */
  port?: number | undefined;
  /** Connect to this Unix socket instead of TCP. */
  path?: string | undefined;
  /** Use TLS (TCP only): `true` for the defaults. */
  tls?: ClientTlsOptions | boolean | undefined;
  /** Give up after this long, in ms; 0: no limit. @default {10000} */
  connectTimeoutMs?: number | undefined;
}

/**
 * Where `options` point, as people write it.
 * @param options The connection options.
 * @returns `127.0.0.1:1991`, `[::1]:1991` or the socket path.
 * @example Describing targets
 * ```ts
 * import { describeTransportTarget } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeTransportTarget({ hostname: "::1", port: 7 }), "[::1]:7");
 * assert.equal(describeTransportTarget({ path: "/run/x.sock" }), "/run/x.sock");
 * ```
 */
export function describeTransportTarget(options: TransportOptions): string {
  return options.path ?? hostPort(options.hostname ?? DEFAULT_HOST, options.port ?? DEFAULT_PORT);
}

/**
 * Connects; TCP connections get `TCP_NODELAY` so small writes leave at once.
 * @param options Where, whether with TLS, and how long to try.
 * @returns The connected transport (for TLS: with its handshake done).
 * @throws {ConnectError} When the server cannot be reached or its certificate is not accepted.
 * @throws {TimeoutError} When it takes longer than `connectTimeoutMs`.
 * @throws {TypeError} When TLS is asked for with a Unix socket.
 * @example Refused, with and without TLS
 * ```ts
 * import { ConnectError, openTransport } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close();
 * await assert.rejects(openTransport({ port }), /Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
 * await assert.rejects(openTransport({ port, tls: { insecure: true } }), ConnectError);
 * ```
 */
export async function openTransport(options: TransportOptions): Promise<Transport> {
  if (options.path !== undefined && options.tls) {
    throw new TypeError("TLS works over TCP only, not over a Unix socket");
  }
  const target = describeTransportTarget(options);
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const giveUp = new AbortController();
  const attempt = open(options, giveUp.signal);
  let timer: Timer | undefined;
  const expired = new Promise<never>((_, reject) => {
    // 0 is no limit (connecting then ends only when the system gives up).
    if (timeoutMs <= 0) return;
    timer = startTimer(timeoutMs, () => {
      const error = new TimeoutError(`connect to ${target}`, timeoutMs);
      giveUp.abort(error);
      reject(error);
    });
  });
  try {
    return await Promise.race([attempt, expired]);
  } catch (error) {
    // A connection that completes after the deadline must not leak.
    attempt.then((late) => late.close(), () => {});
    if (error instanceof TimeoutError) throw error;
    throw new ConnectError(target, describeConnectFailure(error), { cause: error });
  } finally {
    timer?.cancel();
  }
}

async function open(options: TransportOptions, signal: AbortSignal): Promise<Transport> {
  if (options.path !== undefined) {
    return await Deno.connect({ transport: "unix", path: options.path });
  }
  const hostname = options.hostname ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  const tls = options.tls === true ? {} : options.tls || undefined;
  if (tls?.insecure) {
    // node:tls is loaded only here: it costs start-up time on every other path.
    const { connectInsecureTls } = await import("../_node_tls_transport.ts");
    return await connectInsecureTls({ hostname, port, serverName: tls.serverName, signal });
  }
  const tcp = await Deno.connect({ hostname, port, signal });
  tcp.setNoDelay(true);
  if (tls === undefined) return tcp;
  const closeTcp = () => {
    try {
      tcp.close();
    } catch {
      // startTls took the resource over, or the failed handshake closed it.
    }
  };
  // A handshake that never ends (a server that does not speak TLS and waits) ends at the deadline.
  signal.addEventListener("abort", closeTcp, { once: true });
  try {
    const secure = await Deno.startTls(tcp, {
      hostname: tls.serverName ?? hostname,
      ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
    });
    try {
      await secure.handshake();
    } catch (error) {
      secure.close();
      throw error;
    }
    return secure;
  } catch (error) {
    closeTcp();
    throw error;
  } finally {
    signal.removeEventListener("abort", closeTcp);
  }
}

/**
 * Turns a failure to connect (a `Deno.errors` class, a DNS or a TLS error) into a few words that say
 * what happened and, where there is one, what to do about it.
 * @param error What connecting threw.
 * @returns The reason, e.g. `connection refused` or `certificate has expired`.
 * @example Reasons
 * ```ts
 * import { describeConnectFailure } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeConnectFailure(new Deno.errors.ConnectionRefused("os error 111")), "connection refused");
 * assert.equal(
 *   describeConnectFailure(new Deno.errors.InvalidData("invalid peer certificate: UnknownIssuer")),
 *   "certificate not trusted (unknown issuer) — use --ca FILE to trust a private CA",
 * );
 * ```
 */
export function describeConnectFailure(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.NotFound) return "no such socket";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return `not permitted: ${error.message}`;
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (
    code === "ENOTFOUND" || code === "EAI_AGAIN" ||
    /failed to lookup|Name or service not known|nodename nor servname/i.test(message)
  ) {
    return "cannot resolve host";
  }
  return describeTlsFailure(message) ??
    (isDisconnect(error)
      ? "the server closed the connection during the TLS handshake — is it serving TLS?"
      : message);
}

/** The reasons of rustls's certificate and handshake errors, or `undefined` for other errors. */
function describeTlsFailure(message: string): string | undefined {
  const peer = /invalid peer certificate: (.*)$/s.exec(message)?.[1];
  if (peer !== undefined) {
    const wrongName = /not valid for name "([^"]*)"; certificate is only valid for (.*)$/s.exec(
      peer,
    );
    if (wrongName) {
      const names = [...wrongName[2]!.matchAll(/(?:DnsName|IpAddress)\("?([^")]*)"?\)/g)]
        .map((match) => match[1]);
      return `certificate is for ${names.join(", ") || wrongName[2]}, not ${wrongName[1]} — ` +
        "use --servername NAME to verify another name";
    }
    if (/UnknownIssuer/.test(peer)) {
      return "certificate not trusted (unknown issuer) — use --ca FILE to trust a private CA";
    }
    if (/Expired/i.test(peer)) return "certificate has expired";
    if (/NotValidYet/i.test(peer)) return "certificate is not valid yet (check the clocks)";
    if (/CaUsedAsEndEntity/.test(peer)) {
      return "the server's certificate is a CA certificate (CA:TRUE) and cannot identify a server — " +
        "reissue it with basicConstraints=critical,CA:FALSE";
    }
    if (/BadSignature|UnsupportedSignatureAlgorithm/i.test(peer)) {
      return `certificate signature not accepted (${peer})`;
    }
    return `certificate rejected: ${peer}`;
  }
  if (/corrupt message|wrong version number|InvalidContentType/i.test(message)) {
    return "the server does not speak TLS (its answer is not a TLS handshake) — drop --tls?";
  }
  const alert = /received fatal alert: (\w+)/.exec(message)?.[1];
  if (alert !== undefined) return `the server refused the TLS handshake (alert ${alert})`;
  return undefined;
}

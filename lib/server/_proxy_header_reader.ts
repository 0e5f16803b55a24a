/**
 * Internal: reads a PROXY protocol header at the start of a connection, within its size and time
 * limits (the parsing is {@linkcode parseProxyHeader}'s).
 *
 * @module
 */
import { SERVE_DEFAULTS } from "./defaults.ts";
import { MAX_PROXY_HEADER_BYTES, parseProxyHeader, ProxyProtocolError } from "./proxy_protocol.ts";

/** What reading the header came to. */
export type ProxyHeaderRead =
  /** A header: the client's address (none for LOCAL and address-less ones), and what followed. */
  | { kind: "header"; source: Deno.NetAddr | undefined; rest: Uint8Array }
  /** No valid header (or none in time): the error line's message. */
  | { kind: "refused"; message: string }
  /** The client closed before its header was whole. */
  | { kind: "ended" };

/**
 * Reads until a whole header has arrived.
 * @param reader The connection's reader.
 * @param timeoutMs How long the whole header may take.
 * @returns The header's source and the bytes read past it, or why there is none.
 */
export async function readProxyHeader(
  reader: { read(): Promise<Uint8Array | null> },
  timeoutMs: number = SERVE_DEFAULTS.proxyHeaderTimeoutMs,
): Promise<ProxyHeaderRead> {
  let received = new Uint8Array(0);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    for (;;) {
      const chunk = await Promise.race([reader.read(), timedOut]);
      if (chunk === "timeout") {
        return { kind: "refused", message: `no PROXY protocol header within ${timeoutMs} ms` };
      }
      if (chunk === null) return { kind: "ended" };
      const joined = new Uint8Array(received.length + chunk.length);
      joined.set(received);
      joined.set(chunk, received.length);
      received = joined;
      let parsed;
      try {
        parsed = parseProxyHeader(received);
      } catch (error) {
        if (!(error instanceof ProxyProtocolError)) throw error;
        return { kind: "refused", message: error.message.replace(/^Invalid/, "invalid") };
      }
      if (parsed === undefined) {
        if (received.length >= MAX_PROXY_HEADER_BYTES) {
          return { kind: "refused", message: "PROXY protocol header too long" };
        }
        continue;
      }
      const source = parsed.header.source;
      // LOCAL (the balancer's own health check) and address-less headers keep the socket's address.
      const client: Deno.NetAddr | undefined = parsed.header.command === "PROXY" && source
        ? { transport: "tcp", hostname: source.hostname, port: source.port }
        : undefined;
      return { kind: "header", source: client, rest: received.subarray(parsed.consumed) };
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Listening and connecting addresses as people write them: `tcp://127.0.0.1:1991`,
 * `tcp://[::1]:1991`, `unix:///run/x.sock`.
 *
 * @example Formatting addresses
 * ```ts
 * import { formatAddress } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress({ transport: "tcp", hostname: "::1", port: 1991 }), "tcp://[::1]:1991");
 * assert.equal(formatAddress({ transport: "unix", path: "/run/x.sock" }), "unix:///run/x.sock");
 * ```
 *
 * @module
 */

/** The default TCP port of linesock. */
export const DEFAULT_PORT = 1991;
/** The default host: loopback only, unless told otherwise. */
export const DEFAULT_HOST = "127.0.0.1";

/** A TCP or Unix socket address. */
export type LineAddress =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/**
 * Formats an address as a URL-like string.
 * @param address A TCP or Unix address (a `Deno.Addr` of those kinds works too).
 * @returns `tcp://host:port` (IPv6 in brackets) or `unix://path`.
 */
export function formatAddress(address: LineAddress | Deno.Addr): string {
  if (address.transport === "unix" || address.transport === "unixpacket") {
    return `unix://${address.path}`;
  }
  if (address.transport === "tcp" || address.transport === "udp") {
    return `tcp://${hostPort(address.hostname, address.port)}`;
  }
  return String(address.transport);
}

/**
 * `host:port`, with an IPv6 host in brackets.
 * @param hostname A host name or IP literal.
 * @param port A port number.
 * @returns The joined form.
 * @example IPv4 and IPv6
 * ```ts
 * import { hostPort } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hostPort("127.0.0.1", 1991), "127.0.0.1:1991");
 * assert.equal(hostPort("::1", 1991), "[::1]:1991");
 * ```
 */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * A short description of a peer for logs: `127.0.0.1:50432`, `[::1]:50432`, or `unix`.
 * @param address The peer's address.
 * @returns The description.
 * @example TCP and Unix peers
 * ```ts
 * import { describePeer } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describePeer({ transport: "tcp", hostname: "::1", port: 50432 }), "[::1]:50432");
 * assert.equal(describePeer({ transport: "unix", path: "" }), "unix");
 * ```
 */
export function describePeer(address: Deno.Addr): string {
  if (address.transport === "tcp" || address.transport === "udp") {
    return hostPort(address.hostname, address.port);
  }
  return address.transport === "unix" && address.path ? `unix:${address.path}` : "unix";
}

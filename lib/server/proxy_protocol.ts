/**
 * The PROXY protocol (versions 1 and 2), as sent by L4 load balancers such as HAProxy in front of a
 * server, so the server sees the real client address. A server must accept it only when told to:
 * otherwise any client could claim any address.
 *
 * {@linkcode parseProxyHeader} is a synchronous parser over the first bytes of a connection: it says
 * whether the header is complete, how many bytes it took, and what it says.
 *
 * @example Parsing a version 1 header
 * ```ts
 * import { parseProxyHeader } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("PROXY TCP4 203.0.113.7 127.0.0.1 51234 1991\r\nPING\n");
 * const result = parseProxyHeader(bytes);
 * assert.ok(result !== undefined);
 * assert.deepEqual(result.header.source, { hostname: "203.0.113.7", port: 51234 });
 * assert.equal(new TextDecoder().decode(bytes.subarray(result.consumed)), "PING\n");
 * ```
 *
 * @module
 */
import { LinesockError } from "../errors.ts";

/** The longest header accepted: v1 is at most 107 bytes; v2 is 16 bytes plus its stated length. */
export const MAX_PROXY_HEADER_BYTES: number = 16 + 1024;

const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
const V1_MAX_BYTES = 107;

/** An endpoint named by a PROXY header. */
export interface ProxyEndpoint {
  /** IP address. */
  hostname: string;
  /** Port. */
  port: number;
}

/** What a PROXY header says. */
export interface ProxyHeader {
  /** Protocol version. */
  version: 1 | 2;
  /** `PROXY` for a relayed connection; `LOCAL` for the balancer's own health check. */
  command: "PROXY" | "LOCAL";
  /** The real client, when known. */
  source?: ProxyEndpoint;
  /** The address the client connected to, when known. */
  destination?: ProxyEndpoint;
}

/** The bytes at the start of a connection are not a valid PROXY header. */
export class ProxyProtocolError extends LinesockError {
  /**
   * Creates the error.
   * @param message What is wrong.
   */
  constructor(message: string) {
    super("INVALID_PROXY_HEADER", `Invalid PROXY protocol header: ${message}`);
  }
}

/**
 * Parses a PROXY header at the start of `bytes`.
 * @param bytes The first bytes received on a connection.
 * @returns The header and the count of bytes it took, or `undefined` when more bytes are needed.
 * @throws {ProxyProtocolError} When the bytes cannot start a valid header.
 */
export function parseProxyHeader(
  bytes: Uint8Array,
): { header: ProxyHeader; consumed: number } | undefined {
  if (startsWithPrefixOf(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_SIGNATURE.length ? undefined : parseV2(bytes);
  }
  if (startsWithPrefixOf(bytes, V1_PREFIX)) {
    return bytes.length < V1_PREFIX.length ? undefined : parseV1(bytes);
  }
  throw new ProxyProtocolError("the connection does not start with a PROXY header");
}

/** Whether `bytes` and `prefix` agree on their common length. */
function startsWithPrefixOf(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function parseV1(bytes: Uint8Array): { header: ProxyHeader; consumed: number } | undefined {
  const end = bytes.subarray(0, V1_MAX_BYTES).indexOf(0x0a);
  if (end === -1) {
    if (bytes.length >= V1_MAX_BYTES) {
      throw new ProxyProtocolError("v1 header longer than 107 bytes");
    }
    return undefined;
  }
  if (bytes[end - 1] !== 0x0d) throw new ProxyProtocolError("v1 header must end with CRLF");
  const text = new TextDecoder().decode(bytes.subarray(0, end - 1));
  const parts = text.split(" ");
  const consumed = end + 1;
  if (parts[1] === "UNKNOWN") return { header: { version: 1, command: "PROXY" }, consumed };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    throw new ProxyProtocolError(`malformed v1 header ${JSON.stringify(text)}`);
  }
  const [, family, source, destination, sourcePort, destinationPort] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    header: {
      version: 1,
      command: "PROXY",
      source: { hostname: address(family, source, "source"), port: parsePort(sourcePort) },
      destination: {
        hostname: address(family, destination, "destination"),
        port: parsePort(destinationPort),
      },
    },
    consumed,
  };
}

/** A v1 address, checked strictly against its family. */
function address(family: string, text: string, role: string): string {
  if (family === "TCP4" ? isIPv4(text) : isIPv6(text)) return text;
  const expected = family === "TCP4"
    ? "a dotted quad such as 192.0.2.1: four numbers 0-255 without leading zeros"
    : "an IPv6 address such as 2001:db8::1";
  throw new ProxyProtocolError(
    `bad ${family} ${role} address ${JSON.stringify(text)} (expected ${expected})`,
  );
}

function parseV2(bytes: Uint8Array): { header: ProxyHeader; consumed: number } | undefined {
  if (bytes.length < 16) return undefined;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError("v2 signature with a wrong version");
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`unknown v2 command ${command}`);
  const length = (bytes[14]! << 8) | bytes[15]!;
  if (16 + length > MAX_PROXY_HEADER_BYTES) {
    throw new ProxyProtocolError(`v2 header of ${length} bytes is longer than accepted`);
  }
  if (bytes.length < 16 + length) return undefined;
  const consumed = 16 + length;
  if (command === 0) return { header: { version: 2, command: "LOCAL" }, consumed };
  const family = bytes[13]! >> 4;
  const body = bytes.subarray(16, consumed);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (family === 1 && length >= 12) {
    return {
      header: {
        version: 2,
        command: "PROXY",
        source: { hostname: [...body.subarray(0, 4)].join("."), port: view.getUint16(8) },
        destination: { hostname: [...body.subarray(4, 8)].join("."), port: view.getUint16(10) },
      },
      consumed,
    };
  }
  if (family === 2 && length >= 36) {
    return {
      header: {
        version: 2,
        command: "PROXY",
        source: { hostname: formatIPv6(body.subarray(0, 16)), port: view.getUint16(32) },
        destination: { hostname: formatIPv6(body.subarray(16, 32)), port: view.getUint16(34) },
      },
      consumed,
    };
  }
  // Unix or unspecified families carry no IP endpoint; keep the connection's own address.
  return { header: { version: 2, command: "PROXY" }, consumed };
}

/** A v1 port: decimal 0-65535, without leading zeros (as the specification writes it). */
function parsePort(text: string): number {
  const port = /^(?:0|[1-9]\d{0,4})$/.test(text) ? Number(text) : NaN;
  if (!(port <= 65535)) {
    throw new ProxyProtocolError(
      `bad port ${JSON.stringify(text)} (expected 0-65535 in decimal, without leading zeros)`,
    );
  }
  return port;
}

/** A dotted quad: four decimal numbers 0-255, without leading zeros (`01.2.3.4` is refused). */
function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((part) => /^(?:0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255);
}

/**
 * An IPv6 address in text form (RFC 4291, section 2.2): eight groups of 1-4 hex digits, `::` at most
 * once for one or more zero groups, and optionally a dotted quad as the last 32 bits. No zone id.
 */
function isIPv6(text: string): boolean {
  const gap = text.indexOf("::");
  if (gap !== -1 && text.indexOf("::", gap + 1) !== -1) return false;
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? "" : text.slice(gap + 2);
  const groups = [...(head === "" ? [] : head.split(":")), ...(tail === "" ? [] : tail.split(":"))];
  // A dotted quad may only end the address (not stand before a trailing "::").
  const endsWithGroup = gap === -1 || tail !== "";
  let bits = 0;
  for (const [index, group] of groups.entries()) {
    if (/^[0-9a-fA-F]{1,4}$/.test(group)) {
      bits += 16;
    } else if (index === groups.length - 1 && endsWithGroup && isIPv4(group)) {
      bits += 32;
    } else {
      return false;
    }
  }
  return gap === -1 ? bits === 128 : bits <= 112;
}

function formatIPv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Compress the longest run of zero groups, as people write IPv6 addresses.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength && j - i > 1) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  if (bestStart === -1) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

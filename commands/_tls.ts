/**
 * The client TLS options shared by `send`, `repl` and `echo-test` (`--tls`, `--ca`, `--servername`,
 * `--insecure`), and turning them into {@linkcode ClientTlsOptions}. `--ca`, `--servername` and
 * `--insecure` imply `--tls`; any of them with `--unix` is a usage error.
 *
 * @module
 */
import type { OptionSpec } from "./_cli/spec.ts";
import type { ClientTlsOptions } from "../lib/client/transport.ts";
import { UsageError } from "./_cli.ts";

/** The parsed TLS flags of a client subcommand. */
export interface TlsFlags {
  tls?: boolean;
  ca?: string[];
  servername?: string;
  insecure?: boolean;
}

/** The warning `--insecure` prints on every run. */
export const INSECURE_WARNING = "linesock: WARNING: --insecure: the server's certificate is NOT " +
  "verified; anyone between you and the server can read and change this connection";

/** `--tls`, `--ca`, `--servername` and `--insecure`, for a client subcommand. */
export const TLS_OPTIONS: readonly OptionSpec[] = [
  { long: "tls", help: "connect with TLS (verifies the certificate against the system's CAs)" },
  {
    long: "ca",
    value: "FILE",
    help: "also trust the CA certificate(s) in this PEM file (repeatable; implies --tls)",
    multiple: true,
    complete: "file",
  },
  {
    long: "servername",
    value: "NAME",
    help:
      "verify the certificate for this name, and send it as SNI (default: --host; implies --tls)",
  },
  {
    long: "insecure",
    help: "TLS without verifying the certificate at all; prints a warning (implies --tls)",
  },
];

/**
 * Checks the TLS flags and reads the `--ca` files.
 * @param flags The parsed flags.
 * @param unix Whether the target is a Unix socket.
 * @param warn Where the `--insecure` warning goes.
 * @returns The TLS settings, or `undefined` for a plain connection.
 * @throws {UsageError} For TLS with a Unix socket, `--ca` with `--insecure`, or a `--ca` file that
 * cannot be read or holds no certificate.
 */
export async function resolveTls(
  flags: TlsFlags,
  unix: boolean,
  warn: (message: string) => void = (message) => console.error(message),
): Promise<ClientTlsOptions | undefined> {
  const wanted = flags.tls || flags.ca !== undefined || flags.servername !== undefined ||
    flags.insecure;
  if (!wanted) return undefined;
  if (unix) {
    throw new UsageError(
      "TLS works over TCP only: --tls, --ca, --servername and --insecure do not go with --unix",
    );
  }
  if (flags.insecure && flags.ca !== undefined) {
    throw new UsageError("--ca has no effect with --insecure, which checks no certificate at all");
  }
  const caCerts: string[] = [];
  for (const file of flags.ca ?? []) caCerts.push(...await readCertificates(file));
  if (flags.insecure) warn(INSECURE_WARNING);
  return {
    ...(caCerts.length > 0 ? { caCerts } : {}),
    ...(flags.servername !== undefined ? { serverName: flags.servername } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
  };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificates in a file, one string each (Deno silently skips what it cannot parse). */
async function readCertificates(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new UsageError(`--ca ${file}: cannot read it: ${(error as Error).message}`);
  }
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) {
    throw new UsageError(
      `--ca ${file}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`,
    );
  }
  return certificates.map((pem) => pem + "\n");
}

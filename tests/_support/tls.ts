/**
 * Throw-away TLS certificates for tests, made with `openssl` in a temporary directory:
 * a private CA, a server certificate it signed for `localhost`, `127.0.0.1` and `::1`, one it
 * signed for the name `localhost` only (a "wrong name" when reached as 127.0.0.1), an expired one,
 * and a self-signed certificate nobody trusts. The commands are the ones docs/tls.md shows.
 *
 * Tests that need them are ignored, with {@linkcode OPENSSL_MISSING} as the reason, where `openssl`
 * is not installed.
 *
 * @module
 */

import { toolMissing } from "./tools.ts";

/** Why TLS tests cannot run here (`openssl is not installed`), or `undefined` when `openssl` works. */
export const OPENSSL_MISSING: string | undefined = toolMissing("openssl", ["version"]);

/** A certificate file and its private key file (PEM). */
export interface CertPair {
  /** The certificate's path. */
  readonly cert: string;
  /** The private key's path. */
  readonly key: string;
}

/** The certificates of one test run; `await using` deletes them. */
export interface TestCertificates extends AsyncDisposable {
  /** The directory that holds them all. */
  readonly dir: string;
  /** The private CA's certificate (what `--ca` trusts). */
  readonly caFile: string;
  /** Signed by the CA for DNS:localhost, IP:127.0.0.1 and IP:::1. */
  readonly server: CertPair;
  /** Signed by the CA for DNS:localhost only. */
  readonly nameOnly: CertPair;
  /** Signed by the CA for localhost and 127.0.0.1, expired a day before it starts. */
  readonly expired: CertPair;
  /** Self-signed for localhost and 127.0.0.1; no CA vouches for it. */
  readonly selfSigned: CertPair;
}

/** The extensions of a server (end-entity) certificate. */
function serverExtensions(subjectAltName: string): string {
  return [
    `subjectAltName=${subjectAltName}`,
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "",
  ].join("\n");
}

/** The key type of every certificate: P-256 keys are made in milliseconds (RSA takes far longer). */
const KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/**
 * The openssl commands, in order, as docs/tls.md shows them (no argument contains a space).
 * `NAME`, `SAN`, `DAYS` and `SERIAL` are filled in per server certificate.
 */
const CA_COMMAND = `req -x509 ${KEY} -keyout ca.key -out ca.pem -days 30 ` +
  "-subj /CN=linesock-test-CA -addext basicConstraints=critical,CA:TRUE " +
  "-addext keyUsage=critical,keyCertSign,cRLSign";
const REQUEST_COMMAND = `req ${KEY} -keyout NAME.key -out NAME.csr -subj /CN=localhost`;
const SIGN_COMMAND = "x509 -req -in NAME.csr -CA ca.pem -CAkey ca.key -set_serial SERIAL " +
  "-days DAYS -extfile NAME.ext -out NAME.pem";
// Without CA:FALSE openssl marks a self-signed certificate as a CA, which cannot serve as a server's.
const SELF_SIGNED_COMMAND = `req -x509 ${KEY} -keyout self-signed.key -out self-signed.pem ` +
  "-days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 " +
  "-addext basicConstraints=critical,CA:FALSE";

/**
 * Generates the certificates into a new temporary directory.
 * @returns Their paths; `await using` removes the directory.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "linesock-tls-" });
  const at = (name: string) => `${dir}/${name}`;
  const run = (command: string) => openssl(dir, command.split(" "));
  const signed = async (name: string, subjectAltName: string, days: string, serial: string) => {
    await Deno.writeTextFile(at(`${name}.ext`), serverExtensions(subjectAltName));
    const fill = (command: string) =>
      command.replaceAll("NAME", name).replace("DAYS", days).replace("SERIAL", serial);
    await run(fill(REQUEST_COMMAND));
    await run(fill(SIGN_COMMAND));
    return { cert: at(`${name}.pem`), key: at(`${name}.key`) };
  };
  try {
    await run(CA_COMMAND);
    const server = await signed("server", "DNS:localhost,IP:127.0.0.1,IP:::1", "30", "1");
    const nameOnly = await signed("name-only", "DNS:localhost", "30", "2");
    // `-days -1`: valid until a day before it was issued, so it is expired from the start.
    const expired = await signed("expired", "DNS:localhost,IP:127.0.0.1", "-1", "3");
    await run(SELF_SIGNED_COMMAND);
    return {
      dir,
      caFile: at("ca.pem"),
      server,
      nameOnly,
      expired,
      selfSigned: { cert: at("self-signed.pem"), key: at("self-signed.key") },
      async [Symbol.asyncDispose]() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/**
 * A pair's certificate and key as text (PEM), as `serve`'s `tls` option takes them.
 * @param pair Paths, such as {@linkcode TestCertificates.server}.
 */
export async function readPem(pair: CertPair): Promise<{ cert: string; key: string }> {
  return { cert: await Deno.readTextFile(pair.cert), key: await Deno.readTextFile(pair.key) };
}

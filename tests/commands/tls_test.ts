import assert from "node:assert/strict";
import {
  type CliResult,
  runCli,
  type RunningServer,
  startServer,
  within,
} from "../_support/cli.ts";
import { type CertPair, makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";
import { ignoredName } from "../_support/tools.ts";

/** `serve` over TLS with `pair`, speaking `protocol`, on a free port. */
function serveTls(pair: CertPair, protocol = "echo"): Promise<RunningServer> {
  return startServer([
    "--port",
    "0",
    "--protocol",
    protocol,
    "--tls-cert",
    pair.cert,
    "--tls-key",
    pair.key,
  ]);
}

/** A failure to connect: exit status 3 and exactly one line on stderr, no stack trace. */
function assertCannotConnect(result: CliResult, reason: RegExp): void {
  assert.equal(result.code, 3, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, /^linesock: Cannot connect to 127\.0\.0\.1:\d+: /);
  assert.match(lines[0]!, reason);
}

const UNTRUSTED =
  /certificate not trusted \(unknown issuer\) — use --ca FILE to trust a private CA$/;
const WRONG_NAME = /certificate is for localhost, not 127\.0\.0\.1 — use --servername NAME/;
const WARNING = /^linesock: WARNING: --insecure: the server's certificate is NOT verified/m;

Deno.test({
  name: ignoredName("TLS end to end (CLI)", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await using certs = await makeTestCertificates();
    // One echo server per certificate: trusted (via --ca), for `localhost` only, and self-signed.
    await using good = await serveTls(certs.server);
    await using nameOnly = await serveTls(certs.nameOnly);
    await using selfSigned = await serveTls(certs.selfSigned);
    const port = (server: RunningServer) => String(server.port);
    const ca = ["--ca", certs.caFile];

    await t.step(
      "send: trusted certificate, lockstep and the default half-close ending",
      async () => {
        const lockstep = await runCli("send", [
          "--port",
          port(good),
          ...ca,
          "--replies",
          "1",
          "hello",
        ]);
        assert.equal(lockstep.stdout, "hello\n");
        assert.equal(lockstep.code, 0, lockstep.stderr);
        assert.equal(lockstep.stderr, "");
        // Default ending: the lines go out (send ends the last with \n), then the half-close.
        const ending = await runCli("send", ["--port", port(good), ...ca], {
          stdin: "one\nlast without newline",
        });
        assert.equal(ending.stdout, "one\nlast without newline\n");
        assert.equal(ending.code, 0, ending.stderr);
      },
    );

    await t.step("send: untrusted certificates exit 3 with one line", async () => {
      assertCannotConnect(
        await runCli("send", ["--port", port(good), "--tls", "--replies", "1", "hi"]),
        UNTRUSTED,
      );
      assertCannotConnect(
        await runCli("send", ["--port", port(selfSigned), ...ca, "--replies", "1", "hi"]),
        UNTRUSTED,
      );
    });

    await t.step("send: a wrong name exits 3; --servername localhost then works", async () => {
      assertCannotConnect(
        await runCli("send", ["--port", port(nameOnly), ...ca, "--replies", "1", "hi"]),
        WRONG_NAME,
      );
      const named = await runCli("send", [
        "--port",
        port(nameOnly),
        ...ca,
        "--servername",
        "localhost",
        "--replies",
        "1",
        "hi",
      ]);
      assert.equal(named.stdout, "hi\n");
      assert.equal(named.code, 0, named.stderr);
    });

    await t.step("send: --insecure works with a self-signed certificate, and warns", async () => {
      const result = await runCli("send", ["--port", port(selfSigned), "--insecure"], {
        stdin: "a\nfinal",
      });
      assert.equal(result.stdout, "a\nfinal\n");
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, WARNING);
      const quiet = await runCli("send", ["--port", port(selfSigned), "--insecure", "-q", "x"]);
      assert.match(quiet.stderr, WARNING, "the warning is printed even with --quiet");
    });

    await t.step("send: usage errors", async () => {
      const junk = `${certs.dir}/junk.pem`;
      await Deno.writeTextFile(junk, "not a certificate\n");
      const cases: [string[], RegExp][] = [
        [["--unix", "/tmp/x.sock", "--tls", "hi"], /TLS works over TCP only/],
        [["--unix", "/tmp/x.sock", "--insecure", "hi"], /TLS works over TCP only/],
        [["--port", port(good), "--ca", junk, "hi"], /no PEM certificate in it/],
        [["--port", port(good), "--ca", `${certs.dir}/missing.pem`, "hi"], /cannot read it/],
        [["--port", port(good), ...ca, "--insecure", "hi"], /--ca has no effect with --insecure/],
      ];
      for (const [args, message] of cases) {
        const result = await runCli("send", args);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, message);
      }
    });

    await t.step("send: an expired certificate exits 3", async () => {
      await using expired = await serveTls(certs.expired);
      assertCannotConnect(
        await runCli("send", ["--port", port(expired), ...ca, "--replies", "1", "hi"]),
        /certificate has expired$/,
      );
    });

    await t.step("repl (no terminal): trusted, untrusted, wrong name, --insecure", async () => {
      const repl = (server: RunningServer, args: string[]) =>
        runCli("repl", ["--port", port(server), "--no-probe", ...args], { stdin: "hello\n" });
      const trusted = await repl(good, ca);
      assert.equal(trusted.stdout, "hello\n");
      assert.equal(trusted.code, 0, trusted.stderr);
      assertCannotConnect(await repl(good, ["--tls"]), UNTRUSTED);
      assertCannotConnect(await repl(nameOnly, ca), WRONG_NAME);
      const named = await repl(nameOnly, [...ca, "--servername", "localhost"]);
      assert.equal(named.stdout, "hello\n");
      assert.equal(named.code, 0, named.stderr);
      const insecure = await repl(selfSigned, ["--insecure"]);
      assert.equal(insecure.stdout, "hello\n");
      assert.equal(insecure.code, 0, insecure.stderr);
      assert.match(insecure.stderr, WARNING);
      const unix = await runCli("repl", ["--unix", "/tmp/x.sock", "--tls"], { stdin: "x\n" });
      assert.equal(unix.code, 2, unix.stderr);
    });

    await t.step("echo-test: the conformance suite passes over TLS", async () => {
      const result = await runCli("echo-test", ["--port", port(good), ...ca, "--json"], {
        timeoutMs: 60_000,
      });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout);
      assert.equal(report.passed, true);
      assert.equal(report.tls, true);
      assert.equal(report.counts.fail, 0);
      assert.ok(report.results.length >= 10);
    });

    await t.step("echo-test: a short load run over TLS, verified and --insecure", async () => {
      for (const [server, args] of [[good, ca], [selfSigned, ["--insecure"]]] as const) {
        const result = await runCli("echo-test", [
          "--port",
          port(server),
          ...args,
          "--load",
          "-n",
          "2000",
          "-c",
          "2",
          "-P",
          "8",
          "--json",
        ], { timeoutMs: 60_000 });
        assert.equal(result.code, 0, result.stdout + result.stderr);
        const report = JSON.parse(result.stdout);
        assert.equal(report.linesReceived, 2000);
        assert.equal(report.linesLost, 0);
        assert.equal(report.linesMismatched, 0);
      }
    });

    await t.step("echo-test: untrusted, wrong name, --servername, --insecure", async () => {
      const echoTest = (server: RunningServer, args: string[]) =>
        runCli("echo-test", ["--port", port(server), "--case", "short-line", ...args]);
      assertCannotConnect(await echoTest(good, ["--tls"]), UNTRUSTED);
      assertCannotConnect(await echoTest(nameOnly, ca), WRONG_NAME);
      const named = await echoTest(nameOnly, [...ca, "--servername", "localhost"]);
      assert.equal(named.code, 0, named.stdout + named.stderr);
      assert.match(named.stdout, /over TLS/);
      const insecure = await echoTest(selfSigned, ["--insecure"]);
      assert.equal(insecure.code, 0, insecure.stdout + insecure.stderr);
      assert.match(insecure.stdout, /over TLS \(certificate NOT verified\)/);
      assert.match(insecure.stderr, WARNING);
      const embedded = await runCli("echo-test", ["--tls"]);
      assert.equal(embedded.code, 2, embedded.stderr);
      assert.match(embedded.stderr, /TLS needs a target/);
    });

    await t.step("serve: a plain TCP client is turned away; the server goes on", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: good.port });
      try {
        await conn.write(new TextEncoder().encode("plain text\n"));
        // The server answers with a TLS alert at most, then closes: no echo of the line.
        const received: number[] = [];
        const buffer = new Uint8Array(1024);
        const reading = (async () => {
          for (let count; (count = await conn.read(buffer)) !== null;) {
            received.push(...buffer.subarray(0, count));
            if (received.length > 4096) break;
          }
        })();
        await within(reading, 10_000, "the server to close the plain connection");
        assert.ok(!new TextDecoder().decode(new Uint8Array(received)).includes("plain text"));
      } finally {
        conn.close();
      }
      await good.waitForStderr(/corrupt message|InvalidContentType/);
      const after = await runCli("send", [
        "--port",
        port(good),
        ...ca,
        "--replies",
        "1",
        "still here",
      ]);
      assert.equal(after.stdout, "still here\n");
      assert.equal(after.code, 0, after.stderr);
    });
  },
});

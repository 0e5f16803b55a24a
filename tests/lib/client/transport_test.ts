import assert from "node:assert/strict";
import {
  connect,
  ConnectError,
  describeConnectFailure,
  echoProtocol,
  openTransport,
  serve,
  type Server,
  TimeoutError,
  type Transport,
  type TransportOptions,
} from "../../../lib/mod.ts";
import { runEchoConformance } from "../../../commands/_echo_test/conformance.ts";
import { within } from "../../_support/cli.ts";
import { type CertPair, makeTestCertificates, OPENSSL_MISSING } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** linesock's byte-exact echo server over TLS with `pair`. */
async function tlsEcho(pair: CertPair, hostname = "127.0.0.1"): Promise<Server> {
  return await serve({
    hostname,
    port: 0,
    tls: { cert: await Deno.readTextFile(pair.cert), key: await Deno.readTextFile(pair.key) },
  }, echoProtocol());
}

async function writeAll(transport: Transport, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await transport.write(bytes.subarray(offset));
  }
}

/** Everything until the end of the stream, bounded in bytes. */
async function readToEnd(transport: Transport, limit = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (let count; (count = await transport.read(buffer)) !== null;) {
    parts.push(buffer.slice(0, count));
    total += count;
    if (total > limit) throw new Error(`more than ${limit} bytes`);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Sends `text`, half-closes, and returns everything echoed until the server closes. */
async function echoThenHalfClose(options: TransportOptions, text: string): Promise<string> {
  const transport = await openTransport(options);
  try {
    await writeAll(transport, encoder.encode(text));
    await transport.closeWrite();
    return decoder.decode(await within(readToEnd(transport), 10_000, "the echo"));
  } finally {
    transport.close();
  }
}

async function rejection(options: TransportOptions): Promise<ConnectError> {
  const error = await openTransport(options).then(
    (transport) => {
      transport.close();
      throw new Error("connected, but it should not have");
    },
    (error: unknown) => error,
  );
  assert.ok(error instanceof ConnectError, String(error));
  return error;
}

/** A TLS server that sends first, half-closes, then reports what it read until the client's end. */
function halfClosingServer(pair: { cert: string; key: string }) {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...pair });
  const received = (async () => {
    const conn = await listener.accept();
    try {
      await conn.handshake();
      await writeAll(conn, encoder.encode("server first\n"));
      await conn.closeWrite();
      return decoder.decode(await readToEnd(conn));
    } finally {
      conn.close();
    }
  })();
  return { port: listener.addr.port, received, close: () => listener.close() };
}

Deno.test({
  name: ignoredName("openTransport over TLS", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await using certs = await makeTestCertificates();
    const ca = await Deno.readTextFile(certs.caFile);
    const pem = async (pair: CertPair) => ({
      cert: await Deno.readTextFile(pair.cert),
      key: await Deno.readTextFile(pair.key),
    });

    await t.step(
      "a certificate from a trusted CA: echo, and a final line without \\n",
      async () => {
        await using server = await tlsEcho(certs.server);
        const port = (server.addr as Deno.NetAddr).port;
        const text = "one\ntwo\r\nlast without newline";
        assert.equal(await echoThenHalfClose({ port, tls: { caCerts: [ca] } }, text), text);
        assert.equal(
          await echoThenHalfClose({ hostname: "localhost", port, tls: { caCerts: [ca] } }, text),
          text,
        );
      },
    );

    await t.step("over IPv6 ([::1] is in the certificate)", async () => {
      await using server = await tlsEcho(certs.server, "::1");
      const port = (server.addr as Deno.NetAddr).port;
      assert.equal(
        await echoThenHalfClose({ hostname: "::1", port, tls: { caCerts: [ca] } }, "v6\n"),
        "v6\n",
      );
    });

    await t.step("the line client over TLS", async () => {
      await using server = await serve(
        { port: 0, tls: await pem(certs.server) },
        (line) => `<${line}>`,
      );
      await using client = await connect({
        port: (server.addr as Deno.NetAddr).port,
        tls: { caCerts: [ca] },
      });
      assert.deepEqual(await client.request("hi", { timeoutMs: 5000 }), ["<hi>"]);
      assert.equal(client.remote, `tcp://127.0.0.1:${(server.addr as Deno.NetAddr).port}`);
    });

    await t.step("the conformance suite passes over TLS", async () => {
      await using server = await tlsEcho(certs.server);
      const report = await runEchoConformance({
        target: { port: (server.addr as Deno.NetAddr).port, tls: { caCerts: [ca] } },
        clients: 4,
      });
      const failed = report.results.filter((result) => result.status !== "pass");
      assert.deepEqual(failed, []);
    });

    await t.step("no CA given: not trusted, with the fix in the message", async () => {
      await using server = await tlsEcho(certs.server);
      const error = await rejection({ port: (server.addr as Deno.NetAddr).port, tls: true });
      assert.match(
        error.message,
        /^Cannot connect to 127\.0\.0\.1:\d+: certificate not trusted \(unknown issuer\) — use --ca FILE to trust a private CA$/,
      );
    });

    await t.step("a self-signed certificate, and a CA file without certificates", async () => {
      await using server = await tlsEcho(certs.selfSigned);
      const port = (server.addr as Deno.NetAddr).port;
      assert.match((await rejection({ port, tls: { caCerts: [ca] } })).message, /unknown issuer/);
      assert.match(
        (await rejection({ port, tls: { caCerts: ["not a certificate"] } })).message,
        /unknown issuer/,
      );
    });

    await t.step("a wrong name, then the right one with serverName", async () => {
      await using server = await tlsEcho(certs.nameOnly);
      const port = (server.addr as Deno.NetAddr).port;
      const error = await rejection({ port, tls: { caCerts: [ca] } });
      assert.match(
        error.message,
        /: certificate is for localhost, not 127\.0\.0\.1 — use --servername NAME to verify another name$/,
      );
      assert.equal(
        await echoThenHalfClose({ port, tls: { caCerts: [ca], serverName: "localhost" } }, "ok\n"),
        "ok\n",
      );
      assert.match(
        (await rejection({ port, tls: { caCerts: [ca], serverName: "wrong.example" } })).message,
        /certificate is for localhost, not wrong\.example/,
      );
    });

    await t.step("an expired certificate", async () => {
      await using server = await tlsEcho(certs.expired);
      const error = await rejection({
        port: (server.addr as Deno.NetAddr).port,
        tls: { caCerts: [ca] },
      });
      assert.match(error.message, /: certificate has expired$/);
    });

    await t.step("a plain TCP server: it does not speak TLS", async () => {
      await using server = await serve({ port: 0 }, (line) => `ERR ${line.length}`);
      const port = (server.addr as Deno.NetAddr).port;
      for (const tls of [{ caCerts: [ca] }, { insecure: true }]) {
        assert.match((await rejection({ port, tls })).message, /does not speak TLS/);
      }
    });

    await t.step(
      "a server that never answers the handshake: TimeoutError, nothing leaks",
      async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const accepted: Deno.Conn[] = [];
        const accepting = (async () => {
          for (let i = 0; i < 2; i++) accepted.push(await listener.accept());
        })();
        try {
          for (const tls of [{ caCerts: [ca] }, { insecure: true }]) {
            await assert.rejects(
              openTransport({ port: listener.addr.port, tls, connectTimeoutMs: 200 }),
              TimeoutError,
            );
          }
        } finally {
          await accepting;
          for (const conn of accepted) conn.close();
          listener.close();
        }
      },
    );

    await t.step("TLS with a Unix socket is a TypeError", async () => {
      await assert.rejects(openTransport({ path: "/nonexistent.sock", tls: true }), TypeError);
    });

    await t.step(
      "insecure: untrusted, expired and wrong-name certificates are accepted",
      async () => {
        for (const pair of [certs.selfSigned, certs.expired, certs.nameOnly]) {
          await using server = await tlsEcho(pair);
          const port = (server.addr as Deno.NetAddr).port;
          assert.equal(
            await echoThenHalfClose({ port, tls: { insecure: true } }, "a\nfinal"),
            "a\nfinal",
          );
        }
      },
    );

    await t.step("insecure: 4 MiB echoed byte-exact (backpressure both ways)", async () => {
      await using server = await tlsEcho(certs.selfSigned);
      const transport = await openTransport({
        port: (server.addr as Deno.NetAddr).port,
        tls: { insecure: true },
      });
      try {
        const line = "x".repeat(1023) + "\n";
        const payload = encoder.encode(line.repeat(4096));
        const sending = writeAll(transport, payload).then(() => transport.closeWrite());
        const echoed = await within(readToEnd(transport), 20_000, "4 MiB echo");
        await sending;
        assert.equal(echoed.length, payload.length);
        assert.ok(echoed.every((byte, index) => byte === payload[index]));
      } finally {
        transport.close();
      }
    });

    await t.step("half-close in both directions, verified and insecure", async () => {
      for (const tls of [{ caCerts: [ca] }, { insecure: true }]) {
        const server = halfClosingServer(await pem(certs.server));
        try {
          const transport = await openTransport({ port: server.port, tls });
          try {
            // The server's FIN comes first; we still send afterwards, then half-close.
            assert.equal(decoder.decode(await readToEnd(transport)), "server first\n");
            await writeAll(transport, encoder.encode("client after the server's end\n"));
            await transport.closeWrite();
            assert.equal(
              await within(server.received, 5000, "the server's read"),
              "client after the server's end\n",
            );
          } finally {
            transport.close();
          }
        } finally {
          server.close();
        }
      }
    });

    await t.step(
      "insecure: writes after closeWrite fail; close() ends a pending read",
      async () => {
        await using server = await tlsEcho(certs.selfSigned);
        const port = (server.addr as Deno.NetAddr).port;
        const transport = await openTransport({ port, tls: { insecure: true } });
        await transport.closeWrite();
        await assert.rejects(transport.write(encoder.encode("late\n")), Deno.errors.BrokenPipe);
        // The echo server answers our end with its own.
        assert.equal(await within(transport.read(new Uint8Array(16)), 5000, "the end"), null);
        transport.close();

        const idle = await openTransport({ port, tls: { insecure: true } });
        const pending = idle.read(new Uint8Array(16));
        idle.close();
        await assert.rejects(within(pending, 5000, "the pending read"), Deno.errors.BadResource);
      },
    );
  },
});

Deno.test("openTransport without TLS", async (t) => {
  await t.step("refused", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    assert.match(
      (await rejection({ port })).message,
      /^Cannot connect to 127\.0\.0\.1:\d+: connection refused$/,
    );
    assert.match(
      (await rejection({ port, tls: { insecure: true } })).message,
      /connection refused$/,
    );
  });

  await t.step("no such Unix socket", async () => {
    const error = await rejection({ path: "/nonexistent/linesock.sock" });
    assert.equal(error.message, "Cannot connect to /nonexistent/linesock.sock: no such socket");
  });

  await t.step("half-close over TCP", async () => {
    await using server = await serve({ port: 0 }, echoProtocol());
    const port = (server.addr as Deno.NetAddr).port;
    assert.equal(await echoThenHalfClose({ port }, "tcp\nend"), "tcp\nend");
  });

  await t.step("connectTimeoutMs 0 is no limit (not an instant timeout)", async () => {
    await using server = await serve({ port: 0 }, echoProtocol());
    const port = (server.addr as Deno.NetAddr).port;
    for (let i = 0; i < 5; i++) (await openTransport({ port, connectTimeoutMs: 0 })).close();
    await using client = await connect({ port, connectTimeoutMs: 0 });
    assert.deepEqual(await client.request("x"), ["x"]);
  });
});

Deno.test("describeConnectFailure", async (t) => {
  await t.step("operating system and DNS errors", () => {
    assert.equal(
      describeConnectFailure(new Deno.errors.PermissionDenied("x")),
      "permission denied",
    );
    assert.equal(
      describeConnectFailure(
        new Error("failed to lookup address information: Name or service not known"),
      ),
      "cannot resolve host",
    );
    assert.equal(
      describeConnectFailure(
        Object.assign(new Error("getaddrinfo ENOTFOUND x"), { code: "ENOTFOUND" }),
      ),
      "cannot resolve host",
    );
  });

  await t.step("TLS errors", () => {
    const tls = (message: string) => describeConnectFailure(new Deno.errors.InvalidData(message));
    assert.equal(
      tls(
        'invalid peer certificate: certificate not valid for name "wrong.example"; certificate is only valid for DnsName("localhost"), IpAddress(127.0.0.1) or IpAddress(0::1)',
      ),
      "certificate is for localhost, 127.0.0.1, 0::1, not wrong.example — use --servername NAME to verify another name",
    );
    assert.equal(
      tls("invalid peer certificate: NotValidYet"),
      "certificate is not valid yet (check the clocks)",
    );
    assert.match(tls("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"), /CA:FALSE/);
    assert.equal(
      tls("invalid peer certificate: Something new"),
      "certificate rejected: Something new",
    );
    assert.equal(
      tls("received fatal alert: HandshakeFailure"),
      "the server refused the TLS handshake (alert HandshakeFailure)",
    );
    assert.match(
      describeConnectFailure(new Deno.errors.UnexpectedEof("unexpected end of file")),
      /closed the connection during the TLS handshake/,
    );
  });
});

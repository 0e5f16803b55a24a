import assert from "node:assert/strict";
import fc from "fast-check";
import { parseProxyHeader, ProxyProtocolError } from "../../lib/proxy_protocol.ts";

const encode = (text: string) => new TextEncoder().encode(text);

function v2(command: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([
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
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

Deno.test("parseProxyHeader", async (t) => {
  await t.step("v1 TCP4 and TCP6, with the rest of the data left over", () => {
    const four = parseProxyHeader(encode("PROXY TCP4 192.0.2.1 127.0.0.1 40000 1991\r\nrest"));
    assert.deepEqual(four, {
      header: {
        version: 1,
        command: "PROXY",
        source: { hostname: "192.0.2.1", port: 40000 },
        destination: { hostname: "127.0.0.1", port: 1991 },
      },
      consumed: 43,
    });
    const six = parseProxyHeader(encode("PROXY TCP6 2001:db8::1 ::1 40000 1991\r\n"));
    assert.deepEqual(six?.header.source, { hostname: "2001:db8::1", port: 40000 });
  });

  await t.step("v1 UNKNOWN keeps no address", () => {
    assert.deepEqual(parseProxyHeader(encode("PROXY UNKNOWN\r\n")), {
      header: { version: 1, command: "PROXY" },
      consumed: 15,
    });
  });

  await t.step("needs more bytes for every strict prefix of a valid header", () => {
    const full = encode("PROXY TCP4 192.0.2.1 127.0.0.1 40000 1991\r\n");
    for (let n = 0; n < full.length; n++) {
      assert.equal(parseProxyHeader(full.subarray(0, n)), undefined, `prefix of ${n} bytes`);
    }
    const binary = v2(1, 0x11, [192, 0, 2, 1, 127, 0, 0, 1, 0x9c, 0x40, 0x07, 0xc7]);
    for (let n = 0; n < binary.length; n++) {
      assert.equal(parseProxyHeader(binary.subarray(0, n)), undefined, `prefix of ${n} bytes`);
    }
  });

  await t.step("v2 IPv4, IPv6 and LOCAL", () => {
    const four = parseProxyHeader(
      v2(1, 0x11, [192, 0, 2, 1, 127, 0, 0, 1, 0x9c, 0x40, 0x07, 0xc7]),
    );
    assert.deepEqual(four?.header, {
      version: 2,
      command: "PROXY",
      source: { hostname: "192.0.2.1", port: 40000 },
      destination: { hostname: "127.0.0.1", port: 1991 },
    });
    const loopback6 = [...new Array(15).fill(0), 1];
    const doc6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 7];
    const six = parseProxyHeader(v2(1, 0x21, [...doc6, ...loopback6, 0x9c, 0x40, 0x07, 0xc7]));
    assert.deepEqual(six?.header.source, { hostname: "2001:db8::7", port: 40000 });
    assert.deepEqual(six?.header.destination, { hostname: "::1", port: 1991 });
    assert.deepEqual(parseProxyHeader(v2(0, 0x00, [])), {
      header: { version: 2, command: "LOCAL" },
      consumed: 16,
    });
  });

  await t.step("rejects what is not a PROXY header", () => {
    for (
      const bad of [
        "PING\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        `PROXY ${"x".repeat(200)}`,
      ]
    ) {
      assert.throws(() => parseProxyHeader(encode(bad)), ProxyProtocolError, bad);
    }
  });

  await t.step("never throws anything but ProxyProtocolError on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          const result = parseProxyHeader(bytes);
          if (result) assert.ok(result.consumed <= bytes.length);
        } catch (error) {
          assert.ok(error instanceof ProxyProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

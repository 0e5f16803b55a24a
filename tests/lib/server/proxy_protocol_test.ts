import assert from "node:assert/strict";
import fc from "fast-check";
import { parseProxyHeader, ProxyProtocolError } from "../../../lib/server/proxy_protocol.ts";

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

  await t.step("v1 accepts every valid address and port form", () => {
    const good: [string, string, string, string][] = [
      ["TCP4", "0.0.0.0", "255.255.255.255", "0 65535"],
      ["TCP4", "10.0.0.1", "192.168.100.200", "1 80"],
      ["TCP6", "::", "::1", "0 65535"],
      ["TCP6", "1::", "2001:db8::1", "443 8080"],
      ["TCP6", "2001:DB8:0:0:0:0:0:1", "fe80::abcd:ef01", "1 2"],
      ["TCP6", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "1 2"],
      ["TCP6", "::2:3:4:5:6:7:8", "1::8", "1 2"],
      ["TCP6", "::ffff:192.0.2.1", "1:2:3:4:5:6:1.2.3.4", "1 2"],
      ["TCP6", "::1.2.3.4", "64:ff9b::255.255.255.255", "1 2"],
    ];
    for (const [family, source, destination, ports] of good) {
      const line = `PROXY ${family} ${source} ${destination} ${ports}\r\n`;
      const result = parseProxyHeader(encode(line));
      const [sourcePort, destinationPort] = ports.split(" ").map(Number);
      assert.deepEqual(result?.header, {
        version: 1,
        command: "PROXY",
        source: { hostname: source, port: sourcePort },
        destination: { hostname: destination, port: destinationPort },
      }, line);
    }
  });

  await t.step("v1 refuses malformed addresses, ports and family mismatches", () => {
    const good4 = "192.0.2.1";
    const good6 = "2001:db8::1";
    const bad: [string, string, string, string][] = [
      // TCP4: a dotted quad of 0-255 without leading zeros.
      ["TCP4", "01.2.3.4", good4, "source"],
      ["TCP4", "1.2.3.04", good4, "source"],
      ["TCP4", "00.0.0.0", good4, "source"],
      ["TCP4", "1.2.3", good4, "source"],
      ["TCP4", "1.2.3.4.5", good4, "source"],
      ["TCP4", "256.1.1.1", good4, "source"],
      ["TCP4", "1..3.4", good4, "source"],
      ["TCP4", "1.2.3.-4", good4, "source"],
      ["TCP4", "+1.2.3.4", good4, "source"],
      ["TCP4", "0x1.2.3.4", good4, "source"],
      ["TCP4", "1.2.3.4a", good4, "source"],
      ["TCP4", "١.2.3.4", good4, "source"],
      ["TCP4", good4, "1.2.3.4.", "destination"],
      // The family must match the address.
      ["TCP4", "::1", good4, "source"],
      ["TCP4", good4, "::ffff:1.2.3.4", "destination"],
      ["TCP6", good4, good6, "source"],
      ["TCP6", good6, "127.0.0.1", "destination"],
      // TCP6: groups of 1-4 hex digits, "::" at most once, 8 groups in all.
      ["TCP6", ":::::::", good6, "source"],
      ["TCP6", ":::::::::::::::::::::::::::::::::::::::", good6, "source"],
      ["TCP6", ":::", good6, "source"],
      ["TCP6", "1::2::3", good6, "source"],
      ["TCP6", ":1::", good6, "source"],
      ["TCP6", "1::2:", good6, "source"],
      ["TCP6", ":1:2:3:4:5:6:7", good6, "source"],
      ["TCP6", "1:2:3:4:5:6:7", good6, "source"],
      ["TCP6", "1:2:3:4:5:6:7:8:9", good6, "source"],
      ["TCP6", "1:2:3:4:5:6:7:8::", good6, "source"],
      ["TCP6", "::1:2:3:4:5:6:7:8", good6, "source"],
      ["TCP6", "12345::", good6, "source"],
      ["TCP6", "g::1", good6, "source"],
      ["TCP6", "fe80::1%eth0", good6, "source"],
      ["TCP6", "[::1]", good6, "source"],
      ["TCP6", "::1.2.3", good6, "source"],
      ["TCP6", "::1.2.3.04", good6, "source"],
      ["TCP6", "::256.0.0.1", good6, "source"],
      ["TCP6", "1.2.3.4::", good6, "source"],
      ["TCP6", "::1.2.3.4:5", good6, "source"],
      ["TCP6", "1:2:3:4:5:6:7:1.2.3.4", good6, "source"],
      ["TCP6", good6, "::g", "destination"],
    ];
    for (const [family, source, destination, role] of bad) {
      const line = `PROXY ${family} ${source} ${destination} 1 2\r\n`;
      assert.throws(
        () => parseProxyHeader(encode(line)),
        (error: unknown) => {
          assert.ok(error instanceof ProxyProtocolError, line);
          assert.match(error.message, new RegExp(`bad ${family} ${role} address`), line);
          return true;
        },
      );
    }
    for (
      const port of ["01", "00", "065535", "65536", "99999", "-1", "+1", "1.0", "0x10", "", "1e3"]
    ) {
      for (const ports of [`${port} 2`, `1 ${port}`]) {
        const line = `PROXY TCP4 ${good4} ${good4} ${ports}\r\n`;
        assert.throws(() => parseProxyHeader(encode(line)), ProxyProtocolError, line);
      }
    }
  });

  await t.step("property: TCP6 accepts exactly the IPv6 literals that URL accepts", () => {
    // The WHATWG URL parser (host "[…]") is an independent strict IPv6 parser.
    const accepted = (address: string) => {
      try {
        parseProxyHeader(encode(`PROXY TCP6 ${address} ::1 1 2\r\n`));
        return true;
      } catch {
        return false;
      }
    };
    const urlAccepts = (address: string) => {
      try {
        new URL(`http://[${address}]/`);
        return true;
      } catch {
        return false;
      }
    };
    const piece = fc.oneof(
      fc.stringMatching(/^[0-9a-fA-F]{0,5}$/),
      fc.constantFrom("1.2.3.4", "255.0.0.01", "0.0.0.0", "256.1.1.1", "1.2.3"),
      fc.nat(300).map(String),
    );
    const separator = fc.constantFrom(":", "::", ".", "");
    const address = fc.array(fc.tuple(piece, separator), { minLength: 1, maxLength: 10 })
      .map((parts) => parts.map(([text, after]) => text + after).join(""))
      .filter((text) => text !== "" && text.length <= 45);
    fc.assert(
      fc.property(address, (text) => {
        assert.equal(accepted(text), urlAccepts(text), text);
      }),
      { numRuns: 5000 },
    );
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

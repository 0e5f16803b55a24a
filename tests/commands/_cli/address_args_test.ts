import assert from "node:assert/strict";
import {
  formatTarget,
  parseAddress,
  readTargetArgs,
  type Target,
} from "../../../commands/_cli/address_args.ts";

const DEFAULTS = { hostname: "127.0.0.1", port: 1991 };

Deno.test("readTargetArgs", async (t) => {
  await t.step("every form serve prints is read back", () => {
    const forms: [string, Target][] = [
      ["tcp://127.0.0.1:40117", { kind: "tcp", hostname: "127.0.0.1", port: 40117, tls: false }],
      ["tcp://[::1]:7000", { kind: "tcp", hostname: "::1", port: 7000, tls: false }],
      ["tls://localhost:7000", { kind: "tcp", hostname: "localhost", port: 7000, tls: true }],
      ["unix:///tmp/app.sock", { kind: "unix", path: "/tmp/app.sock" }],
    ];
    for (const [form, target] of forms) {
      const resolved = readTargetArgs({}, [form, "PING"], DEFAULTS);
      assert.deepEqual(resolved.target, target, form);
      assert.deepEqual(resolved.rest, ["PING"]);
      assert.equal(formatTarget(resolved.target), form);
    }
  });
  await t.step("--host takes HOST, HOST:PORT, [IPv6]:PORT and the URL forms", () => {
    const host = (host: string, port?: number) =>
      readTargetArgs({ host, port }, [], DEFAULTS).target;
    assert.deepEqual(host("example.org"), {
      kind: "tcp",
      hostname: "example.org",
      port: 1991,
      tls: false,
    });
    assert.deepEqual(host("example.org", 80), {
      kind: "tcp",
      hostname: "example.org",
      port: 80,
      tls: false,
    });
    assert.deepEqual(host("h:81"), { kind: "tcp", hostname: "h", port: 81, tls: false });
    assert.deepEqual(host("[::1]:82"), { kind: "tcp", hostname: "::1", port: 82, tls: false });
    assert.deepEqual(host("::1"), { kind: "tcp", hostname: "::1", port: 1991, tls: false });
    assert.deepEqual(host("tcp://h:83"), { kind: "tcp", hostname: "h", port: 83, tls: false });
    assert.deepEqual(host("unix:///s"), { kind: "unix", path: "/s" });
  });
  await t.step("HOST PORT first: read as the target when it is a host", () => {
    for (const host of ["127.0.0.1", "localhost", "example.org", "[::1]", "::1"]) {
      const resolved = readTargetArgs({}, [host, "44001", "PING"], DEFAULTS);
      assert.equal(resolved.target.kind, "tcp");
      assert.equal((resolved.target as { port: number }).port, 44001, host);
      assert.deepEqual(resolved.rest, ["PING"]);
    }
  });
  await t.step("a bare word before a port number is refused with a hint", () => {
    assert.throws(
      () => readTargetArgs({}, ["myhost", "7000"], DEFAULTS),
      /"myhost 7000" looks like HOST PORT: write tcp:\/\/myhost:7000 \(or --host myhost -p 7000\); to send them as lines, put them after --/,
    );
  });
  await t.step("lines that are not HOST PORT go to the default target", () => {
    const resolved = readTargetArgs({}, ["PING", "HELLO"], DEFAULTS);
    assert.deepEqual(resolved.target, { kind: "tcp", ...DEFAULTS, tls: false });
    assert.equal(resolved.explicit, false);
    assert.deepEqual(resolved.rest, ["PING", "HELLO"]);
    // With a target option, "ADD 5" are lines.
    assert.deepEqual(readTargetArgs({ port: 7 }, ["ADD", "5"], DEFAULTS).rest, ["ADD", "5"]);
  });
  await t.step("bad or doubled targets are usage errors", () => {
    assert.throws(() => readTargetArgs({ port: 1 }, ["tcp://h:2"], DEFAULTS), /names the target/);
    assert.throws(() => readTargetArgs({}, ["tcp://h"], DEFAULTS), /no port/);
    assert.throws(() => readTargetArgs({}, ["tcp://h:0"], DEFAULTS), /port number from 1/);
    assert.throws(() => readTargetArgs({}, ["unix://"], DEFAULTS), /no socket path/);
    assert.throws(() => readTargetArgs({ unix: "/s", port: 1 }, [], DEFAULTS), /either --unix/);
    assert.throws(() => readTargetArgs({ host: "h:1", port: 2 }, [], DEFAULTS), /disagree/);
  });
  await t.step("a server may listen on port 0", () => {
    assert.equal(parseAddress("tcp://127.0.0.1:0", true).kind, "tcp");
    const resolved = readTargetArgs({}, ["tcp://127.0.0.1:0"], DEFAULTS, true);
    assert.equal((resolved.target as { port: number }).port, 0);
  });
});

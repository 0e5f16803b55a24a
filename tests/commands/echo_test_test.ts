import assert from "node:assert/strict";
import { echoProtocol, serve } from "../../lib/mod.ts";
import { ECHO_CASE_NAMES } from "../../commands/_echo_test/conformance.ts";
import { runCli, startServer } from "../_support/cli.ts";
import { startBrokenEcho } from "../_servers/broken_echo.ts";

interface JsonCase {
  name: string;
  class: string;
  status: string;
  reason: string;
  durationMs: number;
}

interface JsonConformance {
  mode: "conformance";
  target: string;
  embedded: boolean;
  passed: boolean;
  counts: { pass: number; fail: number; warn: number };
  results: JsonCase[];
}

const failing = (output: JsonConformance) =>
  output.results.filter((result) => result.status === "fail").map((result) => result.name);

Deno.test("echo-test conformance (CLI)", async (t) => {
  await t.step("with no target it tests its own echo server: a table, exit 0", async () => {
    const result = await runCli("echo-test", []);
    assert.equal(result.code, 0, result.stderr);
    const rows = result.stdout.split("\n").filter((line) => /^(PASS|FAIL|WARN) /.test(line));
    assert.deepEqual(rows.map((row) => row.split(/\s+/)[1]), [...ECHO_CASE_NAMES]);
    assert.ok(rows.every((row) => row.startsWith("PASS ")));
    assert.match(result.stdout, /linesock's own echo server/);
    assert.match(result.stdout, /^PASSED: 14 passed, 0 failed, 0 warned/m);
  });

  await t.step("--json: one object with every case", async () => {
    const result = await runCli("echo-test", ["--json", "--buffer-size", "1KiB", "--clients", "3"]);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as JsonConformance;
    assert.equal(output.mode, "conformance");
    assert.equal(output.embedded, true);
    assert.equal(output.passed, true);
    assert.deepEqual(output.counts, { pass: 14, fail: 0, warn: 0 });
    assert.deepEqual(output.results.map((r) => r.name), [...ECHO_CASE_NAMES]);
  });

  await t.step("against `linesock serve --protocol echo`, --case and --skip select", async () => {
    await using server = await startServer(["--protocol", "echo", "--port", "0"]);
    const result = await runCli("echo-test", [
      "--port",
      String(server.port),
      "--json",
      "--case",
      "one-mebibyte,crlf-preserved",
      "--case",
      "reconnect",
      "--skip",
      "reconnect",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as JsonConformance;
    assert.equal(output.target, `tcp://127.0.0.1:${server.port}`);
    assert.equal(output.embedded, false);
    assert.deepEqual(output.results.map((r) => [r.name, r.status]), [
      ["one-mebibyte", "pass"],
      ["crlf-preserved", "pass"],
    ]);
  });

  await t.step("the whole suite passes against `linesock serve --protocol echo`", async () => {
    await using server = await startServer(["--protocol", "echo", "--port", "0"]);
    const result = await runCli("echo-test", ["--port", String(server.port), "--strict-bytes"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^PASSED: 14 passed/m);
  });

  await t.step("a broken server: exit 1, the failing case with its reason", async () => {
    await using broken = startBrokenEcho("drops-cr");
    const table = await runCli("echo-test", ["--port", String(broken.port)]);
    assert.equal(table.code, 1);
    assert.match(
      table.stdout,
      /^FAIL\s+crlf-preserved\s+\d+ ms\s+byte 5 \(line 1, column 6\) differs: expected 0x0d "\\r", got 0x0a "\\n"$/m,
    );
    assert.match(table.stdout, /^FAILED: 13 passed, 1 failed, 0 warned/m);
    const json = await runCli("echo-test", ["--port", String(broken.port), "--json"]);
    assert.equal(json.code, 1);
    const output = JSON.parse(json.stdout) as JsonConformance;
    assert.equal(output.passed, false);
    assert.deepEqual(failing(output), ["crlf-preserved"]);
  });

  await t.step("a Unix socket target", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/echo.sock`;
      await using server = await serve({ path }, echoProtocol());
      assert.equal(server.addr.transport, "unix");
      const result = await runCli("echo-test", ["--unix", path, "--json", "--case", "empty-line"]);
      assert.equal(result.code, 0, result.stderr);
      const output = JSON.parse(result.stdout) as JsonConformance;
      assert.equal(output.target, `unix://${path}`);
      assert.deepEqual(output.results.map((r) => r.status), ["pass"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("cannot connect: exit 3 with one line on stderr", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    for (const extra of [[], ["--load"]]) {
      const result = await runCli("echo-test", ["--port", String(port), ...extra]);
      assert.equal(result.code, 3);
      assert.equal(
        result.stderr.trim(),
        `linesock: Cannot connect to 127.0.0.1:${port}: connection refused`,
      );
    }
  });

  await t.step("usage errors: exit 2", async () => {
    for (
      const args of [
        ["--case", "nope"],
        ["--lines", "10", "--duration", "1s"],
        ["--load", "--case", "empty-line"],
        ["--size", "10..5"],
        ["--buffer-size", "10"],
        ["--unix", "/tmp/x.sock", "--port", "7"],
        ["--timeout", "0"],
      ]
    ) {
      const result = await runCli("echo-test", args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.notEqual(result.stderr, "");
      assert.equal(result.stdout, "");
    }
  });
});

Deno.test("echo-test load mode (CLI)", async (t) => {
  await t.step("a bounded run against its own echo server, --json", async () => {
    const result = await runCli("echo-test", [
      "--json",
      "-c",
      "2",
      "-n",
      "3000",
      "-s",
      "16..1024",
      "-P",
      "16",
    ]);
    assert.equal(result.code, 0, result.stderr);
    // Not a terminal: no progress line.
    assert.equal(result.stderr, "");
    const output = JSON.parse(result.stdout);
    assert.equal(output.mode, "load");
    assert.equal(output.embedded, true);
    assert.equal(output.passed, true);
    assert.equal(output.linesSent, 3000);
    assert.equal(output.linesReceived, 3000);
    assert.equal(output.bytesReceived, output.bytesSent);
    assert.deepEqual(output.size, { min: 16, max: 1024 });
    assert.equal(output.pipeline, 16);
    for (const key of ["p50", "p90", "p99", "p999", "max"]) {
      assert.equal(typeof output.latencyMs[key], "number");
    }
  });

  await t.step("the human report, paced, by duration", async () => {
    const result = await runCli("echo-test", ["--load", "-c", "1", "-d", "300ms", "-r", "2000"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /1 connections, pipeline 1, 64-byte lines, paced at 2000 lines\/s/);
    assert.match(result.stdout, /^lines +(\d+) sent, \1 echoed, 0 mismatched, 0 lost/m);
    assert.match(
      result.stdout,
      /^latency +p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, p99\.9 [\d.]+ ms, max/m,
    );
    assert.match(result.stdout, /^PASSED$/m);
  });

  await t.step("a corrupting server: exit 1 and the mismatches counted", async () => {
    await using broken = startBrokenEcho("corrupts-bytes");
    const result = await runCli("echo-test", [
      "--port",
      String(broken.port),
      "--json",
      "-c",
      "1",
      "-n",
      "2000",
      "-P",
      "50",
    ]);
    assert.equal(result.code, 1, result.stderr);
    const output = JSON.parse(result.stdout);
    assert.equal(output.passed, false);
    // 2000 × 64 bytes: stream bytes 1000 and 66536 are flipped.
    assert.equal(output.linesMismatched, 2);
    assert.equal(output.linesLost, 0);
    assert.match(output.errors[0], /^connection 1, line 16: byte 1000 of the stream differs/);
  });
});

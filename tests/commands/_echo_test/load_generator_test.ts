import assert from "node:assert/strict";
import { ConnectError, echoProtocol, serve } from "../../../lib/mod.ts";
import { type EchoLoadProgress, runEchoLoad } from "../../../commands/_echo_test/load_generator.ts";
import { startEmbeddedEcho } from "../../../commands/_echo_test/echo_target.ts";
import { buildLoadTape } from "../../../commands/_echo_test/_load_tape.ts";
import { startBrokenEcho } from "../../_servers/broken_echo.ts";

Deno.test("echo load against linesock's echo server", async (t) => {
  await using echo = await startEmbeddedEcho();

  await t.step("lines are spread over the connections and all verified", async () => {
    const report = await runEchoLoad({
      target: echo.target,
      connections: 3,
      lines: 1001,
      size: { min: 1, max: 3000 },
      pipeline: 7,
    });
    assert.equal(report.passed, true, report.errors.join("\n"));
    assert.equal(report.linesSent, 1001);
    assert.equal(report.linesReceived, 1001);
    assert.equal(report.linesMismatched, 0);
    assert.equal(report.linesLost, 0);
    assert.equal(report.bytesReceived, report.bytesSent);
    assert.ok(report.bytesSent >= 1001 && report.bytesSent <= 1001 * 3000);
    assert.deepEqual(report.errors, []);
    assert.ok(
      report.latencyMs.p50 <= report.latencyMs.p99 && report.latencyMs.p99 <= report.latencyMs.max,
    );
  });

  await t.step("request/response (pipeline 1), paced, with one size", async () => {
    const report = await runEchoLoad({
      target: echo.target,
      connections: 2,
      lines: 100,
      size: 100,
      pipeline: 1,
      rate: 5000,
    });
    assert.equal(report.passed, true, report.errors.join("\n"));
    assert.equal(report.linesReceived, 100);
    assert.equal(report.bytesSent, 100 * 100);
    assert.equal(report.rate, 5000);
  });

  await t.step("a duration run stops sending and awaits what is in flight", async () => {
    const progress: EchoLoadProgress[] = [];
    const report = await runEchoLoad({
      target: echo.target,
      connections: 2,
      durationMs: 300,
      pipeline: 64,
      size: { min: 16, max: 1024 },
      progressIntervalMs: 20,
      onProgress: (snapshot) => progress.push(snapshot),
    });
    assert.equal(report.passed, true, report.errors.join("\n"));
    assert.ok(report.linesSent > 0);
    assert.equal(report.linesReceived, report.linesSent);
    assert.ok(progress.length > 0);
    for (const snapshot of progress) {
      assert.ok(snapshot.linesReceived <= snapshot.linesSent);
      assert.ok(snapshot.fraction >= 0 && snapshot.fraction <= 1);
      assert.equal(snapshot.errors, 0);
    }
  });

  await t.step("an aborted run stops early and still passes", async () => {
    const controller = new AbortController();
    const report = await runEchoLoad({
      target: echo.target,
      connections: 2,
      lines: 1_000_000_000,
      pipeline: 16,
      progressIntervalMs: 10,
      onProgress: () => controller.abort(),
      signal: controller.signal,
    });
    assert.equal(report.passed, true, report.errors.join("\n"));
    assert.ok(report.linesSent < 1_000_000_000);
    assert.equal(report.linesReceived, report.linesSent);
  });

  await t.step("over a Unix socket", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await using server = await serve({ path: `${dir}/e.sock` }, echoProtocol());
      assert.equal(server.addr.transport, "unix");
      const report = await runEchoLoad({
        target: { path: `${dir}/e.sock` },
        connections: 2,
        lines: 500,
        pipeline: 50,
      });
      assert.equal(report.passed, true, report.errors.join("\n"));
      assert.equal(report.linesReceived, 500);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("echo load detects broken servers", async (t) => {
  await t.step("a server that corrupts bytes: every corrupted line is counted", async () => {
    await using server = startBrokenEcho("corrupts-bytes");
    // 5000 lines of 64 bytes = 320000 bytes; bytes 1000, 66536, 132072, 197608 and 263144 are flipped.
    const report = await runEchoLoad({
      target: { port: server.port },
      connections: 1,
      lines: 5000,
      size: 64,
      pipeline: 100,
    });
    assert.equal(report.passed, false);
    assert.equal(report.linesMismatched, 5);
    assert.equal(report.linesReceived, 5000);
    assert.equal(report.linesLost, 0);
    assert.equal(report.errorCount, 5);
    assert.match(
      report.errors[0]!,
      /^connection 1, line 16: byte 1000 of the stream differs \(expected 0x[0-9a-f]{2}, got 0x[0-9a-f]{2}\)$/,
    );
  });

  await t.step("a server that merges lines: mismatches, then lost lines", async () => {
    await using server = startBrokenEcho("merges-two-lines");
    const report = await runEchoLoad({
      target: { port: server.port },
      connections: 1,
      lines: 200,
      size: 32,
      pipeline: 200,
      timeoutMs: 300,
    });
    assert.equal(report.passed, false);
    assert.ok(report.linesMismatched >= 1);
    assert.ok(report.linesLost >= 1);
    assert.ok(
      report.errors.some((error) => /no echo for 300 ms with \d+ lines outstanding/.test(error)),
    );
  });

  await t.step("a server that does not answer in time: every line is lost", async () => {
    await using server = startBrokenEcho("delays-replies", { delayMs: 60_000 });
    const report = await runEchoLoad({
      target: { port: server.port },
      connections: 2,
      lines: 20,
      pipeline: 10,
      timeoutMs: 200,
    });
    assert.equal(report.passed, false);
    assert.equal(report.linesSent, 20);
    assert.equal(report.linesReceived, 0);
    assert.equal(report.linesLost, 20);
    assert.equal(report.errorCount, 2);
    assert.equal(report.latencyMs.max, 0);
  });

  await t.step("an unreachable server is a ConnectError", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    await assert.rejects(runEchoLoad({ target: { port }, lines: 1 }), ConnectError);
  });

  await t.step("impossible options are RangeErrors", async () => {
    await assert.rejects(runEchoLoad({ target: { port: 1 }, connections: 0 }), RangeError);
    await assert.rejects(runEchoLoad({ target: { port: 1 }, size: 0 }), RangeError);
    await assert.rejects(
      runEchoLoad({ target: { port: 1 }, size: { min: 10, max: 5 } }),
      RangeError,
    );
    await assert.rejects(runEchoLoad({ target: { port: 1 }, pipeline: 1.5 }), RangeError);
  });
});

Deno.test("load tape", async (t) => {
  await t.step("lines have sizes in range, end in \\n, and the overhang repeats the start", () => {
    const tape = buildLoadTape({ min: 3, max: 40 }, 5, 1000);
    assert.equal(tape.bytes.length, tape.period + 1000);
    let newlines = 0;
    for (let i = 0; i < tape.period; i++) if (tape.bytes[i] === 0x0a) newlines++;
    assert.equal(newlines, tape.lineLengths.length);
    for (let i = 0; i < tape.lineLengths.length; i++) {
      const length = tape.lineLengths[i]!;
      assert.ok(length >= 3 && length <= 40);
      assert.equal(tape.bytes[tape.lineOffsets[i]! + length - 1], 0x0a);
    }
    assert.deepEqual(tape.bytes.subarray(tape.period), tape.bytes.subarray(0, 1000));
  });

  await t.step("connections start on distinct lines", () => {
    const tape = buildLoadTape({ min: 64, max: 64 }, 100, 10);
    const phases = new Set(Array.from({ length: 100 }, (_, c) => tape.phase(c)));
    assert.equal(phases.size, 100);
  });

  await t.step("a tape shorter than its overhang is repeated", () => {
    const tape = buildLoadTape({ min: 1, max: 1 }, 1, 100_000);
    assert.ok(tape.period < 100_000);
    assert.ok(tape.bytes.every((byte) => byte === 0x0a));
  });
});

import assert from "node:assert/strict";
import { ConnectError, decodeLine, echoProtocol, serve } from "../../../lib/mod.ts";
import {
  describeEchoCases,
  ECHO_CASE_NAMES,
  type EchoCaseResult,
  runEchoConformance,
} from "../../../commands/_echo_test/conformance.ts";
import { startEmbeddedEcho } from "../../../commands/_echo_test/echo_target.ts";
import { utf8AcrossBoundaries } from "../../../commands/_echo_test/_payloads.ts";
import { type BrokenEchoKind, startBrokenEcho } from "../../_servers/broken_echo.ts";
import { ensureSocat, startSocatEcho } from "../../../bench/baselines/socat.ts";

const failing = (results: EchoCaseResult[]) =>
  results.filter((result) => result.status === "fail").map((result) => result.name).sort();

Deno.test("echo conformance against linesock's echo server", async (t) => {
  await t.step("every case passes in-process over TCP", async () => {
    await using echo = await startEmbeddedEcho();
    const seen: string[] = [];
    const report = await runEchoConformance({
      target: echo.target,
      onResult: (result) => seen.push(result.name),
    });
    assert.deepEqual(report.results.map((result) => result.name), [...ECHO_CASE_NAMES]);
    assert.deepEqual(seen, [...ECHO_CASE_NAMES]);
    for (const result of report.results) {
      assert.equal(result.status, "pass", `${result.name}: ${result.reason}`);
      assert.equal(result.reason, "");
    }
    assert.equal(report.passed, true);
  });

  await t.step(
    "every case passes over a Unix socket, with strict bytes and a small buffer",
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const path = `${dir}/echo.sock`;
        await using server = await serve({ path }, echoProtocol());
        assert.equal(server.addr.transport, "unix");
        const report = await runEchoConformance({
          target: { path },
          bufferSize: 1024,
          strictBytes: true,
          clients: 3,
        });
        assert.deepEqual(failing(report.results), []);
        assert.ok(report.results.every((result) => result.status === "pass"));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});

Deno.test("echo conformance against deliberately broken servers", async (t) => {
  const expected: [BrokenEchoKind, string[]][] = [
    ["drops-cr", ["crlf-preserved"]],
    ["loses-unterminated-final-line", ["unterminated-final-line"]],
    ["truncates-long-lines", ["buffer-multiple", "buffers-plus-remainder", "one-mebibyte"]],
    ["merges-two-lines", [
      "concurrent-clients",
      "crlf-preserved",
      "many-lines-one-write",
      "utf8-across-boundaries",
    ]],
    // 100 ms per line against a 2 s budget: the cases with up to 8 lines pass, the two with 40 and
    // 1000 lines per connection time out, whatever the machine's load.
    ["delays-replies", ["concurrent-clients", "many-lines-one-write"]],
  ];
  for (const [kind, failures] of expected) {
    await t.step(`${kind}: exactly ${failures.join(", ")} fail`, async () => {
      await using server = startBrokenEcho(kind, { delayMs: 100 });
      const report = await runEchoConformance({
        target: { port: server.port },
        timeoutMs: kind === "delays-replies" ? 2000 : 5000,
      });
      assert.deepEqual(
        failing(report.results),
        failures,
        JSON.stringify(report.results.filter((result) => result.status !== "pass"), null, 1),
      );
      assert.equal(report.passed, false);
      for (const result of report.results) {
        if (result.status === "fail") assert.notEqual(result.reason, "");
      }
    });
  }

  await t.step("the reasons say where and why", async () => {
    const reasonOf = async (kind: BrokenEchoKind, name: string, timeoutMs = 5000) => {
      await using server = startBrokenEcho(kind, { delayMs: 100 });
      const report = await runEchoConformance({
        target: { port: server.port },
        cases: [name],
        timeoutMs,
      });
      return report.results[0]!.reason;
    };
    assert.equal(
      await reasonOf("drops-cr", "crlf-preserved"),
      'byte 5 (line 1, column 6) differs: expected 0x0d "\\r", got 0x0a "\\n"',
    );
    assert.match(
      await reasonOf("loses-unterminated-final-line", "unterminated-final-line"),
      /^connection closed after 14 of 40 bytes$/,
    );
    assert.match(
      await reasonOf("truncates-long-lines", "buffer-multiple"),
      /^byte 4096 \(line 1, column 4097\) differs: expected 0x[0-9a-f]{2}( ".")?, got 0x0a "\\n"$/,
    );
    assert.match(
      await reasonOf("merges-two-lines", "many-lines-one-write"),
      /^byte \d+ \(line 1, column \d+\) differs: expected 0x0a "\\n", got 0x6c "l"$/,
    );
    assert.match(
      await reasonOf("delays-replies", "many-lines-one-write", 500),
      /^timeout after 500 ms: received \d of 1000 lines \(\d+ of \d+ bytes\)$/,
    );
  });
});

Deno.test("echo conformance: selection, classes and errors", async (t) => {
  await using echo = await startEmbeddedEcho();

  await t.step("--case and --skip select cases, in suite order", async () => {
    const report = await runEchoConformance({
      target: echo.target,
      cases: ["reconnect", "empty-line", "crlf-preserved"],
      skip: ["crlf-preserved"],
    });
    assert.deepEqual(report.results.map((result) => result.name), ["empty-line", "reconnect"]);
  });

  await t.step("an unknown case name is a RangeError naming the known ones", async () => {
    await assert.rejects(
      runEchoConformance({ target: echo.target, cases: ["nope"] }),
      (error: Error) =>
        error instanceof RangeError && /Unknown case "nope".*empty-line/.test(error.message),
    );
  });

  await t.step("an unreachable target is a ConnectError, before any case", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    await assert.rejects(runEchoConformance({ target: { port } }), ConnectError);
  });

  await t.step(
    "a text-only server warns on invalid UTF-8, and fails with strictBytes",
    async () => {
      // Echoes valid lines byte for byte; answers an undecodable line with an error line.
      await using textOnly = await serve({ port: 0 }, {
        stripCR: false,
        onLine(line) {
          try {
            decodeLine(line);
            return line.slice();
          } catch {
            return "ERR invalid encoding";
          }
        },
      });
      const target = { port: (textOnly.addr as Deno.NetAddr).port };
      const lenient = await runEchoConformance({
        target,
        cases: ["invalid-utf8", "crlf-preserved"],
      });
      assert.deepEqual(lenient.results.map((result) => result.status), ["pass", "warn"]);
      assert.match(
        lenient.results[1]!.reason,
        /^byte 0 \(line 1, column 1\) differs: expected 0x6c "l", got 0x45 "E"$/,
      );
      assert.equal(lenient.passed, true);
      const strict = await runEchoConformance({
        target,
        cases: ["invalid-utf8"],
        strictBytes: true,
      });
      assert.equal(strict.results[0]!.status, "fail");
      assert.equal(strict.passed, false);
    },
  );

  await t.step("every case is described, and invalid-utf8 alone is in the bytes class", () => {
    const cases = describeEchoCases();
    assert.deepEqual(cases.map((c) => c.name), [...ECHO_CASE_NAMES]);
    assert.deepEqual(cases.filter((c) => c.class === "bytes").map((c) => c.name), ["invalid-utf8"]);
    assert.ok(cases.every((c) => c.description.length > 10));
  });
});

Deno.test("utf8-across-boundaries places each character across a buffer boundary", async (t) => {
  for (const bufferSize of [64, 100, 1000, 4096]) {
    await t.step(`buffer size ${bufferSize}`, () => {
      const stream = utf8AcrossBoundaries(bufferSize);
      const text = new TextDecoder("utf-8", { fatal: true }).decode(stream);
      for (const [index, character] of ["\u00e9", "\u20ac", "\u{1F600}"].entries()) {
        const boundary = (index + 1) * bufferSize;
        const width = new TextEncoder().encode(character).length;
        // The character's first byte is the last one before the boundary.
        assert.deepEqual(
          stream.subarray(boundary - 1, boundary - 1 + width),
          new TextEncoder().encode(character),
        );
      }
      const longest = Math.max(
        ...text.split("\n").map((line) => new TextEncoder().encode(line).length),
      );
      assert.ok(longest <= Math.floor(bufferSize / 2) + 30, `longest line ${longest}`);
    });
  }
});

Deno.test({
  name: "echo conformance against socat (fork EXEC:cat)",
  ignore: (await ensureSocat()) !== undefined,
  async fn(t) {
    await t.step("the whole suite passes", async () => {
      const socat = await startSocatEcho();
      try {
        const report = await runEchoConformance({
          target: { port: socat.port },
          strictBytes: true,
        });
        assert.deepEqual(
          failing(report.results),
          [],
          JSON.stringify(report.results.filter((result) => result.status !== "pass")),
        );
        assert.equal(report.results.length, ECHO_CASE_NAMES.length);
      } finally {
        await socat.close();
      }
    });
  },
});

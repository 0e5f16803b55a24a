/**
 * `linesock bench` through the real CLI, against real servers on loopback: `linesock serve` in its
 * text and JSON protocols, and small servers of this process that answer wrongly or stop answering.
 * The report is opened in real headless Chromium (tests/commands/_bench/chromium.ts).
 *
 * Nothing here asserts how fast the machine is: the fixed rate is checked by counts (requests sent
 * for the rate and the duration) and by the schedule being kept no faster than asked.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type CliResult, runCli, startServer, taskArgs } from "../_support/cli.ts";
import { unusedPort } from "../_support/ports.ts";
import { within } from "../_support/timeouts.ts";
import { ignoredName } from "../_support/tools.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";
import { cliCommand, ptyEnv, startPty, TMUX_MISSING } from "../_support/pty.ts";
import { CHROMIUM_MISSING, visit } from "./_bench/chromium.ts";
import { startLineServer } from "./_bench/line_server.ts";
import type { BenchResult } from "../../commands/_bench/result.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A `bench --json` result. */
type Result = BenchResult;

function bench(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return runCli("linesock", ["bench", ...args], { timeoutMs });
}

function shown(result: CliResult): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

function json(result: CliResult): Result {
  try {
    return JSON.parse(result.stdout) as Result;
  } catch {
    throw new Error(`not one JSON object:\n${shown(result)}`);
  }
}

/** The `--json` summary `serve` prints when it stops. */
async function summaryOf(server: Awaited<ReturnType<typeof startServer>>) {
  const stopped = await server.stop("SIGTERM");
  assert.equal(stopped.code, 0, stopped.stderr);
  return JSON.parse(server.stdoutLines.at(-1) ?? "").summary as {
    linesIn: number;
    connections: number;
  };
}

Deno.test("bench: PING and PONG against linesock's text protocol", async (t) => {
  await t.step("every PONG verified, and the server received every PING", async () => {
    await using server = await startServer(["--port", "0", "--json", "-q"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "-c",
      "3",
      "-P",
      "8",
      "-n",
      "3000",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    assert.equal(result.stderr, "", "no progress line when stderr is not a terminal");
    const output = json(result);
    assert.equal(output.tool, "linesock bench");
    assert.equal(output.target, server.url);
    assert.equal(output.mode, "closed");
    assert.equal(output.verify, "tape", "fixed replies are verified a chunk at a time");
    assert.equal(output.sent, 3000);
    assert.equal(output.answered, 3000);
    assert.equal(output.bytesSent, 3000 * 5);
    assert.equal(output.bytesReceived, 3000 * 5);
    assert.equal(output.errors.total, 0);
    assert.equal(output.passed, true);
    assert.equal(output.latencyMs.count, 3000, "every request was timed");
    assert.ok(output.latencyMs.p50 <= output.latencyMs.p99);
    assert.ok(output.latencyMs.p99 <= output.latencyMs.max);
    const summary = await summaryOf(server);
    assert.equal(summary.linesIn, 3000);
    assert.equal(summary.connections, 3);
  });

  await t.step("the table: throughput, bytes each way, percentiles, errors", async () => {
    await using server = await startServer(["--port", "0"]);
    const result = await bench([server.url, "-m", "PING", "--expect", "PONG", "-n", "500"]);
    assert.equal(result.code, 0, shown(result));
    const table = result.stdout;
    assert.match(table, new RegExp(`^linesock bench ${server.url}: "PING" → "PONG"$`, "m"));
    assert.match(table, /^closed loop, 4 connections × pipeline 1, 500 requests$/m);
    assert.match(table, /^requests sent +500 +[\d,]+$/m);
    assert.match(table, /^answered +500 +[\d,]+$/m);
    assert.match(table, /^bytes sent +2,500 +[\d.]+ [kM]?B\/s$/m);
    assert.match(table, /^bytes received +2,500 +[\d.]+ [kM]?B\/s$/m);
    assert.match(table, /^latency \(ms\) +min +p50 +p90 +p99 +p99\.9 +max +mean$/m);
    assert.match(table, /^errors +none$/m);
    assert.match(table, /^PASSED$/m);
  });

  await t.step("-q: nothing when every reply is right, the errors when not", async () => {
    await using server = await startServer(["--port", "0"]);
    const quiet = await bench([server.url, "-m", "PING", "--expect", "PONG", "-n", "50", "-q"]);
    assert.equal(quiet.code, 0, shown(quiet));
    assert.equal(quiet.stdout + quiet.stderr, "");
    const failing = await bench([server.url, "-m", "PING", "--expect", "PANG", "-n", "50", "-q"]);
    assert.equal(failing.code, 1, shown(failing));
    assert.equal(failing.stdout, "");
    const lines = failing.stderr.trimEnd().split("\n");
    assert.equal(lines[0], "linesock: FAILED: 50 wrong replies");
    assert.match(lines[1]!, /^linesock: {3}connection \d, request 1 \("PING"\): expected "PANG"/);
    assert.equal(lines.length, 6, "the first five are described");
  });

  await t.step("-v adds the run second by second, -vv the latency distribution", async () => {
    await using server = await startServer(["--port", "0"]);
    const args = [server.url, "-m", "PING", "--expect", "PONG", "-r", "200", "-d", "2s"];
    const plain = await bench(args);
    const verbose = await bench([...args, "-v"]);
    const more = await bench([...args, "-vv"]);
    for (const result of [plain, verbose, more]) assert.equal(result.code, 0, shown(result));
    assert.doesNotMatch(plain.stdout, /^per second$/m);
    assert.match(verbose.stdout, /^per second\nsecond +sent +answered\/s +p50 ms/m);
    assert.match(verbose.stdout, /^0\.0-1\.\d +\d{3} +\d+ /m);
    assert.doesNotMatch(verbose.stdout, /^latency distribution$/m);
    assert.match(more.stdout, /^latency distribution\nms +percentile +requests$/m);
    assert.match(more.stdout, /^[\d.]+ +100\.0000% +400$/m);
  });

  await t.step("a text protocol error reply fails the check: ERR is not PONG", async () => {
    await using server = await startServer(["--port", "0"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "-m",
      "NOPE",
      "--expect",
      "PONG",
      "-n",
      "40",
      "-c",
      "1",
      "-P",
      "4",
      "--json",
    ]);
    assert.equal(result.code, 1, shown(result));
    const output = json(result);
    assert.equal(output.answered, 40);
    assert.equal(output.errors.mismatched, 20, "every NOPE's reply, and no PING's");
    assert.equal(
      output.errorMessages[0],
      'connection 1, request 2 ("NOPE"): expected "PONG", got "ERR unknown command: NOPE"',
    );
  });
});

Deno.test("bench: JSON ping matched by id", async (t) => {
  const request = '{"command":"ping","id":${seq}}';
  const reply = '{"status":0,"message":"pong","id":${seq}}';

  await t.step("against linesock's JSON protocol, pipelined: every id comes back", async () => {
    await using server = await startServer(["--port", "0", "--protocol", "json"]);
    const result = await bench([
      server.url,
      "-m",
      request,
      "--expect-json",
      reply,
      "-c",
      "2",
      "-P",
      "16",
      "-n",
      "2000",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const output = json(result);
    assert.equal(output.verify, "lines");
    assert.equal(output.answered, 2000);
    assert.equal(output.passed, true);
  });

  await t.step(
    "a server that answers some requests with another id: each one counted",
    async () => {
      // Every 25th line is answered with the id of the next request.
      await using server = startLineServer((line, index) => {
        const { id } = JSON.parse(line) as { id: number };
        return [
          JSON.stringify({ status: 0, message: "pong", id: index % 25 === 24 ? id + 1 : id }),
        ];
      });
      const result = await bench([
        server.url,
        "-m",
        request,
        "--expect-json",
        reply,
        "-c",
        "1",
        "-P",
        "8",
        "-n",
        "500",
        "--json",
      ]);
      assert.equal(result.code, 1, shown(result));
      const output = json(result);
      assert.equal(output.answered, 500);
      assert.equal(output.errors.mismatched, 20);
      assert.equal(
        output.errorMessages[0],
        'connection 1, request 25 ("{\\"command\\":\\"ping\\",\\"id\\":25}"): expected JSON ' +
          'containing {"status":0,"message":"pong","id":25}, got ' +
          '"{\\"status\\":0,\\"message\\":\\"pong\\",\\"id\\":26}"',
      );
    },
  );
});

Deno.test("bench: a mismatching server is counted, with the first few wrong replies shown", async (t) => {
  // PONG, except every tenth reply.
  const answer = (_: string, index: number) => [index % 10 === 9 ? "PANG" : "PONG"];

  for (
    const [name, expect] of [["exact", ["--expect", "PONG"]], ["regex", ["--expect-re", "^PONG$"]]]
  ) {
    await t.step(`${name} expectations: 100 of 1000 wrong, exit 1`, async () => {
      await using server = startLineServer(answer);
      const result = await bench([
        server.url,
        "-m",
        "PING",
        ...expect!,
        "-c",
        "1",
        "-P",
        "10",
        "-n",
        "1000",
        "--json",
      ]);
      assert.equal(result.code, 1, shown(result));
      const output = json(result);
      assert.equal(output.answered, 1000);
      assert.equal(output.errors.mismatched, 100);
      assert.equal(output.errors.total, 100);
      assert.equal(output.passed, false);
      assert.equal(output.errorMessages.length, 10, "the first ten are described");
      assert.match(output.errorMessages[0]!, /^connection 1, request 10 \("PING"\): expected /);
      assert.match(output.errorMessages[0]!, /, got "PANG"$/);
    });
  }

  await t.step("the table says how many and shows five", async () => {
    await using server = startLineServer(answer);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "-c",
      "1",
      "-n",
      "200",
    ]);
    assert.equal(result.code, 1, shown(result));
    assert.match(result.stdout, /^errors +20 wrong replies$/m);
    const shownErrors = result.stdout.split("\n").filter((line) => line.startsWith("  connection"));
    assert.equal(shownErrors.length, 5);
    assert.match(result.stdout, /^ {2}… and 15 more$/m);
    assert.match(result.stdout, /^FAILED$/m);
  });

  await t.step(
    "a reply of another length is one wrong reply; the rest are still checked",
    async () => {
      await using server = startLineServer((_, index) => [index === 3 ? "PONG AND MORE" : "PONG"]);
      const result = await bench([
        server.url,
        "-m",
        "PING",
        "--expect",
        "PONG",
        "-c",
        "1",
        "-P",
        "50",
        "-n",
        "100",
        "--json",
      ]);
      const output = json(result);
      assert.equal(output.errors.mismatched, 1, shown(result));
      assert.equal(output.answered, 100);
    },
  );
});

Deno.test("bench: a fixed rate is held within 1% over 5 s", async () => {
  await using server = await startServer(["--port", "0", "--json", "-q"]);
  const rate = 400;
  const result = await bench([
    server.url,
    "-m",
    "PING",
    "--expect",
    "PONG",
    "-r",
    String(rate),
    "-d",
    "5s",
    "-c",
    "2",
    "-P",
    "8",
    "--json",
  ]);
  assert.equal(result.code, 0, shown(result));
  const output = json(result);
  assert.equal(output.mode, "open");
  const expected = rate * 5;
  assert.ok(
    Math.abs(output.sent - expected) <= expected / 100,
    `sent ${output.sent} for ${expected} (${rate}/s over 5 s)`,
  );
  assert.equal(output.answered, output.sent);
  // Not faster than the schedule: the last request was due at 5 s.
  // (Requests leave up to 1 ms before they are due.)
  assert.ok(output.elapsedMs >= 5000 - 1000 / rate - 2, `the run took ${output.elapsedMs} ms`);
  const perInterval = output.intervals.reduce((sum, interval) => sum + interval.sent, 0);
  assert.equal(perInterval, output.sent, "the per-second intervals add up");
  assert.ok(output.intervals.length >= 5, `${output.intervals.length} intervals`);
  const summary = await summaryOf(server);
  assert.equal(summary.linesIn, output.sent);
});

Deno.test("bench --hgrm: HdrHistogram's percentile distribution", async () => {
  await using server = await startServer(["--port", "0"]);
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/latency.hgrm`;
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "-n",
      "2000",
      "--hgrm",
      file,
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const text = await Deno.readTextFile(file);
    const lines = text.split("\n");
    assert.equal(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
    assert.equal(lines[1], "");
    const rows = lines.slice(2).filter((line) => line !== "" && !line.startsWith("#"));
    assert.ok(rows.length > 10, `${rows.length} rows`);
    let previous = { value: 0, percentile: 0, count: 0 };
    for (const [index, row] of rows.entries()) {
      const last = index === rows.length - 1;
      const match = last
        ? /^ {0,11}(\d+\.\d{3}) (\d\.\d{12}) +(\d+)$/.exec(row)
        : /^ {0,11}(\d+\.\d{3}) (\d\.\d{12}) +(\d+) +(\d+\.\d{2})$/.exec(row);
      assert.ok(match, `row ${index}: ${JSON.stringify(row)}`);
      assert.equal(row.indexOf("."), 8, `values right-aligned in 12 columns: ${row}`);
      const current = {
        value: Number(match[1]),
        percentile: Number(match[2]),
        count: Number(match[3]),
      };
      assert.ok(current.value >= previous.value && current.percentile >= previous.percentile);
      assert.ok(current.count >= previous.count);
      if (!last) {
        const inverse = 1 / (1 - current.percentile);
        assert.ok(Math.abs(Number(match[4]) - inverse) <= 0.006 + inverse * 1e-6, row);
      }
      previous = current;
    }
    assert.equal(previous.percentile, 1);
    assert.equal(previous.count, 2000);
    const output = json(result);
    // The last row is the top of the largest latency's bucket (3 significant digits).
    assert.ok(
      Math.abs(previous.value - output.latencyMs.max) <= output.latencyMs.max / 500 + 0.001,
      `values are in milliseconds: ${previous.value} and max ${output.latencyMs.max}`,
    );
    assert.match(text, /^#\[Mean {4}= +\d+\.\d{3}, StdDeviation {3}= +\d+\.\d{3}\]$/m);
    assert.match(text, /^#\[Max {5}= +\d+\.\d{3}, Total count {4}= +2000\]$/m);
    assert.match(text, /^#\[Buckets = +\d+, SubBuckets {5}= +\d+\]$/m);
    assert.deepEqual(
      output.distribution.at(-1),
      [previous.value, 1, 2000],
      "--json carries the same distribution",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: ignoredName("bench --report: the page renders in headless Chromium", CHROMIUM_MISSING),
  ignore: CHROMIUM_MISSING !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir();
    try {
      await using server = await startServer(["--port", "0"]);
      const runs: string[] = [];
      for (
        const [label, load] of [["closed -P 16", ["-P", "16"]], ["200/s", ["-r", "200", "-P", "4"]]]
      ) {
        const result = await bench([
          server.url,
          "-m",
          "PING",
          "--expect",
          "PONG",
          "-c",
          "2",
          "-d",
          "2s",
          "--label",
          label as string,
          ...load as string[],
          "--json",
        ]);
        assert.equal(result.code, 0, shown(result));
        runs.push(`${dir}/${runs.length}.json`);
        await Deno.writeTextFile(runs.at(-1)!, result.stdout);
      }
      const page = `${dir}/report.html`;
      const compare = await bench(["--compare", ...runs, "--report", page]);
      assert.equal(compare.code, 0, shown(compare));
      assert.match(
        compare.stdout,
        /^run +requests\/s +p50 ms +p90 ms +p99 ms +p99\.9 ms +max ms +errors$/m,
      );
      assert.match(compare.stdout, /^closed -P 16 +[\d,]+ /m);
      assert.match(compare.stdout, /^200\/s +[\d,]+ /m);
      const html = await Deno.readTextFile(page);
      assert.doesNotMatch(html, /\b(src|href)=/, "nothing is fetched");

      await t.step("no console errors, every series drawn, the summary filled in", async () => {
        const seen = await visit(`file://${page}`, {
          evaluate: `({
            rendered: document.body.dataset.rendered,
            series: Object.fromEntries([...document.querySelectorAll("[data-series]")]
              .map((path) => [path.dataset.series, Number(path.dataset.points)])),
            rows: [...document.querySelectorAll("#summary tr")].map((row) => row.cells[0].textContent),
            log: document.getElementById("log-y").checked,
          })`,
        });
        assert.deepEqual(seen.problems, []);
        const value = seen.value as {
          rendered: string;
          series: Record<string, number>;
          rows: string[];
          log: boolean;
        };
        assert.equal(value.rendered, "true");
        assert.deepEqual(value.rows, ["run", "closed -P 16", "200/s"]);
        for (const run of [0, 1]) {
          for (const kind of ["throughput", "latency-p50", "latency-p99", "latency-max"]) {
            assert.ok(
              value.series[`${kind}:${run}`]! >= 1,
              `${kind}:${run}: ${JSON.stringify(value.series)}`,
            );
          }
          assert.ok(value.series[`percentiles:${run}`]! >= 10, `percentiles:${run}`);
        }
        assert.equal(value.log, true);
        assert.deepEqual([...seen.screenshot.subarray(0, 8)], [
          0x89,
          0x50,
          0x4e,
          0x47,
          0x0d,
          0x0a,
          0x1a,
          0x0a,
        ]);
        // UPDATE_SCREENSHOTS=1 refreshes the picture in docs/bench.md.
        if (Deno.env.get("UPDATE_SCREENSHOTS") === "1") {
          await Deno.writeFile(`${ROOT}docs/bench-report.png`, seen.screenshot);
        }
      });

      await t.step("the check can fail: a page whose script throws is reported", async () => {
        const broken = `${dir}/broken.html`;
        await Deno.writeTextFile(broken, html.replace('"use strict";', '"use strict"; null.boom;'));
        const seen = await visit(`file://${broken}`, {
          evaluate: "document.body.dataset.rendered",
        });
        assert.equal(seen.value, undefined);
        assert.ok(
          seen.problems.some((problem) => problem.kind === "exception"),
          JSON.stringify(seen.problems),
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bench: faults", async (t) => {
  await t.step("an unreachable target: exit 3, one line, no table", async () => {
    const port = unusedPort();
    const result = await bench([`tcp://127.0.0.1:${port}`, "-m", "PING", "--json"]);
    assert.equal(result.code, 3, shown(result));
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr.trim(),
      `linesock: Cannot connect to 127.0.0.1:${port}: connection refused`,
    );
    const churn = await bench([`tcp://127.0.0.1:${port}`, "-m", "PING", "--churn"]);
    assert.equal(churn.code, 3, shown(churn));
    assert.equal(churn.stdout, "");
  });

  await t.step(
    "a server that stalls: the run ends at its deadline, the stall reported",
    async () => {
      // Answers the first 50 lines, then nothing (the connections stay open).
      await using server = startLineServer((_, index) => index < 50 ? ["PONG"] : undefined);
      const started = performance.now();
      const result = await bench([
        server.url,
        "-m",
        "PING",
        "--expect",
        "PONG",
        "-c",
        "2",
        "-P",
        "4",
        "-d",
        "30s",
        "--timeout",
        "1s",
        "--json",
      ]);
      assert.equal(result.code, 4, shown(result));
      assert.ok(performance.now() - started < 25_000, "the run did not wait for its 30 s");
      const output = json(result);
      assert.equal(output.answered, 50);
      assert.equal(output.errors.stalled, 2);
      assert.equal(output.errors.timedOut, output.sent - 50);
      assert.equal(
        output.stall,
        `2 connections stalled: no reply within 1000 ms, ${output.sent - 50} requests unanswered`,
      );
      assert.match(
        output.errorMessages[0]!,
        /^connection \d: no reply for 1000 ms with \d requests? outstanding$/,
      );
    },
  );

  await t.step("after a duration, replies still missing at the deadline time out", async () => {
    // Answers every line but holds the 30th forever: by then sending has stopped.
    await using server = startLineServer((_, index) => index === 29 ? undefined : ["PONG"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "-c",
      "1",
      "-P",
      "20",
      "-r",
      "40",
      "-d",
      "1s",
      "--timeout",
      "1s",
      "--json",
    ]);
    assert.equal(result.code, 4, shown(result));
    const output = json(result);
    assert.equal(output.sent, 40);
    assert.ok(output.errors.timedOut >= 1, shown(result));
    assert.notEqual(output.stall, null);
  });

  await t.step(
    "Ctrl-C: partial results, the report and the histogram are still written",
    async () => {
      await using server = startLineServer(() => ["PONG"]);
      const dir = await Deno.makeTempDir();
      try {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            ...taskArgs("linesock"),
            "bench",
            server.url,
            "-m",
            "PING",
            "--expect",
            "PONG",
            "-c",
            "2",
            "-d",
            "5m",
            "--json",
            "--report",
            `${dir}/partial.html`,
            "--hgrm",
            `${dir}/partial.hgrm`,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
          cwd: ROOT,
        }).spawn();
        try {
          await within(server.receivedAtLeast(200), 30_000, "the load to run");
          child.kill("SIGINT");
          const output = await within(child.output(), 30_000, "bench to end after Ctrl-C");
          const stdout = new TextDecoder().decode(output.stdout);
          assert.equal(output.code, 130, new TextDecoder().decode(output.stderr));
          const result = JSON.parse(stdout) as Result;
          assert.equal(result.wasInterrupted, true);
          assert.ok(result.answered >= 1);
          assert.equal(result.errors.total, 0, "requests in flight at Ctrl-C are not errors");
          const html = await Deno.readTextFile(`${dir}/partial.html`);
          const data = JSON.parse(
            /<script type="application\/json" id="bench-data">(.*?)<\/script>/s.exec(html)![1]!,
          );
          assert.equal(data[0].wasInterrupted, true);
          assert.equal(data[0].answered, result.answered);
          assert.match(await Deno.readTextFile(`${dir}/partial.hgrm`), /Total count {4}= +\d+\]/);
        } finally {
          try {
            child.kill("SIGKILL");
          } catch {
            // Exited.
          }
          await child.status;
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});

Deno.test("bench: churn, conversations, warm-up", async (t) => {
  await t.step("--churn: a new connection for every request", async () => {
    await using server = await startServer(["--port", "0", "--json", "-q"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "--churn",
      "-c",
      "3",
      "-n",
      "60",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const output = json(result);
    assert.equal(output.mode, "churn");
    assert.equal(output.answered, 60);
    assert.equal(output.connectionsOpened, 60);
    const summary = await summaryOf(server);
    // One more: the connection that checks the target first.
    assert.equal(summary.connections, 61);
    assert.equal(summary.linesIn, 60);
  });

  await t.step("--churn -r: connections at a fixed rate", async () => {
    await using server = startLineServer(() => ["PONG"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "--expect",
      "PONG",
      "--churn",
      "-r",
      "100",
      "-n",
      "50",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const output = json(result);
    assert.equal(output.answered, 50);
    assert.ok(output.elapsedMs >= 490 - 1, `50 connections at 100/s took ${output.elapsedMs} ms`);
    assert.equal(server.connections, 51);
  });

  await t.step("a conversation file: greeting, and mixed expectations per request", async () => {
    await using server = await startServer(["--port", "0", "--greeting", "hello"]);
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/mixed.conv`;
      await Deno.writeTextFile(
        file,
        [
          "# the greeting, then three requests",
          "< hello",
          "> PING",
          "< PONG",
          "> ECHO n${seq} on ${conn}",
          "<re ^n\\d+ on \\d$",
          "> HELP",
          "<any",
          "",
        ].join("\n"),
      );
      const result = await bench([
        server.url,
        "--conversation",
        file,
        "-c",
        "2",
        "-P",
        "6",
        "-n",
        "300",
        "--json",
      ]);
      assert.equal(result.code, 0, shown(result));
      const output = json(result);
      assert.equal(output.answered, 300);
      assert.equal(output.passed, true);
      await Deno.writeTextFile(file, "> PING\n< PONG\n> ECHO x\n< y\n");
      const wrong = json(
        await bench([
          server.url,
          "--greeting-lines",
          "1",
          "--conversation",
          file,
          "-c",
          "1",
          "-n",
          "10",
          "--json",
        ]),
      );
      assert.equal(wrong.errors.mismatched, 5, JSON.stringify(wrong.errorMessages));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("--warmup: the warm-up is run but not counted", async () => {
    await using server = await startServer(["--port", "0", "--json", "-q"]);
    const result = await bench([
      server.url,
      "-m",
      "PING",
      "-w",
      "300ms",
      "-n",
      "400",
      "-c",
      "2",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const output = json(result);
    assert.equal(output.answered, 400);
    assert.equal(output.latencyMs.count, 400);
    const summary = await summaryOf(server);
    assert.ok(summary.linesIn > 400, `the server got ${summary.linesIn} lines, warm-up included`);
  });

  await t.step("--echo: echo-test's generated lines, every byte verified", async () => {
    await using server = await startServer(["--port", "0", "--protocol", "echo"]);
    const result = await bench([
      server.url,
      "--echo",
      "-s",
      "16..512",
      "-P",
      "32",
      "-n",
      "3000",
      "--json",
    ]);
    assert.equal(result.code, 0, shown(result));
    const output = json(result);
    assert.equal(output.answered, 3000);
    assert.equal(output.bytesReceived, output.bytesSent);
  });
});

Deno.test("bench: usage errors exit 2 with one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const conversation = `${dir}/bad.conv`;
    await Deno.writeTextFile(conversation, "> PING\n< PONG\nclosed\n");
    const cases: [string[], RegExp][] = [
      [[], /nothing to send: give -m LINE/],
      [["-m", "A", "-f", "x.txt"], /one of -m, --file or --conversation/],
      [["-m", "A", "-n", "5", "-d", "1s"], /--count or --duration, not both/],
      [["-m", "A", "--churn", "-P", "4"], /-P does not apply/],
      [["-m", "A", "-m", "B", "-m", "C", "--expect", "a", "--expect", "b"], /2 --expect for 3 -m/],
      [["-m", "A", "--expect", "a", "--expect-re", "b"], /one kind of expected reply/],
      [["-m", "A", "--expect-re", "("], /not a valid regular expression/],
      [["-m", "A", "--expect-json", "{x}"], /expected JSON/],
      [["-m", "A", "-r", "0"], /-r: expected a rate per second above 0/],
      [["-m", "A", "--report", `${dir}/no/such/folder/r.html`], /the folder .* does not exist/],
      [["--conversation", conversation], /bad\.conv:3: bench repeats requests/],
      [
        ["--compare", "-c", "2", "a.json"],
        /--compare reads saved results and runs no load: leave out --connections/,
      ],
      [["--compare"], /--compare needs result files/],
      [["--compare", conversation], /is not JSON/],
      [["-m", "A", "-s", "64"], /--size sets the generated lines of --echo/],
    ];
    for (const [args, message] of cases) {
      const result = await bench(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${shown(result)}`);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, message, args.join(" "));
      assert.match(result.stderr, /^linesock: /);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: ignoredName("bench: every target form (TLS, Unix socket)", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await t.step("tls://, trusting the server's CA", async () => {
      await using certs = await makeTestCertificates();
      await using server = await startServer([
        "--port",
        "0",
        "--tls-cert",
        certs.server.cert,
        "--tls-key",
        certs.server.key,
      ]);
      const url = `tls://127.0.0.1:${server.port}`;
      const result = await bench([
        url,
        "--ca",
        certs.caFile,
        "-m",
        "PING",
        "--expect",
        "PONG",
        "-P",
        "8",
        "-n",
        "400",
        "--json",
      ]);
      assert.equal(result.code, 0, shown(result));
      const output = json(result);
      assert.equal(output.target, url);
      assert.equal(output.tls, true);
      assert.equal(output.answered, 400);
      const untrusted = await bench([url, "-m", "PING"]);
      assert.equal(untrusted.code, 3, shown(untrusted));
      assert.match(
        untrusted.stderr,
        /^linesock: Cannot connect to 127\.0\.0\.1:\d+: certificate not trusted/,
      );
    });

    await t.step("unix://", async () => {
      const dir = await Deno.makeTempDir();
      try {
        await using _server = await startServer(["--unix", `${dir}/s.sock`]);
        const result = await bench([
          `unix://${dir}/s.sock`,
          "-m",
          "PING",
          "--expect",
          "PONG",
          "-n",
          "300",
          "--json",
        ]);
        assert.equal(result.code, 0, shown(result));
        assert.equal(json(result).target, `unix://${dir}/s.sock`);
        const churn = await bench([
          "-U",
          `${dir}/s.sock`,
          "-m",
          "PING",
          "--churn",
          "-n",
          "20",
          "--json",
        ]);
        assert.equal(json(churn).connectionsOpened, 20, shown(churn));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: ignoredName("bench: live progress on a terminal, then the table", TMUX_MISSING),
  ignore: TMUX_MISSING !== undefined,
  async fn() {
    await using server = startLineServer(() => ["PONG"]);
    const home = await Deno.makeTempDir();
    try {
      await using pty = await startPty(
        cliCommand("linesock", [
          "bench",
          server.url,
          "-m",
          "PING",
          "--expect",
          "PONG",
          "-r",
          "200",
          "-d",
          "3s",
        ]),
        { env: ptyEnv(home), columns: 120 },
      );
      await pty.waitFor(
        /\[[#-]{24}\] +\d+% {2}[\d.]+ s {2}[\d,]+ req\/s {2}p99 [\d.]+ ms {2}0 errors/,
        20_000,
      );
      assert.equal(await pty.waitForExit(30_000), 0);
      const screen = (await pty.screen({ history: true })).join("\n");
      assert.match(screen, /^PASSED$/m);
      assert.doesNotMatch(screen, /req\/s {2}p99/, "the progress line is erased before the table");
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("docs/cli.md's bench table: every flag it lists is one of bench's", async () => {
  const cliMd = await Deno.readTextFile(`${ROOT}docs/cli.md`);
  const section = cliMd.split("### `bench`: load flags")[1]?.split("\n### ")[0] ?? "";
  const rows = section.split("\n").filter((line) => line.startsWith("| `"));
  assert.ok(rows.length >= 8, `the table was not found:\n${section}`);
  const help = await runCli("linesock", ["bench", "--help"]);
  assert.equal(help.code, 0, shown(help));
  for (const row of rows) {
    const first = row.split("|")[1]!;
    for (const [, flag] of first.matchAll(/`(-{1,2}[a-z-]+|-[a-zA-Z])\b[^`]*`/g)) {
      assert.match(
        help.stdout,
        new RegExp(`(^|[ ,])${flag}[ ,=]`, "m"),
        `${flag} (${first.trim()})`,
      );
    }
  }
});

/**
 * Tests written for the mutants of the `session` mutation area (issue #20, docs/mutation.md,
 * "lib/server (session)") that the server's other tests let survive: each one checks a behaviour of
 * the session engine (lib/server/session*.ts, line_server.ts, connection_context.ts) that nothing
 * else pinned. Real servers on port 0 and real sockets; every wait is bounded.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Logs, withLogs } from "../../_support/logs.ts";
import { type LineProtocol, serve } from "../../../lib/server/mod.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { tracePreview } from "../../../lib/server/session_trace.ts";
import { LineSession } from "../../_support/line_session.ts";
import { WAIT_MS, within } from "../../_support/timeouts.ts";
import { makeTestCertificates, OPENSSL_MISSING, readPem } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";
import { gate } from "../../_support/gate.ts";
import { PYTHON_MISSING } from "../../_support/reset_server.ts";

/** Runs `body` with the server's logs (down to `level`) captured in `logs`. */
function withServerLogs(
  level: "trace" | "debug" | "info",
  body: (logs: Logs) => Promise<void>,
): Promise<void> {
  return withLogs(["linesock", "server"], level, body);
}

const encoder = new TextEncoder();

const RESET_CLIENTS = fileURLToPath(new URL("../../_support/reset_clients.py", import.meta.url));

/**
 * One client that sends `line`, then, when told, ends with a TCP reset (which Deno cannot make:
 * tests/_support/reset_clients.py).
 */
async function resettingClient(port: number, line: string) {
  const child = new Deno.Command("python3", {
    args: [RESET_CLIENTS, "line", String(port), "1", line],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  const expect = async (word: string) => {
    while (!printed.split("\n").includes(word)) {
      const { value, done } = await within(lines.read(), WAIT_MS, `reset_clients.py: ${word}`);
      if (done) throw new Error(`reset_clients.py ended before ${word}: ${printed}`);
      printed += value;
    }
  };
  const stdin = child.stdin.getWriter();
  await expect("sent");
  return {
    async reset(): Promise<void> {
      await stdin.write(encoder.encode("go\n"));
      await expect("reset");
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await stdin.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
}

Deno.test("tracePreview: quoted, C0 and C1 controls and DEL escaped, cut at 200 characters", () => {
  assert.equal(tracePreview("PING"), '"PING"');
  assert.equal(tracePreview("a\x7fb\x80c\x9fd\xa0e"), '"a\\u007fb\\u0080c\\u009fd\xa0e"');
  assert.equal(tracePreview(encoder.encode("\x1b[2J\u009b")), '"\\u001b[2J\\u009b"');
  // Exactly 200 characters: whole; 201: cut, with the length.
  assert.equal(tracePreview("y".repeat(200)), `"${"y".repeat(200)}"`);
  assert.equal(tracePreview("y".repeat(201)), `"${"y".repeat(200)}"… (201 characters)`);
  assert.equal(
    tracePreview(encoder.encode("z".repeat(200))),
    `"${"z".repeat(200)}"`,
  );
  assert.equal(
    tracePreview(encoder.encode("z".repeat(201))),
    `"${"z".repeat(200)}"… (201 bytes)`,
  );
  // Bytes are decoded up to 800 of them (200 characters of 4 bytes): 300 three-byte characters
  // show their first 200.
  assert.equal(
    tracePreview(encoder.encode("€".repeat(300))),
    `"${"€".repeat(200)}"… (900 bytes)`,
  );
});

Deno.test("trace level: each line in and each reply out is logged, with its connection", async () => {
  await withServerLogs("trace", async (logs) => {
    await using server = await serve({ port: 0 }, (line) => `re ${line}`);
    await using client = await LineSession.open(server.addr);
    await client.write("PING\n");
    assert.equal(await client.readLine(WAIT_MS), "re PING");
    const peer = client.peer;
    assert.equal(
      await logs.waitFor(/line 1 in/),
      `Connection 1 from ${peer}: line 1 in (4 bytes): "PING"`,
    );
    assert.equal(
      await logs.waitFor(/reply out/),
      `Connection 1 from ${peer}: reply out: "re PING"`,
    );
  });
});

Deno.test("trace level: a relay (echo) logs each chunk in and out", async () => {
  await withServerLogs("trace", async (logs) => {
    await using server = await serve({ port: 0 }, echoProtocol());
    await using client = await LineSession.open(server.addr);
    await client.write("PING\n");
    assert.equal(await client.readLine(WAIT_MS), "PING");
    const peer = client.peer;
    assert.equal(
      await logs.waitFor(/bytes in/),
      `Connection 1 from ${peer}: 5 bytes in: "PING\\n"`,
    );
    assert.equal(
      await logs.waitFor(/bytes out/),
      `Connection 1 from ${peer}: 5 bytes out: "PING\\n"`,
    );
  });
});

Deno.test("context.connections counts the open connections, this one included", async () => {
  await using server = await serve({ port: 0 }, (_line, context) => `${context.connections}`);
  await using first = await LineSession.open(server.addr);
  await first.write("n\n");
  assert.equal(await first.readLine(WAIT_MS), "1");
  await using second = await LineSession.open(server.addr);
  await second.write("n\n");
  assert.equal(await second.readLine(WAIT_MS), "2");
});

Deno.test("context.abort closes the connection at once: the reply it was making is not sent", async () => {
  await using server = await serve({ port: 0 }, (line, context) => {
    if (line !== "abort") return `ok ${line}`;
    context.abort("dropped by the handler");
    return "never sent";
  });
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "ok a");
  await client.write("abort\n");
  assert.equal(await client.readLine(WAIT_MS), null);
});

Deno.test("info level: a connection's open and close lines, with its counters and reason", async () => {
  await withServerLogs("info", async (logs) => {
    await using server = await serve({ port: 0 }, (line) => `re ${line}`);
    await using client = await LineSession.open(server.addr);
    const peer = client.peer;
    assert.deepEqual(await client.exchange(["a", "bb"], WAIT_MS), ["re a", "re bb"]);
    assert.equal(await logs.waitFor(/opened/), `Connection 1 from ${peer} opened`);
    assert.match(
      await logs.waitFor(/closed after/),
      new RegExp(
        `^Connection 1 from ${peer} closed after \\d+ ms: 2 lines in, 2 out, 5 bytes in, 11 out \\(closed by client\\)$`,
      ),
    );
    assert.equal(logs.lines.some((line) => / in \(|reply out/.test(line)), false, "no trace");
  });
});

Deno.test("bytes read while a reply is pending count in bytesIn, and are answered next", async () => {
  const started = gate();
  const release = gate();
  await using server = await serve({ port: 0 }, async (line) => {
    if (line === "slow") {
      started.open();
      await release.promise;
    }
    return `re ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("slow\n");
  await within(started.promise, WAIT_MS, "the slow handler to start");
  // Read by the watch read the session makes while the reply is pending.
  await client.write("more\n");
  release.open();
  assert.deepEqual(await client.readLines(2, WAIT_MS), ["re slow", "re more"]);
  await client.closeWrite();
  assert.equal(await client.readLine(WAIT_MS), null);
  await server.shutdown();
  assert.equal(server.stats.bytesIn, 10);
  assert.equal(server.stats.linesIn, 2);
});

Deno.test({
  name:
    `a client that resets while its reply is pending is noticed: its signal aborts, and the log says so${
      PYTHON_MISSING ? ` (ignored: ${PYTHON_MISSING})` : ""
    }`,
  ignore: PYTHON_MISSING !== undefined,
  async fn() {
    await withServerLogs("info", async (logs) => {
      const started = gate();
      const aborted = gate();
      await using server = await serve({ port: 0 }, async (_line, context) => {
        started.open();
        await new Promise<void>((resolve) => {
          context.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        aborted.open();
        return "never read";
      });
      await using client = await resettingClient((server.addr as Deno.NetAddr).port, "slow");
      await within(started.promise, WAIT_MS, "the handler to start");
      await client.reset();
      await within(aborted.promise, WAIT_MS, "the connection's signal to abort");
      assert.match(
        await logs.waitFor(/while its reply was pending/),
        /^Connection 1 from 127\.0\.0\.1:\d+: connection reset by client while its reply was pending$/,
      );
    });
  },
});

Deno.test("input read while one reply, then the next, is pending is answered after them, in order", async () => {
  const gates = new Map([["slow1", gate()], ["slow2", gate()]]);
  const started = new Map([["slow1", gate()], ["slow2", gate()]]);
  await using server = await serve({ port: 0 }, async (line) => {
    const held = gates.get(line);
    if (held !== undefined) {
      started.get(line)!.open();
      await held.promise;
    }
    return `re ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("slow1\nslow2\n");
  await within(started.get("slow1")!.promise, WAIT_MS, "slow1 to start");
  // Read by the watch read made while slow1 is pending; slow2 is still in the first chunk.
  await client.write("more\n");
  gates.get("slow1")!.open();
  await within(started.get("slow2")!.promise, WAIT_MS, "slow2 to start");
  gates.get("slow2")!.open();
  assert.deepEqual(await client.readLines(3, WAIT_MS), ["re slow1", "re slow2", "re more"]);
});

Deno.test("a handler that returns null sends nothing; the next line is answered", async () => {
  await using server = await serve({ port: 0 }, (line) => line === "none" ? null : `re ${line}`);
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["none", "a"], WAIT_MS), ["re a"]);
});

Deno.test("a rejected reply or a stream that throws: ERR internal error, counted and logged; the connection goes on", async () => {
  await withServerLogs("info", async (logs) => {
    await using server = await serve({ port: 0 }, async function* (line) {
      if (line === "reject") throw new Error("boom");
      yield `one ${line}`;
      if (line === "stream") throw new Error("bang");
    });
    await using client = await LineSession.open(server.addr);
    const peer = client.peer;
    assert.deepEqual(await client.exchange(["stream", "a"], WAIT_MS), [
      "one stream",
      "ERR internal error",
      "one a",
    ]);
    assert.equal(
      await logs.waitFor(/Handler failed/),
      `Handler failed on connection 1 from ${peer}: Error: bang`,
    );
    assert.deepEqual(server.metrics().errors, { internal: 1 });
  });
  await using rejecting = await serve(
    { port: 0 },
    (line) => line === "reject" ? Promise.reject(new Error("boom")) : `re ${line}`,
  );
  await using client = await LineSession.open(rejecting.addr);
  assert.deepEqual(await client.exchange(["reject", "a"], WAIT_MS), ["ERR internal error", "re a"]);
  assert.deepEqual(rejecting.metrics().errors, { internal: 1 });
});

Deno.test("a streamed reply is not pulled further while its unsent bytes pass writeBufferBytes", async () => {
  const cap = 64 * 1024;
  const line = "x".repeat(1023);
  let mostQueued = 0;
  await using server = await serve(
    { port: 0, writeBufferBytes: cap },
    async function* (_line, context) {
      for (let index = 0; index < 8192; index++) {
        mostQueued = Math.max(mostQueued, context.queuedBytes);
        yield line;
      }
    },
  );
  await using client = await LineSession.open(server.addr);
  await client.write("go\n");
  await client.closeWrite();
  const bytes = await client.readAllBytes(WAIT_MS * 3);
  assert.equal(bytes.length, 8192 * 1024);
  assert.ok(mostQueued <= cap + 1024, `${mostQueued} bytes queued, the cap is ${cap}`);
});

Deno.test("sendRaw after a queued error line keeps the order: error, raw bytes, reply", async () => {
  await using server = await serve({ port: 0 }, (line, context) => {
    context.sendError("internal", `first ${line}`);
    context.sendRaw(encoder.encode(`second ${line}\n`));
    return `third ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["a"], WAIT_MS), [
    "ERR first a",
    "second a",
    "third a",
  ]);
});

Deno.test("a relay's traffic is counted: lines and bytes each way", async () => {
  await using server = await serve({ port: 0 }, echoProtocol());
  await using client = await LineSession.open(server.addr);
  assert.deepEqual(await client.exchange(["PING", "x"], WAIT_MS), ["PING", "x"]);
  await server.shutdown();
  const { linesIn, linesOut, bytesIn, bytesOut } = server.stats;
  assert.deepEqual({ linesIn, linesOut, bytesIn, bytesOut }, {
    linesIn: 2,
    linesOut: 2,
    bytesIn: 7,
    bytesOut: 7,
  });
  assert.equal(server.stats.errors, 0, "the end of a relay's input is no error");
});

Deno.test("a connection waiting for its handler is neither idle nor stuck writing", async () => {
  // The handler's own work outlasts both timeouts; the client waits for its reply.
  await using server = await serve(
    { port: 0, idleTimeoutMs: 150, writeTimeoutMs: 150 },
    async (line) => {
      if (line === "slow") await new Promise((resolve) => setTimeout(resolve, 600));
      return `re ${line}`;
    },
  );
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "re a");
  await client.write("slow\n");
  assert.equal(await client.readLine(WAIT_MS), "re slow");
});

Deno.test("context.send outside the reply flow is written at once, and its promise settles", async () => {
  const push = gate();
  const sent = gate();
  await using server = await serve({ port: 0 }, (line, context) => {
    void push.promise.then(() => context.send("pushed").then(sent.open));
    return `re ${line}`;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "re a");
  push.open();
  assert.equal(await client.readLine(WAIT_MS), "pushed");
  await within(sent.promise, WAIT_MS, "send() to settle");
});

Deno.test("a relay that queues lines around the chunk it sends back keeps the byte order", async () => {
  const relay: LineProtocol = {
    onLine: (line) => line,
    onData(chunk, context) {
      context.sendError("internal", "before");
      context.sendRaw(chunk);
      context.sendError("internal", "after");
    },
  };
  await using server = await serve({ port: 0 }, relay);
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.deepEqual(await client.readLines(3, WAIT_MS), ["ERR before", "a", "ERR after"]);
  const echo: LineProtocol = {
    onLine: (line) => line,
    onData(chunk, context) {
      context.sendRaw(chunk);
      context.sendError("internal", "after");
    },
  };
  await using second = await serve({ port: 0 }, echo);
  await using other = await LineSession.open(second.addr);
  await other.write("b\n");
  assert.deepEqual(await other.readLines(2, WAIT_MS), ["b", "ERR after"]);
});

Deno.test("after its FIN the server reads and discards the client's input until the client closes (linger)", async (t) => {
  const protocols: [
    name: string,
    protocol: LineProtocol | ((line: string) => string),
    first: string,
  ][] = [
    ["lines", (line) => `re ${line}`, "re a"],
    // A relay's close comes from the line budget in relayChunk, not from a reply.
    ["a relay (echo)", echoProtocol(), "a"],
  ];
  for (const [name, protocol, first] of protocols) {
    await t.step(name, async () => {
      await using server = await serve({ port: 0, closeAfterLines: 1 }, protocol);
      const client = await LineSession.open(server.addr);
      // One line the budget allows, then far more input than one read takes.
      const input = `a\n${"b\n".repeat(512 * 1024)}`;
      const writing = client.write(input);
      assert.equal(await client.readLine(WAIT_MS), first);
      assert.equal(await client.readLine(WAIT_MS), null);
      // All of it was taken: the server kept reading after its FIN.
      await within(writing, WAIT_MS, "the client's input to be taken");
      client.close();
      await server.shutdown();
      assert.equal(server.stats.bytesIn, input.length);
    });
  }
});

Deno.test("shutdown while a reply is pending: the reply, the protocol's farewell, then the close", async () => {
  const started = gate();
  const release = gate();
  const protocol: LineProtocol = {
    async onLine(bytes) {
      started.open();
      await release.promise;
      return `re ${new TextDecoder().decode(bytes)}`;
    },
    onShutdown: () => "bye",
  };
  await withServerLogs("info", async (logs) => {
    await using server = await serve({ port: 0 }, protocol);
    await using client = await LineSession.open(server.addr);
    await client.write("slow\n");
    await within(started.promise, WAIT_MS, "the handler to start");
    const stopping = server.shutdown();
    release.open();
    assert.deepEqual(await client.readAll(WAIT_MS), ["re slow", "bye"]);
    // The server lingers after its FIN until the client closes too.
    client.close();
    await within(stopping, WAIT_MS, "the shutdown");
    assert.match(await logs.waitFor(/closed after/), /\(server shutting down\)$/);
  });
});

Deno.test({
  name:
    `a client that resets while the server waits for input: no error counted, the reason logged${
      PYTHON_MISSING ? ` (ignored: ${PYTHON_MISSING})` : ""
    }`,
  ignore: PYTHON_MISSING !== undefined,
  async fn() {
    await withServerLogs("info", async (logs) => {
      const answered = gate();
      await using server = await serve({ port: 0 }, (line) => {
        answered.open();
        return `re ${line}`;
      });
      await using client = await resettingClient((server.addr as Deno.NetAddr).port, "a");
      await within(answered.promise, WAIT_MS, "the line to be answered");
      await client.reset();
      assert.match(await logs.waitFor(/closed after/), /\(connection reset by client\)$/);
      assert.equal(server.stats.errors, 0);
      assert.deepEqual(server.metrics().errors, {});
    });
  },
});

Deno.test("echo with closeAfterLines: the chunk is cut after the last line of the budget", async () => {
  await using server = await serve({ port: 0, closeAfterLines: 3 }, echoProtocol());
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "a");
  await client.write("b\nc\nd\n");
  assert.deepEqual(await client.readAll(WAIT_MS), ["b", "c"]);
  await using exact = await serve({ port: 0, closeAfterLines: 2 }, echoProtocol());
  await using other = await LineSession.open(exact.addr);
  await other.write("a\nb\n");
  assert.deepEqual(await other.readAll(WAIT_MS), ["a", "b"]);
});

Deno.test("PROXY protocol: the per-address limit counts the header's source (another source is let in); refusals are counted", async () => {
  await using server = await serve(
    { port: 0, proxyProtocol: true, maxConnectionsPerAddress: 1 },
    (line, context) => `${context.peer} ${line}`,
  );
  await using first = await LineSession.open(server.addr);
  await first.write("PROXY TCP4 192.0.2.1 127.0.0.1 40000 1991\r\none\n");
  assert.equal(await first.readLine(WAIT_MS), "192.0.2.1:40000 one");
  await using second = await LineSession.open(server.addr);
  await second.write("PROXY TCP4 192.0.2.1 127.0.0.1 40001 1991\r\ntwo\n");
  assert.deepEqual(await second.readAll(WAIT_MS), ["ERR too many connections from 192.0.2.1"]);
  await using other = await LineSession.open(server.addr);
  await other.write("PROXY TCP4 192.0.2.2 127.0.0.1 40000 1991\r\ntwo\n");
  assert.equal(await other.readLine(WAIT_MS), "192.0.2.2:40000 two");
  await using third = await LineSession.open(server.addr);
  await third.write("PROXY nonsense\r\n");
  assert.equal((await third.readAll(WAIT_MS)).length, 1);
  assert.deepEqual(server.metrics().refused, { too_many_connections: 1, invalid_proxy_header: 1 });
});

Deno.test("between whole lines the line timeout does not count: an idle client gets the idle farewell", async () => {
  await using server = await serve(
    { port: 0, lineTimeoutMs: 100, idleTimeoutMs: 400 },
    (line) => `re ${line}`,
  );
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  assert.equal(await client.readLine(WAIT_MS), "re a");
  assert.deepEqual(await client.readAll(WAIT_MS), ["ERR idle timeout"]);
});

Deno.test({
  name: ignoredName(
    "a client that does not speak TLS to a TLS server: counted as a tls error, one warning",
    OPENSSL_MISSING,
  ),
  ignore: OPENSSL_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);
    await withServerLogs("info", async (logs) => {
      await using server = await serve({ port: 0, tls }, (line) => `re ${line}`);
      await using client = await LineSession.open(server.addr);
      const peer = client.peer;
      await client.write("hello in plain text\n");
      await client.readAllBytes(WAIT_MS);
      assert.match(
        await logs.waitFor(/failed/),
        new RegExp(`^Connection 1 from ${peer.replaceAll(".", "\\.")} failed: TLS: .+`),
      );
      await server.shutdown();
      assert.deepEqual(server.metrics().errors, { tls: 1 });
    });
  },
});

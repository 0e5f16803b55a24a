/**
 * Tests written for the mutants of lib/server/line_server.ts (admission: the accept loop, the
 * per-address limit, the waiting queue, the sweeper, shutdown) that the server's other tests let
 * survive (issue #20, docs/mutation.md, "session.ts and line_server.ts"). Real servers on port 0 and
 * real sockets; every wait is bounded.
 */
import assert from "node:assert/strict";
import { type Logs, withLogs } from "../../_support/logs.ts";
import { serve } from "../../../lib/server/mod.ts";
import { exchange, LineSession } from "../../_support/line_session.ts";
import { since, WAIT_MS, waitUntil, within } from "../../_support/timeouts.ts";
import { gate } from "../../_support/gate.ts";
import { makeTestCertificates, OPENSSL_MISSING, readPem } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";

/** Runs `body` with the server's logs down to `level` captured in `logs`. */
function withServerLogs(
  level: "debug" | "info",
  body: (logs: Logs) => Promise<void>,
): Promise<void> {
  return withLogs(["linesock", "server"], level, body);
}

Deno.test("the listening line names the server's URL", async () => {
  await withServerLogs("info", async (logs) => {
    await using server = await serve({ port: 0 }, (line) => line);
    const port = (server.addr as Deno.NetAddr).port;
    assert.equal(server.url, `tcp://127.0.0.1:${port}`);
    assert.equal(await logs.waitFor(/^Listening/), `Listening on tcp://127.0.0.1:${port}`);
  });
});

Deno.test({
  name: ignoredName("a TLS server's URL says tls://", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);
    await using server = await serve({ port: 0, tls }, (line) => line);
    assert.equal(server.url, `tls://127.0.0.1:${(server.addr as Deno.NetAddr).port}`);
  },
});

Deno.test("clients waiting for a slot: logged as they wait and when the queue timeout ends a wait; shutdown refuses the rest", async () => {
  await withServerLogs("debug", async (logs) => {
    const release = gate();
    await using server = await serve(
      { port: 0, maxClients: 1, queueTimeoutMs: 200 },
      async (line) => {
        await release.promise;
        return `re ${line}`;
      },
    );
    await using holder = await LineSession.open(server.addr);
    await holder.write("hold\n");
    await using second = await LineSession.open(server.addr);
    await logs.waitFor(/^Connection 2 from .* waits for a slot$/);
    assert.deepEqual(await second.readAll(WAIT_MS), ["ERR busy"]);
    assert.match(await logs.waitFor(/waited/), /^Connection 2 from .* waited \d+ ms for a slot$/);
    await using third = await LineSession.open(server.addr);
    await logs.waitFor(/^Connection 3 from .* waits for a slot$/);
    const stopping = server.shutdown();
    assert.deepEqual(await third.readAll(WAIT_MS), ["ERR server shutting down"]);
    release.open();
    assert.deepEqual(await holder.readAll(WAIT_MS), ["re hold"]);
    holder.close();
    await within(stopping, WAIT_MS, "the shutdown");
    assert.deepEqual(server.metrics().refused, { busy: 1, shutting_down: 1 });
  });
});

Deno.test("the sweeper looks at a quarter of the shortest limit: four silent clients, each dropped soon after 100 ms", async () => {
  // Every limit set (none is 0, which would mean off): the shortest is the idle timeout.
  await using server = await serve(
    { port: 0, idleTimeoutMs: 100, lineTimeoutMs: 5000, writeTimeoutMs: 5000 },
    (line) => line,
  );
  // Swept every 25 ms; a sweep every 400 ms or more would be late by as much. Four clients in turn,
  // so one lucky sweep cannot pass.
  for (let round = 0; round < 4; round++) {
    const started = performance.now();
    await using silent = await LineSession.open(server.addr);
    assert.deepEqual(await silent.readAll(WAIT_MS), ["ERR idle timeout"]);
    const took = since(started);
    assert.ok(took >= 100 && took < 350, `round ${round}: ${took} ms`);
  }
});

Deno.test("writeTimeoutMs 0 turns the write timeout off: a client that does not read is dropped by the idle timeout", async () => {
  await using server = await serve(
    { port: 0, writeTimeoutMs: 0, idleTimeoutMs: 500, writeBufferBytes: 64 * 1024 },
    (line) => line.repeat(1000),
  );
  const client = await LineSession.open(server.addr);
  // Far more reply than the socket buffers hold; the client never reads it.
  const writing = client.write("x".repeat(1000) + "\n".repeat(200));
  await waitUntil(() => server.metrics().stats.open === 0, WAIT_MS, "the client dropped");
  await writing.catch(() => {});
  client.close();
  // Dropped for its silence, not for its stuck writes.
  assert.deepEqual(server.metrics().errors, { idle_timeout: 1 });
});

Deno.test("a live connection's bytes in include what was read while a reply was pending", async () => {
  const release = gate();
  const started = gate();
  await using server = await serve({ port: 0 }, async (line) => {
    started.open();
    await release.promise;
    return line;
  });
  await using client = await LineSession.open(server.addr);
  await client.write("a\n");
  await within(started.promise, WAIT_MS, "the handler to start");
  await client.write("bb\n");
  await waitUntil(() => server.metrics().stats.bytesIn === 5, WAIT_MS, "5 bytes in, live");
  release.open();
  assert.deepEqual(await client.readLines(2, WAIT_MS), ["a", "bb"]);
});

Deno.test("abort after the grace: the busy connection's close is logged as aborted", async () => {
  await withServerLogs("info", async (logs) => {
    const started = gate();
    const server = await serve({ port: 0, graceMs: 100 }, async () => {
      started.open();
      await new Promise(() => {});
      return "never";
    });
    await using client = await LineSession.open(server.addr);
    await client.write("a\n");
    await within(started.promise, WAIT_MS, "the handler to start");
    await within(server.shutdown(), WAIT_MS, "the shutdown");
    assert.match(await logs.waitFor(/closed after/), /\(aborted\)$/);
  });
});

Deno.test("maxClients 2: a slot freed by one client is taken at once by the next", async () => {
  await using server = await serve({ port: 0, maxClients: 2 }, (line) => `re ${line}`);
  await using first = await LineSession.open(server.addr);
  await using second = await LineSession.open(server.addr);
  await second.write("b\n");
  assert.equal(await second.readLine(WAIT_MS), "re b");
  assert.deepEqual(await first.exchange(["a"], WAIT_MS), ["re a"]);
  await waitUntil(() => server.metrics().stats.open === 1, WAIT_MS, "the first to end");
  // The second still holds its slot; the third has the first's.
  await using third = await LineSession.open(server.addr);
  await third.write("c\n");
  assert.equal(await third.readLine(WAIT_MS), "re c");
});

Deno.test("refusals one after another each get their line (a refusal under way is forgotten once done)", async () => {
  await using server = await serve({ port: 0, maxConnections: 1 }, (line) => line);
  await using holder = await LineSession.open(server.addr);
  await holder.write("hold\n");
  assert.equal(await holder.readLine(WAIT_MS), "hold");
  // More than the 64 refusals that may be under way at once, one at a time.
  for (let index = 0; index < 70; index++) {
    await using refused = await LineSession.open(server.addr);
    assert.deepEqual(await refused.readAll(WAIT_MS), ["ERR too many connections"], `#${index}`);
  }
  assert.deepEqual(server.metrics().refused, { too_many_connections: 70 });
});

Deno.test("a connection refused by the per-address limit frees nothing: the next from there is refused too", async () => {
  await using server = await serve({ port: 0, maxConnectionsPerAddress: 1 }, (line) => line);
  await using holder = await LineSession.open(server.addr);
  await holder.write("hold\n");
  assert.equal(await holder.readLine(WAIT_MS), "hold");
  for (let index = 0; index < 2; index++) {
    await using refused = await LineSession.open(server.addr);
    assert.deepEqual(await refused.readAll(WAIT_MS), [
      "ERR too many connections from 127.0.0.1",
    ]);
  }
  assert.deepEqual(server.metrics().refused, { too_many_connections: 2 });
});

Deno.test("the accept that fails because shutdown closed the listener is not an accept error", async () => {
  const server = await serve({ port: 0 }, (line) => line);
  assert.deepEqual(await exchange(server.addr, ["a"], WAIT_MS), ["a"]);
  await server.shutdown();
  assert.equal(server.stats.acceptErrors, 0);
});

Deno.test("a script that stops its server exits by itself: no timer or listener is left behind", async (t) => {
  const serveModule = new URL("../../../lib/server/mod.ts", import.meta.url).href;
  const scripts: [name: string, body: string][] = [
    ["shutdown()", "const server = await serve({ port: 0 }, (l) => l); await server.shutdown();"],
    ["await using", "{ await using server = await serve({ port: 0 }, (l) => l); }"],
  ];
  for (const [name, body] of scripts) {
    await t.step(name, async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--unstable-net",
          `import { serve } from "${serveModule}"; ${body} console.log("stopped");`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), WAIT_MS);
      const { code, stdout, stderr } = await child.output();
      clearTimeout(timer);
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `${text}${new TextDecoder().decode(stderr)}`);
      assert.equal(text, "stopped\n");
    });
  }
});

Deno.test("the metrics of a server whose protocol reports nothing: no program waiting, no chat counters", async () => {
  await using server = await serve({ port: 0 }, (line) => line);
  const metrics = server.metrics();
  assert.equal(metrics.programsWaiting, 0);
  assert.equal(metrics.chat, undefined);
});

Deno.test({
  name: ignoredName(
    "past 64 refusals under way, the 65th closes without its line, and the debug log says so",
    OPENSSL_MISSING,
  ),
  ignore: OPENSSL_MISSING !== undefined,
  async fn() {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);
    await withServerLogs("debug", async (logs) => {
      await using server = await serve({ port: 0, tls, maxConnections: 1 }, (line) => line);
      const port = (server.addr as Deno.NetAddr).port;
      const caCerts = [await Deno.readTextFile(certificates.caFile)];
      const holder = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
      await holder.handshake();
      // Plain TCP clients never start the TLS handshake: each refusal's line cannot leave, so it
      // stays under way (up to its 1 s bound) while the next ones come.
      const refused: Deno.Conn[] = [];
      try {
        for (let index = 0; index < 65; index++) refused.push(await Deno.connect({ port }));
        await waitUntil(
          () => server.metrics().refused.too_many_connections === 65,
          WAIT_MS,
          "65 refusals",
        );
        const without = logs.lines.filter((line) => / without a reply: /.test(line));
        assert.equal(without.length, 1, without.join("\n"));
        assert.match(
          without[0]!,
          /^Closed connection \d+ from .* without a reply: too many connections$/,
        );
      } finally {
        for (const conn of refused) conn.close();
        holder.close();
      }
    });
  },
});

Deno.test("a Unix socket server's per-address limit names no address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-unix-" });
  try {
    const path = `${dir}/s.sock`;
    await using server = await serve({ path, maxConnectionsPerAddress: 1 }, (line) => line);
    await using first = await LineSession.open(server.addr);
    await first.write("a\n");
    assert.equal(await first.readLine(WAIT_MS), "a");
    await using second = await LineSession.open(server.addr);
    assert.deepEqual(await second.readAll(WAIT_MS), ["ERR too many connections from unix"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

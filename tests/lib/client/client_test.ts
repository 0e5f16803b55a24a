import assert from "node:assert/strict";
import { makeTestCertificates, OPENSSL_MISSING } from "../../_support/tls.ts";
import { connect } from "../../../lib/client/client.ts";
import {
  ConnectError,
  ConnectionLostError,
  LineTooLongError,
  RemoteError,
  TimeoutError,
} from "../../../lib/errors.ts";
import { serve } from "../../../lib/server/mod.ts";
import { ignoredName } from "../../_support/tools.ts";

const encoder = new TextEncoder();
const portOf = (server: { addr: Deno.Addr }) => (server.addr as Deno.NetAddr).port;

Deno.test("LineConnection", async (t) => {
  await t.step("request: lockstep with several replies per line", async () => {
    await using server = await serve({ port: 0 }, (line) => [`${line}:1`, `${line}:2`]);
    await using client = await connect({ port: portOf(server) });
    assert.deepEqual(await client.request("a", { replies: 2 }), ["a:1", "a:2"]);
    assert.deepEqual(await client.request("b", { replies: 2, timeoutMs: 5000 }), ["b:1", "b:2"]);
  });

  await t.step(
    "request: ConnectionLostError when the server closes before all replies",
    async () => {
      await using server = await serve({ port: 0 }, (line, context) => {
        context.close();
        return line;
      });
      await using client = await connect({ port: portOf(server) });
      await assert.rejects(client.request("x", { replies: 2 }), (error: unknown) => {
        assert.ok(error instanceof ConnectionLostError);
        assert.match(error.message, /after 1 of 2 replies/);
        return true;
      });
    },
  );

  await t.step("a timeout or an abort loses no reply", async () => {
    const gate = Promise.withResolvers<string>();
    await using server = await serve({ port: 0 }, (line) => line === "slow" ? gate.promise : line);
    await using client = await connect({ port: portOf(server) });
    await client.send("slow");
    await assert.rejects(client.readLine(30), TimeoutError);
    const controller = new AbortController();
    const aborted = client.readLine({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(aborted, /stop/);
    gate.resolve("late reply");
    assert.equal(await client.readLine({ timeoutMs: 5000 }), "late reply");
  });

  await t.step("raw lines: \\r kept with stripCR false; a final line without \\n", async () => {
    await using server = await serve({ port: 0 }, {
      stripCR: false,
      onLine: (line) => [line, line],
      onEnd: (context) => context.sendRaw(encoder.encode("tail")),
    });
    await using client = await connect({ port: portOf(server), stripCR: false });
    client.enqueueBytes(encoder.encode("x\r\n"));
    await client.closeWrite();
    assert.deepEqual(await client.readRawLine(), encoder.encode("x\r"));
    assert.equal(client.bufferedLines, 1);
    assert.deepEqual(await client.readRawLine(), encoder.encode("x\r"));
    assert.equal(client.lastLineUnterminated, false);
    assert.deepEqual(await client.readRawLine(), encoder.encode("tail"));
    assert.equal(client.lastLineUnterminated, true);
    assert.equal(await client.readRawLine(), null);
  });

  await t.step("iterating reads until the server closes", async () => {
    await using server = await serve({ port: 0 }, (line) => line.toUpperCase());
    await using client = await connect({ port: portOf(server) });
    for (const line of ["a", "b", "c"]) client.enqueue(line);
    await client.closeWrite();
    assert.deepEqual(await Array.fromAsync(client), ["A", "B", "C"]);
    assert.equal(client.bytesWritten, 6);
    assert.equal(client.bytesRead, 6);
  });

  await t.step("a reply longer than maxLineBytes is a LineTooLongError", async () => {
    await using server = await serve({ port: 0 }, () => "y".repeat(100));
    await using client = await connect({ port: portOf(server), maxLineBytes: 10 });
    await client.send("x");
    await assert.rejects(client.readLine(5000), LineTooLongError);
  });

  await t.step("command: the response, or a RemoteError with the server's status", async () => {
    await using server = await serve({ port: 0 }, (line) => {
      const request = JSON.parse(line);
      return request.command === "add"
        ? JSON.stringify({ status: 0, message: request.args.a + request.args.b, id: request.id })
        : JSON.stringify({ status: 3, message: "bad", extra: { why: 1 }, id: request.id });
    });
    await using client = await connect({ port: portOf(server) });
    assert.equal((await client.command("add", { a: 2, b: 3 })).message, 5);
    await assert.rejects(client.command("other"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.status, 3);
      assert.equal(error.message, "bad");
      assert.deepEqual(error.extra, { why: 1 });
      return true;
    });
  });
});

Deno.test("connect", async (t) => {
  await t.step("ConnectError for a closed port and a missing Unix socket", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    await assert.rejects(connect({ port }), (error: unknown) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.message, `Cannot connect to 127.0.0.1:${port}: connection refused`);
      return true;
    });
    const dir = await Deno.makeTempDir();
    try {
      await assert.rejects(connect({ path: `${dir}/none.sock` }), /no such socket/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("retries reach a server started after the first failure", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const firstRetry = Promise.withResolvers<void>();
    const attempts: number[] = [];
    const connecting = connect({
      port,
      retries: 50,
      retryDelayMs: 10,
      onRetry: (attempt) => {
        attempts.push(attempt);
        firstRetry.resolve();
      },
    });
    await firstRetry.promise;
    await using server = await serve({ port }, (line) => line);
    await using client = await connecting;
    assert.deepEqual(await client.request("hi"), ["hi"]);
    assert.equal(attempts[0], 1);
    assert.equal(server.stats.connections >= 1, true);
  });

  await t.step(
    "an over-long reply is reported in its place, between the lines around it",
    async () => {
      await using server = await serve({ port: 0 }, () => ["A", "x".repeat(100), "B"]);
      await using client = await connect({
        port: (server.addr as Deno.NetAddr).port,
        maxLineBytes: 10,
      });
      await client.send("go");
      assert.equal(await client.readLine(5000), "A");
      await assert.rejects(client.readLine(5000), LineTooLongError);
      assert.equal(await client.readLine(5000), "B");
    },
  );

  await t.step({
    name: ignoredName("a certificate error is not retried", OPENSSL_MISSING),
    ignore: OPENSSL_MISSING !== undefined,
    fn: async () => {
      await using certs = await makeTestCertificates();
      await using server = await serve({
        port: 0,
        tls: {
          cert: await Deno.readTextFile(certs.selfSigned.cert),
          key: await Deno.readTextFile(certs.selfSigned.key),
        },
      }, (line) => line);
      const attempts: number[] = [];
      await assert.rejects(
        connect({
          port: (server.addr as Deno.NetAddr).port,
          tls: true,
          retries: 5,
          retryDelayMs: 10,
          onRetry: (attempt) => attempts.push(attempt),
        }),
        /certificate not trusted/,
      );
      assert.deepEqual(attempts, []);
    },
  });

  await t.step("over a Unix socket", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await using server = await serve({ path: `${dir}/s.sock` }, (line) => `unix ${line}`);
      await using client = await connect({ path: `${dir}/s.sock` });
      assert.equal(client.remote, `unix://${dir}/s.sock`);
      assert.deepEqual(await client.request("x"), ["unix x"]);
      assert.equal(server.stats.connections, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

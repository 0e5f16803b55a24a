/**
 * Issue #20, the `client` area of mutation testing (docs/mutation.md, "lib/client (client.ts)"): the
 * behaviours of {@linkcode connect} and `LineConnection` that no other test pinned down, each found
 * by a mutant of lib/client/client.ts that survived the rest of tests/lib/client/. Everything goes
 * through the public API against real servers and real sockets: linesock's own `serve`, or a raw
 * `Deno.listen` where the test needs to control the bytes, their chunking or how the server reads.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  chatProtocol,
  connect,
  ConnectError,
  ConnectionLostError,
  type LineConnection,
  parseJsonResponse,
  RemoteError,
  serve,
  TimeoutError,
} from "../../../lib/mod.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../../_support/tls.ts";
import { PYTHON_MISSING, startResetServer } from "../../_support/reset_server.ts";
import { ignoredName } from "../../_support/tools.ts";
import { unusedPort } from "../../_support/ports.ts";
import { WAIT_MS, waitUntil, within } from "../../_support/timeouts.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const portOf = (server: { addr: Deno.Addr }) => (server.addr as Deno.NetAddr).port;

/** A raw TCP listener on port 0 that hands the test its first connection. */
function rawServer(): { port: number; accepted: Promise<Deno.Conn>; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  return { port: listener.addr.port, accepted, close: () => listener.close() };
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/** Everything the peer reads until its end: the text, and `"end"` or the read error's class name. */
async function readUntilEnd(conn: Deno.Conn): Promise<{ text: string; end: string }> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  try {
    for (let count; (count = await within(conn.read(buffer), WAIT_MS, "a read")) !== null;) {
      text += decoder.decode(buffer.subarray(0, count));
    }
    return { text, end: "end" };
  } catch (error) {
    return { text, end: error instanceof Error ? error.constructor.name : String(error) };
  }
}

Deno.test("connect: retries", async (t) => {
  await t.step(
    "the delays start at retryDelayMs and double; one onRetry per retry, then the ConnectError",
    async () => {
      const calls: [number, number][] = [];
      await assert.rejects(
        connect({
          port: unusedPort(),
          retries: 3,
          retryDelayMs: 10,
          onRetry: (attempt, error, delayMs) => {
            assert.ok(error instanceof ConnectError);
            calls.push([attempt, delayMs]);
            if (calls.length > 3) throw new Error(`more than 3 retries: ${JSON.stringify(calls)}`);
          },
        }),
        ConnectError,
      );
      assert.deepEqual(calls, [[1, 10], [2, 20], [3, 40]]);
    },
  );

  await t.step("the first delay is 100 ms by default; the doubling stops at 2 s", async () => {
    const defaults: number[] = [];
    await assert.rejects(
      connect({
        port: unusedPort(),
        retries: 1,
        onRetry: (_, __, delayMs) => {
          defaults.push(delayMs);
          if (defaults.length > 1) throw new Error("more than 1 retry");
        },
      }),
      ConnectError,
    );
    assert.deepEqual(defaults, [100]);

    // The second retry's delay is reported before it is waited: stop there (onRetry's error ends it).
    const stop = new Error("stop after the second retry");
    const capped: number[] = [];
    await assert.rejects(
      connect({
        port: unusedPort(),
        retries: 5,
        retryDelayMs: 1100,
        onRetry: (_, __, delayMs) => {
          capped.push(delayMs);
          if (capped.length === 2) throw stop;
        },
      }),
      (error: unknown) => error === stop,
    );
    assert.deepEqual(capped, [1100, 2000]);
  });

  await t.step("without onRetry: the retries are made, then the ConnectError", async () => {
    await assert.rejects(
      within(connect({ port: unusedPort(), retries: 2, retryDelayMs: 1 }), WAIT_MS, "the retries"),
      ConnectError,
    );
  });
});

Deno.test("connect: connectTimeoutMs bounds a TLS handshake that never comes", async () => {
  // A TCP server that accepts and says nothing: the TLS handshake waits for its answer.
  const silent = rawServer();
  try {
    await assert.rejects(
      connect({ port: silent.port, tls: true, connectTimeoutMs: 300 }),
      (error: unknown) => {
        assert.ok(error instanceof TimeoutError, String(error));
        assert.equal(error.timeoutMs, 300);
        return true;
      },
    );
  } finally {
    (await silent.accepted).close();
    silent.close();
  }
});

Deno.test("LineConnection: state before and after the first lines", async (t) => {
  await t.step(
    "a new connection: no last line unterminated; pendingBytes counts the queue",
    async () => {
      await using server = await serve({ port: 0 }, (line) => line);
      await using client = await connect({ port: portOf(server) });
      assert.equal(client.lastLineUnterminated, false);
      client.enqueue("abc");
      client.enqueueBytes(encoder.encode("de\n"));
      assert.equal(client.pendingBytes, 7);
      await client.flush();
      assert.equal(client.pendingBytes, 0);
      assert.equal(await client.readLine(WAIT_MS), "abc");
    },
  );

  await t.step(
    "stripCR is on by default: a \\r before the \\n is not part of the line",
    async () => {
      await using server = await serve({ port: 0 }, (line) => `${line}\r`);
      await using client = await connect({ port: portOf(server) });
      assert.deepEqual(await client.request("ok"), ["ok"]);
    },
  );
});

Deno.test("readRawLine: each line is a copy the caller owns", async (t) => {
  await t.step("a line read whole from one chunk is not changed by the next read", async () => {
    const raw = rawServer();
    try {
      await using client = await connect({ port: raw.port });
      await using conn = await raw.accepted;
      await writeAll(conn, "first\n");
      const first = await client.readRawLine(WAIT_MS);
      await writeAll(conn, "SECOND\n");
      const second = await client.readRawLine(WAIT_MS);
      assert.equal(decoder.decode(first!), "first");
      assert.equal(decoder.decode(second!), "SECOND");
    } finally {
      raw.close();
    }
  });

  await t.step("a line that spanned two reads is not changed by the line after it", async () => {
    const raw = rawServer();
    try {
      await using client = await connect({ port: raw.port });
      await using conn = await raw.accepted;
      await writeAll(conn, "abc");
      const reading = client.readRawLine(WAIT_MS);
      // The first part is read (and held) before the rest is sent: the line spans two reads.
      await waitUntil(() => client.bytesRead === 3, WAIT_MS, "the first part read");
      await writeAll(conn, "def\nghi");
      const first = await reading;
      await writeAll(conn, "jkl\n");
      const second = await client.readRawLine(WAIT_MS);
      assert.equal(decoder.decode(first!), "abcdef");
      assert.equal(decoder.decode(second!), "ghijkl");
    } finally {
      raw.close();
    }
  });
});

Deno.test("LineConnection: failed reads and writes", async (t) => {
  await t.step("a timeout's message names the wait and the server", async () => {
    await using server = await serve({ port: 0 }, () => undefined);
    await using client = await connect({ port: portOf(server) });
    await assert.rejects(client.readLine(30), (error: unknown) => {
      assert.ok(error instanceof TimeoutError);
      assert.equal(
        error.message,
        `Timed out after 30 ms: waiting for a reply from tcp://127.0.0.1:${portOf(server)}`,
      );
      return true;
    });
  });

  await t.step("an abort rejects with the signal's own reason, not wrapped", async () => {
    await using server = await serve({ port: 0 }, () => undefined);
    await using client = await connect({ port: portOf(server) });
    const reason = new Error("stop");
    const controller = new AbortController();
    const reading = client.readLine({ signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(reading, (error: unknown) => error === reason);
  });

  await t.step({
    name: ignoredName(
      "a reset by the server: ConnectionLostError naming the server and the reset, then the end",
      PYTHON_MISSING,
    ),
    ignore: PYTHON_MISSING !== undefined,
    fn: async () => {
      await using reset = await startResetServer();
      await using client = await connect({ port: reset.port });
      await client.send("x");
      await assert.rejects(client.readLine(WAIT_MS), (error: unknown) => {
        assert.ok(error instanceof ConnectionLostError, String(error));
        assert.equal(
          error.message,
          `Connection to tcp://127.0.0.1:${reset.port} lost: connection reset`,
        );
        assert.ok(error.cause instanceof Deno.errors.ConnectionReset);
        return true;
      });
      // The failed read is not kept for the next call: that one reads again, and finds the end.
      assert.equal(await client.readLine(WAIT_MS), null);
    },
  });

  await t.step("after close(): send and closeWrite reject with ConnectionLostError", async () => {
    await using server = await serve({ port: 0 }, (line) => line);
    await using client = await connect({ port: portOf(server) });
    client.close();
    await assert.rejects(client.send("late"), ConnectionLostError);
    const closed = await connect({ port: portOf(server) });
    closed.close();
    await assert.rejects(closed.closeWrite(), ConnectionLostError);
  });
});

Deno.test("command: ids and responses", async (t) => {
  await t.step(
    "ids count from 1; a response to another id is skipped, one without an id is taken",
    async () => {
      const ids: unknown[] = [];
      await using server = await serve({ port: 0 }, (line) => {
        const { id, command } = JSON.parse(line);
        ids.push(id);
        if (command === "noid") return JSON.stringify({ status: 0, message: "no id" });
        return [
          JSON.stringify({ status: 0, message: "someone else's", id: 999 }),
          JSON.stringify({ status: 0, message: `for ${id}`, id }),
        ];
      });
      await using client = await connect({ port: portOf(server) });
      assert.equal((await client.command("a")).message, "for 1");
      assert.equal((await client.command("b")).message, "for 2");
      assert.equal((await client.command("noid", {}, { timeoutMs: WAIT_MS })).message, "no id");
      assert.deepEqual(ids, [1, 2, 3]);
    },
  );

  await t.step(
    "an error whose message is not a string: the RemoteError has it as JSON",
    async () => {
      await using server = await serve(
        { port: 0 },
        (line) => JSON.stringify({ status: 4, message: { why: [1] }, id: JSON.parse(line).id }),
      );
      await using client = await connect({ port: portOf(server) });
      await assert.rejects(client.command("x"), (error: unknown) => {
        assert.ok(error instanceof RemoteError);
        assert.equal(error.message, '{"why":[1]}');
        assert.equal(error.status, 4);
        return true;
      });
    },
  );

  await t.step("ConnectionLostError when the server closes before the response", async () => {
    await using server = await serve({ port: 0 }, (_, context) => {
      context.close();
      return undefined;
    });
    await using client = await connect({ port: portOf(server) });
    await assert.rejects(client.command("x", {}, { timeoutMs: WAIT_MS }), (error: unknown) => {
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.equal(
        error.message,
        `Connection closed by tcp://127.0.0.1:${portOf(server)} before the response`,
      );
      return true;
    });
  });
});

Deno.test("join", async (t) => {
  await using chat = chatProtocol();
  await using server = await serve({ port: 0 }, chat);
  const port = portOf(server);

  await t.step("without a name: only /join is sent; the next line is the room's", async () => {
    await using client = await connect({ port });
    await client.join("solo", { timeoutMs: WAIT_MS });
    await client.send("/who");
    assert.match((await client.readLine(WAIT_MS))!, /^\* members of solo: guest\d+$/);
  });

  await t.step(
    "the same name and room again: 'you are NAME' and 'already in' confirm it",
    async () => {
      await using client = await connect({ port });
      await client.join("ops", { name: "ann", timeoutMs: WAIT_MS });
      await client.join("ops", { name: "ann", timeoutMs: WAIT_MS });
      await client.send("/who");
      assert.equal(await client.readLine(WAIT_MS), "* members of ops: ann");
    },
  );

  await t.step("a name the server refuses: RemoteError with its reason", async () => {
    await using client = await connect({ port });
    await assert.rejects(
      client.join("ops", { name: "two words", timeoutMs: WAIT_MS }),
      (error: unknown) => {
        assert.ok(error instanceof RemoteError, String(error));
        assert.match(error.message, /^invalid name/);
        return true;
      },
    );
  });

  await t.step("ConnectionLostError when the server closes before confirming", async () => {
    await using closing = await serve({ port: 0 }, (_, context) => {
      context.close();
      return undefined;
    });
    await using client = await connect({ port: portOf(closing) });
    await assert.rejects(client.join("ops", { timeoutMs: WAIT_MS }), (error: unknown) => {
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.equal(
        error.message,
        `Connection closed by tcp://127.0.0.1:${portOf(closing)} before joining ops`,
      );
      return true;
    });
  });
});

Deno.test("parseJsonResponse: the exact error for each line that is not a response", () => {
  const rejects = (line: string, message: string) =>
    assert.throws(() => parseJsonResponse(line), (error: unknown) => {
      assert.ok(error instanceof RemoteError, `${line}: ${error}`);
      assert.equal(error.message, message);
      assert.equal(error.status, 1);
      return true;
    });
  rejects("PONG", "Not a JSON response: PONG");
  rejects("null", "Not a JSON response (no numeric status): null");
  rejects("42", "Not a JSON response (no numeric status): 42");
  rejects('{"status":"0"}', 'Not a JSON response (no numeric status): {"status":"0"}');
  const long = "x".repeat(300);
  rejects(long, `Not a JSON response: ${"x".repeat(200)}`);
  const noStatus = `{"message":"${long}"}`;
  rejects(noStatus, `Not a JSON response (no numeric status): ${noStatus.slice(0, 200)}`);
});

Deno.test({
  name: ignoredName("dispose of a TLS connection says goodbye (close_notify)", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await using certs = await makeTestCertificates();
    const pair = {
      cert: await Deno.readTextFile(certs.selfSigned.cert),
      key: await Deno.readTextFile(certs.selfSigned.key),
    };

    /**
     * A raw TLS server's first connection (handshake done) and its client. The client is
     * `insecure` (node:tls): its close() alone sends no close_notify, so only the goodbye of
     * dispose makes the end clean. (A client verified by Deno's TLS sends one on close() too,
     * as long as the process lives.)
     */
    async function tlsPair(): Promise<{ client: LineConnection; conn: Deno.TlsConn } & Disposable> {
      const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...pair });
      try {
        const accepted = listener.accept();
        const client = await connect({ port: listener.addr.port, tls: { insecure: true } });
        const conn = await accepted;
        await conn.handshake();
        return {
          client,
          conn,
          [Symbol.dispose]() {
            client.close();
            conn.close();
          },
        };
      } finally {
        listener.close();
      }
    }

    await t.step("the server reads the line, then a clean end (not UnexpectedEof)", async () => {
      using tls = await tlsPair();
      await tls.client.send("bye");
      await tls.client[Symbol.asyncDispose]();
      assert.deepEqual(await readUntilEnd(tls.conn), { text: "bye\n", end: "end" });
    });

    await t.step(
      "a server that reads nothing: dispose gives up on the goodbye and closes",
      async () => {
        using tls = await tlsPair();
        // More than the socket buffers hold: the flush, then the goodbye, wait for a reader.
        tls.client.enqueue("x".repeat(32 * 1024 * 1024));
        const flushing = tls.client.flush().catch((error) => error);
        await within(tls.client[Symbol.asyncDispose](), WAIT_MS, "the dispose");
        // The flush never completed (nothing was read): the close ended it as a lost connection
        // (node:tls's ECANCELED is mapped like Deno's own TLS reports it).
        const error = await within(flushing, WAIT_MS, "the flush");
        assert.ok(error instanceof ConnectionLostError, String(error));
      },
    );
  },
});

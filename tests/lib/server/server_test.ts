import assert from "node:assert/strict";
import { type LineProtocol, serve } from "../../../lib/server/mod.ts";
import { echoProtocol } from "../../../lib/protocols/echo.ts";
import { textProtocol } from "../../../lib/protocols/text.ts";
import { exchange, LineSession } from "../../_support/line_session.ts";
import { within } from "../../_support/cli.ts";
import { assertTookAbout, since, WAIT_MS } from "../../_support/timeouts.ts";
import { assertNothingListens } from "../../_support/ports.ts";
import { makeTestCertificates, OPENSSL_MISSING, readPem } from "../../_support/tls.ts";
import { ignoredName } from "../../_support/tools.ts";
import { gate } from "../../_support/gate.ts";

Deno.test("serve", async (t) => {
  await t.step(
    "a handler may return nothing, a line, several, a promise or an async iterable",
    async () => {
      await using server = await serve({ port: 0 }, async function* (line) {
        if (line === "none") return;
        yield `one ${line}`;
        await Promise.resolve();
        if (line === "two") yield "second";
      });
      assert.deepEqual(await exchange(server.addr, ["a", "none", "two", "b"]), [
        "one a",
        "one two",
        "second",
        "one b",
      ]);
      await using plain = await serve({ port: 0 }, (line) => {
        if (line === "none") return undefined;
        if (line === "many") return ["x", "y"];
        if (line === "later") return Promise.resolve("done later");
        return line.toUpperCase();
      });
      assert.deepEqual(await exchange(plain.addr, ["a", "none", "many", "later", "b"]), [
        "A",
        "x",
        "y",
        "done later",
        "B",
      ]);
    },
  );

  await t.step("replies keep the order of their lines, whatever each one waits for", async () => {
    await using server = await serve({ port: 0 }, async (line) => {
      // Later lines finish first unless the server keeps the order.
      await new Promise((resolve) => setTimeout(resolve, Number(line) % 3));
      return `r${line}`;
    });
    const lines = Array.from({ length: 60 }, (_, index) => `${index}`);
    assert.deepEqual(await exchange(server.addr, lines), lines.map((line) => `r${line}`));
  });

  await t.step("a half-closed client gets every reply, then the close", async () => {
    const release = gate();
    await using server = await serve({ port: 0 }, async (line) => {
      await release.promise;
      return `ok ${line}`;
    });
    await using session = await LineSession.open(server.addr);
    await session.write("1\n2\n3");
    await session.closeWrite();
    release.open();
    assert.deepEqual(await session.readAll(), ["ok 1", "ok 2", "ok 3"]);
  });

  await t.step("a handler error is one ERR line and the connection carries on", async () => {
    await using server = await serve({ port: 0 }, (line) => {
      if (line === "boom") throw new Error("boom");
      return line;
    });
    assert.deepEqual(await exchange(server.addr, ["a", "boom", "b"]), [
      "a",
      "ERR internal error",
      "b",
    ]);
    assert.equal(server.stats.errors, 1);
  });

  await t.step("context: id, peer, line number, send and close", async () => {
    await using server = await serve({ port: 0 }, (line, context) => {
      if (line === "bye") {
        context.close();
        return "closing";
      }
      void context.send(`pushed ${context.id}`);
      return `${context.peer.startsWith("127.0.0.1:")} ${context.lineNumber}`;
    });
    await using session = await LineSession.open(server.addr);
    await session.write("a\nb\nbye\nignored\n");
    assert.deepEqual(await session.readAll(), [
      "pushed 1",
      "true 1",
      "pushed 1",
      "true 2",
      "closing",
    ]);
  });

  await t.step("greeting comes first", async () => {
    await using server = await serve({ port: 0, greeting: "hello there" }, textProtocol());
    assert.deepEqual(await exchange(server.addr, ["PING"]), ["hello there", "PONG"]);
  });

  await t.step(
    "an over-long line gets ERR line too long, and the connection carries on",
    async () => {
      await using server = await serve({ port: 0, maxLineBytes: 16 }, textProtocol());
      await using session = await LineSession.open(server.addr);
      await session.write(`PING\n${"x".repeat(100_000)}\n`);
      await session.write("ECHO still here\n");
      await session.closeWrite();
      assert.deepEqual(await session.readAll(), [
        "PONG",
        "ERR line too long (limit 16 bytes)",
        "still here",
      ]);
    },
  );

  await t.step("closeAfterLines answers N lines, then closes", async () => {
    await using server = await serve({ port: 0, closeAfterLines: 2 }, textProtocol());
    await using session = await LineSession.open(server.addr);
    await session.write("PING\nping\nPING\n");
    assert.deepEqual(await session.readAll(), ["PONG", "pong"]);
  });

  await t.step("idle timeout: a farewell line, then the close", async () => {
    await using server = await serve({ port: 0, idleTimeoutMs: 100 }, textProtocol());
    await using silent = await LineSession.open(server.addr);
    await using stuck = await LineSession.open(server.addr);
    await stuck.write("PING\nPIN"); // a line that never gets its \n
    assert.deepEqual(await silent.readAll(), ["ERR idle timeout"]);
    assert.deepEqual(await stuck.readAll(), ["PONG", "ERR idle timeout"]);
  });

  for (
    const [state, writeBufferBytes, request, repeat] of [
      // The unsent replies pass the cap: the server stops reading and waits for the writes.
      ["stuck at the write-buffer cap", 16 * 1024, `ECHO ${"a".repeat(4000)}\n`, 400],
      // The unsent replies stay under the cap: the server reads on while a write is stuck.
      ["under the write-buffer cap", 64 * 1024 * 1024, `ECHO ${"b".repeat(16_000)}\n`, 64],
    ] as const
  ) {
    await t.step(
      `a client that stopped reading is dropped by the idle timeout (${state})`,
      async () => {
        const closed = gate();
        const text = textProtocol();
        await using server = await serve({
          port: 0,
          idleTimeoutMs: 300,
          writeTimeoutMs: 0,
          writeBufferBytes,
        }, {
          ...text,
          onConnect(context) {
            context.signal.addEventListener("abort", () => closed.open());
          },
        });
        const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
        const bytes = new TextEncoder().encode(request.repeat(16));
        // Writes until the server stops reading or drops us; never reads.
        const writing = (async () => {
          try {
            for (let attempt = 0; attempt < repeat; attempt++) {
              for (let offset = 0; offset < bytes.length;) {
                offset += await conn.write(bytes.subarray(offset));
              }
            }
          } catch {
            // Dropped.
          }
        })();
        await within(closed.promise, 15_000, "the server to drop the client");
        // One farewell, counted once (not once per sweep).
        assert.equal(server.stats.errors, 1);
        conn.close();
        await within(writing, 10_000, "the writer to stop");
      },
    );
  }

  await t.step("lines waiting behind an async reply cost no heap of their own", async () => {
    const hold = gate();
    const holdSeen = gate();
    const slow = gate();
    const slowSeen = gate();
    await using server = await serve({ port: 0 }, (line) => {
      if (line === "hold") {
        holdSeen.open();
        return hold.promise.then(() => "held");
      }
      if (line === "slow") {
        slowSeen.open();
        return slow.promise.then(() => "slow done");
      }
      return undefined;
    });
    await using session = await LineSession.open(server.addr);
    // Full reads grow the server's read buffer to its largest size; "hold" then stops it reading.
    await session.write(`${"w".repeat(1000)}\n`.repeat(4096) + "hold\n");
    await within(holdSeen.promise, 10_000, "the hold line");
    // Meanwhile "slow" and 8 MiB of empty lines reach the server's socket buffer.
    const flood = new Uint8Array(5 + 8 * 1024 * 1024).fill(0x0a);
    flood.set(new TextEncoder().encode("slow\n"));
    const firstPart = await session.conn.write(flood);
    assert.ok(firstPart >= 256 * 1024, `only ${firstPart} bytes reached the kernel`);
    const rest = session.write(flood.subarray(firstPart));
    // Reported below, or moot when an assertion fails first and the session closes.
    rest.catch(() => {});
    const before = Deno.memoryUsage().heapUsed;
    hold.open();
    // The server reads one full buffer: "slow" and the empty lines behind it.
    await within(slowSeen.promise, 10_000, "the slow line");
    const growth = Deno.memoryUsage().heapUsed - before;
    assert.ok(growth < 2 * 1024 * 1024, `the heap grew by ${growth} bytes`);
    slow.open();
    await within(rest, 30_000, "the rest of the flood");
    await session.closeWrite();
    assert.deepEqual(await session.readAll(), ["held", "slow done"]);
  });

  await t.step(
    "a chunk of HELP lines never queues more than writeBufferBytes + one reply",
    async () => {
      const text = textProtocol({ name: "h" });
      let mostQueued = 0;
      let lines = 0;
      await using server = await serve({ port: 0, writeBufferBytes: 4096 }, {
        ...text,
        onLine(line, context) {
          lines++;
          mostQueued = Math.max(mostQueued, context.queuedBytes);
          return text.onLine(line, context);
        },
      });
      await using session = await LineSession.open(server.addr);
      const count = 50_000;
      const writing = session.write("HELP\n".repeat(count)).then(() => session.closeWrite());
      const replies = await within(session.readAll(30_000), 30_000, "every reply");
      await writing;
      assert.equal(lines, count);
      assert.equal(replies.length, count);
      const reply = replies[0]!;
      assert.ok(
        mostQueued <= 4096 + reply.length + 1,
        `${mostQueued} bytes were queued (cap 4096, reply ${reply.length + 1})`,
      );
    },
  );

  await t.step("maxClients 1: the next client waits, beyond the queue: ERR busy", async () => {
    await using server = await serve({ port: 0, maxClients: 1, queue: 1 }, textProtocol());
    await using first = await LineSession.open(server.addr);
    await first.write("PING\n");
    assert.equal(await first.readLine(), "PONG");
    await using second = await LineSession.open(server.addr);
    await second.write("ECHO second\n");
    await using third = await LineSession.open(server.addr);
    assert.deepEqual(await third.readAll(), ["ERR busy"]);
    // The first client still has the slot; when it leaves, the waiting one is served.
    await first.write("QUIT\n");
    assert.deepEqual(await first.readAll(), ["BYE"]);
    assert.equal(await second.readLine(), "second");
  });

  await t.step(
    "a client that waits longer than queueTimeoutMs for a slot gets ERR busy",
    async () => {
      await using server = await serve(
        { port: 0, maxClients: 1, queueTimeoutMs: 200 },
        textProtocol(),
      );
      await using first = await LineSession.open(server.addr);
      await first.write("PING\n");
      assert.equal(await first.readLine(), "PONG");
      await using second = await LineSession.open(server.addr);
      await second.write("PING\n");
      assert.deepEqual(await second.readAll(), ["ERR busy"]);
      // The slot holder is unaffected.
      await first.write("PING\n");
      assert.equal(await first.readLine(), "PONG");
    },
  );

  await t.step("the queue holds 64 by default; the 65th waiting client gets ERR busy", async () => {
    await using server = await serve({ port: 0, maxClients: 1 }, textProtocol());
    await using first = await LineSession.open(server.addr);
    await first.write("PING\n");
    assert.equal(await first.readLine(), "PONG");
    const waiting: LineSession[] = [];
    try {
      for (let index = 0; index < 64; index++) waiting.push(await LineSession.open(server.addr));
      await using extra = await LineSession.open(server.addr);
      assert.deepEqual(await extra.readAll(), ["ERR busy"]);
      // The waiting ones are still there: the first in line is served once the slot frees.
      await first.write("QUIT\n");
      assert.deepEqual(await first.readAll(), ["BYE"]);
      await waiting[0]!.write("PING\n");
      assert.equal(await waiting[0]!.readLine(), "PONG");
    } finally {
      for (const session of waiting) session.close();
    }
  });

  await t.step("maxConnections: beyond it, ERR too many connections", async () => {
    await using server = await serve({ port: 0, maxConnections: 1 }, textProtocol());
    await using first = await LineSession.open(server.addr);
    await first.write("PING\n");
    assert.equal(await first.readLine(), "PONG");
    await using second = await LineSession.open(server.addr);
    assert.deepEqual(await second.readAll(), ["ERR too many connections"]);
  });

  for (const kind of ["echo", "text (HELP: 5 bytes in, 66 out)"] as const) {
    await t.step(
      `${kind}: a client that does not read stops being read; others are served`,
      async () => {
        const writeBufferBytes = 64 * 1024;
        let received = 0;
        const text = textProtocol({ name: "h" });
        const protocol: LineProtocol = kind === "echo"
          ? {
            ...echoProtocol(),
            onData(chunk, context) {
              received += chunk.length;
              context.sendRaw(chunk);
            },
          }
          : {
            ...text,
            onLine(line, context) {
              received += line.length + 1;
              return text.onLine(line, context);
            },
          };
        await using server = await serve({ port: 0, writeBufferBytes }, protocol);
        await using hog = await LineSession.open(server.addr);
        const chunk = kind === "echo"
          ? new Uint8Array(1024 * 1024).fill(0x61).fill(0x0a, -1)
          : new TextEncoder().encode("HELP\n".repeat(200 * 1024));
        let written = 0;
        await within(
          (async () => {
            // Writes until one does not finish within 2 s: the server stopped reading us.
            for (let attempt = 0; attempt < 256; attempt++) {
              const done = await within(hog.write(chunk).then(() => true), 2000, "write")
                .catch(() => false);
              if (!done) return;
              written += chunk.length;
            }
          })(),
          60_000,
          "the server to stop reading",
        );
        // What the server took in is bounded by configuration: its write buffer, two read buffers,
        // and the kernel's socket buffers (generously 16 MiB on loopback), not by what we sent.
        const bound = writeBufferBytes + 2 * 256 * 1024 + 16 * 1024 * 1024;
        assert.ok(received < bound, `the server read ${received} bytes (bound ${bound})`);
        assert.ok(written < bound + chunk.length, `${written} bytes were written`);
        assert.deepEqual(await exchange(server.addr, ["PING"]), [
          kind === "echo" ? "PING" : "PONG",
        ]);
        hog.close();
      },
    );
  }

  await t.step("writeTimeoutMs drops a client whose replies do not drain", async () => {
    await using server = await serve(
      { port: 0, writeBufferBytes: 64 * 1024, writeTimeoutMs: 200 },
      echoProtocol(),
    );
    const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
    const chunk = new Uint8Array(1024 * 1024).fill(0x0a);
    let failed: unknown;
    await within(
      (async () => {
        for (let attempt = 0; attempt < 256 && failed === undefined; attempt++) {
          await conn.write(chunk).catch((error) => failed = error);
        }
      })(),
      15_000,
      "the server to drop the client",
    );
    assert.ok(failed !== undefined, "the server never dropped the client");
    conn.close();
  });

  await t.step("shutdown answers lines already received, then closes everything", async () => {
    const release = gate();
    const bothSeen = gate();
    let calls = 0;
    const server = await serve({ port: 0 }, async (line) => {
      if (++calls === 2) bothSeen.open();
      await release.promise;
      return `late ${line}`;
    });
    await using busy = await LineSession.open(server.addr);
    await using idle = await LineSession.open(server.addr);
    await idle.write("first\n");
    await busy.write("a\nb\n");
    // "a" and "first" are being handled; "b" waits behind "a".
    await within(bothSeen.promise, 10_000, "both lines handled");
    const stopping = server.shutdown();
    release.open();
    await within(stopping, 10_000, "shutdown");
    assert.deepEqual(await busy.readAll(), ["late a", "late b"]);
    assert.deepEqual(await idle.readAll(), ["late first"]);
    await assert.rejects(Deno.connect({ port: (server.addr as Deno.NetAddr).port }));
    assert.equal(server.stats.connections, 2);
    assert.equal(server.stats.linesIn, 3);
    assert.equal(server.stats.linesOut, 3);
    assert.equal(server.stats.open, 0);
  });

  await t.step("shutdown answers a line that arrives as it starts", async () => {
    for (let round = 0; round < 40; round++) {
      const server = await serve({ port: 0 }, textProtocol());
      await using session = await LineSession.open(server.addr);
      await session.write("PING\n");
      assert.equal(await session.readLine(), "PONG");
      // The line is in the server's socket buffer before shutdown starts: it must be answered.
      await session.write("PING\n");
      const stopping = server.shutdown();
      const replies = await session.readAll();
      session.close();
      await within(stopping, 10_000, "shutdown");
      assert.deepEqual(replies, ["PONG"], `round ${round}`);
    }
  });

  await t.step(
    "shutdown closes a connection whose reply never comes after graceMs (not before, not the default), and the listener",
    async () => {
      // Two values, both far from the 5 s default: the close follows the configuration.
      for (const graceMs of [300, 1200]) {
        const seen = gate();
        const server = await serve({ port: 0, graceMs }, () => {
          seen.open();
          return new Promise<string>(() => {});
        });
        await using session = await LineSession.open(server.addr);
        await session.write("never answered\n");
        await within(seen.promise, WAIT_MS, "line handled");
        const started = performance.now();
        const stopping = server.shutdown();
        assert.deepEqual(await session.readAll(), []);
        assertTookAbout(
          since(started),
          graceMs,
          `graceMs ${graceMs}: the pending connection's close`,
        );
        await within(stopping, WAIT_MS, "shutdown");
        await assertNothingListens(server.addr);
      }
    },
  );

  await t.step("abort closes every connection at once, the waiting ones too", async () => {
    const server = await serve({ port: 0, maxClients: 1, queue: 1 }, textProtocol());
    await using served = await LineSession.open(server.addr);
    await served.write("PING\n");
    assert.equal(await served.readLine(), "PONG");
    await using waiting = await LineSession.open(server.addr);
    await waiting.write("PING\n");
    // The queue (1) is full once `waiting` is in it: a third client is refused at once.
    await using third = await LineSession.open(server.addr);
    assert.deepEqual(await third.readAll(), ["ERR busy"]);
    server.abort();
    assert.deepEqual(await served.readAll(), []);
    // The waiting connection is closed unanswered, and its slot turn passes without serving it.
    assert.deepEqual(await waiting.readAll(), []);
    await within(server.shutdown(), 10_000, "shutdown");
    assert.equal(server.stats.open, 0);
    assert.equal(server.stats.linesIn, 1);
  });

  await t.step(
    "an abort signal shuts the server down: finished, and the listener is closed",
    async () => {
      const controller = new AbortController();
      const server = await serve({ port: 0, signal: controller.signal }, textProtocol());
      assert.deepEqual(await exchange(server.addr, ["PING"]), ["PONG"]);
      controller.abort();
      await within(server.finished, 10_000, "finished");
      await assertNothingListens(server.addr);
    },
  );

  await t.step("IPv6 loopback works", async () => {
    await using server = await serve({ hostname: "::1", port: 0 }, textProtocol());
    assert.match(server.url, /^tcp:\/\/\[::1\]:\d+$/);
    assert.deepEqual(await exchange(server.addr, ["PING"]), ["PONG"]);
  });

  await t.step(
    "PROXY protocol: v1 and v2 set the peer and remoteAddr seen by handlers",
    async () => {
      const seen: string[] = [];
      await using server = await serve({ port: 0, proxyProtocol: true }, (line, context) => {
        const addr = context.remoteAddr as Deno.NetAddr;
        seen.push(`${context.peer} ${addr.hostname} ${addr.port}`);
        return `${line} from ${context.peer}`;
      });
      // The header and the first line may arrive in one chunk.
      assert.deepEqual(
        await exchange(server.addr, ["PROXY TCP4 192.0.2.7 127.0.0.1 40001 1991\r\nhello"]),
        ["hello from 192.0.2.7:40001"],
      );
      await using session = await LineSession.open(server.addr);
      await session.write(proxyV2([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x09], 40002));
      await session.write("six\n");
      assert.deepEqual(await session.readLines(1), ["six from [2001:db8::9]:40002"]);
      assert.deepEqual(seen, [
        "192.0.2.7:40001 192.0.2.7 40001",
        "[2001:db8::9]:40002 2001:db8::9 40002",
      ]);
    },
  );

  await t.step("PROXY protocol: LOCAL keeps the socket's own address", async () => {
    await using server = await serve(
      { port: 0, proxyProtocol: true },
      (_line, context) => context.peer,
    );
    await using session = await LineSession.open(server.addr);
    const local = proxyV2([], 0, 0x20);
    await session.write(new Uint8Array([...local, ...new TextEncoder().encode("who\n")]));
    const [peer] = await session.readLines(1);
    assert.match(peer!, /^127\.0\.0\.1:\d+$/);
  });

  await t.step(
    "PROXY protocol: no header, a bad one, or a slow one: an error line, then close",
    async () => {
      await using server = await serve(
        { port: 0, proxyProtocol: true, proxyHeaderTimeoutMs: 200 },
        textProtocol({ name: "p" }),
      );
      assert.deepEqual(await exchange(server.addr, ["PING"]), [
        "ERR invalid PROXY protocol header: the connection does not start with a PROXY header",
      ]);
      assert.deepEqual(await exchange(server.addr, ["PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r"]), [
        'ERR invalid PROXY protocol header: bad TCP4 source address "999.1.1.1" (expected a dotted ' +
        "quad such as 192.0.2.1: four numbers 0-255 without leading zeros)",
      ]);
      await using slow = await LineSession.open(server.addr);
      await slow.write("PROXY TCP4 ");
      assert.deepEqual(await slow.readAll(), ["ERR no PROXY protocol header within 200 ms"]);
      // Without the option, a PROXY line is just a line.
      await using plain = await serve({ port: 0 }, textProtocol({ name: "p" }));
      assert.deepEqual(await exchange(plain.addr, ["PROXY TCP4 1.2.3.4 127.0.0.1 1 2"]), [
        "ERR unknown command: PROXY",
      ]);
    },
  );

  await t.step(
    "PROXY protocol in front of echo: the bytes after the header come back",
    async () => {
      await using server = await serve({ port: 0, proxyProtocol: true }, echoProtocol());
      await using session = await LineSession.open(server.addr);
      await session.write("PROXY TCP4 192.0.2.1 127.0.0.1 5 6\r\nab");
      await session.write("c\n");
      assert.deepEqual(await session.readLines(1), ["abc"]);
    },
  );
});

Deno.test({
  name: ignoredName("serve over TLS", OPENSSL_MISSING),
  ignore: OPENSSL_MISSING !== undefined,
  async fn(t) {
    await using certificates = await makeTestCertificates();
    const tls = await readPem(certificates.server);

    await t.step(
      "refusals under way are capped: past 64, a refused connection closes without its line",
      async () => {
        const server = await serve({ port: 0, tls, maxConnections: 2 }, textProtocol());
        const port = (server.addr as Deno.NetAddr).port;
        const caCerts = [await Deno.readTextFile(certificates.caFile)];
        const connectTls = () => Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
        const conns: Deno.Conn[] = [];
        try {
          // Two real clients hold both slots.
          const holders = [await connectTls(), await connectTls()];
          conns.push(...holders);
          for (const holder of holders) await holder.handshake();
          // Plain TCP clients never start the TLS handshake, so the refusal line cannot leave and
          // each refusal stays under way (up to its 1 s bound).
          for (let index = 0; index < 200; index++) conns.push(await Deno.connect({ port }));
          // A slot frees; the next TLS client is accepted after every refused one (the backlog
          // is in order), so its answer means all 200 refusals have started.
          conns.shift()!.close();
          let answered = "";
          for (let attempt = 0; attempt < 100 && answered !== "PONG\n"; attempt++) {
            const conn = await connectTls();
            conns.push(conn);
            const reply = new Uint8Array(64);
            // A client still refused without a line sees its connection close (the descriptor is
            // really released, also mid-handshake): it tries again.
            const exchanged = conn.write(new TextEncoder().encode("PING\n")).then(() =>
              conn.read(reply)
            );
            const count = await within(exchanged, 10_000, "a reply").catch(() => null);
            answered = count === null ? "" : new TextDecoder().decode(reply.subarray(0, count));
          }
          assert.equal(answered, "PONG\n");
          // Only the refusals within the cap sent (and counted) their error line.
          assert.ok(
            server.stats.errors >= 64 && server.stats.errors < 150,
            `${server.stats.errors} refusal lines for 200 refused connections`,
          );
        } finally {
          for (const conn of conns) conn.close();
          await within(server.shutdown(), 15_000, "shutdown");
        }
      },
    );
  },
});

/** A PROXY v2 header: an IPv6 source (or LOCAL when `command` is 0x20 and `source` is empty). */
function proxyV2(source: number[], port: number, versionCommand = 0x21): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  if (source.length === 0) return new Uint8Array([...signature, versionCommand, 0x00, 0, 0]);
  const destination = [...new Array(15).fill(0), 1];
  const body = [...source, ...destination, port >> 8, port & 0xff, 0x07, 0xc7];
  return new Uint8Array([...signature, versionCommand, 0x21, 0, body.length, ...body]);
}

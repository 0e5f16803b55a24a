/**
 * Tests written for the mutants of lib/client/conversation.ts (the conversation engine behind
 * `linesock send` and the repl) that the client area's other tests let survive (issue #20,
 * docs/mutation.md, "lib/client (conversation.ts)"): the error rule on bytes, the reply ledger's
 * edges, `Conversation.read`'s replies, and each rule of `runExchange` (greeting lines, the three
 * modes' endings, flushing as replies come, input errors, write failures, JSON printing). Real
 * servers on port 0 (one on a Unix socket), real sockets; every wait is bounded.
 */
import assert from "node:assert/strict";
import { connect, type ConnectOptions, type LineConnection } from "../../../lib/client/client.ts";
import {
  Conversation,
  type ExchangeOptions,
  type ExchangeResult,
  isErrorReply,
  ReplyLedger,
  runExchange,
} from "../../../lib/client/conversation.ts";
import {
  ConnectionLostError,
  LineTooLongError,
  RemoteError,
  TimeoutError,
} from "../../../lib/errors.ts";
import {
  type ConnectionContext,
  type LineHandler,
  type LineProtocol,
  serve,
} from "../../../lib/server/mod.ts";
import { assertTookAbout, since, WAIT_MS, within } from "../../_support/timeouts.ts";
import { ignoredName } from "../../_support/tools.ts";
import { gate } from "../../_support/gate.ts";
import { PYTHON_MISSING } from "../../_support/reset_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Resolves after `ms`: only where the scenario is a slow peer (never to wait for an event). */
function later(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The exchange's standard output: records what is printed; {@linkcode shows} waits (bounded) until
 * some text was written; {@linkcode hold} keeps the next writes from completing (a terminal that
 * stopped reading), which parks the exchange's reader in its flush.
 */
class Printed {
  #chunks: Uint8Array[] = [];
  #changed = new Set<() => void>();
  #held: Promise<void> | undefined;

  get text(): string {
    return this.#chunks.map((chunk) => decoder.decode(chunk)).join("");
  }

  write = async (bytes: Uint8Array): Promise<number> => {
    this.#chunks.push(bytes.slice());
    for (const wake of this.#changed) wake();
    await this.#held;
    return bytes.length;
  };

  /** Waits until `text` was written. */
  async shows(text: string): Promise<void> {
    while (!this.text.includes(text)) {
      await within(
        new Promise<void>((resolve) => this.#changed.add(resolve)),
        WAIT_MS,
        `the exchange to print ${JSON.stringify(text)} (printed so far: ${
          JSON.stringify(this.text)
        })`,
      ).finally(() => this.#changed.clear());
    }
  }

  /** Writes from now on complete only once the returned function is called. */
  hold(): () => void {
    const released = gate();
    this.#held = released.promise;
    return () => {
      this.#held = undefined;
      released.open();
    };
  }
}

/**
 * Input that the test feeds while the exchange runs. {@linkcode asked} tells when the exchange asked
 * for its n-th chunk (so took every chunk before it); {@linkcode stopped} when it stopped reading it.
 */
class Feed implements AsyncIterable<Uint8Array> {
  #queue: Uint8Array[] = [];
  #ended = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #asks = 0;
  #askWaiters: { n: number; resolve: () => void }[] = [];
  readonly stopped = Promise.withResolvers<void>();
  isStopped = false;

  push(text: string): void {
    this.#queue.push(encoder.encode(text));
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  /** The next ask (once the queue is empty) throws `error`: input that fails to read. */
  fail(error: Error): void {
    this.#failure = error;
    this.#wake?.();
  }

  asked(n: number): Promise<void> {
    if (this.#asks >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#askWaiters.push({ n, resolve });
    return promise;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        this.#asks++;
        for (const waiter of this.#askWaiters) if (this.#asks >= waiter.n) waiter.resolve();
        while (this.#queue.length === 0 && !this.#ended && this.#failure === undefined) {
          await new Promise<void>((resolve) => this.#wake = resolve);
        }
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          yield chunk;
          continue;
        }
        if (this.#failure !== undefined) throw this.#failure;
        return;
      }
    } finally {
      this.isStopped = true;
      this.stopped.resolve();
    }
  }
}

/**
 * A linesock server for one test: a handler, or a protocol. With `holdOpen`, the server keeps each
 * connection open after the client's half-close, until the fixture is disposed.
 */
async function lineServer(
  handler: LineHandler | LineProtocol,
  options: { holdOpen?: boolean } = {},
) {
  const released = gate();
  const protocol: LineHandler | LineProtocol = !options.holdOpen ? handler : {
    ...(typeof handler === "function"
      ? {
        onLine: (bytes: Uint8Array, context: ConnectionContext) =>
          handler(decoder.decode(bytes), context),
      }
      : handler),
    onEnd: () => released.promise,
  };
  const server = await serve({ port: 0 }, protocol);
  const port = (server.addr as Deno.NetAddr).port;
  return {
    server,
    port,
    connect: (options: ConnectOptions = {}) => connect({ port, stripCR: false, ...options }),
    [Symbol.asyncDispose]: async () => {
      released.open();
      await server[Symbol.asyncDispose]();
    },
  };
}

/** Text input as chunks. */
const chunks = (...texts: string[]): Uint8Array[] => texts.map((text) => encoder.encode(text));

/** Runs an exchange, its wait bounded. */
function exchange(
  connection: LineConnection,
  printed: Printed,
  options: Omit<ExchangeOptions, "output">,
): Promise<ExchangeResult> {
  return within(
    runExchange(connection, { ...options, output: printed }),
    WAIT_MS,
    "the exchange to end",
  );
}

/** A remote address as printed in messages. */
const remote = (port: number) => `tcp://127.0.0.1:${port}`;

// ---------------------------------------------------------------------------------------------
// The error rule, the ledger, Conversation.read

Deno.test("isErrorReply on bytes: each of E, R, R and the word boundary decides", () => {
  for (const line of ["xRR", "ExR", "ERx", "xxR", "ERR0", "ERR9", "ERRa", "ERRz", "ERRA", "ERRZ"]) {
    assert.equal(isErrorReply(encoder.encode(line)), false, line);
    assert.equal(isErrorReply(line), false, line);
  }
  // The bytes right outside each range of word bytes end the word.
  for (const line of ["ERR/", "ERR:", "ERR@", "ERR[", "ERR`", "ERR{", "ERR"]) {
    assert.equal(isErrorReply(encoder.encode(line)), true, line);
    assert.equal(isErrorReply(line), true, line);
  }
});

Deno.test("ReplyLedger: the edges of recording, crediting and settling", async (t) => {
  await t.step("the default clock gives a real round-trip time", () => {
    const ledger = new ReplyLedger();
    ledger.record({ replies: 1 }, undefined);
    const roundTripMs = ledger.credit()?.roundTripMs;
    assert.ok(Number.isFinite(roundTripMs) && roundTripMs! >= 0, String(roundTripMs));
  });

  await t.step("oldest is the oldest open line", () => {
    const ledger = new ReplyLedger<string>();
    assert.equal(ledger.oldest?.data, undefined);
    ledger.record({ replies: 1 }, "a");
    ledger.record({ replies: 1 }, "b");
    assert.equal(ledger.oldest?.data, "a");
    ledger.credit();
    assert.equal(ledger.oldest?.data, "b");
  });

  await t.step("a line that expects no reply is settled at once", () => {
    const ledger = new ReplyLedger();
    assert.equal(ledger.record({ replies: 0 }, undefined).settled, true);
    assert.equal(ledger.record({ replies: 1 }, undefined).settled, false);
  });

  await t.step("past the bound, lines recorded are not kept until cleared", () => {
    const ledger = new ReplyLedger();
    for (let i = 0; i <= 10_000; i++) ledger.record({ replies: 1 }, undefined);
    assert.equal(ledger.size, 0);
    ledger.record({ replies: 1 }, undefined);
    assert.equal(ledger.size, 0);
    ledger.clear();
    ledger.record({ replies: 1 }, undefined);
    assert.equal(ledger.size, 1);
  });

  await t.step("claimedBy credits the line it names, not the oldest", () => {
    const ledger = new ReplyLedger<string>();
    ledger.record("unknown", "route");
    const help = ledger.record("unknown", "HELP");
    const credit = ledger.credit({ claimedBy: help });
    assert.equal(credit?.request.data, "HELP");
    assert.equal(help.settled, true);
    assert.equal(ledger.size, 1);
    assert.equal(ledger.oldest?.data, "route");
  });

  await t.step("a reply by id passes over lines of unknown and counted replies", () => {
    const ledger = new ReplyLedger<string>();
    ledger.record("unknown", "route");
    ledger.record({ replies: 1 }, "PING");
    ledger.record({ id: 7 }, "seven");
    assert.equal(ledger.credit({ id: 7 })?.request.data, "seven");
    assert.equal(ledger.credit({ id: 8 }), undefined);
    assert.equal(ledger.size, 2);
  });

  await t.step("settling a line that is not open leaves the open ones", () => {
    const ledger = new ReplyLedger<string>();
    const none = ledger.record({ replies: 0 }, "none");
    const a = ledger.record("unknown", "a");
    ledger.record({ replies: 1 }, "b");
    ledger.settle(none);
    ledger.settle(a);
    ledger.settle(a);
    assert.equal(ledger.size, 1);
    assert.equal(ledger.oldest?.data, "b");
  });

  await t.step("clear settles the lines it forgets", () => {
    const ledger = new ReplyLedger();
    const open = ledger.record("unknown", undefined);
    ledger.clear();
    assert.equal(open.settled, true);
  });
});

Deno.test("Conversation.read: timeouts thrown, too-long replies empty, JSON ids of either type", async () => {
  await using fixture = await lineServer((line) => {
    if (line === "long") return "x".repeat(100);
    if (line === "late") return undefined;
    return JSON.stringify({ status: 0, message: "m", id: line === "n" ? 5 : line });
  });
  await using connection = await fixture.connect({ maxLineBytes: 60 });
  const conversation = new Conversation(connection, { json: true });
  conversation.enqueue("late", "unknown");
  await conversation.flush();
  await assert.rejects(conversation.read(50), TimeoutError);
  conversation.enqueue("long", { replies: 1 });
  conversation.enqueue("abc", { id: "abc" });
  conversation.enqueue("n", { id: 5 });
  await conversation.flush();
  const long = (await conversation.read({ timeoutMs: WAIT_MS }))!;
  assert.ok(long.error instanceof LineTooLongError);
  assert.equal(long.text, "");
  assert.equal(long.bytes.length, 0);
  assert.equal(long.unterminated, false);
  const named = (await conversation.read({ timeoutMs: WAIT_MS }))!;
  assert.equal(named.id, "abc");
  const numbered = (await conversation.read({ timeoutMs: WAIT_MS }))!;
  assert.equal(numbered.id, 5);
});

// ---------------------------------------------------------------------------------------------
// Greeting lines

/** A server that greets with `greeting` lines on connect, then answers each line with itself. */
async function greetingServer(greeting: string[]) {
  let context: ConnectionContext | undefined;
  const connected = Promise.withResolvers<ConnectionContext>();
  const fixture = await lineServer({
    onConnect: (ctx) => {
      context = ctx;
      connected.resolve(ctx);
      return greeting;
    },
    onLine: (bytes) => `re ${decoder.decode(bytes)}`,
  });
  return { ...fixture, connected: connected.promise, context: () => context };
}

Deno.test("runExchange greetingLines", async (t) => {
  await t.step(
    "read and printed as they come, before any input goes out; not replies",
    async () => {
      await using fixture = await greetingServer(["hello 1"]);
      await using connection = await fixture.connect();
      const printed = new Printed();
      const seen: string[] = [];
      const running = exchange(connection, printed, {
        input: chunks("x\n"),
        replies: 1,
        greetingLines: 2,
        onReply: (reply) => seen.push(reply.text),
      });
      // The second greeting line comes only once the first is on the screen: the exchange must
      // print it while it waits, and send nothing before the greeting is complete.
      await printed.shows("hello 1\n");
      await (await fixture.connected).send("hello 2");
      const result = await running;
      assert.equal(printed.text, "hello 1\nhello 2\nre x\n");
      assert.equal(result.greetingLines, 2);
      assert.equal(result.replies, 1);
      assert.equal(result.linesSent, 1);
      assert.deepEqual(seen, ["hello 1", "hello 2", "re x"]);
    },
  );

  await t.step("a greeting line over the limit is counted and left out", async () => {
    await using fixture = await greetingServer(["g".repeat(100), "hi"]);
    await using connection = await fixture.connect({ maxLineBytes: 60 });
    const printed = new Printed();
    // Neither onReply nor onTooLong: both are optional.
    const result = await exchange(connection, printed, {
      input: chunks("x\n"),
      replies: 1,
      greetingLines: 2,
    });
    assert.equal(printed.text, "hi\nre x\n");
    assert.equal(result.greetingLines, 2);
    assert.equal(result.tooLong, 1);
    const tooLong: number[] = [];
    await using again = await fixture.connect({ maxLineBytes: 60 });
    await exchange(again, new Printed(), {
      input: chunks("x\n"),
      replies: 1,
      greetingLines: 2,
      onTooLong: (error) => tooLong.push(error.limit),
    });
    assert.deepEqual(tooLong, [60]);
  });

  await t.step("as JSON objects with jsonOutput, after the prefix otherwise", async () => {
    await using fixture = await greetingServer(["hello"]);
    await using connection = await fixture.connect();
    const printed = new Printed();
    await exchange(connection, printed, {
      input: chunks("x\n"),
      replies: 1,
      greetingLines: 1,
      jsonOutput: true,
    });
    assert.equal(printed.text.split("\n")[0], '{"line":"hello","bytes":5}');
    await using again = await fixture.connect();
    const prefixed = new Printed();
    await exchange(again, prefixed, {
      input: chunks("x\n"),
      greetingLines: 1,
      prefix: () => "> ",
    });
    assert.equal(prefixed.text, "> hello\n> re x\n");
  });

  await t.step("a greeting line that does not come: TimeoutError naming it", async () => {
    await using fixture = await greetingServer(["hello 1"]);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const error = await exchange(connection, printed, {
      input: chunks("x\n"),
      greetingLines: 2,
      timeoutMs: 200,
    }).then(() => undefined, (error) => error);
    assert.ok(error instanceof TimeoutError, String(error));
    assert.equal(
      error.message,
      `Timed out after 200 ms: greeting line 2 of 2 (--greeting-lines) from ${
        remote(fixture.port)
      }`,
    );
    assert.equal(error.timeoutMs, 200);
    assert.equal(printed.text, "hello 1\n");
  });

  await t.step(
    "the server closes during the greeting: ConnectionLostError with the count",
    async () => {
      await using fixture = await lineServer({
        onConnect: (context) => {
          context.close();
          return "bye";
        },
        onLine: () => undefined,
      });
      await using connection = await fixture.connect();
      await assert.rejects(
        exchange(connection, new Printed(), { input: chunks("x\n"), greetingLines: 2 }),
        (error: Error) => {
          assert.ok(error instanceof ConnectionLostError, String(error));
          assert.equal(
            error.message,
            `Connection closed by ${
              remote(fixture.port)
            } after 1 of 2 greeting lines (--greeting-lines)`,
          );
          return true;
        },
      );
    },
  );

  await t.step("a greeting read that fails is that failure, not a timeout", async () => {
    await using fixture = await greetingServer(["hello 1"]);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const running = exchange(connection, printed, { input: chunks("x\n"), greetingLines: 2 });
    await printed.shows("hello 1\n");
    connection.close();
    const error = await running.then(() => undefined, (error) => error);
    assert.ok(error instanceof ConnectionLostError, String(error));
  });
});

// ---------------------------------------------------------------------------------------------
// Stream mode

Deno.test("runExchange stream mode", async (t) => {
  await t.step(
    "encodeLine: lines framed, encoded, skipped, each sent before the next is read",
    async () => {
      await using fixture = await lineServer((line) => `<${line}>`);
      await using connection = await fixture.connect();
      const printed = new Printed();
      const feed = new Feed();
      const sent: string[] = [];
      const running = exchange(connection, printed, {
        input: feed,
        encodeLine: (line) => {
          const text = decoder.decode(line);
          return text === "skip" ? undefined : text.toUpperCase();
        },
        onSent: (bytes) => sent.push(decoder.decode(bytes)),
      });
      feed.push("a\n");
      await printed.shows("<A>\n");
      feed.push("skip\nb");
      feed.end();
      const result = await running;
      assert.equal(printed.text, "<A>\n<B>\n");
      assert.deepEqual(sent, ["A\n", "B\n"]);
      assert.equal(result.linesSent, 2);
      assert.equal(result.ending, "closed");
      assert.equal(result.inputComplete, true);
    },
  );

  await t.step("without encodeLine: chunks relayed as given, empty ones skipped", async () => {
    await using fixture = await lineServer((line) => `<${line}>`);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const sent: string[] = [];
    const result = await exchange(connection, printed, {
      input: chunks("a\nb\n", "c\n", ""),
      onSent: (bytes) => sent.push(decoder.decode(bytes)),
    });
    assert.deepEqual(sent, ["a\nb\n", "c\n"]);
    assert.equal(result.linesSent, 3);
    assert.equal(printed.text, "<a>\n<b>\n<c>\n");
  });

  await t.step(
    "halfClose false: no half-close; a last line without \\n gets one, sent",
    async () => {
      await using fixture = await lineServer((line) => `<${line}>`);
      await using connection = await fixture.connect();
      const printed = new Printed();
      const sent: string[] = [];
      let halfClosed = false;
      // The server never sees an end of input, so it never closes: with awaitClose the exchange
      // ends by its timeout after printing the reply to the line completed by the added \n.
      const error = await exchange(connection, printed, {
        input: chunks("x"),
        halfClose: false,
        awaitClose: true,
        timeoutMs: 1500,
        onSent: (bytes) => sent.push(decoder.decode(bytes)),
        onHalfClose: () => halfClosed = true,
      }).then(() => undefined, (error) => error);
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(printed.text, "<x>\n");
      assert.deepEqual(sent, ["x", "\n"]);
      assert.equal(halfClosed, false);
    },
  );

  await t.step("replies are printed as they come, while the exchange waits for more", async () => {
    const last = gate();
    await using fixture = await lineServer({
      onLine: (bytes) => `r ${decoder.decode(bytes)}`,
      onEnd: () => last.promise.then(() => "last"),
    });
    await using connection = await fixture.connect();
    const printed = new Printed();
    const running = exchange(connection, printed, { input: chunks("a\n"), waitMs: 0 });
    await printed.shows("r a\n");
    last.open();
    const result = await running;
    assert.equal(printed.text, "r a\nlast\n");
    assert.equal(result.ending, "closed");
  });

  await t.step("silence is not counted while the input is still open (slow input)", async () => {
    await using fixture = await lineServer((line) => line);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const feed = new Feed();
    const running = exchange(connection, printed, { input: feed, waitMs: 50 });
    feed.push("a\n");
    await printed.shows("a\n");
    // The scenario: the next input line comes long after waitMs (a person typing).
    await later(300);
    feed.push("b\n");
    await printed.shows("b\n");
    feed.end();
    const result = await running;
    assert.equal(result.ending, "closed");
    assert.equal(printed.text, "a\nb\n");
  });

  await t.step("the input may end while the reader is busy printing", async () => {
    await using fixture = await lineServer((line) => line);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const feed = new Feed();
    const halfClosed = gate();
    const release = printed.hold();
    const running = exchange(connection, printed, {
      input: feed,
      onHalfClose: () => halfClosed.open(),
    });
    feed.push("a\n");
    // The reader is now stuck writing "a": the input ends under it.
    await printed.shows("a\n");
    feed.end();
    await within(halfClosed.promise, WAIT_MS, "the half-close");
    release();
    const result = await running;
    assert.equal(result.ending, "closed");
    assert.equal(printed.text, "a\n");
  });

  await t.step("waitMs bounds the silence after the input; 0 waits for the close", async () => {
    await using quiet = await lineServer(() => undefined, { holdOpen: true });
    await using connection = await quiet.connect();
    let inputEnd = 0;
    const result = await exchange(connection, new Printed(), {
      input: chunks("x\n"),
      waitMs: 200,
      onHalfClose: () => inputEnd = performance.now(),
    });
    assert.equal(result.ending, "silence");
    assertTookAbout(since(inputEnd), 200, "silence after the input");

    // A server that answers 300 ms after the end of input: with waitMs 0 its reply is awaited.
    await using slow = await lineServer({
      onLine: () => undefined,
      onEnd: () => later(300).then(() => "late"),
    });
    await using patient = await slow.connect();
    const printed = new Printed();
    const waited = await exchange(patient, printed, { input: chunks("x\n"), waitMs: 0 });
    assert.equal(waited.ending, "closed");
    assert.equal(printed.text, "late\n");
  });

  await t.step(
    "awaitClose: silence after the input is a TimeoutError after timeoutMs",
    async () => {
      await using fixture = await lineServer(() => undefined, { holdOpen: true });
      await using connection = await fixture.connect();
      const error = await exchange(connection, new Printed(), {
        input: chunks("x\n"),
        awaitClose: true,
        waitMs: 0,
        timeoutMs: 200,
      }).then(() => undefined, (error) => error);
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(
        error.message,
        `Timed out after 200 ms: waiting for a reply from ${
          remote(fixture.port)
        } after the input ended`,
      );
      assert.equal(error.timeoutMs, 200);
    },
  );

  await t.step(
    "until: no match within timeoutMs is a TimeoutError naming the pattern",
    async () => {
      await using fixture = await lineServer((line) => line, { holdOpen: true });
      await using connection = await fixture.connect();
      const printed = new Printed();
      const error = await exchange(connection, printed, {
        input: chunks("x\n"),
        until: /never/,
        waitMs: 0,
        timeoutMs: 200,
      }).then(() => undefined, (error) => error);
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(
        error.message,
        `Timed out after 200 ms: no reply from ${remote(fixture.port)} matched /never/`,
      );
      assert.equal(printed.text, "x\n");
    },
  );

  for (const framed of [false, true]) {
    await t.step(
      `until matched: the input is not sent on (${framed ? "framed" : "relayed"})`,
      async () => {
        await using fixture = await lineServer((line) => line);
        await using connection = await fixture.connect();
        const feed = new Feed();
        feed.push("a\n");
        const sent: string[] = [];
        const result = await exchange(connection, new Printed(), {
          input: feed,
          until: /^a$/,
          ...(framed ? { encodeLine: (line: Uint8Array) => line } : {}),
          onSent: (bytes) => sent.push(decoder.decode(bytes)),
        });
        assert.equal(result.ending, "until");
        assert.equal(result.inputComplete, false);
        // More input after the end: the writer stops at it instead of sending it.
        await feed.asked(2);
        feed.push("b\n");
        await within(
          Promise.race([feed.stopped.promise, feed.asked(3)]),
          WAIT_MS,
          "the writer to take the next input",
        );
        assert.equal(feed.isStopped, true);
        assert.deepEqual(sent, ["a\n"]);
        assert.equal(result.linesSent, 1);
      },
    );
  }

  await t.step(
    "an over-long input line: the exchange fails with it once the replies end",
    async () => {
      await using fixture = await lineServer((line) => line);
      await using connection = await fixture.connect();
      const printed = new Printed();
      const error = await exchange(connection, printed, {
        input: chunks("ok\n", "0123456789\n"),
        encodeLine: (line) => line,
        maxLineBytes: 8,
        waitMs: 100,
      }).then(() => undefined, (error) => error);
      assert.ok(error instanceof RangeError, String(error));
      assert.equal(error.message, "Input line 2 is longer than 8 bytes (the line limit)");
    },
  );

  await t.step(
    "input that fails to read: the exchange fails with it when the server closes",
    async () => {
      await using fixture = await greetingServer([]);
      await using connection = await fixture.connect();
      const printed = new Printed();
      const feed = new Feed();
      const running = exchange(connection, printed, { input: feed, waitMs: 0 });
      feed.push("a\n");
      await printed.shows("re a\n");
      await feed.asked(2);
      feed.fail(new Error("input broke"));
      await within(feed.stopped.promise, WAIT_MS, "the writer to stop");
      fixture.context()!.close();
      await assert.rejects(running, /input broke/);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Write and read failures in stream mode: a reset (python3, since Deno cannot make one), a broken pipe

/**
 * A one-connection TCP server in python3 that ends with a reset (SO_LINGER {1, 0}). `first-line`:
 * reads a line, answers `first`, and resets when the test says so; `end`: reads to the client's
 * half-close, then resets. It prints its port, then `reset` once it did.
 */
const RESETTING_SERVER = `
import socket, struct, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
if sys.argv[1] == "first-line":
    data = b""
    while b"\\n" not in data:
        data += conn.recv(4096)
    conn.sendall(b"first\\n")
    sys.stdin.readline()
else:
    while conn.recv(4096):
        pass
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
print("reset", flush=True)
sys.stdin.read()
`;

async function resettingServer(mode: "first-line" | "end") {
  const child = new Deno.Command("python3", {
    args: ["-c", RESETTING_SERVER, mode],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  const line = async (what: string) => {
    while (!printed.includes("\n")) {
      const { value, done } = await within(lines.read(), WAIT_MS, what);
      if (done) throw new Error(`the python server ended before ${what}`);
      printed += value;
    }
    const [first] = printed.split("\n", 1);
    printed = printed.slice(first!.length + 1);
    return first!;
  };
  const port = Number(await line("its port"));
  const stdin = child.stdin.getWriter();
  return {
    port,
    /** Resets the connection now (`first-line`) and waits until it did. */
    async reset(): Promise<void> {
      await stdin.write(encoder.encode("go\n"));
      assert.equal(await line("the reset"), "reset");
    },
    /** Waits until it reset the connection (`end`). */
    async wasReset(): Promise<void> {
      assert.equal(await line("the reset"), "reset");
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await stdin.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
}

/**
 * Runs a stream exchange whose reader is parked in a held output after the server's first reply;
 * `closeServer` ends the connection from the server's side; then the input goes on until one of
 * its writes fails, and only then does the reader read again. Returns how the exchange ended.
 */
async function writeAfterServerClose(
  connection: LineConnection,
  closeServer: () => Promise<void>,
): Promise<ExchangeResult | Error> {
  const printed = new Printed();
  const feed = new Feed();
  const release = printed.hold();
  const running = runExchange(connection, { input: feed, output: printed, waitMs: 0 })
    .catch((error: Error) => error);
  feed.push("a\n");
  await printed.shows("first\n");
  await feed.asked(2);
  await closeServer();
  for (let n = 3; !feed.isStopped && n < 200; n++) {
    feed.push(`line ${n}\n`);
    await within(Promise.race([feed.stopped.promise, feed.asked(n)]), WAIT_MS, "the writer");
  }
  assert.equal(feed.isStopped, true, "a write failed");
  release();
  return await within(running, WAIT_MS, "the exchange to end");
}

Deno.test("runExchange stream mode: failures of the connection", async (t) => {
  await t.step(
    ignoredName("a reset that only a write saw still ends the exchange as a reset", PYTHON_MISSING),
    async () => {
      if (PYTHON_MISSING) return;
      await using server = await resettingServer("first-line");
      await using connection = await connect({ port: server.port, stripCR: false });
      const ended = await writeAfterServerClose(connection, () => server.reset());
      assert.ok(ended instanceof ConnectionLostError, String(ended));
      assert.match(ended.message, /lost: connection reset$/);
    },
  );

  await t.step(
    "a broken pipe on write is no error: the server closed, the end decides",
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const path = `${dir}/s.sock`;
        using listener = Deno.listen({ transport: "unix", path });
        await using connection = await connect({ path, stripCR: false });
        const conn = await listener.accept();
        const served = (async () => {
          const buffer = new Uint8Array(1024);
          let got = "";
          while (!got.includes("\n")) {
            const n = await conn.read(buffer);
            if (n === null) break;
            got += decoder.decode(buffer.subarray(0, n));
          }
          await conn.write(encoder.encode("first\n"));
        })();
        const ended = await writeAfterServerClose(connection, async () => {
          await served;
          conn.close();
        });
        assert.ok(!(ended instanceof Error), String(ended));
        assert.equal(ended.ending, "closed");
        assert.equal(ended.inputComplete, false);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step(
    ignoredName(
      "a reset while waiting after the input is that failure, not silence",
      PYTHON_MISSING,
    ),
    async () => {
      if (PYTHON_MISSING) return;
      await using server = await resettingServer("end");
      await using connection = await connect({ port: server.port, stripCR: false });
      const error = await exchange(connection, new Printed(), {
        input: chunks("x\n"),
        waitMs: WAIT_MS,
      }).then(() => undefined, (error) => error);
      await server.wasReset();
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.match(error.message, /lost: connection reset$/);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Lockstep mode

Deno.test("runExchange lockstep mode", async (t) => {
  await t.step("each reply printed as it comes; the line's bytes sent as they are", async () => {
    const second = gate();
    await using fixture = await lineServer({
      stripCR: false,
      onLine: (bytes, context) => {
        second.promise.then(() => context.send(`second ${bytes.length}`));
        return `first ${bytes.length}`;
      },
    });
    await using connection = await fixture.connect();
    const printed = new Printed();
    const sent: Uint8Array[] = [];
    const running = exchange(connection, printed, {
      input: chunks("a\r\n"),
      replies: 2,
      onSent: (bytes) => sent.push(bytes),
    });
    await printed.shows("first 2\n");
    second.open();
    const result = await running;
    assert.equal(printed.text, "first 2\nsecond 2\n");
    assert.deepEqual(sent, [encoder.encode("a\r\n")]);
    assert.equal(result.ending, "replies");
    assert.equal(result.inputComplete, true);
  });

  await t.step("a line split across chunks is kept whole while the next is framed", async () => {
    await using fixture = await lineServer((line) => line);
    await using connection = await fixture.connect();
    const printed = new Printed();
    await exchange(connection, printed, { input: chunks("abc", "def\nXY", "Z\n"), replies: 1 });
    assert.equal(printed.text, "abcdef\nXYZ\n");
  });

  await t.step(
    "the server closing before the replies: ConnectionLostError with the counts",
    async () => {
      await using fixture = await lineServer((line, context) => {
        if (line === "close") {
          context.close();
          return undefined;
        }
        if (line === "one-then-close") {
          context.close();
          return "one";
        }
        return "ok";
      });
      for (
        const [input, replies, message] of [
          ["a\nclose\n", 1, "after 0 of 1 reply to line 2"],
          ["one-then-close\n", 2, "after 1 of 2 replies to line 1"],
        ] as const
      ) {
        await using connection = await fixture.connect();
        await assert.rejects(
          exchange(connection, new Printed(), { input: chunks(input), replies }),
          (error: Error) => {
            assert.ok(error instanceof ConnectionLostError, String(error));
            assert.equal(error.message, `Connection closed by ${remote(fixture.port)} ${message}`);
            return true;
          },
        );
      }
    },
  );

  await t.step(
    "a silent server: TimeoutError after timeoutMs, in and after the input",
    async () => {
      await using fixture = await lineServer(() => undefined);
      for (const until of [undefined, /never/]) {
        await using connection = await fixture.connect();
        const started = performance.now();
        await assert.rejects(
          exchange(connection, new Printed(), {
            input: chunks("x\n"),
            replies: until ? 0 : 1,
            until,
            timeoutMs: 200,
          }),
          TimeoutError,
        );
        assertTookAbout(since(started), 200, `lockstep timeout (until: ${until})`);
      }
    },
  );

  await t.step("timeoutMs 0 waits as long as the server takes", async () => {
    // A server that takes 200 ms to answer.
    await using fixture = await lineServer((line) => later(200).then(() => line));
    await using connection = await fixture.connect();
    const printed = new Printed();
    const result = await exchange(connection, printed, {
      input: chunks("x\n"),
      replies: 1,
      timeoutMs: 0,
    });
    assert.equal(printed.text, "x\n");
    assert.equal(result.ending, "replies");
  });

  await t.step("until mid-input: stops there, the rest not sent", async () => {
    await using fixture = await lineServer((line) => line);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const result = await exchange(connection, printed, {
      input: chunks("a\nDone\nb\n"),
      replies: 1,
      until: /^Done$/,
    });
    assert.equal(result.ending, "until");
    assert.equal(result.linesSent, 2);
    assert.equal(result.inputComplete, false);
    assert.equal(printed.text, "a\nDone\n");
  });

  await t.step("until after the input: later lines read until one matches", async () => {
    await using fixture = await lineServer(() => ["r", "noise", "Done", "after"]);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const result = await exchange(connection, printed, {
      input: chunks("x\n"),
      replies: 1,
      until: /^Done$/,
    });
    assert.equal(result.ending, "until");
    assert.equal(result.inputComplete, true);
    assert.equal(result.replies, 3);
    assert.equal(printed.text, "r\nnoise\nDone\n");
  });

  await t.step("until after the input, the server closes first: ConnectionLostError", async () => {
    await using fixture = await lineServer((_line, context) => {
      context.close();
      return "r";
    });
    await using connection = await fixture.connect();
    await assert.rejects(
      exchange(connection, new Printed(), { input: chunks("x\n"), replies: 1, until: /^Done$/ }),
      (error: Error) => {
        assert.ok(error instanceof ConnectionLostError, String(error));
        assert.equal(
          error.message,
          `Connection closed by ${remote(fixture.port)} before a reply matched /^Done$/`,
        );
        return true;
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Printing: too-long replies, jsonOutput, prefixes, JSON mode

Deno.test("runExchange printing", async (t) => {
  await t.step(
    "a reply over the limit is counted and left out; onTooLong is optional",
    async () => {
      await using fixture = await lineServer(() => ["x".repeat(100), "ok"]);
      await using connection = await fixture.connect({ maxLineBytes: 60 });
      const printed = new Printed();
      const result = await exchange(connection, printed, { input: chunks("a\n") });
      assert.equal(printed.text, "ok\n");
      assert.equal(result.tooLong, 1);
      assert.equal(result.replies, 2);
    },
  );

  await t.step("jsonOutput: one object per reply; rttMs (to the µs) only in lockstep", async () => {
    await using fixture = await lineServer((line) => `re ${line}`);
    await using connection = await fixture.connect();
    const lockstep = new Printed();
    await exchange(connection, lockstep, { input: chunks("a\n"), replies: 1, jsonOutput: true });
    const timed = JSON.parse(lockstep.text.trim());
    assert.deepEqual(Object.keys(timed), ["line", "bytes", "rttMs"]);
    assert.equal(timed.line, "re a");
    assert.equal(timed.bytes, 4);
    assert.ok(timed.rttMs > 0 && timed.rttMs < WAIT_MS, String(timed.rttMs));
    assert.ok(Math.abs(timed.rttMs * 1000 - Math.round(timed.rttMs * 1000)) < 1e-6);
    await using again = await fixture.connect();
    const stream = new Printed();
    await exchange(again, stream, { input: chunks("b\n"), jsonOutput: true });
    assert.equal(stream.text, '{"line":"re b","bytes":4}\n');
  });

  await t.step("a prefix before each reply", async () => {
    await using fixture = await lineServer((line) => line);
    await using connection = await fixture.connect();
    const printed = new Printed();
    await exchange(connection, printed, { input: chunks("a\nb\n"), prefix: () => "> " });
    assert.equal(printed.text, "> a\n> b\n");
  });
});

Deno.test("runExchange JSON mode", async (t) => {
  const respond = (request: string) => {
    const { command } = JSON.parse(request);
    if (command === "extra") return JSON.stringify({ status: 0, message: "m", extra: { n: 1 } });
    if (command === "empty") return JSON.stringify({ status: 0 });
    if (command === "text") return "PONG";
    return JSON.stringify({ status: 0, message: command });
  };

  await t.step("lockstep by default: ends with the last response", async () => {
    await using fixture = await lineServer(respond);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const result = await exchange(connection, printed, {
      input: chunks('{"command":"a"}\n{"command":"b"}\n'),
      json: true,
      waitMs: 50,
    });
    assert.equal(result.ending, "replies");
    assert.equal(printed.text, "a\nb\n");
  });

  await t.step("blank lines (spaces, tabs, \\r) are skipped, in lockstep and stream", async () => {
    await using fixture = await lineServer(respond);
    for (const jsonLockstep of [true, false]) {
      await using connection = await fixture.connect();
      const printed = new Printed();
      const result = await exchange(connection, printed, {
        input: chunks('{"command":"a"}\n \t\r\n\n{"command":"b"}\n'),
        json: true,
        jsonLockstep,
      });
      assert.equal(result.linesSent, 2, `jsonLockstep: ${jsonLockstep}`);
      assert.equal(result.remoteErrors, 0);
      assert.equal(printed.text, "a\nb\n");
    }
  });

  await t.step("a reply that is not a response: an error, nothing printed", async () => {
    await using fixture = await lineServer(respond);
    await using connection = await fixture.connect();
    const printed = new Printed();
    const result = await exchange(connection, printed, {
      input: chunks('{"command":"text"}\n'),
      json: true,
    });
    assert.equal(result.remoteErrors, 1);
    assert.ok(result.firstRemoteError instanceof RemoteError);
    assert.equal(printed.text, "");
  });

  await t.step("extra after the message, the prefix before them; nothing for neither", async () => {
    await using fixture = await lineServer(respond);
    await using connection = await fixture.connect();
    const printed = new Printed();
    await exchange(connection, printed, {
      input: chunks('{"command":"extra"}\n{"command":"empty"}\n{"command":"x"}\n'),
      json: true,
      prefix: () => "> ",
    });
    assert.equal(printed.text, '> m\nextra: {\n  "n": 1\n}\n> x\n');
  });
});

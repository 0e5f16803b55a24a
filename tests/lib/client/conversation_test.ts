/**
 * The conversation engine's parts: the one error rule, the one JSON classification, the reply
 * ledger (which request a reply answers), and a conversation over a real connection.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { connect } from "../../../lib/client/client.ts";
import {
  classifyReply,
  Conversation,
  isErrorReply,
  ReplyLedger,
} from "../../../lib/client/conversation.ts";
import { LineTooLongError, RemoteError } from "../../../lib/errors.ts";
import { serve } from "../../../lib/server/mod.ts";

const encoder = new TextEncoder();

Deno.test("isErrorReply: the word ERR at the start", async (t) => {
  await t.step("errors and non-errors", () => {
    for (const line of ["ERR", "ERR busy", "ERR:full", "ERR-x", "ERR\tx", "ERR\r", "ERRé"]) {
      assert.equal(isErrorReply(line), true, line);
      assert.equal(isErrorReply(encoder.encode(line)), true, `${line} as bytes`);
    }
    for (const line of ["ERRATA", "ERR_X", "ERR1", "err x", " ERR x", "ER", "", "OK ERR"]) {
      assert.equal(isErrorReply(line), false, line);
      assert.equal(isErrorReply(encoder.encode(line)), false, `${line} as bytes`);
    }
  });

  await t.step("text and bytes agree, and match /^ERR\\b/ (property)", () => {
    fc.assert(fc.property(fc.string(), fc.string({ maxLength: 3 }), (tail, head) => {
      for (const line of [`ERR${tail}`, `${head}${tail}`]) {
        assert.equal(isErrorReply(line), /^ERR\b/.test(line), line);
        assert.equal(isErrorReply(encoder.encode(line)), isErrorReply(line), line);
      }
    }));
  });
});

Deno.test("classifyReply", async (t) => {
  await t.step("text mode: only the ERR rule", () => {
    assert.equal(classifyReply("ERR no", false).error?.message, "ERR no");
    assert.equal(classifyReply("ERRATA", false).error, undefined);
    assert.equal(classifyReply('{"status":1}', false).error, undefined);
  });

  await t.step("JSON mode: a status other than 0, or not a response at all", () => {
    const ok = classifyReply('{"status":0,"message":"pong","id":3}', true);
    assert.equal(ok.error, undefined);
    assert.deepEqual(ok.response, { status: 0, message: "pong", id: 3, extra: null });
    const failed = classifyReply('{"status":2,"message":{"x":1},"extra":{"e":1}}', true);
    assert.ok(failed.error instanceof RemoteError);
    assert.equal(failed.error.status, 2);
    assert.equal(failed.error.message, '{"x":1}');
    assert.deepEqual(failed.error.extra, { e: 1 });
    for (const line of ["PONG", "ERR x", "[1]", '{"message":"no status"}']) {
      const result = classifyReply(line, true);
      assert.ok(result.error instanceof RemoteError, line);
      assert.equal(result.response, undefined);
    }
  });
});

Deno.test("ReplyLedger", async (t) => {
  const clock = () => {
    let now = 0;
    return { now: () => now, advance: (ms: number) => now += ms };
  };

  await t.step("in order, with known counts: each reply to its line, the time once", () => {
    const time = clock();
    const ledger = new ReplyLedger<string>(time.now);
    ledger.record({ replies: 1 }, "a");
    time.advance(1);
    ledger.record({ replies: 2 }, "b");
    time.advance(4);
    assert.deepEqual(ledger.credit()?.roundTripMs, 5);
    const b1 = ledger.credit();
    assert.equal(b1?.request.data, "b");
    assert.equal(b1?.roundTripMs, 4);
    const b2 = ledger.credit();
    assert.equal(b2?.request.data, "b");
    assert.equal(b2?.roundTripMs, undefined);
    assert.equal(b2?.request.settled, true);
    // Nothing is waiting: a line the server sends on its own answers nothing.
    assert.equal(ledger.credit(), undefined);
  });

  await t.step("by id, in any order; an id nobody waits for answers nothing", () => {
    const time = clock();
    const ledger = new ReplyLedger<number>(time.now);
    ledger.record({ id: 1 }, 1);
    time.advance(10);
    ledger.record({ id: "two" }, 2);
    time.advance(5);
    assert.equal(ledger.credit({ id: "two" })?.roundTripMs, 5);
    assert.equal(ledger.credit({ id: 99 }), undefined);
    assert.equal(ledger.credit({ id: 1 })?.roundTripMs, 15);
    assert.equal(ledger.size, 0);
  });

  await t.step("an unknown count: credited while alone, then nothing after it", () => {
    const ledger = new ReplyLedger<string>();
    const route = ledger.record("unknown", "route");
    assert.equal(ledger.credit()?.request, route);
    // It may have more lines to come; a reply after another line was sent is nobody's for sure.
    ledger.record({ replies: 1 }, "PING");
    assert.equal(ledger.credit(), undefined);
    assert.equal(ledger.credit(), undefined);
    // Once the caller knows it is answered, order resumes.
    ledger.settle(route);
    assert.equal(ledger.credit()?.request.data, "PING");
  });

  await t.step("claimedBy: the caller names the line a reply completes", () => {
    const ledger = new ReplyLedger<string>();
    const frob = ledger.record("unknown", "FROB");
    ledger.record({ replies: 1 }, "PING");
    const credit = ledger.credit({ claimedBy: frob });
    assert.equal(credit?.request, frob);
    assert.notEqual(credit?.roundTripMs, undefined);
    assert.equal(frob.settled, true);
    assert.equal(ledger.credit()?.request.data, "PING");
    // A line that is no longer open cannot be claimed.
    assert.equal(ledger.credit({ claimedBy: frob }), undefined);
  });

  await t.step("a JSON request answered without its id counts as unknown in order", () => {
    const ledger = new ReplyLedger<string>();
    ledger.record({ id: 1 }, "json");
    ledger.record({ replies: 1 }, "PING");
    // A text server's ERR line for the JSON request: it could be either line's.
    assert.equal(ledger.credit(), undefined);
  });

  await t.step("clear forgets everything; zero replies is never open", () => {
    const ledger = new ReplyLedger();
    ledger.record("unknown", undefined);
    ledger.record({ replies: 0 }, undefined);
    assert.equal(ledger.size, 1);
    ledger.clear();
    assert.equal(ledger.size, 0);
    assert.equal(ledger.credit(), undefined);
  });

  await t.step("bounded: past 10,000 open lines it credits nothing until cleared", () => {
    const ledger = new ReplyLedger();
    ledger.record("unknown", undefined);
    for (let i = 0; i < 10_000; i++) ledger.record({ replies: 1 }, undefined);
    assert.equal(ledger.size, 0);
    assert.equal(ledger.credit(), undefined);
    ledger.record({ replies: 1 }, undefined);
    assert.equal(ledger.credit(), undefined);
    ledger.clear();
    ledger.record({ replies: 1 }, undefined);
    assert.ok(ledger.credit());
  });
});

Deno.test("Conversation over a real connection", async (t) => {
  await t.step("replies classified in the current mode and credited", async () => {
    await using server = await serve({ port: 0 }, (line) => {
      if (line === "long") return "x".repeat(100);
      if (line.startsWith("{")) {
        const { id } = JSON.parse(line);
        return JSON.stringify({ status: id === 2 ? 5 : 0, message: "m", extra: null, id });
      }
      return line === "bad" ? "ERR bad" : `re ${line}`;
    });
    await using connection = await connect({
      port: (server.addr as Deno.NetAddr).port,
      maxLineBytes: 60,
    });
    const conversation = new Conversation<string>(connection);
    conversation.enqueue("bad", { replies: 1 }, "bad");
    conversation.enqueue("long", { replies: 1 }, "long");
    conversation.enqueue("ok", { replies: 1 }, "ok");
    await conversation.flush();
    const bad = (await conversation.read())!;
    assert.equal(bad.error?.message, "ERR bad");
    assert.equal(conversation.credit(bad)?.request.data, "bad");
    // A line over the limit is still a reply: counting it keeps the next ones right.
    const long = (await conversation.read())!;
    assert.ok(long.error instanceof LineTooLongError);
    assert.equal(conversation.credit(long)?.request.data, "long");
    const ok = (await conversation.read())!;
    assert.equal(ok.text, "re ok");
    assert.equal(conversation.credit(ok)?.request.data, "ok");

    conversation.json = true;
    conversation.enqueue(JSON.stringify({ command: "a", id: 1 }), { id: 1 }, "one");
    conversation.enqueue(JSON.stringify({ command: "b", id: 2 }), { id: 2 }, "two");
    await conversation.flush();
    const one = (await conversation.read())!;
    assert.equal(one.id, 1);
    assert.equal(one.error, undefined);
    assert.equal(conversation.credit(one)?.request.data, "one");
    const two = (await conversation.read())!;
    assert.equal((two.error as RemoteError).status, 5);
    assert.equal(conversation.credit(two)?.request.data, "two");
  });
});

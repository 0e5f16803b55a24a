/**
 * The chat protocol through a real server on a real socket (no bus: the rooms across instances are
 * in tests/commands/chat_nats_test.ts): the meta-commands, rooms and announcements, routes first, bad
 * input answered to its sender only, the raw relay byte for byte, the throttle, and the queue
 * policy for a client that does not read.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve, type ServeOptions, type Server } from "../../../lib/server/serve.ts";
import {
  type ChatProtocol,
  chatProtocol,
  type ChatProtocolOptions,
} from "../../../lib/protocols/chat.ts";
import { connect, type LineConnection } from "../../../lib/client/client.ts";
import { RemoteError } from "../../../lib/errors.ts";
import { Routes } from "../../../lib/routes/routes.ts";
import { within } from "../../_support/cli.ts";
import { checkName, checkRoom } from "../../../lib/chat/names.ts";
import { checkBusPrefix, parseBusUrl } from "../../../lib/chat/bus.ts";
import { decodeBusMessage, encodeBusMessage } from "../../../lib/chat/_bus_message.ts";

const encoder = new TextEncoder();

/** A chat server on a free port, and its protocol; dispose of both with `await using`. */
async function start(
  options: ChatProtocolOptions = {},
  serveOptions: ServeOptions = {},
): Promise<{ server: Server; chat: ChatProtocol; port: number } & AsyncDisposable> {
  const chat = chatProtocol(options);
  const server = await serve({ port: 0, ...serveOptions }, chat);
  return {
    server,
    chat,
    port: (server.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await chat.close();
    },
  };
}

/** A client that has read its welcome line. */
async function client(port: number, name?: string, room?: string): Promise<LineConnection> {
  const conn = await connect({ port });
  const welcome = await conn.readLine(5000);
  assert.match(welcome!, /^\* welcome guest\d+: you are in lobby \(\/help for commands\)$/);
  if (name !== undefined || room !== undefined) {
    await conn.join(room ?? "lobby", name === undefined ? {} : { name });
  }
  return conn;
}

/** Reads lines until one satisfies `done`; returns all of them, that one last. */
async function readUntil(
  conn: LineConnection,
  done: (line: string) => boolean,
  ms = 10_000,
): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await conn.readLine(ms);
    if (line === null) throw new Error(`closed after ${JSON.stringify(lines)}`);
    lines.push(line);
    if (done(line)) return lines;
  }
}

/** Reads until the room says that `name` arrived (a guest who took that name). */
function arrived(conn: LineConnection, name: string): Promise<string[]> {
  return readUntil(conn, (line) => line.endsWith(` is now known as ${name}`));
}

/** A route table from its rules. */
function routesOf(...rules: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes: rules }), "test routes");
}

Deno.test("chatProtocol", async (t) => {
  await t.step(
    "a line reaches the others in the room with its sender's name, not itself",
    async () => {
      await using chat = await start();
      await using alice = await client(chat.port, "alice");
      await using bob = await client(chat.port, "bob");
      await using carol = await client(chat.port, "carol");
      await arrived(alice, "carol");
      await arrived(bob, "carol");
      await alice.send("hello, world");
      await alice.send("héllo ünïcode");
      assert.deepEqual(await bob.readLine(5000), "<alice> hello, world");
      assert.deepEqual(await bob.readLine(5000), "<alice> héllo ünïcode");
      assert.deepEqual(await carol.readLine(5000), "<alice> hello, world");
      assert.deepEqual(await carol.readLine(5000), "<alice> héllo ünïcode");
      // Alice's next line is the answer to her own command: her lines did not come back.
      await alice.send("/who");
      assert.equal(await alice.readLine(5000), "* members of lobby: alice, bob, carol");
      assert.equal(chat.chat.stats.delivered, 4 + 2 + 1 + 2 + 1);
    },
  );

  await t.step("rooms keep their lines apart; joins and leaves are announced", async () => {
    await using chat = await start();
    await using alice = await client(chat.port, "alice");
    await using bob = await client(chat.port, "bob");
    await arrived(alice, "bob");
    await alice.send("/join ops");
    assert.deepEqual(await readUntil(alice, (line) => line.startsWith("* you")), [
      "* you joined ops",
    ]);
    assert.equal(await bob.readLine(5000), "* alice left lobby");
    await bob.send("lobby only");
    await bob.send("/join ops");
    assert.equal(await bob.readLine(5000), "* you joined ops");
    assert.equal(await alice.readLine(5000), "* bob joined ops");
    await bob.send("in ops");
    assert.equal(await alice.readLine(5000), "<bob> in ops");
    await alice.send("/rooms");
    assert.equal(await alice.readLine(5000), "* rooms: ops (2)");
    await alice.send("/join ops");
    assert.equal(await alice.readLine(5000), "* you are already in ops");
    bob.close();
    assert.equal(await alice.readLine(5000), "* bob left ops");
    await alice.send("/quit");
    assert.equal(await alice.readLine(5000), "* bye");
    assert.equal(await alice.readLine(5000), null);
  });

  await t.step("/nick renames, and the room is told; bad names and rooms are refused", async () => {
    await using chat = await start();
    await using alice = await client(chat.port);
    await using bob = await client(chat.port, "bob");
    await arrived(alice, "bob");
    const exchanges: [string, string][] = [
      ["/nick", "ERR usage: /nick NAME"],
      ["/nick two words", "ERR invalid name: two words (1 to 32 letters, digits, - _ or .)"],
      [
        "/nick " + "x".repeat(33),
        `ERR invalid name: ${"x".repeat(33)} (1 to 32 letters, digits, - _ or .)`,
      ],
      ["/join", "ERR usage: /join ROOM"],
      ["/join a.b", "ERR invalid room: a.b (1 to 64 of A-Z a-z 0-9 - _)"],
      ["/JOIN *", "ERR invalid room: * (1 to 64 of A-Z a-z 0-9 - _)"],
      ["/nick Zoë", "* you are now Zoë"],
      ["/nick Zoë", "* you are Zoë"],
      ["/help", "* commands: /nick NAME, /join ROOM, /who, /rooms, /quit, /help"],
      // The probe linesock's clients send: answered, not said in the room.
      ["HELP", "commands: /nick /join /who /rooms /quit /help"],
    ];
    for (const [line, reply] of exchanges) {
      await alice.send(line);
      assert.equal(await alice.readLine(5000), reply, line);
    }
    assert.match((await bob.readLine(5000))!, /^\* guest\d+ is now known as Zoë$/);
    await assert.rejects(alice.join("no room"), RemoteError);
  });

  await t.step("bad input gets one error line, to its sender only", async () => {
    await using chat = await start({}, { maxLineBytes: 100 });
    await using alice = await client(chat.port, "alice");
    await using bob = await client(chat.port, "bob");
    await arrived(alice, "bob");
    await alice.send("/frobnicate now");
    assert.equal(await alice.readLine(5000), "ERR unknown command: /frobnicate (try /help)");
    await alice.send("x".repeat(101));
    assert.equal(await alice.readLine(5000), "ERR line too long (limit 100 bytes)");
    await alice.send(new Uint8Array([0x61, 0xff, 0x62]));
    assert.equal(await alice.readLine(5000), "ERR invalid encoding");
    // An empty line says nothing; "//" says a line that starts with "/".
    await alice.send("");
    await alice.send("//etc/passwd is a path");
    await alice.send("x".repeat(100 - "<alice> ".length));
    // Bob's next lines are those two: nothing of the bad input reached him.
    assert.equal(await bob.readLine(5000), "<alice> /etc/passwd is a path");
    assert.equal(await bob.readLine(5000), `<alice> ${"x".repeat(92)}`);
    await alice.send("/who");
    assert.equal(await alice.readLine(5000), "* members of lobby: alice, bob");
  });

  await t.step("routes are tried first: a line they answer goes to its sender only", async () => {
    const routes = routesOf(
      { match: { exact: "status" }, reply: "OK {peer}" },
      { match: { exact: "/who" }, reply: "who asks?" },
    );
    await using chat = await start({ routes });
    await using alice = await client(chat.port, "alice");
    await using bob = await client(chat.port, "bob");
    await arrived(alice, "bob");
    await alice.send("status");
    assert.match((await alice.readLine(5000))!, /^OK 127\.0\.0\.1:\d+$/);
    await alice.send("/who");
    assert.equal(await alice.readLine(5000), "who asks?");
    await alice.send("status report");
    assert.equal(await bob.readLine(5000), "<alice> status report");
  });

  await t.step("raw relay: lines go to the others byte for byte, nothing added", async () => {
    await using relay = await start({ raw: true }, { maxLineBytes: 64 });
    const a = await Deno.connect({ port: relay.port });
    await using b = await connect({ port: relay.port, stripCR: false });
    await using c = await connect({ port: relay.port, stripCR: false });
    try {
      // Each connection is in the room once its first line was relayed: wait for b and c.
      await c.send("c is here");
      assert.equal(await b.readLine(5000), "c is here");
      const seen = new Uint8Array(64);
      assert.equal(await within(a.read(seen), 5000, "c's line"), "c is here\n".length);
      const payload = new Uint8Array([0x00, 0x0d, 0xff, 0xfe, 0x41, 0x0d, 0x0a, 0x42, 0x0a]);
      await a.write(payload);
      for (const reader of [b, c]) {
        assert.deepEqual([...(await reader.readRawLine(5000))!], [
          0x00,
          0x0d,
          0xff,
          0xfe,
          0x41,
          0x0d,
        ]);
        assert.deepEqual([...(await reader.readRawLine(5000))!], [0x42]);
      }
      // An over-long line is answered to its sender and not relayed.
      await a.write(encoder.encode(`${"y".repeat(65)}\nshort\n`));
      const answer = new Uint8Array(128);
      const count = await within(a.read(answer), 5000, "the error line");
      assert.equal(
        new TextDecoder().decode(answer.subarray(0, count!)),
        "ERR line too long (limit 64 bytes)\n",
      );
      assert.equal(await b.readLine(5000), "short");
    } finally {
      a.close();
    }
  });

  await t.step("a flooding client is throttled; the others' lines get through", async () => {
    await using chat = await start({ rate: 50 });
    await using flooder = await client(chat.port, "flooder");
    await using quiet = await client(chat.port, "quiet");
    await using listener = await client(chat.port, "listener");
    await arrived(flooder, "listener");
    await arrived(quiet, "listener");
    const lines = 5000;
    for (let i = 0; i < lines; i++) flooder.enqueue(`flood ${i}`);
    const flooding = flooder.flush();
    // At 50 lines a second, the flood takes 100 s: the quiet client's line is not behind it.
    await readUntil(listener, (line) => line === "<flooder> flood 60");
    await quiet.send("still here");
    const heard = await readUntil(listener, (line) => line === "<quiet> still here");
    const last = heard.filter((line) => line.startsWith("<flooder>")).at(-1);
    assert.ok(Number(last?.split(" ").at(-1) ?? 0) < lines - 1000, `flood got to ${last}`);
    flooder.close();
    await flooding.catch(() => {});
  });

  await t.step(
    "a client that stops reading loses lines, then is disconnected; the others get every line",
    async () => {
      await using chat = await start({
        maxQueueBytes: 64 * 1024,
        patienceMs: 300, // the reader reads all along: 300 ms of slack for a loaded machine
        maxDroppedLines: 2000,
        rate: 0,
      });
      await using sender = await client(chat.port, "sender");
      await using reader = await client(chat.port, "reader");
      const sleeper = await Deno.connect({ port: chat.port });
      try {
        await readUntil(reader, (line) => /^\* guest\d+ joined lobby$/.test(line));
        const line = "z".repeat(1000);
        let sent = 0;
        const notices: string[] = [];
        const readAll = (async () => {
          let got = 0;
          for (;;) {
            const next = await reader.readLine(20_000);
            if (next === null) throw new Error("reader was closed");
            if (next.startsWith("* ")) notices.push(next);
            if (next.startsWith("<sender> ")) {
              assert.equal(next, `<sender> ${got} ${line}`);
              got++;
              if (got === sent && chat.chat.stats.tooSlow > 0) return got;
            }
          }
        })();
        // Until the sleeper was disconnected: its kernel buffers take a few MB first.
        while (chat.chat.stats.tooSlow === 0) {
          for (let i = 0; i < 200; i++) sender.enqueue(`${sent++} ${line}`);
          await sender.flush();
          await within(
            new Promise((resolve) => setTimeout(resolve, 0)),
            1000,
            "a turn of the event loop",
          );
          assert.ok(sent < 200_000, "the sleeper was never disconnected");
        }
        for (let i = 0; i < 10; i++) sender.enqueue(`${sent++} ${line}`);
        await sender.flush();
        assert.equal(await within(readAll, 30_000, "the reader's lines"), sent);
        assert.ok(chat.chat.stats.dropped > 2000);
        assert.equal(chat.chat.stats.tooSlow, 1);
        // The room was told why the sleeper left.
        assert.equal(
          notices.filter((notice) => / left lobby \(too slow\)$/.test(notice)).length,
          1,
        );
        // The sleeper left the room.
        await reader.send("/who");
        assert.equal(await reader.readLine(5000), "* members of lobby: reader, sender");
      } finally {
        sleeper.close();
      }
    },
  );

  await t.step("a client that reads late is told how many lines it lost", async () => {
    await using chat = await start({
      maxQueueBytes: 32 * 1024,
      patienceMs: 50,
      maxDroppedLines: 1_000_000,
      rate: 0,
    });
    await using sender = await client(chat.port, "sender");
    await using late = await client(chat.port, "late");
    await arrived(sender, "late");
    const line = "q".repeat(1000);
    let sent = 0;
    while (chat.chat.stats.dropped === 0) {
      for (let i = 0; i < 50; i++) sender.enqueue(`${sent++} ${line}`);
      await sender.flush();
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.ok(sent < 200_000, "nothing was dropped");
    }
    await sender.send("end");
    // Reading now: the lines it kept, in order, a notice of those it lost once its queue was
    // empty, and the last line.
    const lines = await readUntil(late, (next) => next === "<sender> end", 30_000);
    // Once "end" was handled nothing more is dropped; the last notice may come after it.
    const noticed = () =>
      lines.map((next) => /^\* (\d+) lines? dropped: you read too slowly$/.exec(next))
        .reduce((sum, match) => sum + (match === null ? 0 : Number(match[1])), 0);
    while (noticed() < chat.chat.stats.dropped) {
      lines.push(...await readUntil(late, (next) => next.startsWith("* "), 10_000));
    }
    const kept = lines.filter((next) => next.startsWith("<sender> ") && next !== "<sender> end");
    const numbers = kept.map((next) => Number(next.split(" ")[1]));
    assert.deepEqual(numbers, [...numbers].sort((x, y) => x - y), "in order");
    const notices = lines.filter((next) => next.startsWith("* "));
    assert.ok(notices.every((next) => /^\* \d+ lines? dropped: you read too slowly$/.test(next)));
    assert.equal(noticed(), chat.chat.stats.dropped);
    assert.equal(numbers.length + noticed(), sent);
    assert.equal(lines.length, kept.length + notices.length + 1);
  });
});

Deno.test("chat names, bus URLs and bus messages", async (t) => {
  await t.step("room names are subject tokens; member names may use any letters", () => {
    for (const room of ["lobby", "ops-2", "A_b", "x".repeat(64)]) {
      assert.equal(checkRoom(room), undefined);
    }
    for (const room of ["", "a.b", "a b", "*", ">", "é", "x".repeat(65), "a\nb"]) {
      assert.match(checkRoom(room)!, /^invalid room: /, room);
    }
    for (const name of ["alice", "Zoë", "名前", "a.b-c_d", "x".repeat(32)]) {
      assert.equal(checkName(name), undefined);
    }
    for (const name of ["", "two words", "<x>", "x".repeat(33), "tab\there"]) {
      assert.match(checkName(name)!, /^invalid name: /, name);
    }
    // A control character is not echoed in the message.
    assert.equal(checkName("a\x1bb"), "invalid name: a?b (1 to 32 letters, digits, - _ or .)");
  });

  await t.step("bus URLs: nats:// or tls://, credentials kept out of the display form", () => {
    assert.deepEqual(parseBusUrl("nats://127.0.0.1:4222"), {
      server: "127.0.0.1:4222",
      display: "nats://127.0.0.1:4222",
      tls: false,
    });
    assert.deepEqual(parseBusUrl("tls://bus.example"), {
      server: "bus.example:4222",
      display: "tls://bus.example:4222",
      tls: true,
    });
    assert.deepEqual(parseBusUrl("nats://u%40x:p%3Aw@[::1]:5000"), {
      server: "[::1]:5000",
      display: "nats://[::1]:5000",
      tls: false,
      user: "u@x",
      pass: "p:w",
    });
    assert.equal(parseBusUrl("nats://s3cr3t@h:1").token, "s3cr3t");
    for (const bad of ["http://h:1", "h:4222", "nats://", "nats://h:1/path", "nats://h:1?x=1"]) {
      assert.throws(() => parseBusUrl(bad), TypeError, bad);
    }
  });

  await t.step("subject prefixes: dot-separated tokens without wildcards", () => {
    for (const prefix of ["linesock", "a.b.c", "team-1_x"]) {
      assert.equal(checkBusPrefix(prefix), undefined);
    }
    for (const prefix of ["", ".", "a.", ".a", "a..b", "a b", "a.*", ">", "a>b", "é"]) {
      assert.match(checkBusPrefix(prefix)!, /^invalid subject prefix/, prefix);
    }
  });

  await t.step("bus messages carry any bytes and are checked when read", () => {
    const line = new Uint8Array([0x00, 0x0a, 0xff, 0x20]);
    const encoded = encodeBusMessage("M", "abcd", 7, 42, line);
    const decoded = decodeBusMessage(encoded)!;
    assert.deepEqual({ ...decoded, line: [...decoded.line] }, {
      kind: "M",
      instance: "abcd",
      member: 7,
      seq: 42,
      line: [0x00, 0x0a, 0xff, 0x20],
    });
    for (const bad of ["", "M a 1 2", "X a 1 2\n", "M a b 2\n", "M  1 2\n", "M a 1 2 3\n"]) {
      assert.equal(decodeBusMessage(encoder.encode(bad)), undefined, JSON.stringify(bad));
    }
  });
});

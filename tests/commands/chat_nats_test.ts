/**
 * `linesock serve --protocol chat --bus`: rooms across real linesock processes through a real
 * nats-server (started by the test on a free port): 50 clients on two instances in three rooms,
 * with the bus restarted midway; `/who` and `/rooms` across instances; the raw relay; workers
 * sharing rooms through the bus; credentials and TLS passed through to NATS.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, type RunningServer, startServer } from "../_support/cli.ts";
import { unusedPort } from "../_support/ports.ts";
import { startDaemon } from "../_support/process.ts";
import { ignoredName, toolMissing } from "../_support/tools.ts";
import { makeTestCertificates, OPENSSL_MISSING } from "../_support/tls.ts";
import { connect, type LineConnection } from "../../lib/client/client.ts";

const NATS_MISSING = toolMissing("nats-server", ["--version"]);

/** A nats-server on 127.0.0.1:`port`; `await using` kills it. */
interface Nats extends AsyncDisposable {
  readonly port: number;
  readonly url: string;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
}

async function startNats(port = unusedPort(), args: string[] = []): Promise<Nats> {
  const daemon = await startDaemon("nats-server", {
    args: ["-a", "127.0.0.1", "-p", String(port), ...args],
    ready: "Server is ready",
    stopSignal: "SIGKILL",
  });
  const kill = () => daemon.stop();
  return { port, url: `nats://127.0.0.1:${port}`, kill, [Symbol.asyncDispose]: kill };
}

/** A chat client that keeps reading what the server sends it. */
class ChatClient implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly conn: LineConnection;
  readonly name: string;
  readonly instance: number;
  readonly room: string;
  #wake: (() => void) | undefined;
  #ended = false;
  readonly #reading: Promise<void>;

  private constructor(conn: LineConnection, name: string, instance: number, room: string) {
    this.conn = conn;
    this.name = name;
    this.instance = instance;
    this.room = room;
    this.#reading = this.#read();
  }

  static async open(
    port: number,
    name: string,
    room: string,
    instance = 0,
  ): Promise<ChatClient> {
    const conn = await connect({ port });
    await conn.join(room, { name, timeoutMs: 10_000 });
    return new ChatClient(conn, name, instance, room);
  }

  async #read(): Promise<void> {
    try {
      for (let line; (line = await this.conn.readLine()) !== null;) {
        this.lines.push(line);
        this.#wake?.();
      }
    } catch {
      // Closed by the test.
    } finally {
      this.#ended = true;
      this.#wake?.();
    }
  }

  /** Waits until `done()` holds (it is checked after each line), at most `ms`. */
  async until(done: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (this.#ended) throw new Error(`${this.name}: connection ended before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.name}: timed out waiting for ${what}; last lines:\n` +
            this.lines.slice(-5).join("\n"),
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The member lines (`<name> text`) received from `sender`, as their text. */
  from(sender: string): string[] {
    const prefix = `<${sender}> `;
    return this.lines.filter((line) => line.startsWith(prefix)).map((line) =>
      line.slice(prefix.length)
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.conn.close();
    await this.#reading;
  }
}

/** Starts a chat instance on the bus. */
function startInstance(nats: Nats, extra: string[] = []): Promise<RunningServer> {
  return startServer([
    "--protocol",
    "chat",
    "--port",
    "0",
    "--bus",
    nats.url,
    "--bus-prefix",
    "chat-test",
    ...extra,
  ]);
}

Deno.test({
  name: ignoredName("chat rooms across instances through NATS", NATS_MISSING),
  ignore: NATS_MISSING !== undefined,
  async fn(t) {
    await t.step(
      "50 clients on two instances in 3 rooms: every line once to every other member, in order, " +
        "with the bus restarted midway",
      async () => {
        const nats = await startNats();
        await using _nats = nats;
        await using first = await startInstance(nats);
        await using second = await startInstance(nats);
        const instances = [first, second];
        const rooms = ["red", "green", "blue"];
        const clients: ChatClient[] = [];
        try {
          for (let i = 0; i < 50; i++) {
            const instance = i % 2;
            clients.push(
              await ChatClient.open(instances[instance]!.port, `c${i}`, rooms[i % 3]!, instance),
            );
          }
          const perPhase = 20;
          /** Each client says `perPhase` lines of `phase`, all at once. */
          const say = async (phase: string) => {
            await Promise.all(clients.map(async (client) => {
              for (let n = 0; n < perPhase; n++) client.conn.enqueue(`${phase} ${n}`);
              await client.conn.flush();
            }));
          };
          /** Who hears whom in a phase: the same room; with the bus down, the same instance too. */
          const hears = (receiver: ChatClient, sender: ChatClient, busDown: boolean) =>
            receiver !== sender && receiver.room === sender.room &&
            (!busDown || receiver.instance === sender.instance);
          const expectPhase = async (phase: string, busDown: boolean) => {
            await Promise.all(clients.map((receiver) =>
              receiver.until(
                () =>
                  clients.every((sender) =>
                    !hears(receiver, sender, busDown) ||
                    receiver.from(sender.name).filter((text) => text.startsWith(`${phase} `))
                        .length >= perPhase
                  ),
                30_000,
                `the lines of ${phase}`,
              )
            ));
          };

          await say("one");
          await expectPhase("one", false);

          await nats.kill();
          for (const instance of instances) {
            await instance.waitForStderr("connection lost", 10_000);
          }
          await say("two");
          await expectPhase("two", true);

          await using _restarted = await startNats(nats.port);
          for (const instance of instances) {
            await instance.waitForStderr("reconnected after", 20_000);
          }
          await say("three");
          await expectPhase("three", false);
          for (const client of clients) await client.conn.send("end");
          await Promise.all(clients.map((receiver) =>
            receiver.until(
              () =>
                clients.every((sender) =>
                  !hears(receiver, sender, false) || receiver.from(sender.name).includes("end")
                ),
              30_000,
              "everyone's end",
            )
          ));

          // Exactly these lines, in this order, from each sender; nothing from the others.
          const phase = (name: string) =>
            Array.from({ length: perPhase }, (_, n) => `${name} ${n}`);
          for (const receiver of clients) {
            for (const sender of clients) {
              const expected = !hears(receiver, sender, false) ? [] : [
                ...phase("one"),
                ...hears(receiver, sender, true) ? phase("two") : [],
                ...phase("three"),
                "end",
              ];
              assert.deepEqual(
                receiver.from(sender.name),
                expected,
                `${receiver.name} (instance ${receiver.instance}, ${receiver.room}) from ` +
                  `${sender.name} (instance ${sender.instance}, ${sender.room})`,
              );
            }
            // The bus's going and coming back were said to every member.
            assert.ok(receiver.lines.some((line) => line.startsWith("* the bus is down")));
            assert.ok(receiver.lines.some((line) => line.startsWith("* the bus is back")));
          }
        } finally {
          await Promise.all(clients.map((client) => client[Symbol.asyncDispose]()));
        }
      },
    );

    await t.step("/who and /rooms count the members of every instance", async () => {
      await using nats = await startNats();
      await using first = await startInstance(nats);
      await using second = await startInstance(nats);
      await using alice = await ChatClient.open(first.port, "alice", "ops", 0);
      await using bob = await ChatClient.open(second.port, "bob", "ops", 1);
      await using carol = await ChatClient.open(second.port, "carol", "lobby", 1);
      // The other instance answers within the half second `/who` waits (on a loaded machine it may
      // miss it: then the answer lists this instance's members only, and the question is asked
      // again).
      const ask = async (client: ChatClient, question: string, answer: string) => {
        for (let attempt = 1;; attempt++) {
          const before = client.lines.length;
          const kind = answer.slice(0, answer.indexOf(":"));
          const reply = () => client.lines.slice(before).find((line) => line.startsWith(kind));
          await client.conn.send(question);
          await client.until(() => reply() !== undefined, 10_000, question);
          const got = reply();
          if (got === answer) return;
          assert.ok(attempt < 5, `${question}: ${got}`);
        }
      };
      await ask(alice, "/who", "* members of ops: alice, bob");
      await ask(carol, "/rooms", "* rooms: lobby (1), ops (2)");
      // A leave on one instance is announced on the other.
      alice.conn.close();
      await bob.until(() => bob.lines.includes("* alice left ops"), 10_000, "alice's leave");
    });

    await t.step("the raw relay spans instances too, byte for byte", async () => {
      await using nats = await startNats();
      await using first = await startInstance(nats, ["--raw"]);
      await using second = await startInstance(nats, ["--raw"]);
      await using a = await connect({ port: first.port });
      await using b = await connect({ port: second.port, stripCR: false });
      // The relay says nothing itself: b is in the room (through the bus) once it hears a.
      for (let attempt = 0;; attempt++) {
        assert.ok(attempt < 100, "b never heard a");
        await a.send("ping");
        const heard = await b.readLine({ timeoutMs: 100 }).catch(() => undefined);
        if (heard === "ping") break;
      }
      await a.send("last ping");
      while ((await b.readLine(10_000)) !== "last ping") {
        // The pings of the attempts before.
      }
      a.enqueueBytes(new Uint8Array([0x00, 0x0d, 0xff, 0x41, 0x0a, 0x42, 0x0a]));
      await a.flush();
      assert.deepEqual([...(await b.readRawLine(10_000))!], [0x00, 0x0d, 0xff, 0x41]);
      assert.deepEqual([...(await b.readRawLine(10_000))!], [0x42]);
    });

    await t.step("with --workers, the workers share rooms through the bus", async () => {
      await using nats = await startNats();
      await using pool = await startInstance(nats, ["--workers", "2"]);
      const clients: ChatClient[] = [];
      try {
        for (let i = 0; i < 8; i++) clients.push(await ChatClient.open(pool.port, `w${i}`, "pool"));
        for (const client of clients) await client.conn.send(`from ${client.name}`);
        for (const receiver of clients) {
          await receiver.until(
            () =>
              clients.every((sender) =>
                sender === receiver ||
                receiver.from(sender.name).includes(`from ${sender.name}`)
              ),
            20_000,
            "every worker's lines",
          );
        }
        // Two instances on the bus: two guest suffixes among the welcome lines would show it, but
        // the workers' log lines say it directly.
        const connected = pool.stderr().match(/Chat bus .*: connected as instance/g) ?? [];
        assert.equal(connected.length, 2);
      } finally {
        await Promise.all(clients.map((client) => client[Symbol.asyncDispose]()));
      }
    });

    await t.step("credentials pass through; refused ones are one error line", async () => {
      await using nats = await startNats(unusedPort(), ["--user", "chat", "--pass", "s3cret"]);
      const wrong = await runCli("serve", [
        "--protocol",
        "chat",
        "--port",
        "0",
        "--bus",
        `nats://chat:wrong@127.0.0.1:${nats.port}`,
      ]);
      assert.equal(wrong.code, 3, wrong.stderr);
      assert.match(
        wrong.stderr,
        new RegExp(
          `^linesock: Cannot connect to the bus nats://127\\.0\\.0\\.1:${nats.port}: `,
          "m",
        ),
      );
      assert.ok(!wrong.stderr.includes("wrong"), "the password is not echoed");
      await using server = await startServer([
        "--protocol",
        "chat",
        "--port",
        "0",
        "--bus",
        `nats://chat:s3cret@127.0.0.1:${nats.port}`,
      ]);
      await using client = await ChatClient.open(server.port, "ok", "lobby");
      assert.equal(client.name, "ok");
    });

    await t.step({
      name: ignoredName("TLS passes through to the bus", OPENSSL_MISSING),
      ignore: OPENSSL_MISSING !== undefined,
      fn: async () => {
        await using certs = await makeTestCertificates();
        await using nats = await startNats(unusedPort(), [
          "--tls",
          "--tlscert",
          certs.server.cert,
          "--tlskey",
          certs.server.key,
        ]);
        await using first = await startServer([
          "--protocol",
          "chat",
          "--port",
          "0",
          "--bus",
          `tls://127.0.0.1:${nats.port}`,
          "--bus-ca",
          certs.caFile,
        ]);
        await using second = await startServer([
          "--protocol",
          "chat",
          "--port",
          "0",
          "--bus",
          `tls://127.0.0.1:${nats.port}`,
          "--bus-ca",
          certs.caFile,
        ]);
        await using alice = await ChatClient.open(first.port, "alice", "secure");
        await using bob = await ChatClient.open(second.port, "bob", "secure");
        await alice.conn.send("over TLS");
        await bob.until(() => bob.from("alice").includes("over TLS"), 10_000, "alice's line");
        // Without the CA, the server's certificate is not trusted.
        const untrusted = await runCli("serve", [
          "--protocol",
          "chat",
          "--port",
          "0",
          "--bus",
          `tls://127.0.0.1:${nats.port}`,
        ]);
        assert.equal(untrusted.code, 3, untrusted.stderr);
        assert.match(untrusted.stderr, /^linesock: Cannot connect to the bus tls:\/\//m);
      },
    });
  },
});

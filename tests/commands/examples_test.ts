/**
 * The protocols of examples/protocols/, each served by the real CLI (`linesock serve --routes
 * examples/protocols/NAME.jsonc`) and driven as that protocol's own client would: raw lines on a
 * socket. Also: each example passes the published schema (docs/routes.schema.json), which is the
 * loader's; command-line flags win over the file; every malformed file stops `serve` with exit 2
 * and its file:line:column; and no regular expression can make a line hang the server.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Validator } from "@cfworker/json-schema";
import { parse as parseJsonc } from "jsonc-parser";
import { LineSession, runCli, startServer, WAIT_MS, within } from "../_support/mod.ts";
import { Routes } from "../../lib/routes/mod.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLES = `${ROOT}examples/protocols`;
const HOST = Deno.hostname();

function example(name: string): string {
  return `${EXAMPLES}/${name}.jsonc`;
}

Deno.test("examples/protocols", async (t) => {
  await t.step("every example passes the published schema and loads", async () => {
    const published = JSON.parse(await Deno.readTextFile(`${ROOT}docs/routes.schema.json`));
    const own = JSON.parse(
      await Deno.readTextFile(`${ROOT}lib/routes/routes.schema.json`),
    );
    assert.deepEqual(
      published,
      own,
      "docs/routes.schema.json is a copy of lib/routes/routes.schema.json: copy it again",
    );
    const validator = new Validator(published, "7", false);
    const names: string[] = [];
    for await (const entry of Deno.readDir(EXAMPLES)) names.push(entry.name);
    assert.deepEqual(names.sort(), [
      "hello.jsonc",
      "json_service.jsonc",
      "ping_pong.jsonc",
      "prefix.jsonc",
    ]);
    for (const name of names) {
      const text = await Deno.readTextFile(`${EXAMPLES}/${name}`);
      const result = validator.validate(parseJsonc(text, [], { allowTrailingComma: true }));
      assert.ok(result.valid, `${name}: ${JSON.stringify(result.errors.at(-1))}`);
      await Routes.load(`${EXAMPLES}/${name}`);
    }
  });

  await t.step("prefix: [t]text is answered with text, [d] with Done! and the close", async () => {
    await using server = await startServer(["-p", "0", "--routes", example("prefix")]);
    await using client = await LineSession.open(server.port);
    await client.write("[t]hello there\n[t]\n[T]upper\nPING\n[d]x\n[d]\n[t]too late\n");
    assert.deepEqual(await client.readAll(), [
      "hello there",
      "",
      "ERR expected [t]text or [d]",
      "ERR expected [t]text or [d]",
      "ERR expected [t]text or [d]",
      "Done!",
    ]);
  });

  await t.step("ping_pong: one client at a time; disconnect, then shutdown", async () => {
    await using server = await startServer([
      "-p",
      "0",
      "--log-level",
      "debug",
      "--routes",
      example("ping_pong"),
    ]);
    await using first = await LineSession.open(server.port);
    assert.equal(await first.readLine(), "ready, client 1");
    await using second = await LineSession.open(server.port);
    await second.write("ping\n");
    // The second client waits for the first to leave.
    await server.waitForStderr(/Connection 2 from \S+ waits for a slot/);
    await first.write("ping\nPING\ndisconnect\n");
    assert.deepEqual(await first.readAll(), ["pong", "unknown command: PING", "bye"]);
    assert.deepEqual(await second.readLines(2), ["ready, client 2", "pong"]);
    // A third one waits in its turn, and hears the server go.
    await using third = await LineSession.open(server.port);
    await server.waitForStderr(/Connection 3 from \S+ waits for a slot/);
    await second.write("shutdown\n");
    assert.deepEqual(await second.readAll(), ["shutting down"]);
    assert.deepEqual(await third.readAll(), ["server shutting down"]);
    const exited = await within(server.process.status, WAIT_MS, "the server to exit");
    assert.equal(exited.code, 0);
  });

  await t.step("hello: greeting, HELLO from the host, case-sensitive, farewells", async () => {
    await using server = await startServer(["-p", "0", "--routes", example("hello")]);
    await using client = await LineSession.open(server.port);
    await client.write("HELLO\nclose\nhello\n");
    await client.write(new Uint8Array([0x48, 0xff, 0x0a])); // Not UTF-8.
    await client.write(`${"x".repeat(300)}\n`); // Longer than the file's maxLine (256).
    assert.deepEqual(await client.readAll(), [
      "MSG Welcome aboard !",
      `MSG Hello from ${HOST}`,
      "MSG Command not found",
      "MSG Command not found",
      "MSG Command not found",
      "MSG Line too long, bye",
      "MSG Bye",
    ]);
    await using closing = await LineSession.open(server.port);
    assert.deepEqual(await closing.exchange(["CLOSE", "HELLO"]), [
      "MSG Welcome aboard !",
      "MSG Bye",
    ]);
    // The server going down says so to whoever is connected.
    await using staying = await LineSession.open(server.port);
    assert.equal(await staying.readLine(), "MSG Welcome aboard !");
    await server.stop("SIGTERM");
    assert.deepEqual(await staying.readAll(), ["MSG Server going down, bye"]);
  });

  await t.step("hello: flags win over the file (idle timeout, greeting)", async () => {
    await using server = await startServer([
      "-p",
      "0",
      "--routes",
      example("hello"),
      "--idle-timeout",
      "200ms",
      "--greeting",
      "hi from the flag",
    ]);
    await using client = await LineSession.open(server.port);
    assert.deepEqual(await client.readAll(), ["hi from the flag", "MSG Too quiet, bye"]);
  });

  await t.step("json_service: command/args in, status/message/extra out", async () => {
    await using server = await startServer(["-p", "0", "--routes", example("json_service")]);
    await using client = await LineSession.open(server.port);
    const replies = await client.exchange([
      '{"command":"greet","args":{"name":"Ada"},"id":1}',
      '{"command":"add","args":{"a":2,"b":40},"id":2}',
      '{"command":"ping","id":3}',
      '{"command":"help","id":4}',
      '{"command":"nope","id":5}',
      '{"command":"BYE","id":6}',
      '{"command":"ping","id":7}',
    ]);
    assert.deepEqual(replies.map((line) => JSON.parse(line)), [
      { status: 0, message: "hello Ada, from calc", extra: { version: "1.0" }, id: 1 },
      { status: 0, message: "42", extra: { unit: "none" }, id: 2 },
      { status: 0, message: "pong", extra: null, id: 3 },
      {
        status: 0,
        message: ["ping", "echo", "time", "hello", "help", "greet", "add", "bye"],
        extra: null,
        id: 4,
      },
      {
        status: 1,
        message: 'unknown command: "nope" (send {"command": "help"} for the list)',
        extra: null,
        id: 5,
      },
      { status: 0, message: "bye", extra: null, id: 6 },
    ]);
  });

  await t.step("json_service: --name wins over the file's name", async () => {
    await using server = await startServer([
      "-p",
      "0",
      "--routes",
      example("json_service"),
      "--name",
      "other",
    ]);
    await using client = await LineSession.open(server.port);
    const [reply] = await client.exchange(['{"command":"greet","args":{"name":"Bo"}}']);
    assert.equal(JSON.parse(reply!).message, "hello Bo, from other");
  });
});

Deno.test("serve --routes: a malformed file stops it with exit 2 and its position", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-bad-routes-" });
  try {
    const cases: [string, string, RegExp][] = [
      [
        "bad JSONC",
        '{\n  "routes": [\n    { "match": { "exact": "a" }, "reply": \'x\' }\n',
        /:3:43: invalid JSON: unexpected "'x'", expected a value$/,
      ],
      [
        "schema violation",
        '{ "routes": [{ "match": { "exakt": "a" }, "reply": "x" }] }',
        /:1:27: routes\[0\]\.match\.exakt: unknown key \(did you mean "exact"\?\); expected one of /,
      ],
      [
        "bad regex",
        '{ "routes": [{ "match": { "regex": "^(a" }, "reply": "x" }] }',
        /:1:37: routes\[0\]\.match\.regex: invalid regular expression: missing closing \) `\^\(a`$/,
      ],
      [
        "regex that needs backtracking",
        '{ "routes": [{ "match": { "regex": "^(a+)\\\\1$" }, "reply": "x" }] }',
        /:1:42: routes\[0\]\.match\.regex: invalid regular expression: backreferences are not supported \(matching runs in linear time, without backtracking\)$/,
      ],
      [
        "unknown placeholder",
        '// a greeting\n{ "greeting": "hi from {hostname}" }',
        /:2:24: greeting: unknown placeholder \{hostname\}; available here: \{peer\}, \{id\}, \{host\}, \{name\}, \{time\}, \{connections\}$/,
      ],
      [
        "missing program",
        '{ "routes": [{ "match": { "exact": "a" }, "run": { "argv": ["linesock-no-such-program"] } }] }',
        /:1:61: routes\[0\]\.run\.argv\[0\]: cannot run "linesock-no-such-program": not found in PATH$/,
      ],
      [
        "missing program per connection",
        '{\n  "exec": { "argv": ["./no/such/program"] }\n}',
        /:2:22: exec\.argv\[0\]: cannot run "\.\/no\/such\/program": not found, or not an executable file$/,
      ],
    ];
    for (const [what, text, expected] of cases) {
      const path = `${dir}/${what.replaceAll(" ", "_")}.jsonc`;
      await Deno.writeTextFile(path, text);
      const result = await runCli("serve", ["-p", "0", "--routes", path]);
      assert.equal(result.code, 2, `${what}: ${result.stderr}`);
      assert.equal(result.stdout, "", what);
      const line = result.stderr.trim();
      assert.ok(line.startsWith(`linesock: ${path}:`), `${what}: ${line}`);
      assert.match(line, expected, what);
      assert.equal(line.split("\n").length, 1, `${what}: one line`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --routes: a regex cannot make a line hang the server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-regex-" });
  try {
    // With a backtracking engine, (a+)+$ on "aaaa…b" takes 2^n steps: the whole server would
    // stop. Routes' regexes run in linear time.
    const path = `${dir}/evil.jsonc`;
    await Deno.writeTextFile(
      path,
      '{ "routes": [{ "match": { "regex": "(a+)+$" }, "reply": "matched" }] }',
    );
    await using server = await startServer(["-p", "0", "--routes", path]);
    await using attacker = await LineSession.open(server.port);
    await using bystander = await LineSession.open(server.port);
    await attacker.write(`${"a".repeat(100_000)}b\n${"a".repeat(100_000)}\n`);
    await bystander.write("PING\n");
    assert.equal(await within(bystander.readLine(), WAIT_MS, "the bystander's PONG"), "PONG");
    assert.deepEqual(await within(attacker.readLines(2), WAIT_MS, "the attacker's replies"), [
      `ERR unknown command: ${"a".repeat(64)}...`,
      "matched",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

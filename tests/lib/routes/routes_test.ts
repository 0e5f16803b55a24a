import assert from "node:assert/strict";
import { alive, allGone, STRYKER_MUTANT_ENV, withEnv } from "../../_support/process.ts";
import { exists } from "../../_support/fs.ts";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_PROGRAM_ENV,
  ExecLimiter,
  ProgramOutputLimitError,
  ProgramTimeoutError,
  type RouteAction,
  type RouteContext,
  Routes,
  RoutesError,
} from "../../../lib/mod.ts";

const CONFIG = fileURLToPath(new URL("../../../deno.json", import.meta.url));
const context: RouteContext = { peer: "127.0.0.1:40000", connectionId: 7, lineNumber: 3 };

function fixture(name: string): string {
  return fileURLToPath(new URL(`../../fixtures/routes/${name}`, import.meta.url));
}

/** Routes from a plain object, so that tests read as the JSON a user writes. */
function routesOf(routes: unknown[]): Routes {
  return Routes.parse(JSON.stringify({ routes }), "test.json");
}

function replyLines(action: RouteAction | undefined): string[] {
  assert.ok(action, "expected a matching route");
  assert.notEqual(action.kind, "run");
  return (action as { lines: string[] }).lines;
}

async function runLines(action: RouteAction | undefined): Promise<string[]> {
  assert.equal(action?.kind, "run");
  return await Array.fromAsync(action.lines);
}

/** Parses text expected to be invalid and returns the error. */
function parseError(text: string): RoutesError {
  try {
    Routes.parse(text, "r.json");
  } catch (error) {
    assert.ok(error instanceof RoutesError, `expected a RoutesError, got ${error}`);
    return error;
  }
  assert.fail(`expected an error for ${text}`);
}

Deno.test("Routes matching", async (t) => {
  await t.step("the documented example file answers each kind of route", async () => {
    const routes = await Routes.load(fixture("example.json"));
    assert.equal(routes.size, 7);
    assert.equal(routes.lineRouteCount, 6);
    assert.equal(routes.commandRouteCount, 1);
    assert.deepEqual(routes.commands, ["greet"]);
    assert.deepEqual(routes.match("status", context), { kind: "reply", lines: ["OK all good"] });
    assert.deepEqual(replyLines(routes.match("say hi there", context)), ["you said: hi there"]);
    assert.deepEqual(replyLines(routes.match("ADD 2 40", context)), ["2+40"]);
    assert.deepEqual(routes.match("bye", context), { kind: "close", lines: ["ACK bye"] });
    assert.deepEqual(routes.match("stop", context), { kind: "shutdown", lines: ["stopping"] });
    assert.deepEqual(await runLines(routes.match("wc héllo", context)), ["7"]);
    assert.deepEqual(
      routes.matchCommand("greet", { name: "Ada" }, context),
      { kind: "reply", lines: ["hello Ada"] },
    );
    assert.equal(routes.match("status ", context), undefined);
    assert.equal(routes.match("greet", context), undefined, "command routes ignore text lines");
    assert.equal(routes.matchCommand("status", {}, context), undefined, "and the other way round");
  });

  await t.step("templates: groups, names, fields, escapes", () => {
    const routes = routesOf([
      {
        match: { regex: "^(\\w+)(?: (?<extra>\\w+))?(!)?" },
        reply: [
          "{0}|{1}|{extra}|{3}|{rest}|{line}",
          "{peer} #{id} line {lineNumber} {{literal}} }}{{",
        ],
      },
    ]);
    assert.deepEqual(replyLines(routes.match("hello world! and more", context)), [
      "hello world!|hello|world|!| and more|hello world! and more",
      "127.0.0.1:40000 #7 line 3 {literal} }{",
    ]);
    // Groups that did not take part render as nothing.
    assert.deepEqual(replyLines(routes.match("hi", context))[0], "hi|hi||||hi");
  });

  await t.step("exact, prefix and command matches can ignore case; regex uses flags", () => {
    const routes = routesOf([
      { match: { exact: "Ping", ignoreCase: true }, reply: "pong to {0}" },
      { match: { prefix: "ECHO ", ignoreCase: true }, reply: "{rest}" },
      { match: { regex: "^time$", flags: "i" }, reply: "noon" },
      { match: { command: "Greet", ignoreCase: true }, reply: "hi {command}" },
    ]);
    assert.deepEqual(replyLines(routes.match("pInG", context)), ["pong to pInG"]);
    assert.deepEqual(replyLines(routes.match("echo Keep Case", context)), ["Keep Case"]);
    assert.deepEqual(replyLines(routes.match("TIME", context)), ["noon"]);
    assert.deepEqual(replyLines(routes.matchCommand("GREET", {}, context)), ["hi GREET"]);
    const strict = routesOf([{ match: { exact: "ping" }, reply: "pong" }]);
    assert.equal(strict.match("PING", context), undefined);
  });

  await t.step("the first matching route wins, in file order", () => {
    const routes = routesOf([
      { match: { exact: "a b" }, reply: "exact" },
      { match: { prefix: "a " }, reply: "prefix" },
      { match: { regex: "" }, reply: "anything" },
      { match: { exact: "never" }, reply: "unreachable" },
    ]);
    assert.deepEqual(replyLines(routes.match("a b", context)), ["exact"]);
    assert.deepEqual(replyLines(routes.match("a c", context)), ["prefix"]);
    assert.deepEqual(replyLines(routes.match("never", context)), ["anything"]);
  });

  await t.step("JSON command routes: args placeholders, commandRegex groups", () => {
    const routes = routesOf([
      { match: { commandRegex: "^get-(?<what>\\w+)$" }, reply: "{what}: {args.key} / {1}" },
      {
        match: { command: "show" },
        reply: ["{args.name}|{args.n}|{args.deep.x}|{args.missing}|{args.flag}", "{args}"],
      },
    ]);
    assert.deepEqual(replyLines(routes.matchCommand("get-user", { key: "k1" }, context)), [
      "user: k1 / user",
    ]);
    const args = { name: "a\nb", n: 4, deep: { x: [1, "two"] }, flag: null };
    assert.deepEqual(replyLines(routes.matchCommand("show", args, context)), [
      'a\nb|4|[1,"two"]||null',
      JSON.stringify(args),
    ]);
    // Arguments that are not an object count as none.
    assert.deepEqual(replyLines(routes.matchCommand("show", [1, 2], context)), ["||||", "{}"]);
  });

  await t.step("close and shutdown with and without lines; an empty reply swallows a line", () => {
    const routes = routesOf([
      { match: { exact: "quit" }, close: true },
      { match: { exact: "halt" }, shutdown: true, reply: ["bye", "all"] },
      { match: { exact: "noise" }, reply: [] },
      { match: { exact: "kept" }, reply: "open", close: false },
    ]);
    assert.deepEqual(routes.match("quit", context), { kind: "close", lines: [] });
    assert.deepEqual(routes.match("halt", context), { kind: "shutdown", lines: ["bye", "all"] });
    assert.deepEqual(routes.match("noise", context), { kind: "reply", lines: [] });
    assert.deepEqual(routes.match("kept", context), { kind: "reply", lines: ["open"] });
  });
});

Deno.test("Routes running programs", async (t) => {
  await t.step("a hostile line reaches the program only on its stdin", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_routes_" });
    try {
      const marker = `${dir}/pwned`;
      const routes = routesOf([
        { match: { prefix: "run " }, run: { argv: ["cat"], stdin: "{rest}" } },
        { match: { regex: "^raw" }, run: { argv: ["od", "-An", "-c"] } },
      ]);
      const hostile =
        `; touch ${marker}; $(touch ${marker}) \`touch ${marker}\` "quoted" 'single' | > ${marker} && \\`;
      assert.deepEqual(await runLines(routes.match(`run ${hostile}`, context)), [hostile]);
      // The default stdin is the whole line; od shows it arrived byte for byte, plus the newline.
      const dumped = (await runLines(routes.match("raw;$(x)`y`", context))).join(" ");
      assert.deepEqual(dumped.trim().split(/\s+/), [
        "r",
        "a",
        "w",
        ";",
        "$",
        "(",
        "x",
        ")",
        "`",
        "y",
        "`",
        "\\n",
      ]);
      assert.equal(await exists(marker), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "a command route writes its args as JSON to stdin; a value with a newline is not substituted",
    async () => {
      const routes = routesOf([
        { match: { command: "store" }, run: { argv: ["cat"] } },
        { match: { command: "note" }, run: { argv: ["cat"], stdin: "{args.text}" } },
      ]);
      const args = { text: "first\n$(touch nothing)\nthird" };
      // As JSON, the newlines are escaped: one line.
      assert.deepEqual(await runLines(routes.matchCommand("store", args, context)), [
        JSON.stringify(args),
      ]);
      // Substituted, they would add lines the route did not write: refused, nothing runs.
      await assert.rejects(
        runLines(routes.matchCommand("note", args, context)),
        /refused: a value substituted into the program's stdin holds a line break/,
      );
      assert.deepEqual(
        await runLines(routes.matchCommand("note", { text: "one line" }, context)),
        ["one line"],
      );
    },
  );

  await t.step("a route's timeout kills a hanging program", async () => {
    const routes = routesOf([
      { match: { exact: "hang" }, run: { argv: ["sleep", "30"], timeout: "100ms" } },
    ]);
    const action = routes.match("hang", context);
    assert.equal(action?.kind, "run");
    await assert.rejects(Array.fromAsync(action.lines), (error) => {
      assert.ok(error instanceof ProgramTimeoutError);
      assert.equal(error.message, "program timed out after 100 ms");
      return true;
    });
  });

  await t.step("a route's output limit cuts a flooding program", async () => {
    const routes = routesOf([
      { match: { exact: "flood" }, run: { argv: ["yes"], maxOutput: "4KiB" } },
    ]);
    const action = routes.match("flood", context);
    assert.equal(action?.kind, "run");
    let count = 0;
    await assert.rejects(async () => {
      for await (const _ of action.lines) count++;
    }, ProgramOutputLimitError);
    assert.equal(count, 2048);
  });

  await t.step("programs share the limiter given in the options", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1, maxWaiting: 0 });
    const routes = Routes.parse(
      JSON.stringify({ routes: [{ match: { exact: "go" }, run: { argv: ["cat"] } }] }),
      "r.json",
      { limiter },
    );
    assert.equal(routes.limiter, limiter);
    using _held = await limiter.acquire();
    const action = routes.match("go", context);
    assert.equal(action?.kind, "run");
    await assert.rejects(Array.fromAsync(action.lines), /too many programs running/);
  });

  await t.step("aborting the context's signal kills the program", async () => {
    const routes = routesOf([{ match: { exact: "hang" }, run: { argv: ["sleep", "30"] } }]);
    const controller = new AbortController();
    const action = routes.match("hang", { ...context, signal: controller.signal });
    assert.equal(action?.kind, "run");
    const iterator = action.lines[Symbol.asyncIterator]();
    const next = iterator.next();
    controller.abort(new Error("connection closed"));
    await assert.rejects(next, /connection closed/);
  });

  await t.step("a client gone while its program is busy: all of it ends within 1 s", async () => {
    const routes = routesOf([{
      match: { exact: "burn" },
      run: {
        argv: ["sh", "-c", "while :; do :; done & echo $$ $!; while :; do :; done"],
        timeout: "1m",
      },
    }]);
    const controller = new AbortController();
    const action = routes.match("burn", { ...context, signal: controller.signal });
    assert.equal(action?.kind, "run");
    const iterator = action.lines[Symbol.asyncIterator]();
    const pids = String((await iterator.next()).value).split(" ").map(Number);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    const abortedAt = performance.now();
    controller.abort(new Error("connection reset"));
    await assert.rejects(iterator.next(), /connection reset/);
    assert.ok(performance.now() - abortedAt < 1000, "the handler's iteration ends at once");
    await allGone(pids, abortedAt + 1000);
  });

  await t.step("a client gone while its program waits for a slot: it never starts", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_routes_wait_" });
    try {
      const limiter = new ExecLimiter({ maxRunning: 1 });
      const routes = Routes.parse(
        JSON.stringify({
          routes: [{ match: { exact: "mark" }, run: { argv: ["touch", `${dir}/started`] } }],
        }),
        "r.json",
        { limiter },
      );
      const held = await limiter.acquire();
      const controller = new AbortController();
      const action = routes.match("mark", { ...context, signal: controller.signal });
      assert.equal(action?.kind, "run");
      const next = action.lines[Symbol.asyncIterator]().next();
      assert.equal(limiter.waiting, 1);
      controller.abort(new Error("connection closed"));
      assert.equal(limiter.waiting, 0);
      await assert.rejects(next, /connection closed/);
      held.release();
      assert.equal(limiter.running, 0, "the freed slot went to nobody");
      assert.equal(await exists(`${dir}/started`), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a program leaves no background process behind", async () => {
    const routes = routesOf([
      { match: { exact: "bg" }, run: { argv: ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!"] } },
    ]);
    const pids = (await Promise.all(
      Array.from({ length: 5 }, () => runLines(routes.match("bg", context))),
    )).flat().map(Number);
    await allGone(pids, performance.now() + 1000);
  });

  await t.step("programs see the server's environment only as allow-listed", async () => {
    await withEnv("SECRET_TOKEN", "x", async () => {
      const env = { match: { exact: "env" }, run: { argv: ["env"] } };
      const plain = await runLines(routesOf([env]).match("env", context));
      assert.ok(!plain.includes("SECRET_TOKEN=x"), "not passed by default");
      assert.ok(plain.includes(`PATH=${Deno.env.get("PATH")}`));
      for (const line of plain) {
        assert.ok(DEFAULT_PROGRAM_ENV.includes(line.slice(0, line.indexOf("="))), line);
      }
      // The file's "programEnv" applies to every program.
      const fileWide = Routes.parse(
        JSON.stringify({ programEnv: ["SECRET_TOKEN", "LINESOCK_NOT_SET"], routes: [env] }),
      );
      assert.ok((await runLines(fileWide.match("env", context))).includes("SECRET_TOKEN=x"));
      // A route's "inheritEnv" applies to its program only; its "env" sets values.
      const perRoute = routesOf([
        { match: { exact: "one" }, run: { argv: ["env"], inheritEnv: ["SECRET_TOKEN"] } },
        { match: { exact: "two" }, run: { argv: ["env"], env: { OWN: "1" } } },
      ]);
      assert.ok((await runLines(perRoute.match("one", context))).includes("SECRET_TOKEN=x"));
      const two = await runLines(perRoute.match("two", context));
      assert.ok(!two.includes("SECRET_TOKEN=x") && two.includes("OWN=1"));
      // The option (serve --exec-env) does the same as "programEnv".
      const option = Routes.parse(JSON.stringify({ routes: [env] }), "r.json", {
        programEnv: ["SECRET_TOKEN"],
      });
      assert.ok((await runLines(option.match("env", context))).includes("SECRET_TOKEN=x"));
    });
  });
});

Deno.test("Routes recipes of docs/routes.md", async (t) => {
  /** Answers lines like a text protocol would: reply lines, program output, or nothing after close. */
  async function session(routes: Routes, lines: string[]): Promise<string[]> {
    const replies: string[] = [];
    for (const [index, line] of lines.entries()) {
      const action = routes.match(line, { ...context, lineNumber: index + 1 });
      assert.ok(action, `no route for ${line}`);
      if (action.kind === "run") replies.push(...await Array.fromAsync(action.lines));
      else replies.push(...action.lines);
      if (action.kind === "close") break;
    }
    return replies;
  }

  await t.step(
    "every reply carries a fixed prefix; QUIT is acknowledged, then closes",
    async () => {
      const routes = await Routes.load(fixture("recipe_prefixed.json"));
      assert.deepEqual(
        await session(routes, ["PING", "echo hi there", "who", "dance", "quit", "ping"]),
        [
          "[srv] pong",
          "[srv] hi there",
          "[srv] you are 127.0.0.1:40000, connection 7",
          "[srv] unknown command: dance",
          "[srv] bye",
        ],
      );
    },
  );

  await t.step("numeric status codes, with answers computed by programs", async () => {
    const routes = await Routes.load(fixture("recipe_status_codes.json"));
    assert.deepEqual(
      await session(routes, [
        "HELO",
        "ADD 2 40",
        "ADD 1 x",
        "WORDS one; two $(three) `four`",
        "QUIT",
      ]),
      [
        "250 hello 127.0.0.1:40000",
        "250 42",
        "500 unknown command ADD",
        "250 4",
        "221 closing",
        "221 bye",
      ],
    );
  });
});

Deno.test("Routes validation", async (t) => {
  await t.step("errors in files name the file, line, column and path", async () => {
    const cases: [string, number, number, string, string][] = [
      [
        "bad_regex.json",
        5,
        28,
        "routes[1].match.regex",
        "invalid regular expression: missing closing ) `^add (\\d+$`",
      ],
      [
        "unknown_placeholder.json",
        5,
        43,
        "routes[0].reply[1]",
        "unknown placeholder {whom}; available here: {0}, {1}, {who}, {line}, {rest}, {peer}, {id}, {lineNumber}, {host}, {name}, {time}, {connections}",
      ],
      [
        "unknown_key.json",
        4,
        34,
        "routes[1].replly",
        'unknown key (did you mean "reply"?); expected one of "comment", "match", "reply", "close", "shutdown", "run", "extra", "help"',
      ],
      ["wrong_type.json", 3, 57, "routes[0].close", 'expected true or false, got the string "yes"'],
      [
        "reply_and_run.json",
        6,
        7,
        "routes[0].run",
        `"run" cannot be combined with "reply" in one route (a program's output is the reply; use a second route to close or shut down)`,
      ],
    ];
    for (const [name, line, column, path, reason] of cases) {
      const file = fixture(name);
      const error = await Routes.load(file).then(
        () => assert.fail(`${name} should not load`),
        (error: unknown) => error,
      );
      assert.ok(error instanceof RoutesError, name);
      assert.deepEqual(
        [error.file, error.line, error.column, error.path, error.reason],
        [file, line, column, path, reason],
        name,
      );
      assert.equal(
        error.message,
        `${file}:${line}:${column}: ${path ? `${path}: ` : ""}${reason}`,
      );
    }
  });

  await t.step("a missing file is a RoutesError without a position", async () => {
    const file = fixture("no_such_file.json");
    await assert.rejects(Routes.load(file), (error) => {
      assert.ok(error instanceof RoutesError);
      assert.equal(error.line, 0);
      assert.equal(error.message, `${file}: cannot read the routes file: no such file`);
      return true;
    });
  });

  await t.step("each mistake is reported where it is", () => {
    // [document, "line:column: path: reason"]; each document is written the way people write them.
    const cases: [string, string][] = [
      ["[]", '1:1: expected an object like {"routes": [...]}, got an empty array'],
      [
        '{"rules": []}',
        '1:2: rules: unknown key; expected one of "comment", "protocol", ' +
        '"name", "greeting", "farewell", "builtins", "allowShutdown", "maxClients", ' +
        '"idleTimeout", "maxLine", "programEnv", "routes", "fallback", "exec"',
      ],
      ['{"routes": {}}', "1:12: routes: expected an array of routes, got an object"],
      ['{"routes": [42]}', "1:13: routes[0]: expected a route object, got the number 42"],
      ['{"routes": [{"reply": "x"}]}', '1:13: routes[0]: missing key "match"'],
      [
        '{"routes": [{"match": {}, "reply": "x"}]}',
        '1:23: routes[0].match: expected one of "exact", "prefix", "regex", "command", "commandRegex", "undecodable", "tooLong"',
      ],
      [
        '{"routes": [{"match": {"exact": "a", "prefix": "b"}, "reply": "x"}]}',
        '1:38: routes[0].match.prefix: a match has exactly one kind, and this one already has "exact"',
      ],
      [
        '{"routes": [{"match": {"exact": 1}, "reply": "x"}]}',
        "1:33: routes[0].match.exact: expected a string, got the number 1",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}}]}',
        '1:13: routes[0]: expected an action: "reply", "run", "close": true or "shutdown": true',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": 5}]}',
        "1:48: routes[0].reply: expected a string or an array of strings, got the number 5",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": ["ok", null]}]}',
        "1:55: routes[0].reply[1]: expected a string, got null",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": "one\\ntwo"}]}',
        "1:52: routes[0].reply: a reply line cannot contain a line break; give several lines as an array",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": "{rest}"}]}',
        "1:49: routes[0].reply: unknown placeholder {rest}; available here: {0}, {line}, {peer}, {id}, {lineNumber}, {host}, {name}, {time}, {connections}",
      ],
      [
        '{"routes": [{"match": {"regex": "(a)"}, "reply": "{2}"}]}',
        "1:51: routes[0].reply: unknown placeholder {2}: the match has 1 capture group; available here: {0}, {1}, {line}, {rest}, {peer}, {id}, {lineNumber}, {host}, {name}, {time}, {connections}",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": "x {line"}]}',
        "1:51: routes[0].reply: '{' without its '}' (write '{{' for a literal brace)",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "reply": "x}"}]}',
        "1:50: routes[0].reply: lone '}' (write '}}' for a literal brace)",
      ],
      [
        '{"routes": [{"match": {"command": "a"}, "reply": "{line}"}]}',
        "1:51: routes[0].reply: unknown placeholder {line}; available here: {0}, {peer}, {id}, {lineNumber}, {command}, {args}, {host}, {name}, {time}, {connections}, {args.KEY}",
      ],
      [
        '{"routes": [{"match": {"regex": "a", "flags": "ig"}, "reply": "x"}]}',
        '1:49: routes[0].match.flags: unsupported flag "g"; allowed: i, m, s, u',
      ],
      [
        '{"routes": [{"match": {"regex": "(?<line>a)"}, "reply": "x"}]}',
        '1:34: routes[0].match.regex: the group name "line" hides the placeholder {line}; rename the group',
      ],
      [
        '{"routes": [{"match": {"regex": "a", "ignoreCase": true}, "reply": "x"}]}',
        '1:38: routes[0].match.ignoreCase: not used with "regex": add "i" to "flags" instead',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "close": true, "shutdown": true}]}',
        '1:54: routes[0].shutdown: "close" and "shutdown" cannot both be set (a shutdown closes every connection)',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"]}, "close": true}]}',
        `1:63: routes[0].close: "close" cannot be combined with "run" in one route (a program's output is the reply; use a second route to close or shut down)`,
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": []}}]}',
        '1:55: routes[0].run.argv: expected a non-empty array of strings such as ["wc", "-c"], got an empty array',
      ],
      [
        '{"routes": [{"match": {"prefix": "a"}, "run": {"argv": ["grep", "-e", "{rest}"]}}]}',
        '1:72: routes[0].run.argv[2]: argv is not a template: {rest} would be passed literally. Client text reaches a program only on its stdin (see "stdin")',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "timeout": "2"}}]}',
        '1:73: routes[0].run.timeout: expected a duration such as "500ms", "2s" or "1m", or a number of milliseconds, got the string "2"',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "timeout": 0}}]}',
        "1:73: routes[0].run.timeout: the timeout must be more than 0",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "maxOutput": "lots"}}]}',
        '1:75: routes[0].run.maxOutput: expected a size such as "64KiB" or "1MiB", or a number of bytes, got the string "lots"',
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "env": {"A": 1}}}]}',
        "1:75: routes[0].run.env.A: expected a string, got the number 1",
      ],
      [
        '{"programEnv": "PATH", "routes": []}',
        '1:16: programEnv: expected an array of environment variable names such as ["LANG"], got the string "PATH"',
      ],
      [
        '{"programEnv": ["LANG", 3], "routes": []}',
        "1:25: programEnv[1]: expected a string, got the number 3",
      ],
      [
        '{"routes": [], "programEnv": ["A=B"]}',
        "1:31: programEnv[0]: not a valid environment variable name",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "inheritEnv": ["TZ", ""]}}]}',
        "1:83: routes[0].run.inheritEnv[1]: not a valid environment variable name",
      ],
      [
        '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["x"], "shell": true}}]}',
        '1:62: routes[0].run.shell: unknown key; expected one of "comment", "argv", "stdin", "timeout", "maxOutput", "inheritEnv", "env", "cwd"',
      ],
      ['{"routes": [1, 2,]}', "1:13: routes[0]: expected a route object, got the number 1"],
      [
        '{"routes": [/* none */ "x"]}',
        '1:24: routes[0]: expected a route object, got the string "x"',
      ],
      ['{"routes": [', "1:13: invalid JSON: expected ']' to close the array"],
      ['{"routes": [] "fallback": {}}', "1:15: invalid JSON: expected ',' between items"],
      ['{"routes": [] /* open', "1:15: invalid JSON: unterminated comment"],
      ['{"routes": [], "routes": []}', '1:16: invalid JSON: duplicate key "routes"'],
      [
        '{\n  "routes": [\n    {"match": {"exact": "a"}, "reply": \'x\'}\n  ]\n}',
        `3:40: invalid JSON: unexpected "'x'", expected a value`,
      ],
    ];
    const wrong = cases.flatMap(([text, expected]) => {
      const { message } = parseError(text);
      const ok = message === `r.json:${expected}`;
      return ok ? [] : [`for ${text}\n  got:  ${message}\n  want: r.json:${expected}`];
    });
    assert.deepEqual(wrong, []);
  });

  await t.step("a whole protocol's keys: each mistake is reported where it is", () => {
    const cases: [string, string][] = [
      [
        '{"exec": {"argv": ["cat"]}, "routes": []}',
        '1:29: routes: not used with "exec": a program per connection answers every line itself',
      ],
      [
        '{"routes": [{"match": {"undecodable": true}, "run": {"argv": ["cat"]}}]}',
        '1:46: routes[0].run: "run" is not available for a line that is not UTF-8: there is no ' +
        "text to give the program",
      ],
      [
        '{"routes": [{"match": {"tooLong": false}, "reply": "x"}]}',
        "1:35: routes[0].match.tooLong: expected true, got false",
      ],
      [
        '{"routes": [{"match": {"tooLong": true, "ignoreCase": true}, "reply": "x"}]}',
        '1:41: routes[0].match.ignoreCase: not used with "tooLong"',
      ],
      [
        '{"fallback": {}}',
        '1:14: fallback: expected an action: "reply", "run", "close": true or "shutdown": true',
      ],
      [
        '{"greeting": "{line}"}',
        "1:15: greeting: unknown placeholder {line}; available here: {peer}, {id}, {host}, " +
        "{name}, {time}, {connections}",
      ],
      [
        '{"farewell": {"idle": ["ok", "{0}"]}}',
        "1:31: farewell.idle[1]: unknown placeholder {0}: nothing is matched here; available " +
        "here: {peer}, {id}, {host}, {name}, {time}, {connections}",
      ],
      [
        '{"protocol": "xml"}',
        '1:14: protocol: expected one of "text", "json", got the string "xml"',
      ],
      ['{"maxClients": 0}', "1:16: maxClients: expected at least 1, got the number 0"],
      [
        '{"idleTimeout": "soon"}',
        '1:17: idleTimeout: expected a duration such as "30s" or "5m", a number of milliseconds, ' +
        'or 0 (off), got the string "soon"',
      ],
      [
        '{"routes": [{"match": {"regex": "(?=a)"}, "reply": "x"}]}',
        "1:34: routes[0].match.regex: invalid regular expression: lookahead and lookbehind are " +
        "not supported (matching runs in linear time, without backtracking)",
      ],
      [
        '{"routes": [{"match": {"tooLong": true}, "reply": "x"}, {"match": {"tooLong": true}, "reply": "y"}]}',
        '1:67: routes[1].match: a second {"tooLong": true} route would never be used',
      ],
      [
        '{"farewell": {"bye": "x"}}',
        '1:15: farewell.bye: unknown key; expected one of "comment", "close", "idle", "shutdown"',
      ],
      [
        '{"exec": {"argv": []}}',
        '1:19: exec.argv: expected a non-empty array of strings such as ["cat"], got an empty array',
      ],
      [
        '{"exec": {"argv": ["cat"], "timeout": 0}}',
        "1:39: exec.timeout: the timeout must be more than 0",
      ],
      [
        '{"fallback": {"match": {"exact": "a"}, "reply": "x"}}',
        '1:15: fallback.match: unknown key; expected one of "comment", "reply", "close", ' +
        '"shutdown", "run", "extra"',
      ],
      [
        "// only a comment",
        "1:18: invalid JSON: unexpected end of the file, expected a value (object, array, string, " +
        "number, true, false or null)",
      ],
    ];
    const wrong = cases.flatMap(([text, expected]) => {
      const { message } = parseError(text);
      const ok = message === `r.json:${expected}`;
      return ok ? [] : [`for ${text}\n  got:  ${message}\n  want: r.json:${expected}`];
    });
    assert.deepEqual(wrong, []);
  });

  await t.step("JSONC: comments and trailing commas; the settings", () => {
    const routes = Routes.parse(
      `// A whole protocol.
      {
        "$schema": "../docs/routes.schema.json",
        /* the server */ "protocol": "json", "name": "n", "builtins": false, "allowShutdown": true,
        "maxClients": 1, "idleTimeout": "1m", "maxLine": "4KiB",
        "routes": [{ "match": { "command": "a" }, "reply": "b" },],
      }`,
      "r.jsonc",
    );
    assert.deepEqual(routes.settings, {
      protocol: "json",
      name: "n",
      builtins: false,
      allowShutdown: true,
      maxClients: 1,
      idleTimeoutMs: 60_000,
      maxLineBytes: 4096,
    });
    assert.deepEqual(Routes.parse('{"exec": {"argv": ["cat"], "timeout": "2s"}}').settings.exec, {
      argv: ["cat"],
      timeoutMs: 2000,
    });
  });

  await t.step("route hits are counted by place in the file", () => {
    const routes = Routes.parse(
      '{"routes": [{"match": {"exact": "a"}, "reply": "x"}], "fallback": {"reply": "y"}}',
    );
    routes.match("a", context);
    routes.match("a", context);
    routes.fallback("b", context);
    assert.deepEqual(routes.hits, { "routes[0]": 2, fallback: 1 });
  });

  await t.step("a variable the server may not read is an error where it is named", async () => {
    // A server whose --allow-env does not cover a name cannot pass it on: say so at load time.
    const dir = await Deno.makeTempDir({ prefix: "linesock_routes_env_" });
    try {
      const script = `${dir}/parse.ts`;
      await Deno.writeTextFile(
        script,
        `import { Routes } from ${
          JSON.stringify(new URL("../../../lib/routes/routes.ts", import.meta.url).href)
        };
        try { Routes.parse(Deno.args[0]!, "r.json"); console.log("ok"); }
        catch (error) { console.log((error as Error).message); }`,
      );
      const parse = async (text: string) => {
        const output = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--no-prompt",
            "--config",
            CONFIG,
            `--allow-env=LANG,${STRYKER_MUTANT_ENV}`,
            script,
            text,
          ],
          stdin: "null",
        }).output();
        assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
        return new TextDecoder().decode(output.stdout).trim();
      };
      assert.equal(await parse('{"programEnv": ["LANG"], "routes": []}'), "ok");
      assert.equal(
        await parse('{"programEnv": ["LANG", "SECRET_TOKEN"], "routes": []}'),
        'r.json:1:25: programEnv[1]: the server may not read the environment variable "SECRET_TOKEN", ' +
          "so it cannot pass it on; allow it with --allow-env=SECRET_TOKEN (or remove it here)",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("columns count characters, not bytes or UTF-16 units", () => {
    const error = parseError('{"routes": [{"match": {"exact": "😀é"}, "reply": "{nope}"}]}');
    assert.deepEqual([error.line, error.column], [1, 50]);
  });

  await t.step("valid odd but legal files load", () => {
    const routes = Routes.parse(
      JSON.stringify({
        comment: "top",
        routes: [
          {
            comment: "per route",
            match: { regex: "^x$", flags: "imsu" },
            run: {
              argv: ["jq", "-c", "{a}"],
              stdin: "{0}",
              timeout: 1500,
              maxOutput: 100,
              inheritEnv: ["LINESOCK_NOT_SET", "LANG"],
              env: { LANG: "C" },
              cwd: "/",
            },
          },
        ],
      }),
    );
    assert.equal(routes.size, 1);
    assert.equal(routes.source, "routes");
  });
});

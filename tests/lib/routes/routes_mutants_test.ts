/**
 * Tests written for the mutants of lib/routes/routes.ts that the other routes tests let survive
 * (issue #20, docs/mutation.md, "routes.ts"): the exact messages (and places) of the loader's own
 * checks, the accessors a server asks (`hasFallback`, `textCommands`, …), what each kind of match
 * and the fallback put in a template, `extra` on JSON responses, the settings a file gives, the
 * placeholders refused in `argv`, sizes and durations, and why a file cannot be read. Programs run
 * for real (`cat`, `pwd`, `sleep`, `head`); no test waits on time.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { STRYKER_MUTANT_ENV } from "../../_support/process.ts";
import {
  ProgramOutputLimitError,
  ProgramTimeoutError,
  type RouteAction,
  type RouteContext,
  Routes,
  RoutesError,
} from "../../../lib/routes/mod.ts";

const CONFIG = fileURLToPath(new URL("../../../deno.json", import.meta.url));
const context: RouteContext = { peer: "127.0.0.1:40000", connectionId: 7, lineNumber: 3 };

/** The error of a document that must not load, as `LINE:COLUMN: PATH: REASON` (no file name). */
function failure(document: unknown): string {
  const text = typeof document === "string" ? document : JSON.stringify(document);
  try {
    Routes.parse(text, "r.json");
  } catch (error) {
    assert.ok(error instanceof RoutesError, `expected a RoutesError, got ${error}`);
    assert.ok(error.message.startsWith("r.json:"), error.message);
    return error.message.slice("r.json:".length);
  }
  assert.fail(`expected an error for ${text}`);
}

/** Routes from the `routes` array (and other keys) of a file. */
function routesOf(routes: unknown[], rest: Record<string, unknown> = {}): Routes {
  return Routes.parse(JSON.stringify({ routes, ...rest }), "r.json");
}

function lines(action: RouteAction | undefined): string[] {
  assert.ok(action, "expected an action");
  assert.notEqual(action.kind, "run");
  return (action as { lines: string[] }).lines;
}

async function runLines(action: RouteAction | undefined): Promise<string[]> {
  assert.equal(action?.kind, "run");
  return await Array.fromAsync(action.lines);
}

Deno.test("routes.ts mutants: the loader's own checks say exactly what and where", async (t) => {
  const at = (document: unknown, expected: string) => assert.equal(failure(document), expected);

  await t.step("an empty program name, in a route's run and in exec", () => {
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": [""]}}]}',
      "1:56: routes[0].run.argv[0]: the program name is empty",
    );
    at('{"exec": {"argv": [""]}}', "1:20: exec.argv[0]: the program name is empty");
  });

  await t.step("a program that cannot be found is named where it is", () => {
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["linesock-no-such-program"]}}]}',
      '1:56: routes[0].run.argv[0]: cannot run "linesock-no-such-program": not found in PATH',
    );
    at(
      '{"exec": {"argv": ["linesock-no-such-program"]}}',
      '1:20: exec.argv[0]: cannot run "linesock-no-such-program": not found in PATH',
    );
  });

  await t.step("an environment name that is not one, at its key (run and exec)", () => {
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["sh"], "env": {"A=B": "x"}}}]}',
      "1:71: routes[0].run.env.A=B: not a valid environment variable name",
    );
    at(
      '{"exec": {"argv": ["sh"], "env": {"OK": "1", "A=B": "x"}}}',
      "1:46: exec.env.A=B: not a valid environment variable name",
    );
    at(
      '{"exec": {"argv": ["sh"], "inheritEnv": ["A=B"]}}',
      "1:42: exec.inheritEnv[0]: not a valid environment variable name",
    );
  });

  await t.step("flags on a match that is not a regex, a repeated flag", () => {
    at(
      '{"routes": [{"match": {"exact": "a", "flags": "i"}, "reply": "x"}]}',
      '1:38: routes[0].match.flags: only used with "regex" or "commandRegex" (for "exact" use "ignoreCase": true)',
    );
    at(
      '{"routes": [{"match": {"regex": "a", "flags": "mi"}, "reply": "x"}, {"match": {"regex": "a", "flags": "sis"}, "reply": "x"}]}',
      '1:106: routes[1].match.flags: flag "s" is repeated',
    );
  });

  await t.step("ignoreCase and flags are not for undecodable or tooLong lines", () => {
    at(
      '{"routes": [{"match": {"undecodable": true, "flags": "i"}, "reply": "x"}]}',
      '1:45: routes[0].match.flags: not used with "undecodable"',
    );
    at(
      '{"routes": [{"match": {"tooLong": true, "ignoreCase": true}, "reply": "x"}]}',
      '1:41: routes[0].match.ignoreCase: not used with "tooLong"',
    );
    at(
      '{"routes": [{"match": {"undecodable": true, "ignoreCase": false}, "reply": "x"}]}',
      '1:45: routes[0].match.ignoreCase: not used with "undecodable"',
    );
  });

  await t.step('"run" is refused for undecodable and too long lines', () => {
    at(
      '{"routes": [{"match": {"tooLong": true}, "run": {"argv": ["sh"]}}]}',
      '1:42: routes[0].run: "run" is not available for a line that is too long: there is no text to give the program',
    );
    at(
      '{"routes": [{"match": {"undecodable": true}, "run": {"argv": ["sh"]}}]}',
      '1:46: routes[0].run: "run" is not available for a line that is not UTF-8: there is no text to give the program',
    );
  });

  await t.step('"extra" only on command rules, at its key', () => {
    for (
      const match of ['{"exact": "a"}', '{"prefix": "a"}', '{"regex": "a"}', '{"tooLong": true}']
    ) {
      const document = `{"routes": [{"match": ${match}, "reply": "x", "extra": 1}]}`;
      const column = document.indexOf('"extra"') + 1;
      at(
        document,
        `1:${column}: routes[0].extra: "extra" is only for command rules ("command" or "commandRegex"): ` +
          "it is a field of the json protocol's responses",
      );
    }
  });

  await t.step("shutdown written before close, shutdown with run in either order", () => {
    at(
      '{"routes": [{"match": {"exact": "a"}, "shutdown": true, "close": true}]}',
      '1:57: routes[0].close: "close" and "shutdown" cannot both be set (a shutdown closes every connection)',
    );
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["sh"]}, "shutdown": true}]}',
      `1:64: routes[0].shutdown: "shutdown" cannot be combined with "run" in one route (a program's output is the reply; use a second route to close or shut down)`,
    );
    at(
      '{"routes": [{"match": {"exact": "a"}, "shutdown": true, "run": {"argv": ["sh"]}}]}',
      `1:57: routes[0].run: "run" cannot be combined with "shutdown" in one route (a program's output is the reply; use a second route to close or shut down)`,
    );
  });

  await t.step("a group name hiding a placeholder is pointed at its (?<", () => {
    at(
      '{"routes": [{"match": {"regex": "x(?<a>x)(?<args>y)"}, "reply": "x"}]}',
      '1:42: routes[0].match.regex: the group name "args" hides the placeholder {args}; rename the group',
    );
  });

  await t.step("each key a program per connection replaces, at its key", () => {
    for (
      const [key, value] of [
        ["fallback", '{"reply": "x"}'],
        ["greeting", '"hi"'],
        ["farewell", '{"close": "bye"}'],
        ["builtins", "false"],
        ["protocol", '"json"'],
        ["allowShutdown", "true"],
        ["programEnv", "[]"],
      ]
    ) {
      at(
        `{"exec": {"argv": ["sh"]}, "${key}": ${value}}`,
        `1:28: ${key}: not used with "exec": a program per connection answers every line itself`,
      );
    }
  });

  await t.step("a size under one byte, where it is written", () => {
    const reason = "the size must be a whole number of bytes, at least 1";
    at('{"maxLine": "0.1"}', `1:13: maxLine: ${reason}`);
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["sh"], "maxOutput": "0.1"}}]}',
      `1:76: routes[0].run.maxOutput: ${reason}`,
    );
    at('{"exec": {"argv": ["sh"], "maxLine": "0.1"}}', `1:38: exec.maxLine: ${reason}`);
    at('{"exec": {"argv": ["sh"], "maxLineBytes": "0.1"}}', `1:43: exec.maxLineBytes: ${reason}`);
    at('{"exec": {"argv": ["sh"]}, "maxLine": "0.1"}', `1:39: maxLine: ${reason}`);
    // Too big to count exactly is refused too.
    at(`{"maxLine": "${"9".repeat(20)}g"}`, `1:13: maxLine: ${reason}`);
  });

  await t.step("an idle timeout too long to count", () => {
    at(`{"idleTimeout": "${"9".repeat(400)}m"}`, "1:17: idleTimeout: expected a finite duration");
  });

  await t.step("a stdin template is checked where it is", () => {
    at(
      '{"routes": [{"match": {"exact": "a"}, "run": {"argv": ["cat"], "stdin": "{rest}"}}]}',
      "1:74: routes[0].run.stdin: unknown placeholder {rest}; available here: {0}, {line}, {peer}, {id}, {lineNumber}, {host}, {name}, {time}, {connections}",
    );
  });

  await t.step("undecodable and tooLong replies have no match fields nor groups", () => {
    for (const kind of ["undecodable", "tooLong"]) {
      for (const placeholder of ["{0}", "{1}", "{line}", "{rest}"]) {
        const document = `{"routes": [{"match": {"${kind}": true}, "reply": "${placeholder}"}]}`;
        assert.match(
          failure(document),
          new RegExp(
            `^1:\\d+: routes\\[0\\]\\.reply: unknown placeholder \\${placeholder.slice(0, -1)}\\}`,
          ),
          `${kind} ${placeholder}`,
        );
      }
      const routes = routesOf([{ match: { [kind]: true }, reply: "ERR {peer} {id} {lineNumber}" }]);
      const action = kind === "tooLong"
        ? routes.matchTooLong(context)
        : routes.matchUndecodable(context);
      assert.deepEqual(lines(action), ["ERR 127.0.0.1:40000 7 3"]);
    }
  });

  await t.step("a second undecodable or tooLong route", () => {
    at(
      '{"routes": [{"match": {"tooLong": true}, "reply": "a"}, {"match": {"tooLong": true}, "reply": "b"}]}',
      '1:67: routes[1].match: a second {"tooLong": true} route would never be used',
    );
  });
});

Deno.test("routes.ts mutants: what a file says it has", async (t) => {
  await t.step("hasFallback, hasGreeting, hasUndecodable, hasTooLong, hasFarewell", () => {
    const none = routesOf([{ match: { exact: "a" }, reply: "x" }]);
    assert.deepEqual(
      [none.hasFallback, none.hasGreeting, none.hasUndecodable, none.hasTooLong],
      [false, false, false, false],
    );
    assert.deepEqual(
      [none.hasFarewell("close"), none.hasFarewell("idle"), none.hasFarewell("shutdown")],
      [false, false, false],
    );
    assert.equal(none.matchUndecodable(context), undefined);
    assert.equal(none.matchTooLong(context), undefined);
    assert.equal(none.fallback("b", context), undefined);
    assert.equal(none.fallbackCommand("b", {}, context), undefined);
    const all = routesOf(
      [{ match: { undecodable: true }, reply: "u" }, { match: { tooLong: true }, reply: "t" }],
      { greeting: "hi", farewell: { idle: "zzz" }, fallback: { reply: "?" } },
    );
    assert.deepEqual(
      [all.hasFallback, all.hasGreeting, all.hasUndecodable, all.hasTooLong],
      [true, true, true, true],
    );
    assert.deepEqual(
      [all.hasFarewell("close"), all.hasFarewell("idle"), all.hasFarewell("shutdown")],
      [false, true, false],
    );
  });

  await t.step("lineRouteCount counts the undecodable and tooLong routes", () => {
    const routes = routesOf([
      { match: { exact: "a" }, reply: "x" },
      { match: { tooLong: true }, reply: "t" },
      { match: { command: "c" }, reply: "x" },
    ]);
    assert.deepEqual([routes.lineRouteCount, routes.commandRouteCount, routes.size], [2, 1, 3]);
    const both = routesOf([
      { match: { undecodable: true }, reply: "u" },
      { match: { tooLong: true }, reply: "t" },
    ]);
    assert.equal(both.lineRouteCount, 2);
  });

  await t.step("textCommands and commands: exact, prefix trimmed, help; once each", () => {
    const routes = routesOf([
      { match: { exact: "status" }, reply: "x" },
      { match: { prefix: "say  " }, reply: "x" },
      { match: { regex: "^add" }, reply: "x" },
      { match: { regex: "^sub" }, reply: "x", help: "sub" },
      { match: { exact: "status", ignoreCase: true }, reply: "x" },
      { match: { exact: "quiet" }, reply: "x", help: "" },
      { match: { tooLong: true }, reply: "t" },
      { match: { command: "ping" }, reply: "x" },
      { match: { commandRegex: "^get" }, reply: "x" },
      { match: { commandRegex: "^put" }, reply: "x", help: "put" },
      { match: { command: "ping" }, reply: "y" },
    ]);
    assert.deepEqual(routes.textCommands, ["status", "say", "sub"]);
    assert.deepEqual(routes.commands, ["ping", "put"]);
    assert.deepEqual(routesOf([{ match: { command: "c" }, reply: "x" }]).textCommands, []);
  });

  await t.step("the settings hold only what the file says; builtins default to true", () => {
    assert.deepEqual(routesOf([]).settings, { builtins: true });
    assert.strictEqual(Routes.parse("{}").settings.builtins, true);
    assert.deepEqual(
      routesOf([], {
        protocol: "json",
        name: "n",
        allowShutdown: false,
        maxClients: 3,
        idleTimeout: " 1.5s ",
        maxLine: " 2kib ",
        builtins: false,
      }).settings,
      {
        builtins: false,
        protocol: "json",
        name: "n",
        allowShutdown: false,
        maxClients: 3,
        idleTimeoutMs: 1500,
        maxLineBytes: 2048,
      },
    );
  });

  await t.step("exec's settings: each key it has, and only those", () => {
    assert.deepEqual(Routes.parse('{"exec": {"argv": ["cat"]}}').settings, {
      builtins: true,
      exec: { argv: ["cat"] },
    });
    assert.deepEqual(
      Routes.parse(
        '{"exec": {"argv": ["cat"], "maxExec": 2, "env": {"A": "1"}, "cwd": "/", "timeout": "2s"}}',
      ).settings.exec,
      { argv: ["cat"], maxExec: 2, env: { A: "1" }, cwd: "/", timeoutMs: 2000 },
    );
  });
});

Deno.test("routes.ts mutants: sizes and durations in every written form", async (t) => {
  const maxLine = (value: string | number) =>
    routesOf([], { maxLine: value }).settings.maxLineBytes;
  const idle = (value: string | number) =>
    routesOf([], { idleTimeout: value }).settings.idleTimeoutMs;

  await t.step("sizes: units, fractions, blanks, many digits, exactly 1", () => {
    assert.deepEqual(
      ["12", "12k", "2K", "1.25k", "1.125KiB", "3kb", "1m", "2MiB", "1g", "10b", " 7 ", "1"].map(
        maxLine,
      ),
      [12, 12288, 2048, 1280, 1152, 3072, 1048576, 2097152, 1073741824, 10, 7, 1],
    );
    assert.equal(maxLine(1), 1);
  });

  await t.step("durations: units, fractions, blanks", () => {
    assert.deepEqual(
      ["250ms", "1.5s", "1.25s", "2m", " 3s ", "10 ms", "0"].map((value) =>
        value === "0" ? idle(0) : idle(value)
      ),
      [250, 1500, 1250, 120000, 3000, 10, 0],
    );
  });
});

Deno.test("routes.ts mutants: what each match puts in a template", async (t) => {
  await t.step("a prefix's {0} is the line's own text, even ignoring case", () => {
    const routes = routesOf([
      { match: { prefix: "say ", ignoreCase: true }, reply: "[{0}] [{rest}] [{line}]" },
    ]);
    assert.deepEqual(lines(routes.match("SAY hi", context)), ["[SAY ] [hi] [SAY hi]"]);
  });

  await t.step("the fallback of a line: {0} and {line} are the line, no command", () => {
    const routes = routesOf([], {
      fallback: { reply: "[{0}] [{line}] [{command}] [{args}] [{args.k}] #{lineNumber}" },
    });
    assert.deepEqual(lines(routes.fallback("what?", context)), ["[what?] [what?] [] [{}] [] #3"]);
  });

  await t.step("the fallback of a command: {0} and {command} are its name, no line", () => {
    const routes = routesOf([], {
      fallback: { reply: "[{0}] [{line}] [{command}] [{args}] [{args.k}]" },
    });
    assert.deepEqual(
      lines(routes.fallbackCommand("nope", { k: "v" }, context)),
      ['[nope] [] [nope] [{"k":"v"}] [v]'],
    );
  });

  await t.step("{connections} and {name} come from the context when it has them", () => {
    const routes = routesOf([{ match: { exact: "n" }, reply: "{connections} {name}" }], {
      name: "file",
    });
    assert.deepEqual(lines(routes.match("n", context)), ["1 file"]);
    assert.deepEqual(
      lines(routes.match("n", { ...context, connections: 5, name: "ctx" })),
      ["5 ctx"],
    );
    assert.deepEqual(routes.greeting({ ...context, connections: 9 }), undefined);
  });

  await t.step("{host} is the machine's name", () => {
    const routes = routesOf([], { greeting: "{host}" });
    assert.deepEqual(routes.greeting(context), [Deno.hostname()]);
    assert.deepEqual(routes.greeting(context), [Deno.hostname()]);
  });

  await t.step("arguments that are not an object count as none", () => {
    const routes = routesOf([{ match: { command: "c" }, reply: "{args}|{args.length}" }]);
    for (const args of [null, "text", 42, [1, 2], undefined]) {
      assert.deepEqual(lines(routes.matchCommand("c", args, context)), ["{}|"], String(args));
    }
    assert.deepEqual(lines(routes.matchCommand("c", { length: 2 }, context)), [
      '{"length":2}|2',
    ]);
  });
});

Deno.test("routes.ts mutants: extra goes with command answers only", async (t) => {
  await t.step("a command route's extra, a fallback's extra for commands only", () => {
    const routes = routesOf([{ match: { command: "c" }, reply: "ok", extra: { n: 1 } }], {
      fallback: { reply: "?", extra: "why" },
    });
    assert.deepEqual(routes.matchCommand("c", {}, context), {
      kind: "reply",
      lines: ["ok"],
      extra: { n: 1 },
    });
    assert.deepEqual(routes.fallbackCommand("d", {}, context), {
      kind: "reply",
      lines: ["?"],
      extra: "why",
    });
    assert.deepEqual(routes.fallback("d", context), { kind: "reply", lines: ["?"] });
  });

  await t.step("routes without extra have no extra key", () => {
    const routes = routesOf([{ match: { command: "c" }, reply: "ok" }], {
      fallback: { reply: "?" },
    });
    assert.ok(!("extra" in routes.matchCommand("c", {}, context)!));
    assert.ok(!("extra" in routes.fallbackCommand("d", {}, context)!));
  });
});

Deno.test("routes.ts mutants: placeholders refused in argv", async (t) => {
  const argvError = (match: unknown, argument: string): string | undefined => {
    try {
      routesOf([{ match, run: { argv: ["echo", argument] } }]);
      return undefined;
    } catch (error) {
      assert.ok(error instanceof RoutesError);
      return error.reason;
    }
  };
  const refused = (placeholder: string) =>
    `argv is not a template: ${placeholder} would be passed literally. Client text reaches a program only on its stdin (see "stdin")`;

  await t.step("group numbers up to the match's count", () => {
    assert.equal(argvError({ exact: "a" }, "{0}"), refused("{0}"));
    assert.equal(argvError({ exact: "a" }, "{1}"), undefined);
    assert.equal(argvError({ regex: "(a)" }, "{1}"), refused("{1}"));
    assert.equal(argvError({ regex: "(a)" }, "{2}"), undefined);
    const ten = "(a)".repeat(10);
    assert.equal(argvError({ regex: ten }, "{10}"), refused("{10}"));
    assert.equal(argvError({ regex: "(?<g1>a)" }, "{g1}"), refused("{g1}"));
    // Only whole numbers are group numbers: {1.5} is not a placeholder.
    assert.equal(argvError({ regex: "(a)(b)" }, "{1.5}"), undefined);
  });

  await t.step("args only on command routes; other braces pass", () => {
    assert.equal(argvError({ command: "c" }, "{args}"), refused("{args}"));
    assert.equal(argvError({ command: "c" }, "{args.x}"), refused("{args.x}"));
    assert.equal(argvError({ command: "c" }, "x{zzz}"), undefined);
    assert.equal(argvError({ command: "c" }, "{}"), undefined);
    assert.equal(argvError({ command: "c" }, "{x.args.}"), undefined);
    assert.equal(argvError({ exact: "a" }, "{args}"), undefined);
    assert.equal(argvError({ exact: "a" }, "{args.x}"), undefined);
  });
});

Deno.test("routes.ts mutants: programs of routes", async (t) => {
  await t.step("a route's cwd is the program's working directory", async () => {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "linesock_routes_cwd_" }));
    try {
      const routes = routesOf([{ match: { exact: "a" }, run: { argv: ["pwd"], cwd: dir } }]);
      assert.deepEqual(await runLines(routes.match("a", context)), [dir]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a command's program reads its args as JSON", async () => {
    const routes = routesOf([{ match: { command: "c" }, run: { argv: ["cat"] } }]);
    assert.deepEqual(await runLines(routes.matchCommand("c", { a: 1 }, context)), ['{"a":1}']);
  });

  // Routes.#act tells a command from a line by `command !== ""`, so a command whose name is empty
  // (which only a direct caller of matchCommand can send: the json protocol refuses it) is run as
  // a line: its program reads "" instead of its args, and its route's extra is dropped. Left for
  // the lead to decide (issue #20, routes.ts mutant 445:53); ignored until then.
  await t.step({
    name: "a command with an empty name is still a command (args on stdin, extra kept)",
    ignore: true,
    fn: async () => {
      const routes = routesOf([
        { match: { commandRegex: "^$" }, run: { argv: ["cat"] }, extra: 1 },
      ]);
      const action = routes.matchCommand("", { a: 1 }, context);
      assert.equal(action?.extra, 1);
      assert.deepEqual(await runLines(action), ['{"a":1}']);
    },
  });

  await t.step("the fallback's program reads the line", async () => {
    const routes = routesOf([], { fallback: { run: { argv: ["cat"] } } });
    assert.deepEqual(await runLines(routes.fallback("one line", context)), ["one line"]);
    assert.deepEqual(await runLines(routes.fallbackCommand("c", { b: 2 }, context)), ['{"b":2}']);
  });

  await t.step("the default timeout of the options holds for routes that set none", async () => {
    const routes = Routes.parse(
      JSON.stringify({ routes: [{ match: { exact: "a" }, run: { argv: ["sleep", "30"] } }] }),
      "r.json",
      { defaultTimeoutMs: 200 },
    );
    await assert.rejects(Array.fromAsync(routes.match("a", context)!.lines), (error) => {
      assert.ok(error instanceof ProgramTimeoutError);
      assert.equal(error.message, "program timed out after 200 ms");
      return true;
    });
  });

  await t.step(
    "the default output limit of the options holds for routes that set none",
    async () => {
      const routes = Routes.parse(
        JSON.stringify({
          routes: [{ match: { exact: "a" }, run: { argv: ["head", "-c", "100", "/dev/zero"] } }],
        }),
        "r.json",
        { defaultMaxOutputBytes: 10 },
      );
      await assert.rejects(Array.fromAsync(routes.match("a", context)!.lines), (error) => {
        assert.ok(error instanceof ProgramOutputLimitError);
        assert.match(error.message, /limit of 10 bytes/);
        return true;
      });
    },
  );
});

Deno.test("routes.ts mutants: a file that cannot be read says why", async (t) => {
  await t.step("a directory", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_routes_dir_" });
    try {
      await assert.rejects(Routes.load(dir), (error) => {
        assert.ok(error instanceof RoutesError);
        assert.equal(error.message, `${dir}: cannot read the routes file: it is a directory`);
        assert.ok(error.cause instanceof Deno.errors.IsADirectory);
        return true;
      });
    } finally {
      await Deno.remove(dir);
    }
  });

  await t.step("a missing file keeps its cause", async () => {
    const dir = await Deno.makeTempDir({ prefix: "linesock_routes_missing_" });
    try {
      await assert.rejects(Routes.load(`${dir}/none.json`), (error) => {
        assert.ok(error instanceof RoutesError);
        assert.ok(error.cause instanceof Deno.errors.NotFound);
        return true;
      });
    } finally {
      await Deno.remove(dir);
    }
  });

  await t.step({
    name: "a file the user may not read (not as root: root reads it)",
    ignore: Deno.build.os === "windows" || Deno.uid() === 0,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "linesock_routes_mode_" });
      try {
        await Deno.writeTextFile(`${dir}/r.json`, "{}", { mode: 0o000 });
        await Deno.chmod(`${dir}/r.json`, 0o000);
        await assert.rejects(Routes.load(`${dir}/r.json`), (error) => {
          assert.ok(error instanceof RoutesError);
          assert.equal(
            error.message,
            `${dir}/r.json: cannot read the routes file: permission denied`,
          );
          return true;
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  await t.step(
    "without --allow-read or --allow-sys (a server run with few permissions)",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "linesock_routes_perm_" });
      try {
        const script = `${dir}/load.ts`;
        await Deno.writeTextFile(
          script,
          `import { Routes } from ${
            JSON.stringify(new URL("../../../lib/routes/routes.ts", import.meta.url).href)
          };
        console.log(Routes.parse('{"greeting": "on {host}"}').greeting({ peer: "p", connectionId: 1, lineNumber: 0 })![0]);
        try { await Routes.load(Deno.args[0]!); } catch (error) { console.log((error as Error).message); }`,
        );
        const output = await new Deno.Command(Deno.execPath(), {
          // Only the variable that names Stryker's active mutant (so that a mutation run sees it).
          args: [
            "run",
            "--no-prompt",
            "--config",
            CONFIG,
            `--allow-env=${STRYKER_MUTANT_ENV}`,
            script,
            `${dir}/r.json`,
          ],
          stdin: "null",
        }).output();
        assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
        assert.deepEqual(new TextDecoder().decode(output.stdout).trim().split("\n"), [
          "on localhost",
          `${dir}/r.json: cannot read the routes file: not allowed (see --allow-read)`,
        ]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});

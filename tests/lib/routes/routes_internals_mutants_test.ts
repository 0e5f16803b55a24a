/**
 * Tests written for the mutants of the routes area's internals that its other tests let survive
 * (issue #20, docs/mutation.md, "_routes_document.ts, _route_regex.ts, _program_process.ts,
 * program_runner.ts, _route_template.ts"): RE2's complaints turned into positioned messages, the
 * routes file's syntax and schema messages, template compilation and rendering edges, where a
 * program is looked up before it starts, and `runProgram`'s limits, errors, logs and limiter.
 * Real programs run where programs are concerned; every wait is bounded.
 */
import assert from "node:assert/strict";
import { compileRouteRegex, RouteRegexError } from "../../../lib/routes/_route_regex.ts";
import { describeValue, RoutesDocument } from "../../../lib/routes/_routes_document.ts";
import {
  compileTemplate,
  renderStdinTemplate,
  renderTemplate,
  type Template,
  TemplateError,
  type TemplateScope,
  type TemplateValues,
} from "../../../lib/routes/_route_template.ts";
import {
  describeStartError,
  killGroup,
  mayReadEnv,
  programMissing,
  spawnProgram,
} from "../../../lib/routes/_program_process.ts";
import {
  ExecLimiter,
  ExecQueueFullError,
  ProgramFailedError,
  ProgramOutputEncodingError,
  ProgramOutputLimitError,
  ProgramStartError,
  ProgramTimeoutError,
  runProgram,
} from "../../../lib/routes/program_runner.ts";
import { alive, allGone } from "../../_support/process.ts";
import { withLogs } from "../../_support/logs.ts";
import { WAIT_MS, within } from "../../_support/timeouts.ts";

const LINEAR = "(matching runs in linear time, without backtracking)";

/** The error `fn` throws (it must throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

Deno.test("compileRouteRegex: RE2's refusals", async (t) => {
  const cases: [pattern: string, message: string, index: number][] = [
    ["x(?!a)", `lookahead and lookbehind are not supported ${LINEAR}`, 1],
    ["(?=a)", `lookahead and lookbehind are not supported ${LINEAR}`, 0],
    ["a(?<=b)", `lookahead and lookbehind are not supported ${LINEAR}`, 1],
    ["x\\2", `backreferences are not supported ${LINEAR}`, 1],
    // RE2's own words, with the fragment it names and where it is.
    ["a{2,1}", "invalid repeat count `{2,1}`", 1],
    ["(?P<n", "invalid named capture `(?P<n`", 0],
    // Translated to `(?P<n`, which is not in the pattern as written: index 0.
    ["(?<n", "invalid named capture `(?P<n`", 0],
    ["\\p{Foo}", "invalid character class range `\\p{Foo}`", 0],
    // An error later in the pattern than where a lookbehind or a backreference is written.
    ["a**(?<=b)", "invalid nested repetition operator `**`", 1],
    ["a**\\1", "invalid nested repetition operator `**`", 1],
    // A bad group name, then a lookbehind inside it: RE2's complaint is about the name.
    ["(?<n(?<=a)", "invalid named capture `(?P<n(?<=a)`", 0],
    // No fragment (RE2 names none): the message alone, at the start.
    ["xnull\\", "trailing backslash at end of expression", 0],
    ["\\", "trailing backslash at end of expression", 0],
    // The fragment is of the translated pattern, not found in the written one: index 0.
    ["[\\u0041-\\u0030]", "invalid character class range `\\x{0041}-\\x{0030}`", 0],
  ];
  for (const [pattern, message, index] of cases) {
    await t.step(`${JSON.stringify(pattern)} → ${message} at ${index}`, () => {
      const error = thrown(() => compileRouteRegex(pattern, ""));
      assert.ok(error instanceof RouteRegexError);
      assert.equal(error.name, "RouteRegexError");
      assert.equal(error.message, message);
      assert.equal(error.index, index);
    });
  }
  await t.step("a pattern that is not a string: the runtime's message at 0", () => {
    const error = thrown(() => compileRouteRegex(null as unknown as string, ""));
    assert.ok(error instanceof RouteRegexError);
    assert.match(error.message, /^The pattern must be a string, not null/);
    assert.equal(error.index, 0);
  });
});

const document = (text: string) => RoutesDocument.parse(text, "f");
const failure = (text: string) => thrown(() => document(text)).message;

Deno.test("RoutesDocument.parse: syntax errors in words", async (t) => {
  const cases: [text: string, message: string][] = [
    ["{1: 2}", "f:1:2: invalid JSON: expected a key in double quotes"],
    ['{"a": 1', "f:1:8: invalid JSON: expected '}' to close the object"],
    ["{} {}", "f:1:4: invalid JSON: unexpected text after the end of the document"],
    ["/* x", "f:1:1: invalid JSON: unterminated comment"],
    ['{"routes": "ab', "f:1:12: invalid JSON: unterminated string"],
    ['{"routes": "\\u00zz"}', "f:1:12: invalid JSON: invalid \\u escape"],
    ['{"routes": "\\q"}', "f:1:12: invalid JSON: invalid escape character in a string"],
    [
      '{"routes": "a\tb"}',
      "f:1:12: invalid JSON: invalid character in a string (control characters must be escaped)",
    ],
    [
      '{"routes": ',
      "f:1:12: invalid JSON: unexpected end of the file, expected a value (object, array, " +
      "string, number, true, false or null)",
    ],
    [
      '{"a": abcdefghijklmnopqrstuvwxyz}',
      'f:1:7: invalid JSON: unexpected "abcdefghijklmnopqrst", expected a value',
    ],
  ];
  for (const [text, message] of cases) {
    await t.step(`${JSON.stringify(text)} → ${message}`, () => {
      assert.equal(failure(text), message);
    });
  }
});

Deno.test("RoutesDocument.parse: a key repeated in a later, nested object is found", () => {
  assert.equal(
    failure(
      '{"routes": [{"match": {"regex": "a"}, "reply": "x"}, ' +
        '{"match": {"regex": "a", "regex": "b"}, "reply": "y"}]}',
    ),
    'f:1:79: invalid JSON: duplicate key "regex"',
  );
});

Deno.test("RoutesDocument.parse: schema errors in words", async (t) => {
  const cases: [text: string, message: string][] = [
    [
      '{"routes": [], "maxClients": 1.5}',
      "f:1:30: maxClients: expected a whole number, got the number 1.5",
    ],
    [
      '{"routes":[{"match":{"regex":"a"},"run":{"argv":["x"],"env":{"A/B~C":5}}}]}',
      "f:1:70: routes[0].run.env.A/B~C: expected a string, got the number 5",
    ],
    [
      '{"routes":[{"match":{"exact":"a", "bogus": 1},"reply":"x"}]}',
      'f:1:35: routes[0].match.bogus: unknown key; expected one of "comment", "exact", "prefix", ' +
      '"regex", "command", "commandRegex", "undecodable", "tooLong", "ignoreCase", "flags"',
    ],
    [
      '{"routes": [{"match": {"regex": "a", "exact": "b"}, "reply": "x"}]}',
      'f:1:38: routes[0].match.exact: a match has exactly one kind, and this one already has "regex"',
    ],
    [
      '{"routes": [{"match": {}, "reply": "x"}]}',
      'f:1:23: routes[0].match: expected one of "exact", "prefix", "regex", "command", ' +
      '"commandRegex", "undecodable", "tooLong"',
    ],
    ['{"routes": [], "greeting": [5]}', "f:1:29: greeting[0]: expected a string, got the number 5"],
    [
      '{"routes": [], "farewell": {"close": 5}}',
      "f:1:38: farewell.close: expected a string or an array of strings, got the number 5",
    ],
    [
      '{"routes":[{"match":{"regex":"a"},"run":{"argv":["x"], "maxOutput": []}}]}',
      'f:1:69: routes[0].run.maxOutput: expected a size such as "64KiB" or "1MiB", or a number ' +
      "of bytes, got an empty array",
    ],
    [
      '{"routes":[{"match":{"regex":"a"},"run":{"argv":["x"],"env":5}}]}',
      "f:1:61: routes[0].run.env: expected an object, got the number 5",
    ],
    [
      '{"routes": [{"match": {"tooLong": false}, "reply": "x"}]}',
      "f:1:35: routes[0].match.tooLong: expected true, got false",
    ],
  ];
  for (const [text, message] of cases) {
    await t.step(`${JSON.stringify(text)} → ${message}`, () => {
      assert.equal(failure(text), message);
    });
  }
});

Deno.test("RoutesDocument.parse: the error shown is the deepest, then unknown keys, then kinds", async (t) => {
  const cases: [what: string, text: string, message: string][] = [
    [
      "an unknown key before a missing kind at the same place",
      '{"routes":[{"match":{"bogus":1},"reply":"x"}]}',
      'f:1:22: routes[0].match.bogus: unknown key; expected one of "comment", "exact", ' +
      '"prefix", "regex", "command", "commandRegex", "undecodable", "tooLong", "ignoreCase", "flags"',
    ],
    [
      "an unknown key before two kinds at the same place",
      '{"routes":[{"match":{"exact":"a","regex":"b","bogus":1},"reply":"x"}]}',
      'f:1:46: routes[0].match.bogus: unknown key; expected one of "comment", "exact", ' +
      '"prefix", "regex", "command", "commandRegex", "undecodable", "tooLong", "ignoreCase", "flags"',
    ],
    [
      "the kinds before the type at the same place",
      '{"routes":[{"match":5,"reply":"x"}]}',
      'f:1:21: routes[0].match: expected one of "exact", "prefix", "regex", "command", ' +
      '"commandRegex", "undecodable", "tooLong"',
    ],
    [
      "a deeper error before a shallower unknown key",
      '{"routes":[{"match":{"regex":5},"reply":"x"}], "bogus": 1}',
      "f:1:30: routes[0].match.regex: expected a string, got the number 5",
    ],
    [
      "depth counts steps, not characters",
      '{"routes":[{"match":{"exact":"a"},"reply":"x"}], "allowShutdown": 5, "greeting": [5]}',
      "f:1:83: greeting[0]: expected a string, got the number 5",
    ],
  ];
  for (const [what, text, message] of cases) {
    await t.step(what, () => {
      assert.equal(failure(text), message);
    });
  }
});

Deno.test("RoutesDocument.offsetOf: characters of a string value, escapes counted as one", () => {
  const text = '{"name": "\\u00e9\\"x", "maxClients": 1, "routes": []}';
  const parsed = document(text);
  const start = text.indexOf('"\\u');
  assert.equal(parsed.offsetOf(["name"], { index: 0 }), start + 1);
  assert.equal(parsed.offsetOf(["name"], { index: 1 }), start + 7);
  assert.equal(parsed.offsetOf(["name"], { index: 2 }), start + 9);
  // Not a string: the value itself, whatever the index.
  assert.equal(parsed.offsetOf(["maxClients"], { index: 1 }), text.indexOf("1,"));
  // Past the end of the text: the end of the text.
  const last = '{"routes": [], "name": "xy"}';
  assert.equal(document(last).offsetOf(["name"], { index: 100 }), last.length);
});

Deno.test("describeValue: each kind of value", () => {
  assert.equal(describeValue(null), "null");
  assert.equal(describeValue([]), "an empty array");
  assert.equal(describeValue([1]), "an array");
  assert.equal(describeValue({}), "an object");
  assert.equal(describeValue("yes"), 'the string "yes"');
  assert.equal(describeValue(4), "the number 4");
  assert.equal(describeValue(true), "true");
});

const SCOPE: TemplateScope = {
  groupCount: 2,
  namedGroups: new Set(["x1"]),
  fields: new Set(["line", "id", "lineNumber", "connections", "time"]),
  args: true,
};

const VALUES: TemplateValues = {
  groups: ["ab", "a", "b"],
  named: undefined,
  line: "ab",
  rest: "",
  peer: "p",
  id: 7,
  lineNumber: 3,
  command: "",
  args: { s: "xyz", n: null, u: undefined, deep: { k: "v" } },
  host: "h",
  name: "n",
  connections: 2,
};

Deno.test("compileTemplate: parts and refusals", async (t) => {
  await t.step("no empty literal between or after placeholders", () => {
    assert.deepEqual(compileTemplate("{line}{1}", SCOPE), [
      { kind: "field", name: "line" },
      { kind: "group", index: 1 },
    ]);
  });
  await t.step("a literal '}}' before a placeholder", () => {
    assert.deepEqual(compileTemplate("}}{line}", SCOPE), ["}", { kind: "field", name: "line" }]);
  });
  await t.step("a named group whose name ends in a digit is not a number", () => {
    assert.deepEqual(compileTemplate("{x1}", SCOPE), [{ kind: "named", name: "x1" }]);
  });
  await t.step("a two-digit group", () => {
    assert.deepEqual(compileTemplate("{12}", { ...SCOPE, groupCount: 12 }), [
      { kind: "group", index: 12 },
    ]);
  });
  const refusals: [source: string, scope: TemplateScope, message: string, index: number][] = [
    ["a{x{line}", SCOPE, "'{' without its '}' (write '{{' for a literal brace)", 1],
    [
      "{1a}",
      SCOPE,
      "unknown placeholder {1a}; available here: {0}, {1}, {2}, {x1}, {line}, {id}, " +
      "{lineNumber}, {time}, {connections}, {args.KEY}",
      0,
    ],
    [
      "{3}",
      SCOPE,
      "unknown placeholder {3}: the match has 2 capture groups; available here: {0}, {1}, {2}, " +
      "{x1}, {line}, {id}, {lineNumber}, {time}, {connections}, {args.KEY}",
      0,
    ],
    ["x{args.a..b}", SCOPE, "bad placeholder {args.a..b}: empty key in the path", 1],
    ["{args.a.}", SCOPE, "bad placeholder {args.a.}: empty key in the path", 0],
  ];
  for (const [source, scope, message, index] of refusals) {
    await t.step(`${JSON.stringify(source)} → ${message}`, () => {
      const error = thrown(() => compileTemplate(source, scope));
      assert.ok(error instanceof TemplateError);
      assert.equal(error.name, "TemplateError");
      assert.equal(error.message, message);
      assert.equal(error.index, index);
    });
  }
});

Deno.test("renderTemplate and renderStdinTemplate: fields and arguments", async (t) => {
  await t.step("numbers are rendered as text, in a stdin template too", () => {
    const template = compileTemplate("{id} {lineNumber} {connections}", SCOPE);
    assert.equal(renderTemplate(template, VALUES), "7 3 2");
    assert.equal(renderStdinTemplate(template, VALUES), "7 3 2");
  });
  await t.step("{time} is the current time in ISO form", () => {
    const template = compileTemplate("{time}", SCOPE);
    for (const text of [renderTemplate(template, VALUES), renderStdinTemplate(template, VALUES)]) {
      assert.match(text ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });
  await t.step("a named group without named values renders as nothing", () => {
    const template: Template = ["<", { kind: "named", name: "x1" }, ">"];
    assert.equal(renderTemplate(template, VALUES), "<>");
  });
  await t.step("a path through a string, null or undefined renders as nothing", () => {
    const template = compileTemplate("<{args.s.length}|{args.n.k}|{args.u}|{args.deep.k}>", SCOPE);
    assert.equal(renderTemplate(template, VALUES), "<|||v>");
  });
});

Deno.test("describeStartError: each runtime error in a few words", () => {
  assert.equal(describeStartError(new Deno.errors.NotFound("x")), "not found");
  assert.equal(describeStartError(new Deno.errors.PermissionDenied("x")), "permission denied");
  assert.equal(
    describeStartError(new Deno.errors.NotCapable("x")),
    "not allowed (see --allow-run)",
  );
  assert.equal(describeStartError(new Error("something else")), "something else");
  assert.equal(describeStartError("plain"), "plain");
});

Deno.test("mayReadEnv: names the runtime refuses are not readable", () => {
  assert.equal(mayReadEnv("PATH"), true);
  assert.equal(mayReadEnv(""), false);
  assert.equal(mayReadEnv("A=B"), false);
});

Deno.test("programMissing: where a program is looked for", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-missing-" });
  try {
    await Deno.writeTextFile(`${dir}/prog`, "#!/bin/sh\necho hi\n");
    await Deno.chmod(`${dir}/prog`, 0o755);
    await Deno.writeTextFile(`${dir}/plain`, "not a program\n");
    await Deno.chmod(`${dir}/plain`, 0o644);
    const none = { inheritEnv: [] as string[] };
    await t.step("a relative path is relative to the working directory given", () => {
      assert.equal(programMissing("./prog", { ...none, cwd: dir }), undefined);
      assert.equal(programMissing("./prog", none), "not found, or not an executable file");
    });
    await t.step("an absolute path is not relative to the working directory", () => {
      assert.equal(programMissing(`${dir}/prog`, { ...none, cwd: "/nonexistent" }), undefined);
    });
    await t.step("a relative path without a working directory: the server's", () => {
      const up = "../".repeat(Deno.cwd().split("/").filter((part) => part !== "").length);
      assert.equal(programMissing(`${up}${dir.slice(1)}/prog`, none), undefined);
    });
    await t.step("a file that is not executable, a directory", () => {
      assert.equal(programMissing(`${dir}/plain`, none), "not found, or not an executable file");
      assert.equal(programMissing(dir, none), "not found, or not an executable file");
    });
    await t.step("no PATH for the program", () => {
      assert.equal(
        programMissing("prog", none),
        "not found (the program gets no PATH: give its path)",
      );
    });
    await t.step("PATH is searched in order, an empty entry is the working directory", () => {
      assert.equal(
        programMissing("prog", { ...none, env: { PATH: `/nonexistent:${dir}` } }),
        undefined,
      );
      assert.equal(programMissing("prog", { ...none, env: { PATH: "" }, cwd: dir }), undefined);
      assert.equal(
        programMissing("prog", { ...none, env: { PATH: `${dir}/none:/nonexistent` } }),
        "not found in PATH",
      );
      assert.equal(programMissing("plain", { ...none, env: { PATH: dir } }), "not found in PATH");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("killGroup: the program's background children die with it", async () => {
  const child = spawnProgram(["sh", "-c", "sleep 3571 & echo $!; wait"], { inheritEnv: ["PATH"] });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pid = 0;
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await within(reader.read(), WAIT_MS, "the background pid");
      if (done) break;
      text += value;
    }
    pid = Number(text.trim());
    assert.ok(alive(pid));
    killGroup(child, false);
    await within(child.status, WAIT_MS, "the program's end");
    await allGone([pid], Date.now() + WAIT_MS);
  } finally {
    if (pid > 0 && alive(pid)) Deno.kill(pid, "SIGKILL");
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended (the expected case).
    }
  }
  await child.status;
  await reader.cancel();
  await child.stderr.cancel();
});

const run = (options: Parameters<typeof runProgram>[0]) =>
  within(Array.fromAsync(runProgram(options)), WAIT_MS, `${options.argv.join(" ")}`);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

Deno.test("runProgram: argument checks", () => {
  const message = (options: Parameters<typeof runProgram>[0]) =>
    thrown(() => runProgram(options)).message;
  assert.equal(message({ argv: [] }), "argv must name a program");
  assert.equal(message({ argv: [""] }), "argv must name a program");
  assert.equal(
    message({ argv: ["true"], maxOutputBytes: 0 }),
    "maxOutputBytes must be >= 1, got 0",
  );
  assert.equal(message({ argv: ["true"], maxLineBytes: -1 }), "maxLineBytes must be >= 0, got -1");
  // The smallest values allowed.
  runProgram({ argv: ["true"], maxOutputBytes: 1, maxLineBytes: 0 });
});

Deno.test("runProgram: errors, their codes and messages", async (t) => {
  await t.step("a missing program: its start error is the cause", async () => {
    const error = await rejection(run({ argv: ["/nonexistent/linesock-prog"] }));
    assert.ok(error instanceof ProgramStartError);
    assert.ok(error.cause instanceof Deno.errors.NotFound);
    assert.equal(
      new ProgramStartError([], "why").message,
      'cannot start program "": why',
    );
  });
  await t.step("killed by a signal", async () => {
    const error = await rejection(run({ argv: ["sh", "-c", "kill -9 $$"] }));
    assert.ok(error instanceof ProgramFailedError);
    assert.equal(error.message, "program was killed by SIGKILL");
  });
  await t.step("stderr's first line, trimmed, for the log", async () => {
    const error = await rejection(
      run({ argv: ["sh", "-c", "printf '  first  \\nsecond\\n' >&2; exit 3"] }),
    );
    assert.ok(error instanceof ProgramFailedError);
    assert.equal(error.stderr, "first");
    assert.equal(error.message, "program exited with status 3");
  });
  await t.step("a long stderr line is cut at 200 characters", async () => {
    const error = await rejection(run({ argv: ["sh", "-c", "printf '%0300d' 0 >&2; exit 1"] }));
    assert.ok(error instanceof ProgramFailedError);
    assert.equal(error.stderr, "0".repeat(200) + "…");
  });
  await t.step("a stderr longer than what is kept, in one write", async () => {
    const error = await rejection(
      run({ argv: ["python3", "-c", "import os, sys; os.write(2, b'y' * 5000); sys.exit(1)"] }),
    );
    assert.ok(error instanceof ProgramFailedError);
    assert.equal(error.stderr, "y".repeat(200) + "…");
  });
  await t.step("output exactly at the limit is fine", async () => {
    assert.deepEqual(await run({ argv: ["printf", "abc\\n"], maxOutputBytes: 4 }), ["abc"]);
  });
  await t.step("output limit: its code", async () => {
    const error = await rejection(run({ argv: ["printf", "abcdef\\n"], maxOutputBytes: 3 }));
    assert.ok(error instanceof ProgramOutputLimitError);
    assert.equal(error.code, "PROGRAM_OUTPUT_LIMIT");
  });
  await t.step(
    "the first failure wins: a long line within a chunk over the total limit",
    async () => {
      const error = await rejection(
        run({ argv: ["printf", "abcdefghijklmnop"], maxOutputBytes: 10, maxLineBytes: 3 }),
      );
      assert.ok(error instanceof ProgramOutputLimitError);
      assert.equal(error.scope, "line");
    },
  );
  await t.step("invalid UTF-8: its code", async () => {
    const error = await rejection(run({ argv: ["printf", "\\377\\n"] }));
    assert.ok(error instanceof ProgramOutputEncodingError);
    assert.equal(error.code, "PROGRAM_INVALID_OUTPUT");
  });
  await t.step("a timeout while waiting for the exit after stdout closed", async () => {
    const error = await rejection(
      run({ argv: ["sh", "-c", "exec >&-; exec sleep 3571"], timeoutMs: 300 }),
    );
    assert.ok(error instanceof ProgramTimeoutError, String(error));
  });
});

Deno.test("runProgram: stopping the iteration kills a program that has no timeout", async () => {
  const lines = runProgram({ argv: ["sh", "-c", "echo hi; exec sleep 3571"], timeoutMs: Infinity });
  const seen = await within(
    (async () => {
      for await (const line of lines) return line;
    })(),
    WAIT_MS,
    "the first line and the program's end",
  );
  assert.equal(seen, "hi");
});

Deno.test("runProgram: a failure is logged with stderr's first line", async () => {
  await withLogs(["linesock", "routes"], "warning", async (logs) => {
    await rejection(run({ argv: ["sh", "-c", "echo oops >&2; exit 3"] }));
    await logs.waitFor(/^Route program sh \(pid \d+\) exited with status 3: oops$/);
    await rejection(run({ argv: ["sh", "-c", "exit 4"] }));
    await logs.waitFor(/^Route program sh \(pid \d+\) exited with status 4$/);
  });
});

Deno.test("ExecLimiter: limits, waiting line and aborts", async (t) => {
  await t.step("bad limits in words", () => {
    assert.equal(
      thrown(() => new ExecLimiter({ maxRunning: 0 })).message,
      "maxRunning must be a whole number >= 1, got 0",
    );
    assert.equal(
      thrown(() => new ExecLimiter({ maxWaiting: -1 })).message,
      "maxWaiting must be >= 0, got -1",
    );
  });
  await t.step("an aborted caller takes no slot", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1 });
    const reason = new Error("gone");
    assert.equal(await rejection(limiter.acquire(AbortSignal.abort(reason))), reason);
    assert.equal(limiter.running, 0);
  });
  await t.step("a full line refuses with no argv when none is given", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1, maxWaiting: 0 });
    using _slot = await limiter.acquire();
    const error = await rejection(limiter.acquire());
    assert.ok(error instanceof ExecQueueFullError);
    assert.deepEqual(error.argv, []);
  });
  await t.step("releasing a slot lets one waiter in, not all", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1 });
    const first = await limiter.acquire();
    const second = limiter.acquire();
    const third = limiter.acquire();
    first.release();
    (await second).release();
    (await third).release();
    const held = await limiter.acquire();
    const a = limiter.acquire();
    const b = limiter.acquire();
    held.release();
    assert.equal(limiter.running, 1);
    assert.equal(limiter.waiting, 1);
    (await a).release();
    (await b).release();
  });
  await t.step("the second waiter leaves the line when it aborts", async () => {
    const limiter = new ExecLimiter({ maxRunning: 1 });
    const held = await limiter.acquire();
    const first = limiter.acquire();
    const controller = new AbortController();
    const second = limiter.acquire(controller.signal);
    controller.abort(new Error("stop"));
    await rejection(second);
    assert.equal(limiter.waiting, 1);
    held.release();
    (await first).release();
    assert.equal(limiter.running, 0);
  });
});

Deno.test("killGroup: under a scoped --allow-run, the program itself is killed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-killgroup-" });
  try {
    const module = new URL("../../../lib/routes/_program_process.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { killGroup, spawnProgram } from ${JSON.stringify(module)};
const child = spawnProgram(["sleep", "97"], { inheritEnv: ["PATH"] });
killGroup(child, false);
const status = await child.status;
await child.stdout.cancel();
await child.stderr.cancel();
console.log(status.signal);
`,
    );
    const program = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-read",
        "--allow-env=PATH",
        "--allow-run=sleep",
        "main.ts",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = await within(program.output(), WAIT_MS, "the program's end").catch((error) => {
      program.kill("SIGKILL");
      throw error;
    });
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "SIGKILL");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("programMissing: without --allow-read, the start itself says", async () => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-noread-" });
  try {
    const module = new URL("../../../lib/routes/_program_process.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { programMissing } from ${JSON.stringify(module)};
console.log(String(programMissing("/bin/sh", { inheritEnv: [] })));
`,
    );
    const output = await within(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "main.ts"],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output(),
      WAIT_MS,
      "the program's end",
    );
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "undefined");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  // RE2JS translates `\k<name>` to the literal text `k<name>`: without its own check, such a
  // pattern loaded and matched "ak<n>" instead of "aa" (found by mutation testing, issue #20).
  name: "compileRouteRegex: a named backreference is refused where it is, an escaped one is text",
  fn() {
    assert.equal(compileRouteRegex("\\\\k<n>", "").exec("\\k<n>")?.[0], "\\k<n>");
    const error = thrown(() => compileRouteRegex("(?<n>a)\\k<n>", ""));
    assert.ok(error instanceof RouteRegexError);
    assert.equal(error.index, 7);
    assert.equal(error.message, `backreferences are not supported ${LINEAR}`);
  },
});

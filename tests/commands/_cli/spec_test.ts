import assert from "node:assert/strict";
import {
  type CommandSpec,
  formatHelp,
  parse,
  UnknownOptionError,
  UsageError,
} from "../../../commands/_cli/spec.ts";

const SPEC: CommandSpec = {
  name: "demo",
  summary: "A demonstration.",
  args: [{ name: "TARGET", help: "where" }, { name: "LINE", help: "lines", variadic: true }],
  options: [
    { long: "port", short: "p", value: "PORT", help: "port", parse: Number, default: 1991 },
    { long: "protocol", value: "NAME", help: "wire protocol", choices: ["text", "json"] },
    { long: "reconnect", help: "reconnect", negatable: true, default: true },
    { long: "header", short: "H", value: "TEXT", help: "a header", multiple: true },
    { long: "raw", help: "raw output" },
    { long: "test-hook", help: "for tests", hidden: true },
  ],
  aliases: [{ name: "-u", of: "raw" }, { name: "--old-port", of: "port" }],
  examples: [["linesock demo tcp://h:1", "demonstrate"]],
};

Deno.test("parse", async (t) => {
  await t.step("long, short, attached, = and defaults", () => {
    const parsed = parse(SPEC, ["tcp://h:1", "--protocol=json", "-p7", "a", "--", "-q", "b"]);
    assert.deepEqual(parsed.args, ["tcp://h:1", "a", "-q", "b"]);
    assert.equal(parsed.options.port, 7);
    assert.equal(parsed.options.protocol, "json");
    assert.equal(parsed.options.reconnect, true);
    assert.deepEqual([...parsed.given].sort(), ["port", "protocol"]);
  });
  await t.step("stacked flags count; --no- turns a default off; repeats collect", () => {
    const parsed = parse(SPEC, ["-vvq", "--no-reconnect", "-H", "a", "--header", "b", "-v"]);
    assert.equal(parsed.options.verbose, 3);
    assert.equal(parsed.options.quiet, true);
    assert.equal(parsed.options.reconnect, false);
    assert.deepEqual(parsed.options.header, ["a", "b"]);
  });
  await t.step("a negative number is an argument", () => {
    assert.deepEqual(parse(SPEC, ["x", "-5"]).args, ["x", "-5"]);
  });
  await t.step("old spellings work with a warning", () => {
    const parsed = parse(SPEC, ["-u", "--old-port", "9"]);
    assert.equal(parsed.options.raw, true);
    assert.equal(parsed.options.port, 9);
    assert.deepEqual(parsed.warnings, [
      "-u is deprecated and goes away in 1.0: use --raw",
      "--old-port is deprecated and goes away in 1.0: use -p/--port",
    ]);
  });
  await t.step("help is noted, not an error", () => {
    assert.equal(parse(SPEC, ["--help"]).help, true);
    assert.equal(parse(SPEC, ["-h"]).help, true);
  });
  await t.step("usage errors say what is wrong", () => {
    const cases: [string[], RegExp][] = [
      [["--prot", "x"], /^unknown option --prot$/],
      [["-z"], /unknown option -z/],
      [["--port"], /--port needs a value \(PORT\)/],
      [["-p"], /-p needs a value \(PORT\)/],
      [["--raw=yes"], /--raw takes no value/],
      [["--protocol", "smtp"], /--protocol: "smtp" is not one of text, json/],
      [["--no-raw"], /unknown option --no-raw/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parse(SPEC, argv), (error: Error) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, message);
        return true;
      }, argv.join(" "));
    }
  });
  await t.step("an unknown option's hint names the nearest option, loaded on demand", async () => {
    const hint = async (argv: string[]) => {
      try {
        parse(SPEC, argv);
      } catch (error) {
        assert.ok(error instanceof UnknownOptionError, String(error));
        return await error.withHint();
      }
      assert.fail(`${argv.join(" ")} was accepted`);
    };
    assert.equal(await hint(["--prot", "x"]), "unknown option --prot (did you mean --protocol?)");
    assert.equal(
      await hint(["--protocl", "x"]),
      "unknown option --protocl (did you mean --protocol?)",
    );
    assert.equal(await hint(["--zzzzzz"]), "unknown option --zzzzzz");
    assert.equal(await hint(["-z"]), "unknown option -z");
  });
  await t.step("a parser's error becomes a usage error naming the option", () => {
    const spec: CommandSpec = {
      ...SPEC,
      options: [{
        long: "size",
        value: "SIZE",
        help: "size",
        parse: () => {
          throw new Error("expected a size such as 4KiB");
        },
      }],
    };
    assert.throws(() => parse(spec, ["--size", "big"]), /--size: expected a size such as 4KiB/);
  });
  await t.step("too many arguments", () => {
    const spec: CommandSpec = { ...SPEC, args: [] };
    assert.throws(() => parse(spec, ["x"]), /unexpected argument "x" \(demo takes none\)/);
  });
});

Deno.test("formatHelp shows arguments, options with defaults, examples; hides hidden", () => {
  const help = formatHelp(SPEC);
  assert.match(help, /^Usage: linesock demo \[options\] \[TARGET\] \[LINE\.\.\.\]\n/);
  assert.match(help, /-p, --port PORT\s+port \(default: 1991\)/);
  assert.match(help, /--reconnect, --no-reconnect/);
  assert.match(help, /\nExamples:\n {2}linesock demo tcp:\/\/h:1\s+demonstrate\n/);
  assert.match(help, /-v, --verbose/);
  assert.doesNotMatch(help, /test-hook|old-port/);
  for (const line of help.split("\n")) assert.ok(line.length <= 100, line);
});

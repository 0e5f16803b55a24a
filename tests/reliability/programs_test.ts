/**
 * Programs run by routes, end to end through `linesock serve --routes`: the client's text reaches a
 * program only on stdin, a hanging program is killed at its timeout, a flooding one is cut off, at
 * most --max-exec run at once, nothing a program starts in the background outlives it, and the
 * server's environment stays with the server. (tests/lib/routes/program_runner_test.ts covers the runner
 * itself; tests/reliability/attacks_test.ts, clients that reset while their program runs.)
 */
import assert from "node:assert/strict";
import { allGone } from "../_support/process.ts";
import { runCli, startServer } from "../_support/cli.ts";
import { exchange } from "../_support/line_session.ts";
import { settleChildren } from "../../bench/_reliability/process_probe.ts";
import { DEFAULT_PROGRAM_ENV } from "../../lib/routes/program_runner.ts";

const HOSTILE = `say a; touch MARK1 && $(touch MARK2) \`touch MARK3\` 'q' "dq" | tee MARK4 > MARK5`;

Deno.test("reliability: programs run by routes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-programs-" });
  const slots = `${dir}/slots`;
  await Deno.mkdir(slots);
  const routes = `${dir}/routes.json`;
  await Deno.writeTextFile(
    routes,
    JSON.stringify({
      routes: [
        { match: { prefix: "say " }, run: { argv: ["cat"], cwd: dir } },
        { match: { command: "pipe" }, run: { argv: ["cat"], stdin: "{args.text}", cwd: dir } },
        { match: { exact: "hang" }, run: { argv: ["sleep", "30"], timeout: "300ms" } },
        { match: { exact: "flood" }, run: { argv: ["yes", "y"], maxOutput: "4KiB" } },
        {
          match: { exact: "orphan" },
          run: { argv: ["sh", "-c", "sleep 97 >/dev/null 2>&1 & echo $!"] },
        },
        { match: { exact: "env" }, run: { argv: ["env"] } },
        {
          match: { exact: "slot" },
          // Counts the programs running at this moment (each holds a file in the slots directory).
          run: {
            argv: ["sh", "-c", `touch ${slots}/$$; sleep 0.2; ls ${slots} | wc -l; rm ${slots}/$$`],
            timeout: "10s",
          },
        },
      ],
    }),
  );
  try {
    await t.step("shell syntax in a line reaches the program on stdin only", async () => {
      await using server = await startServer(["--port", "0", "--routes", routes, "--quiet"]);
      assert.deepEqual(await exchange(server.port, [HOSTILE]), [HOSTILE]);
      const created = await Array.fromAsync(Deno.readDir(dir), (entry) => entry.name);
      assert.deepEqual(created.sort(), ["routes.json", "slots"]);
    });

    await t.step(
      "json: an argument reaches stdin, not a shell; one with a newline is refused",
      async () => {
        await using server = await startServer([
          "--port",
          "0",
          "--protocol",
          "json",
          "--routes",
          routes,
          "--quiet",
        ]);
        const text = "one; $(touch MARK6) `two` && three";
        const multiLine = "one; $(touch MARK7)\n`two` && three";
        const replies = await exchange(server.port, [
          JSON.stringify({ command: "pipe", args: { text } }),
          // A substituted value must not add lines to the program's stdin (docs/routes.md).
          JSON.stringify({ command: "pipe", args: { text: multiLine } }),
        ]);
        // Only what this test is about: the status and the program's output (the json protocol's
        // tests own the rest of the response's shape).
        const [plain, refused] = replies.map((reply) => JSON.parse(reply));
        assert.deepEqual({ status: plain.status, message: plain.message }, {
          status: 0,
          message: text,
        });
        assert.equal(refused.status, 4);
        assert.match(refused.message, /^refused: a value substituted into the program's stdin/);
        const created = await Array.fromAsync(Deno.readDir(dir), (entry) => entry.name);
        assert.deepEqual(created.sort(), ["routes.json", "slots"]);
      },
    );

    await t.step("a hanging program is killed at its timeout", async () => {
      await using server = await startServer(["--port", "0", "--routes", routes, "--quiet"]);
      assert.deepEqual(await exchange(server.port, ["hang", "PING"]), [
        "ERR program timed out after 300 ms",
        "PONG",
      ]);
      assert.deepEqual(await settleChildren(server.process.pid), [], "the program is gone");
    });

    await t.step("a flooding program is cut off at maxOutput", async () => {
      await using server = await startServer(["--port", "0", "--routes", routes, "--quiet"]);
      const replies = await exchange(server.port, ["flood", "PING"]);
      assert.deepEqual(replies.slice(-2), [
        "ERR program output exceeded the limit of 4096 bytes",
        "PONG",
      ]);
      const lines = replies.slice(0, -2);
      assert.ok(lines.length <= 2048 && lines.every((line) => line === "y"), `${lines.length}`);
      assert.deepEqual(await settleChildren(server.process.pid), [], "the program is gone");
    });

    await t.step("--max-exec 2: never more than two programs at once", async () => {
      await using server = await startServer([
        "--port",
        "0",
        "--routes",
        routes,
        "--max-exec",
        "2",
        "--quiet",
      ]);
      const counts = (await Promise.all(
        Array.from({ length: 6 }, () => exchange(server.port, ["slot"])),
      )).flat().map(Number);
      assert.equal(counts.length, 6);
      assert.ok(counts.every((count) => count >= 1 && count <= 2), `running at once: ${counts}`);
    });

    await t.step("--max-exec 4: 20 programs leave no background process behind", async () => {
      await using server = await startServer([
        "--port",
        "0",
        "--routes",
        routes,
        "--max-exec",
        "4",
        "--quiet",
      ]);
      const pids = (await Promise.all(
        Array.from({ length: 20 }, () => exchange(server.port, ["orphan"])),
      )).flat().map(Number);
      assert.equal(new Set(pids).size, 20, `${pids}`);
      await allGone(pids, performance.now() + 2000);
    });

    await t.step("the server's secrets stay out of programs' environment", async () => {
      await using server = await startServer(
        ["--port", "0", "--routes", routes, "--quiet"],
        { env: { SECRET_TOKEN: "x" } },
      );
      const seen = await exchange(server.port, ["env"]);
      assert.ok(!seen.some((line) => line.startsWith("SECRET_TOKEN=")), seen.join("\n"));
      for (const line of seen) {
        assert.ok(DEFAULT_PROGRAM_ENV.includes(line.slice(0, line.indexOf("="))), line);
      }
      // The serve task reads the default set: a program finds its tools through PATH.
      assert.ok(seen.some((line) => line.startsWith("PATH=")), seen.join("\n"));
    });

    await t.step(
      "--exec-env names what programs inherit; an unreadable name is refused",
      async () => {
        const refused = await runCli("serve", [
          "--port",
          "0",
          "--routes",
          routes,
          "--exec-env",
          "SECRET_TOKEN",
        ], { env: { SECRET_TOKEN: "x" } });
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, /--exec-env: the server may not read SECRET_TOKEN/);
        // Run with a permission that covers it (as a user would, with deno run --allow-env=…).
        await using server = await startServer(
          ["--port", "0", "--routes", routes, "--exec-env", "LINESOCK_SHARED", "--quiet"],
          { env: { LINESOCK_SHARED: "yes", SECRET_TOKEN: "x" }, allowEnv: ["LINESOCK_SHARED"] },
        );
        const seen = await exchange(server.port, ["env"]);
        assert.ok(seen.includes("LINESOCK_SHARED=yes"), seen.join("\n"));
        assert.ok(!seen.some((line) => line.startsWith("SECRET_TOKEN=")), seen.join("\n"));
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

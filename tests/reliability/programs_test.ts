/**
 * Programs run by routes, end to end through `linesock serve --routes`: the client's text reaches a
 * program only on stdin, a hanging program is killed at its timeout, a flooding one is cut off, and
 * at most --max-exec run at once. (tests/lib/program_runner_test.ts covers the runner itself.)
 */
import assert from "node:assert/strict";
import { startServer } from "../_util/cli.ts";
import { exchange } from "../_util/line_session.ts";
import { settleChildren } from "../../bench/_reliability/process_probe.ts";

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

    await t.step("json: newlines inside an argument reach stdin, not a shell", async () => {
      await using server = await startServer([
        "--port",
        "0",
        "--protocol",
        "json",
        "--routes",
        routes,
        "--quiet",
      ]);
      const text = "one; $(touch MARK6)\n`two` && three";
      const [reply] = await exchange(server.port, [
        JSON.stringify({ command: "pipe", args: { text } }),
      ]);
      assert.deepEqual(JSON.parse(reply!), { status: 0, message: text.split("\n") });
      const created = await Array.fromAsync(Deno.readDir(dir), (entry) => entry.name);
      assert.deepEqual(created.sort(), ["routes.json", "slots"]);
    });

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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

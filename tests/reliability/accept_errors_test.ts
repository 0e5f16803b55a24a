/**
 * The accept loop survives failing accepts: `linesock serve` runs with a limit of 64 file
 * descriptors (set by `prlimit`, or a shell's `ulimit` where there is no prlimit; the product itself
 * never uses a shell), a flood of connections runs it out of descriptors, and once the flood is gone
 * it must serve again.
 */
import assert from "node:assert/strict";
import { taskArgs, within } from "../_support/cli.ts";
import { exchange } from "../_support/line_session.ts";
import { hasTool } from "../_support/tools.ts";

const FD_LIMIT = 64;
const FLOOD = 120;

/** `serve --port 0` under the descriptor limit, with its stdout lines and stderr text. */
function spawnLimitedServe(): Deno.ChildProcess {
  const serve = [Deno.execPath(), ...taskArgs("serve"), "--port", "0"];
  const [command, args] = hasTool("prlimit")
    ? ["prlimit", [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, ...serve]]
    : ["sh", ["-c", `ulimit -n ${FD_LIMIT} && exec "$@"`, "sh", ...serve]];
  return new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

Deno.test("reliability: accept errors", async (t) => {
  await t.step(
    `out of file descriptors (limit ${FD_LIMIT}, ${FLOOD} connections): served again afterwards`,
    async () => {
      const child = spawnLimitedServe();
      let stderr = "";
      const stderrDone = (async () => {
        for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) stderr += text;
      })();
      const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const conns: Deno.Conn[] = [];
      try {
        const first = await within(stdout.read(), 15_000, "the listening line");
        const port = Number(/:(\d+)\s*$/m.exec(first.value ?? "")?.[1]);
        assert.ok(port > 0, `no address in ${JSON.stringify(first.value)}\n${stderr}`);
        assert.deepEqual(await exchange(port, ["PING"]), ["PONG"]);
        // More connections than the server has descriptors for; each sends a line so that the
        // ones it accepted are busy too.
        for (let index = 0; index < FLOOD; index++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(conn);
          await conn.write(new TextEncoder().encode("PING\n"));
        }
        // Every accepted one is answered; the rest wait in the backlog.
        for (const conn of conns) conn.close();
        conns.length = 0;
        // The server ran out (its log says so), and then serves again.
        const answered = await within(
          (async () => {
            for (let attempt = 0; attempt < 50; attempt++) {
              const reply = await exchange(port, ["PING"]).catch(() => []);
              if (reply[0] === "PONG") return true;
            }
            return false;
          })(),
          30_000,
          "PING after the flood",
        );
        assert.ok(answered, stderr);
        assert.match(stderr, /Cannot accept connections: .*Too many open files/);
        // One report per interval, not one per failure.
        assert.ok(
          (stderr.match(/Cannot accept connections/g) ?? []).length <= 3,
          `too many reports:\n${stderr}`,
        );
        assert.doesNotMatch(stderr, /Accept loop failed/);
        // And once it accepts again, it says so, with the count of failed accepts.
        assert.match(stderr, /Accepting again after [1-9]\d* failed accepts/);
      } finally {
        for (const conn of conns) conn.close();
        try {
          child.kill("SIGTERM");
        } catch {
          // Already exited.
        }
        const status = await child.status;
        stdout.releaseLock();
        await child.stdout.cancel().catch(() => {});
        await stderrDone;
        assert.equal(status.code, 0, stderr);
      }
    },
  );
});

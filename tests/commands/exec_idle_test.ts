/**
 * `linesock serve --exec`: a connection that waits on its program is still subject to
 * `--idle-timeout`. Before, a client that half-closed (or filled the stdin of a program that does
 * not read) left the server in CLOSE-WAIT with the program running and its `--max-exec` slot taken
 * until `--exec-timeout` (an hour by default): the server's idle timeout does not see a connection
 * busy in its handler.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";

const WAIT_MS = 20_000;

/** The pid the server logged for the program of connection `id`. */
function programPid(stderr: string, id: number): number {
  const match = new RegExp(`Connection ${id} from [^\\n]*started sleep \\(pid (\\d+)\\)`).exec(
    stderr,
  );
  assert.ok(match, `no start of sleep logged for connection ${id}:\n${stderr}`);
  return Number(match[1]);
}

/** Whether a process with `pid` still exists (a zombie counts: it was not reaped). */
function exists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

for (
  const [how, act] of [
    ["half-closes", (client: LineSession) => client.closeWrite()],
    // More than the 64 KiB the session lets a program leave untaken: the connection is not read.
    [
      "fills a program that does not read",
      (client: LineSession) => client.write(("x".repeat(1023) + "\n").repeat(200)),
    ],
  ] as const
) {
  Deno.test(`serve --exec: a client that ${how} is ended by --idle-timeout, its program killed`, async () => {
    await using server = await startServer([
      "--port",
      "0",
      "--idle-timeout",
      "1s",
      "--max-exec",
      "1",
      "--exec",
      "--",
      "sleep",
      "1000",
    ]);
    await using first = await LineSession.open(server.port);
    await server.waitForStderr(/Connection 1 from .*started sleep \(pid \d+\)/, WAIT_MS);
    const pid = programPid(server.stderr(), 1);
    await act(first);
    // Before the fix, nothing came until the program's hour was up: this read timed out.
    assert.deepEqual(await first.readAll(WAIT_MS), [
      "ERR idle timeout (nothing sent either way for 1000 ms)",
    ]);
    await server.waitForStderr(/sleep \(pid \d+\) was killed by SIGKILL/, WAIT_MS);
    assert.equal(exists(pid), false, "the program was reaped");
    // Its slot is free again: the next client gets a program, not `ERR too many programs`.
    await using second = await LineSession.open(server.port);
    await server.waitForStderr(/Connection 2 from .*started sleep/, WAIT_MS);
    second.close();
  });
}

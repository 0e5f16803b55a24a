/**
 * A route program that fails: the client gets its exit status only, never its stderr (a traceback or
 * a path of the server's); the first stderr line goes to the server's log. The real CLI serves a
 * routes file whose program writes a secret to stderr and exits 3.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";

Deno.test("serve --routes: a failed program's stderr is logged, not sent", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const routes = `${dir}/routes.json`;
    await Deno.writeTextFile(
      routes,
      JSON.stringify({
        routes: [{
          match: { exact: "FAIL" },
          run: {
            argv: ["sh", "-c", 'echo "Traceback: /srv/secret/app.py line 3" >&2; exit 3'],
          },
        }],
      }),
    );
    await using server = await startServer(["--port", "0", "--routes", routes]);
    await using client = await LineSession.open(server.port);
    await client.write("FAIL\n");
    // Before: `ERR program exited with status 3: Traceback: /srv/secret/app.py line 3`.
    assert.equal(await client.readLine(), "ERR program exited with status 3");
    await server.waitForStderr(
      /Route program sh \(pid \d+\) exited with status 3: Traceback: \/srv\/secret\/app\.py line 3/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

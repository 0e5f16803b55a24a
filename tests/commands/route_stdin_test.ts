/**
 * A request's values substituted into a route program's stdin template cannot add lines: with
 * examples/protocols/json_service.jsonc (`"stdin": "{args.a} {args.b}"` into awk), an argument that
 * holds `\n` or `\r` is refused with an error response and the program does not run. The real CLI
 * serves the example; the requests go over a real socket.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";

const REFUSED =
  "refused: a value substituted into the program's stdin holds a line break (\\n or \\r)";

Deno.test("serve --routes: a value with a line break is refused, not handed to the program", async () => {
  await using server = await startServer([
    "--port",
    "0",
    "--routes",
    "examples/protocols/json_service.jsonc",
  ]);
  await using client = await LineSession.open(server.port);
  const ask = async (request: unknown) => {
    await client.write(`${JSON.stringify(request)}\n`);
    return JSON.parse((await client.readLine())!);
  };
  // Before: awk got two lines, `1;id x` and `y`, and answered for both.
  assert.deepEqual(
    await ask({ command: "add", args: { a: "1;id", b: "x\ny" }, id: 4 }),
    { status: 4, message: REFUSED, extra: null, id: 4 },
  );
  assert.deepEqual(
    await ask({ command: "add", args: { a: "2\r3", b: "4" }, id: 5 }),
    { status: 4, message: REFUSED, extra: null, id: 5 },
  );
  // A plain request still runs the program.
  assert.deepEqual(
    await ask({ command: "add", args: { a: 2, b: 3 }, id: 6 }),
    { status: 0, message: "5", extra: { unit: "none" }, id: 6 },
  );
});

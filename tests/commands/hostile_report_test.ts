/**
 * `linesock test` and `linesock bench` treat the server as untrusted: a reply that does not match
 * is shown in their reports with its control characters escaped (C0 but TAB, DEL, and C1 such as
 * the 8-bit CSI U+009B), so that a hostile server's escape sequences never reach the terminal. A
 * raw TCP server on port 0 answers every line with escape sequences; the CLIs run as processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli } from "../_support/cli.ts";

const encoder = new TextEncoder();
/** The answer to every line: an OSC title, a BEL, an 8-bit CSI screen clear, a DEL. */
const PAYLOAD = "evil \x1b]0;pwned\x07 \u009b2J \x7f end";
/** What a terminal may receive: C0 (but TAB and LF), DEL or C1 in the output is a failure. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/** A TCP server that answers each line it receives with {@linkcode PAYLOAD}. */
function startHostileServer(): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handle = async (conn: Deno.Conn) => {
    conns.add(conn);
    const reply = encoder.encode(`${PAYLOAD}\n`);
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let count; (count = await conn.read(buffer)) !== null;) {
        for (const byte of buffer.subarray(0, count)) {
          if (byte !== 0x0a) continue;
          for (let done = 0; done < reply.length;) done += await conn.write(reply.subarray(done));
        }
      }
    } catch {
      // The client went away.
    } finally {
      conns.delete(conn);
      conn.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) void handle(conn);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
    },
  };
}

Deno.test("linesock test: a hostile reply is shown escaped in the failure diff", async () => {
  await using server = startHostileServer();
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/ping.conv`;
    await Deno.writeTextFile(file, "> PING\n< PONG\n");
    const result = await runCli("linesock", ["test", `tcp://127.0.0.1:${server.port}`, file]);
    assert.equal(result.code, 1, result.stderr);
    const output = result.stdout + result.stderr;
    assert.ok(!CONTROL.test(output), `raw controls in the report: ${JSON.stringify(output)}`);
    assert.match(result.stdout, /^ {2}\+ evil \\x1b\]0;pwned\\x07 \\u009b2J \\x7f end$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("linesock bench: a hostile reply is shown escaped in the mismatch samples", async () => {
  await using server = startHostileServer();
  const result = await runCli("linesock", [
    "bench",
    `tcp://127.0.0.1:${server.port}`,
    "-m",
    "PING",
    "--expect",
    "PONG",
    "-c",
    "1",
    "-n",
    "3",
  ]);
  const output = result.stdout + result.stderr;
  assert.ok(!CONTROL.test(output), `raw controls in the report: ${JSON.stringify(output)}`);
  assert.match(output, /got "evil \\u001b\]0;pwned\\u0007 \\u009b2J \\x7f end"/);
});

/**
 * Per-line handling of each protocol, without sockets: the cost of answering one line once it has
 * been framed, so that a regression shows in the protocol that has it (the load benchmark,
 * `deno task bench:load`, measures the whole server).
 *
 * Each iteration handles 10,000 lines and checks the reply of the first.
 *
 * Run: `deno bench --allow-all bench/protocols_bench.ts` (part of `deno task bench`).
 *
 * @module
 */
import type { ConnectionContext, LineProtocol, Reply } from "../lib/server/mod.ts";
import { echoProtocol } from "../lib/protocols/echo.ts";
import { textProtocol } from "../lib/protocols/text.ts";
import { jsonProtocol } from "../lib/protocols/json.ts";
import { Routes } from "../lib/routes/routes.ts";

const LINES = 10_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Just enough of a connection for protocols that answer synchronously. */
const context = {
  id: 1,
  peer: "127.0.0.1:50000",
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  lineNumber: 1,
  signal: new AbortController().signal,
  send: () => Promise.resolve(),
  sendRaw: () => {},
  sendError: () => {},
  countError: () => {},
  close: () => {},
  requestShutdown: () => {},
} as unknown as ConnectionContext;

function text(reply: Reply | Promise<Reply>): string {
  if (typeof reply === "string") return reply;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map(text).join("\n");
  throw new Error(`unexpected reply ${String(reply)}`);
}

/** Handles the line LINES times and checks the first reply. */
function run(protocol: LineProtocol, line: string, expected: string): void {
  const bytes = encoder.encode(line);
  const first = text(protocol.onLine(bytes, context));
  if (first !== expected) throw new Error(`${line}: got ${first}, expected ${expected}`);
  for (let index = 1; index < LINES; index++) protocol.onLine(bytes, context);
}

const plainText = textProtocol({ name: "bench" });
const json = jsonProtocol({ name: "bench" });
const routes = Routes.parse(
  JSON.stringify({
    routes: [
      { match: { exact: "status" }, reply: "OK" },
      { match: { prefix: "say " }, reply: "you said: {rest}" },
      { match: { regex: "^add (\\d+) (\\d+)$" }, reply: "sum of {1} and {2}" },
      { match: { command: "ping2" }, reply: "pong2" },
    ],
  }),
  "bench routes",
);
const routed = textProtocol({ name: "bench", routes });

Deno.bench("text: PING (fast path)", { group: "text", baseline: true }, () => {
  run(plainText, "PING", "PONG");
});
Deno.bench("text: ECHO of 64 B (fast path)", { group: "text" }, () => {
  run(plainText, `ECHO ${"x".repeat(59)}`, "x".repeat(59));
});
Deno.bench("text: HELLO (decoded, general path)", { group: "text" }, () => {
  run(plainText, "HELLO", "bench");
});
Deno.bench("text: unknown command (error reply)", { group: "text" }, () => {
  run(plainText, "NOPE", "ERR unknown command: NOPE");
});

Deno.bench("json: ping without id (fast path)", { group: "json", baseline: true }, () => {
  run(json, '{"command":"ping"}', '{"status":0,"message":"pong","extra":null}');
});
Deno.bench("json: ping with id (fast path, id spliced)", { group: "json" }, () => {
  run(
    json,
    '{"command":"ping","id":12345}',
    '{"status":0,"message":"pong","extra":null,"id":12345}',
  );
});
Deno.bench("json: ping with an object id (parsed, general path)", { group: "json" }, () => {
  run(
    json,
    '{"command":"ping","id":{"n":1}}',
    '{"status":0,"message":"pong","extra":null,"id":{"n":1}}',
  );
});
Deno.bench("json: echo (parsed, general path)", { group: "json" }, () => {
  run(json, '{"command":"echo","args":{"text":"hi"}}', '{"status":0,"message":"hi","extra":null}');
});

Deno.bench("routes: exact match", { group: "routes", baseline: true }, () => {
  run(routed, "status", "OK");
});
Deno.bench("routes: prefix match with a template", { group: "routes" }, () => {
  run(routed, "say hello", "you said: hello");
});
Deno.bench("routes: regex match with groups", { group: "routes" }, () => {
  run(routed, "add 1 2", "sum of 1 and 2");
});
Deno.bench("routes: no match, then the built-in PING", { group: "routes" }, () => {
  run(routed, "PING", "PONG");
});

const echo = echoProtocol();
const chunk = encoder.encode(`${"x".repeat(63)}\n`.repeat(1024));
Deno.bench("echo: relay a 64 KiB chunk (protocol part only)", { group: "echo" }, () => {
  let relayed = 0;
  const relay = { ...context, sendRaw: (bytes: Uint8Array) => relayed += bytes.length };
  for (let index = 0; index < 16; index++) echo.onData!(chunk, relay as ConnectionContext);
  if (relayed !== 16 * chunk.length) throw new Error("echo relayed the wrong byte count");
});

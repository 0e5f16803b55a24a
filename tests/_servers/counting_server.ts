/**
 * A linesock server (the library's `serve`, echo of lines) for tests that run it as a process of its
 * own (under a descriptor limit, say): it prints its port, writes its warnings and errors to stderr
 * (one line each), serves until its stdin closes, then shuts down and prints its counters
 * (`server.stats`) as one JSON line.
 *
 * ```sh
 * prlimit --nofile=64:64 deno run -A --unstable-net tests/_servers/counting_server.ts
 * ```
 *
 * @module
 */
import { configure } from "@logtape/logtape";
import { serve } from "../../lib/server/mod.ts";

await configure({
  sinks: {
    stderr: (record) => console.error(record.message.map((part) => String(part)).join("")),
  },
  loggers: [
    { category: ["linesock"], lowestLevel: "warning", sinks: ["stderr"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
  ],
});
// Deno sets up its signal driver on first use, which panics once descriptors run out (Deno 2.9.6,
// ext/signals): set it up now, as the CLI does with its SIGINT handler.
Deno.addSignalListener("SIGTERM", () => Deno.exit(143));
const server = await serve({ port: 0 }, (line) => line);
console.log((server.addr as Deno.NetAddr).port);
// Until the test closes our stdin.
for await (const _ of Deno.stdin.readable) {
  // Nothing to read.
}
await server.shutdown();
console.log(JSON.stringify(server.stats));

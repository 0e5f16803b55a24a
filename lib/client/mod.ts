/**
 * The client side: {@linkcode openTransport} (TCP, TLS, Unix sockets, with a connect
 * deadline) and {@linkcode connect} (a line client with replies, JSON commands and endings).
 *
 * Also here, internal to the CLI (not exported): the conversation engine of `send` and the repl
 * (`conversation.ts`: the one error rule, JSON classification, reply accounting and endings).
 *
 * May import: `lib/errors.ts`, `lib/address.ts`, `lib/_disconnect.ts`, `lib/_node_tls_transport.ts`,
 * `lib/framing/`. Never `lib/server/`.
 *
 * @example
 * ```ts
 * import { connect } from "@linesock/linesock/client";
 * import { serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, (line) => `got ${line}`);
 * await using client = await connect({ port: (server.addr as Deno.NetAddr).port });
 * assert.deepEqual(await client.request("hi"), ["got hi"]);
 * ```
 *
 * @module
 */
export * from "./client.ts";
export * from "./transport.ts";

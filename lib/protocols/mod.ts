/**
 * The ready protocols: {@linkcode textProtocol}, {@linkcode jsonProtocol},
 * {@linkcode echoProtocol}, {@linkcode execProtocol} (a program per connection) and
 * {@linkcode chatProtocol} (rooms, `lib/chat/`), each a {@linkcode LineProtocol} for `serve`, and
 * {@linkcode protocolFromConfig}, which builds one of them from plain data.
 *
 * May import: `lib/errors.ts`, `lib/framing/`, `lib/server/` (its types), `lib/routes/`,
 * `lib/chat/`.
 *
 * @example
 * ```ts
 * import { textProtocol } from "@linesock/linesock/protocols";
 * import { serve } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, textProtocol({ name: "doc" }));
 * assert.equal(server.addr.transport, "tcp");
 * ```
 *
 * @module
 */
export * from "./echo.ts";
export * from "./text.ts";
export * from "./json.ts";
export * from "./chat.ts";
export * from "./exec.ts";
export * from "./config.ts";

/**
 * linesock: newline-delimited messaging over TCP and Unix sockets.
 *
 * - Framing: {@linkcode LineFramer} (synchronous engine), {@linkcode LineSplitter} (a
 *   `TransformStream`), {@linkcode decodeLine} / {@linkcode LineDecoderStream} (strict UTF-8),
 *   {@linkcode LineWriter} (batched writes with backpressure), {@linkcode ConnectionReader}.
 * - Server: {@linkcode serve} with a text handler or a byte-level {@linkcode LineProtocol};
 *   ready protocols such as {@linkcode echoProtocol}.
 * - Monitoring: {@linkcode serveMetrics} (Prometheus text at `/metrics`, `/healthz`).
 * - Errors: {@linkcode LinesockError} and its subclasses, each with a stable `code`.
 *
 * @example An echo server in three lines
 * ```ts
 * import { echoProtocol, serve } from "@linesock/linesock";
 *
 * await using server = await serve({ port: 0 }, echoProtocol());
 * console.log(`listening on ${server.url}`);
 * ```
 *
 * @module
 */
export * from "./address.ts";
export * from "./errors.ts";
export * from "./framing/mod.ts";
export * from "./server/mod.ts";
export * from "./protocols/mod.ts";
export * from "./routes/mod.ts";
export * from "./client/mod.ts";
export * from "./workers/mod.ts";
export * from "./metrics/mod.ts";

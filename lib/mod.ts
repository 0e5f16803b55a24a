/**
 * linesock: newline-delimited messaging over TCP and Unix sockets.
 *
 * - Framing: {@linkcode LineFramer} (synchronous engine), {@linkcode LineSplitter} (a
 *   `TransformStream`), {@linkcode decodeLine} / {@linkcode LineDecoderStream} (strict UTF-8),
 *   {@linkcode LineWriter} (batched writes with backpressure), {@linkcode ConnectionReader}.
 * - Server: {@linkcode serve} with a text handler or a byte-level {@linkcode LineProtocol};
 *   ready protocols such as {@linkcode echoProtocol}.
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
export * from "./connection_reader.ts";
export * from "./errors.ts";
export * from "./line_decoder.ts";
export * from "./line_framer.ts";
export * from "./line_splitter.ts";
export * from "./line_writer.ts";
export * from "./protocols/echo.ts";
export * from "./server.ts";
export * from "./unix_socket.ts";
export * from "./client.ts";
export * from "./proxy_protocol.ts";
export * from "./program_runner.ts";
export * from "./echo_target.ts";
export * from "./echo_conformance.ts";
export * from "./routes.ts";
export * from "./send_session.ts";
export * from "./protocols/text.ts";
export * from "./protocols/json.ts";
export * from "./load_generator.ts";
export * from "./transport.ts";
export * from "./worker_pool.ts";

/**
 * All cores: {@linkcode serveWorkers} runs one server per Web Worker on a shared port, and
 * {@linkcode protocolFromConfig} builds a protocol from plain data (what a worker receives).
 *
 * May import: every folder of lib/ but `lib/client/`.
 *
 * @example
 * ```ts
 * import { serveWorkers } from "@linesock/linesock/workers";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof serveWorkers, "function");
 * ```
 *
 * @module
 */
export * from "./worker_pool.ts";

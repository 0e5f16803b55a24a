/**
 * Routes: a file of rules that describes a protocol's commands (match, then reply from a
 * template, run a program, close or shut down), and {@linkcode runProgram}, which runs a program
 * safely for a client (argv only, bounded time and output, its process group killed at the end).
 *
 * May import: `lib/errors.ts`, `lib/framing/`.
 *
 * @example
 * ```ts
 * import { runProgram } from "@linesock/linesock/routes";
 * import assert from "node:assert/strict";
 *
 * const lines = await Array.fromAsync(runProgram({ argv: ["tr", "a-z", "A-Z"], stdin: "hi" }));
 * assert.deepEqual(lines, ["HI"]);
 * ```
 *
 * @module
 */
export * from "./routes.ts";
export * from "./program_runner.ts";

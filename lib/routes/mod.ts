/**
 * Routes: a file (JSONC, checked against docs/routes.schema.json) that describes a protocol: its
 * rules (match, then reply from a template, run a program, close or shut down), greeting,
 * farewells, fallback and settings, or a program per connection; and {@linkcode runProgram},
 * which runs a program safely for a client (argv only, bounded time and output, its process group
 * killed at the end).
 *
 * May import: `lib/errors.ts`, `lib/framing/`, and the npm packages that read the file
 * (`jsonc-parser`, `@cfworker/json-schema`, `re2js`, `leven`).
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

/**
 * The client's name for lib/_control_escape.ts, the one escaper of linesock (it moved to lib/'s
 * root so that the chat and `--exec` use it too): see there.
 *
 * @example
 * ```ts
 * import { escapeControls } from "./_terminal_escape.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeControls("\x1b[2J"), "\\x1b[2J");
 * ```
 *
 * @module
 */
export { escapeControlBytes, escapeControls, hasControls } from "../_control_escape.ts";

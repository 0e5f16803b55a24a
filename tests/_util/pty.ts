/**
 * Moved to tests/_support/pty.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/pty.ts";

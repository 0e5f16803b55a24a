/**
 * Moved to tests/_support/cli.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/cli.ts";

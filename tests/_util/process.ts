/**
 * Moved to tests/_support/process.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/process.ts";

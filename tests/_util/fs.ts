/**
 * Moved to tests/_support/fs.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/fs.ts";

/**
 * Moved to tests/_support/transform.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/transform.ts";

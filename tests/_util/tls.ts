/**
 * Moved to tests/_support/tls.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/tls.ts";

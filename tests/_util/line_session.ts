/**
 * Moved to tests/_support/line_session.ts (one test-support module); this re-export keeps older imports working.
 *
 * @module
 */
export * from "../_support/line_session.ts";

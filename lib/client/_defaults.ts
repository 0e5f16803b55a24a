/**
 * Internal: the client's default limits, written once for the library and every subcommand.
 *
 * @module
 */

/**
 * How long connecting may take unless told otherwise, in ms (`--connect-timeout`, and
 * `connectTimeoutMs` of `connect` and `openTransport`); 0 there means no limit.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long to wait for each awaited reply unless told otherwise, in ms (`send --timeout`, and
 * `timeoutMs` of `runConversation`); 0 there means no limit.
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 10_000;

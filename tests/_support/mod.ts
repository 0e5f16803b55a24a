/**
 * The one test-support module. Each file owns one concern:
 *
 * | file              | what                                                                        |
 * | ----------------- | --------------------------------------------------------------------------- |
 * | `cli.ts`          | the real `linesock` as a process: `runCli`, `startServer`, `taskArgs`       |
 * | `line_session.ts` | a raw line client (`LineSession`, `exchange`)                                |
 * | `ports.ts`        | ports: port 0 and read back; `unusedPort()` for "nothing listens here"       |
 * | `read.ts`         | `readToEnd`, `readTextToEnd` (bounded in time and bytes)                     |
 * | `routes.ts`       | `routesOf(...rules)`, `routesFile(...rules)`                                 |
 * | `timeouts.ts`     | `within`, `assertTookAbout` (configured value with a margin), `WAIT_MS`      |
 * | `tools.ts`        | `toolMissing`, `ignoredName`: one probe, one skip-reason format              |
 * | `process.ts`      | `alive`, `allGone`, `withEnv`, `STRYKER_MUTANT_ENV`                          |
 * | `reset_server.ts` | a server that resets each connection (`startResetServer`, `PYTHON_MISSING`)  |
 * | `tls.ts`          | throw-away certificates (`makeTestCertificates`, `OPENSSL_MISSING`)          |
 * | `pty.ts`          | a terminal driver on tmux (`startPty`, `HAS_TMUX`)                           |
 * | `transform.ts`    | byte-stream transforms under every chunking                                  |
 * | `fs.ts`           | `exists`                                                                    |
 * | `gate.ts`         | `gate()`: a promise the test opens, to hold a handler                        |
 *
 * Import from here (or from the file itself).
 *
 * @module
 */
export * from "./cli.ts";
export * from "./fs.ts";
export * from "./gate.ts";
export * from "./line_session.ts";
export * from "./ports.ts";
export * from "./process.ts";
export * from "./pty.ts";
export * from "./read.ts";
export * from "./reset_server.ts";
export * from "./routes.ts";
export * from "./timeouts.ts";
export * from "./tls.ts";
export * from "./tools.ts";
export * from "./transform.ts";

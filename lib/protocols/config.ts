/**
 * {@linkcode protocolFromConfig}: one of the ready protocols, described by plain data (a
 * {@linkcode ProtocolConfig}), as the command line and each worker of `serveWorkers` build it: a
 * worker cannot receive a protocol object (functions do not cross threads), so it gets the
 * description and builds the same protocol.
 *
 * @example A text protocol from plain data
 * ```ts
 * import { protocolFromConfig } from "@linesock/linesock/protocols";
 * import { runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const protocol = await protocolFromConfig({ protocol: "text", name: "cfg" });
 * assert.deepEqual((await runLines(protocol, "HELLO\nSHUTDOWN\n")).lines, [
 *   "cfg",
 *   "ERR shutdown not allowed (start the server with --allow-shutdown)",
 * ]);
 * ```
 *
 * @module
 */
import type { LineProtocol } from "../server/protocol.ts";
import { ExecLimiter } from "../routes/program_runner.ts";
import { Routes } from "../routes/routes.ts";
import { echoProtocol } from "./echo.ts";
import { jsonProtocol } from "./json.ts";
import { textProtocol } from "./text.ts";

/** A ready protocol described by plain data: which one, and its options. */
export interface ProtocolConfig {
  /** The protocol. */
  protocol: "echo" | "text" | "json";
  /** What HELLO answers (text and JSON). @default {the host name} */
  name?: string;
  /** Whether clients may stop the server (text and JSON). @default {false} */
  allowShutdown?: boolean;
  /** The reply to a line that is not UTF-8 (text). @default {"ERR invalid encoding"} */
  invalidReply?: string;
  /** A routes file to load (text and JSON). */
  routesPath?: string;
  /**
   * Route programs running at once (`serveWorkers` divides it over its workers: each gets
   * `ceil(maxExec / count)`, so that it holds for the whole server).
   * @default {16}
   */
  maxExec?: number;
  /**
   * Environment variables every route program inherits besides `DEFAULT_PROGRAM_ENV` (the routes
   * file's `"programEnv"` adds more).
   */
  programEnv?: readonly string[];
}

/**
 * Builds the protocol a {@linkcode ProtocolConfig} describes (loading its routes file, if any).
 * @param config The description (a whole `ServeConfig` will do).
 * @returns The protocol, for `serve`.
 * @throws {RoutesError} When the routes file is wrong.
 *
 * @example An echo protocol
 * ```ts
 * import { protocolFromConfig } from "@linesock/linesock/protocols";
 * import { runLines } from "@linesock/linesock/server";
 * import assert from "node:assert/strict";
 *
 * const echo = await protocolFromConfig({ protocol: "echo" });
 * assert.deepEqual((await runLines(echo, "a\r\nb")).bytes, new TextEncoder().encode("a\r\nb"));
 * ```
 */
export async function protocolFromConfig(config: ProtocolConfig): Promise<LineProtocol> {
  if (config.protocol === "echo") return echoProtocol();
  const routes = config.routesPath === undefined ? undefined : await Routes.load(
    config.routesPath,
    {
      ...(config.maxExec !== undefined
        ? { limiter: new ExecLimiter({ maxRunning: config.maxExec }) }
        : {}),
      ...(config.programEnv !== undefined ? { programEnv: config.programEnv } : {}),
    },
  );
  const common = {
    ...(config.name !== undefined ? { name: config.name } : {}),
    allowShutdown: config.allowShutdown ?? false,
    ...(routes !== undefined ? { routes } : {}),
  };
  if (config.protocol === "json") return jsonProtocol(common);
  return textProtocol({
    ...common,
    ...(config.invalidReply !== undefined ? { invalidReply: config.invalidReply } : {}),
  });
}

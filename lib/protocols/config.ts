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
import { getLogger } from "@logtape/logtape";
import type { LineProtocol } from "../server/protocol.ts";
import { ExecLimiter } from "../routes/program_runner.ts";
import type { Routes } from "../routes/routes.ts";
import { type ChatConfig, chatFromConfig } from "./chat.ts";
import { echoProtocol } from "./echo.ts";
import { type ExecOptions, execProtocol } from "./exec.ts";
import { jsonProtocol } from "./json.ts";
import { textProtocol } from "./text.ts";

const logger = getLogger(["linesock", "routes"]);

/** A ready protocol described by plain data: which one, and its options. */
export interface ProtocolConfig {
  /** The protocol. */
  protocol: "echo" | "text" | "json" | "chat";
  /** What HELLO answers (text and JSON). @default {the routes file's "name", or the host name} */
  name?: string;
  /** Whether clients may stop the server (text and JSON). @default {the routes file's, or false} */
  allowShutdown?: boolean;
  /** The reply to a line that is not UTF-8 (text). @default {"ERR invalid encoding"} */
  invalidReply?: string;
  /**
   * A routes file to load (text, JSON and chat): routes, greeting, farewells, fallback, or a
   * program per connection (its `"exec"`). The options here win over what the file says.
   */
  routesPath?: string;
  /** A line sent first on each connection, instead of the routes file's greeting. */
  greeting?: string;
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
  /**
   * A program per connection (`serve --exec`): when given, every connection runs it, and
   * `protocol` and the options above do not apply. (Under `serveWorkers`, each worker applies its
   * `maxExec` on its own.)
   */
  exec?: ExecOptions;
  /**
   * The chat protocol's options (`protocol: "chat"`); with a bus, building the protocol connects
   * to it (close the protocol to leave it).
   */
  chat?: ChatConfig;
}

/**
 * Builds the protocol a {@linkcode ProtocolConfig} describes (loading its routes file, if any).
 * @param config The description (a whole `ServeConfig` will do).
 * @returns The protocol, for `serve`.
 * @throws {RoutesError} When the routes file is wrong.
 * @throws {ProgramStartError} When `exec` names a program that cannot be started.
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
  // The server's idle timeout also holds while a connection waits on its program.
  const idle = serverIdleTimeout(config);
  if (config.exec !== undefined) return execProtocol({ ...idle, ...config.exec });
  if (config.protocol === "echo") return echoProtocol();
  // The routes' parsers load only with a routes file.
  const routes: Routes | undefined = config.routesPath === undefined
    ? undefined
    : await (await import("../routes/routes.ts")).Routes.load(config.routesPath, {
      ...(config.maxExec !== undefined
        ? { limiter: new ExecLimiter({ maxRunning: config.maxExec }) }
        : {}),
      ...(config.programEnv !== undefined ? { programEnv: config.programEnv } : {}),
    });
  // What the file says that still works but should change (a deprecated key).
  for (const warning of routes?.warnings ?? []) logger.warn("{warning}", { warning });
  const exec = routes?.settings.exec;
  if (exec !== undefined) {
    // A program per connection, described by the file ("maxExec" of the config wins).
    return execProtocol({
      ...idle,
      ...exec,
      ...(config.maxExec !== undefined ? { maxExec: config.maxExec } : {}),
    });
  }
  const common = {
    ...(config.name !== undefined ? { name: config.name } : {}),
    ...(config.allowShutdown !== undefined ? { allowShutdown: config.allowShutdown } : {}),
    ...(config.greeting !== undefined ? { greeting: config.greeting } : {}),
    ...(routes !== undefined ? { routes } : {}),
  };
  const invalidReply = config.invalidReply !== undefined
    ? { invalidReply: config.invalidReply }
    : {};
  const protocol = config.protocol === "chat"
    ? await chatFromConfig(config.chat ?? {}, { ...common, ...invalidReply })
    : config.protocol === "json"
    ? jsonProtocol(common)
    : textProtocol({ ...common, ...invalidReply });
  // For the server's metrics: each route's hits, and the programs running and waiting.
  if (routes !== undefined) {
    const own = protocol.metrics?.bind(protocol);
    protocol.metrics = () => ({
      ...own?.(),
      routeHits: routes.hits,
      programsRunning: routes.limiter.running,
      programsWaiting: routes.limiter.waiting,
    });
  }
  return protocol;
}

/** `{ idleTimeoutMs }` of a `ServeConfig`'s server options, when it is one and gives it. */
function serverIdleTimeout(config: ProtocolConfig): { idleTimeoutMs?: number } {
  const idle = (config as { serve?: { idleTimeoutMs?: unknown } }).serve?.idleTimeoutMs;
  return typeof idle === "number" ? { idleTimeoutMs: idle } : {};
}

/**
 * `linesock serve --protocol chat`: its options (spread into serve's definition) and their check,
 * which turns them into the plain {@linkcode ChatConfig} that the server (or each worker) builds
 * the protocol from. Nothing here loads the NATS client: that happens only when the protocol connects
 * to its bus.
 *
 * @module
 */
import type { OptionSpec } from "./_cli/spec.ts";
import { InvalidArgumentError, parseByteSize, parseCount, UsageError } from "./_cli.ts";
import type { ChatConfig } from "../lib/protocols/chat.ts";
import { checkBusPrefix, DEFAULT_BUS_PREFIX, parseBusUrl } from "../lib/chat/bus.ts";

/** The chat options as parsed. */
export interface ChatFlags {
  raw?: boolean;
  bus?: string;
  busPrefix: string;
  busCreds?: string;
  busCa?: string;
  busCert?: string;
  busKey?: string;
  chatQueue: number;
  chatRate?: number;
}

const DEFAULT_QUEUE_BYTES = 1024 * 1024;
const DEFAULT_RATE = 200;

/** The chat options of `serve`. */
export const CHAT_OPTIONS: readonly OptionSpec[] = [
  {
    long: "raw",
    help: "chat: relay each line to the others exactly as sent, with no names, commands or " +
      "notices (like ncat --broker)",
  },
  {
    long: "bus",
    value: "URL",
    help: "chat: share rooms with the other instances on this NATS server (nats://HOST:PORT, " +
      "tls://HOST:PORT; nats://USER:PASSWORD@HOST:PORT)",
    parse: parseBus,
  },
  {
    long: "bus-prefix",
    value: "PREFIX",
    help: "the subject prefix of --bus: instances with the same one share rooms",
    parse: parsePrefix,
    default: DEFAULT_BUS_PREFIX,
  },
  {
    long: "bus-creds",
    value: "FILE",
    help: "NATS credentials file (user JWT and NKey seed) for --bus",
    complete: "file",
  },
  {
    long: "bus-ca",
    value: "FILE",
    help: "PEM CA certificates that sign the --bus server's certificate (implies TLS)",
    complete: "file",
  },
  {
    long: "bus-cert",
    value: "FILE",
    help: "PEM client certificate for --bus (implies TLS; needs --bus-key)",
    complete: "file",
  },
  { long: "bus-key", value: "FILE", help: "the PEM private key of --bus-cert", complete: "file" },
  {
    long: "chat-queue",
    value: "SIZE",
    help: "chat: each client's queue of lines not yet taken; when full, lines for it are " +
      "dropped (it is told), and after 1,000 it is disconnected",
    parse: parseByteSize,
    default: DEFAULT_QUEUE_BYTES,
    defaultText: "1MiB",
  },
  {
    long: "chat-rate",
    value: "N",
    help: "chat: lines a second each client may send; beyond it, its input is read more " +
      `slowly; 0 = no limit (default: ${DEFAULT_RATE}, with --raw: no limit)`,
    parse: parseCount,
  },
];

/** The options above, by their key in the parsed options, with their spelling. */
const CHAT_ONLY: readonly [keyof ChatFlags, string][] = [
  ["raw", "--raw"],
  ["bus", "--bus"],
  ["chatQueue", "--chat-queue"],
  ["chatRate", "--chat-rate"],
];
const BUS_ONLY: readonly [keyof ChatFlags, string][] = [
  ["busPrefix", "--bus-prefix"],
  ["busCreds", "--bus-creds"],
  ["busCa", "--bus-ca"],
  ["busCert", "--bus-cert"],
  ["busKey", "--bus-key"],
];

/**
 * Checks the chat options against the rest of serve's.
 * @param flags The parsed options.
 * @param given Whether an option was given on the command line.
 * @returns The chat's plain configuration, or `undefined` for another protocol.
 * @throws {UsageError} When an option does not go with the others.
 */
export async function chatConfig(
  flags: ChatFlags & { protocol: string; workers?: number; routes?: string },
  given: (option: string) => boolean,
): Promise<ChatConfig | undefined> {
  if (flags.protocol !== "chat") {
    for (const [key, spelling] of [...CHAT_ONLY, ...BUS_ONLY]) {
      if (given(key)) throw new UsageError(`${spelling} needs --protocol chat`);
    }
    return undefined;
  }
  if (flags.bus === undefined) {
    for (const [key, spelling] of BUS_ONLY) {
      if (given(key)) throw new UsageError(`${spelling} needs --bus`);
    }
    if (flags.workers !== undefined) {
      throw new UsageError(
        "--protocol chat with --workers needs --bus: each worker has its own rooms, and they " +
          "share them through NATS",
      );
    }
  }
  if (flags.raw) {
    if (flags.routes !== undefined) throw new UsageError("--routes does not apply to --raw");
    if (given("invalidReply")) throw new UsageError("--invalid-reply does not apply to --raw");
  }
  if ((flags.busCert === undefined) !== (flags.busKey === undefined)) {
    throw new UsageError("--bus-cert and --bus-key go together");
  }
  for (
    const [path, spelling] of [
      [flags.busCreds, "--bus-creds"],
      [flags.busCa, "--bus-ca"],
      [flags.busCert, "--bus-cert"],
      [flags.busKey, "--bus-key"],
    ] as const
  ) {
    if (path === undefined) continue;
    try {
      (await Deno.open(path)).close();
    } catch (error) {
      throw new UsageError(`${spelling}: cannot read ${path}: ${(error as Error).message}`);
    }
  }
  return {
    raw: flags.raw ?? false,
    maxQueueBytes: flags.chatQueue,
    ...(flags.chatRate !== undefined ? { rate: flags.chatRate } : {}),
    ...(flags.bus === undefined ? {} : {
      bus: {
        url: flags.bus,
        prefix: flags.busPrefix,
        ...(flags.busCreds !== undefined ? { credsPath: flags.busCreds } : {}),
        ...(flags.busCa !== undefined ? { caPath: flags.busCa } : {}),
        ...(flags.busCert !== undefined ? { certPath: flags.busCert } : {}),
        ...(flags.busKey !== undefined ? { keyPath: flags.busKey } : {}),
      },
    }),
  };
}

/** The same configuration without its bus (what the main thread checks while workers serve). */
export function withoutBus(config: ChatConfig): ChatConfig {
  const { bus: _bus, ...rest } = config;
  return rest;
}

function parseBus(text: string): string {
  try {
    parseBusUrl(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message.replace(/^invalid bus URL: \S+ /, ""));
  }
  return text;
}

function parsePrefix(text: string): string {
  const problem = checkBusPrefix(text);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return text;
}

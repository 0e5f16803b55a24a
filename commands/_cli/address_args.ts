/**
 * Where to connect (or listen), the same in every subcommand: a URL as the first argument
 * (`tcp://HOST:PORT`, `tls://HOST:PORT`, `unix:///PATH`, exactly what `serve` prints), or the
 * options `--host HOST[:PORT]` (which takes the URL forms too), `-p/--port PORT` and
 * `-U/--unix PATH`.
 *
 * A command line that starts with what looks like `HOST PORT` (nc's order) is never sent to the
 * default port: `127.0.0.1 7000`, `localhost 7000`, `[::1] 7000` are read as the target; a bare word
 * before a port number (`myhost 7000`) is refused with a hint, since it may be a line.
 *
 * This file reads the words and URLs ({@linkcode readTargetArgs}, {@linkcode parseAddress});
 * `commands/_client_target.ts` declares the client subcommands' target options on top of it.
 *
 * @module
 */
import { UsageError } from "./spec.ts";

/** Where to connect or listen. */
export type Target =
  | {
    readonly kind: "tcp";
    readonly hostname: string;
    readonly port: number;
    readonly tls: boolean;
  }
  | { readonly kind: "unix"; readonly path: string };

/** The target options as parsed. */
export interface TargetOptions {
  host?: string | undefined;
  port?: number | undefined;
  unix?: string | undefined;
}

/** A target read from the command line, and the positional arguments left after it. */
export interface ResolvedTarget {
  /** The target (defaults filled in). */
  readonly target: Target;
  /** Whether anything named the target (or it is the default). */
  readonly explicit: boolean;
  /** The positional arguments that are not the target. */
  readonly rest: readonly string[];
}

const URL_FORM = /^(tcp|tls|unix):\/\//i;
const PORT = /^\d{1,5}$/;

/**
 * Parses a port number.
 * @param text Digits.
 * @returns 1–65535 (0 too when `allowZero`, for servers: a free port).
 */
export function parsePortNumber(text: string, allowZero = false): number {
  const port = PORT.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(port >= (allowZero ? 0 : 1) && port <= 65535)) {
    throw new Error(
      `expected a port number from ${allowZero ? 0 : 1} to 65535, got ${JSON.stringify(text)}`,
    );
  }
  return port;
}

/**
 * Parses `tcp://HOST:PORT`, `tls://HOST:PORT`, `unix:///PATH`, `HOST:PORT` or `[IPv6]:PORT`.
 * @param text The address.
 * @param allowZero Whether port 0 is allowed (servers).
 * @returns The target; `port` is `undefined` when a bare host was given.
 */
export function parseAddress(
  text: string,
  allowZero = false,
): { kind: "tcp"; hostname: string; port: number | undefined; tls: boolean } | {
  kind: "unix";
  path: string;
} {
  const scheme = URL_FORM.exec(text)?.[1]?.toLowerCase();
  if (scheme === "unix") {
    const path = text.slice("unix://".length);
    if (path === "") throw new UsageError(`${text}: no socket path (write unix:///path/to.sock)`);
    return { kind: "unix", path };
  }
  const rest = scheme ? text.slice(scheme.length + 3).replace(/\/$/, "") : text;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  let hostname: string;
  let portText: string | undefined;
  if (bracketed) {
    hostname = bracketed[1]!;
    portText = bracketed[2];
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    [hostname, portText] = rest.split(":") as [string, string];
  } else {
    // No colon, or an IPv6 literal without brackets (then it has no port).
    hostname = rest;
  }
  if (hostname === "") throw new UsageError(`${text}: no host`);
  if (scheme && portText === undefined) {
    throw new UsageError(`${text}: no port (write ${scheme}://HOST:PORT)`);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    try {
      port = parsePortNumber(portText, allowZero);
    } catch (error) {
      throw new UsageError(`${text}: ${(error as Error).message}`);
    }
  }
  return { kind: "tcp", hostname, port, tls: scheme === "tls" };
}

/** Whether a word reads as a host: an IP literal, a dotted name, `localhost`, or bracketed. */
function looksLikeHost(word: string): boolean {
  return /^\[.*\]$/.test(word) || /^localhost$/i.test(word) ||
    /^[\w-]+(\.[\w-]+)+$/.test(word) || /^[0-9a-f:]+:[0-9a-f:]*$/i.test(word);
}

/**
 * Reads the target from the first positional argument or the options.
 * @param options `--host`, `--port`, `--unix`.
 * @param args The positional arguments.
 * @param defaults The default host and port.
 * @param server Listening rather than connecting (port 0 is allowed).
 * @returns The target and the remaining positional arguments.
 * @throws {UsageError} On two targets, a bad address, or `HOST PORT` that cannot be read as one.
 */
export function readTargetArgs(
  options: TargetOptions,
  args: readonly string[],
  defaults: { hostname: string; port: number },
  server = false,
): ResolvedTarget {
  const byOption = options.host !== undefined || options.port !== undefined ||
    options.unix !== undefined;
  const first = args[0];
  if (first !== undefined && URL_FORM.test(first)) {
    if (byOption) {
      throw new UsageError(`${first} names the target already: drop --host, --port and --unix`);
    }
    const address = parseAddress(first, server);
    const target: Target = address.kind === "unix" ? address : { ...address, port: address.port! };
    return { target, explicit: true, rest: args.slice(1) };
  }
  if (!byOption && first !== undefined && PORT.test(args[1] ?? "")) {
    if (looksLikeHost(first)) {
      const address = parseAddress(
        first.includes(":") && !first.startsWith("[") ? `[${first}]` : first,
      );
      if (address.kind === "tcp") {
        return {
          target: { ...address, port: parsePortOrUsage(args[1]!, server) },
          explicit: true,
          rest: args.slice(2),
        };
      }
    }
    throw new UsageError(
      `"${first} ${args[1]}" looks like HOST PORT: write tcp://${first}:${args[1]} ` +
        `(or --host ${first} -p ${args[1]}); to send them as lines, put them after --`,
    );
  }
  if (options.unix !== undefined) {
    if (options.host !== undefined || options.port !== undefined) {
      throw new UsageError("use either --unix or --host/--port, not both");
    }
    return { target: { kind: "unix", path: options.unix }, explicit: true, rest: args };
  }
  if (options.host !== undefined) {
    const address = parseAddress(options.host, server);
    if (address.kind === "unix") {
      if (options.port !== undefined) throw new UsageError("--port does not go with unix://");
      return { target: address, explicit: true, rest: args };
    }
    if (address.port !== undefined && options.port !== undefined && address.port !== options.port) {
      throw new UsageError(`--host ${options.host} and --port ${options.port} disagree`);
    }
    return {
      target: { ...address, port: address.port ?? options.port ?? defaults.port },
      explicit: true,
      rest: args,
    };
  }
  return {
    target: {
      kind: "tcp",
      hostname: defaults.hostname,
      port: options.port ?? defaults.port,
      tls: false,
    },
    explicit: byOption,
    rest: args,
  };
}

function parsePortOrUsage(text: string, allowZero: boolean): number {
  try {
    return parsePortNumber(text, allowZero);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The target as `serve` prints it.
 * @param target The target.
 * @returns `tcp://127.0.0.1:1991`, `tls://[::1]:7000`, `unix:///tmp/x.sock`.
 */
export function formatTarget(target: Target): string {
  if (target.kind === "unix") return `unix://${target.path}`;
  const host = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  return `${target.tls ? "tls" : "tcp"}://${host}:${target.port}`;
}

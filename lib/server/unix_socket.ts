/**
 * Listening on a Unix socket safely: created owner-only with no window in which others can connect,
 * a stale socket file left by a dead server is replaced, a live server's socket is never stolen, and
 * the file is removed when the listener closes.
 *
 * The socket is bound inside a fresh private (0700) directory next to the target, given its mode, and
 * then hard-linked into place: until then, nobody else can reach it, and the link fails instead of
 * replacing whatever appeared at the path meanwhile (another server's socket is never replaced).
 *
 * @example Listening owner-only
 * ```ts
 * import { listenUnix } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const socket = await listenUnix(`${dir}/demo.sock`);
 * assert.equal((await Deno.stat(`${dir}/demo.sock`)).mode! & 0o777, 0o600);
 * await socket.close();
 * await assert.rejects(Deno.stat(`${dir}/demo.sock`), Deno.errors.NotFound);
 * await Deno.remove(dir);
 * ```
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { LinesockError, ListenError } from "../errors.ts";
import { describeListenFailure } from "./_listen_failure.ts";

/** Options of {@linkcode listenUnix}. */
export interface ListenUnixOptions {
  /**
   * The socket file's permission bits.
   * @default {0o600}
   */
  mode?: number;
  /** A group id to give the socket file (the caller must be allowed to). */
  gid?: number;
}

/** A listening Unix socket that removes its file when closed. */
export interface UnixSocketListener {
  /** The listener. */
  readonly listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>;
  /** The socket file's path. */
  readonly path: string;
  /** Closes the listener and removes the socket file if it is still ours. */
  close(): Promise<void>;
}

/** Thrown when a live server already listens on the path. */
export class AddressInUseError extends LinesockError {
  /**
   * Creates the instance.
   * @param path The socket path.
   */
  constructor(path: string) {
    super("ADDRESS_IN_USE", `Cannot listen on unix://${path}: another server is listening there`);
  }
}

/**
 * Listens on a Unix socket, owner-only by default.
 * @param path The socket file's path.
 * @param options Mode and group.
 * @returns The listener and its cleanup.
 * @throws {AddressInUseError} When a live server listens on `path`.
 * @throws {Deno.errors.AlreadyExists} When `path` exists and is not a socket.
 */
export async function listenUnix(
  path: string,
  options: ListenUnixOptions = {},
): Promise<UnixSocketListener> {
  let privateDir: string;
  try {
    // The name says which socket it stages, so that listenersOf() can tell a live server from
    // /proc/net/unix, where a socket is listed under the name it was bound to.
    privateDir = await Deno.makeTempDir({
      dir: dirname(path),
      prefix: `${STAGING_PREFIX}${basename(path)}-`,
    });
  } catch (error) {
    throw new ListenError(`unix://${path}`, describeListenFailure(error, "directory"), {
      cause: error,
    });
  }
  let listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr> | undefined;
  try {
    await Deno.chmod(privateDir, 0o700);
    const staging = join(privateDir, "s");
    try {
      listener = Deno.listen({ transport: "unix", path: staging });
    } catch (error) {
      throw new ListenError(`unix://${path}`, describeListenFailure(error), { cause: error });
    }
    await Deno.chmod(staging, options.mode ?? 0o600);
    if (options.gid !== undefined) await Deno.chown(staging, null, options.gid);
    await placeSocket(staging, path);
  } catch (error) {
    listener?.close();
    throw error;
  } finally {
    await Deno.remove(privateDir, { recursive: true }).catch(() => {});
  }
  const inode = (await Deno.lstat(path)).ino;
  const bound = listener;
  let closed = false;
  return {
    listener: bound,
    path,
    async close() {
      if (closed) return;
      closed = true;
      try {
        bound.close();
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) throw error;
      }
      const info = await Deno.lstat(path).catch(() => undefined);
      if (info?.isSocket && info.ino === inode) await Deno.remove(path).catch(() => {});
    },
  };
}

/**
 * Puts the staged socket at `path` with a hard link, which fails if `path` exists: then a stale
 * socket there is removed and the link tried once more; a live one is an error. Where hard links
 * are not supported, a rename (which would replace a file that appeared meanwhile) is the fallback.
 */
async function placeSocket(staging: string, path: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.link(staging, path);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists && attempt === 0) {
        await removeStaleSocket(path, staging);
        continue;
      }
      if (error instanceof Deno.errors.AlreadyExists) throw new AddressInUseError(path);
      if (isLinkUnsupported(error)) {
        await removeStaleSocket(path, staging);
        await Deno.rename(staging, path);
        return;
      }
      throw error;
    }
  }
}

function isLinkUnsupported(error: unknown): boolean {
  // EPERM/EXDEV/ENOTSUP: a file system (or policy) without hard links to sockets.
  return error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.NotSupported ||
    (error instanceof Error && /os error (18|95)\b/.test(error.message));
}

/** Removes `path` if it is a socket nobody listens on; refuses to touch anything else. */
async function removeStaleSocket(path: string, staging: string): Promise<void> {
  const info = await Deno.lstat(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
  if (info === undefined) return;
  if (!info.isSocket) {
    throw new Deno.errors.AlreadyExists(
      `Cannot listen on unix://${path}: the path exists and is not a socket`,
    );
  }
  // Where the kernel lists its listeners, a live one is found without connecting to it (a probe
  // connection would count in that server's statistics as a client).
  if (await isListedAsListening(path, staging)) throw new AddressInUseError(path);
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) {
      await Deno.remove(path).catch(() => {});
      return;
    }
    throw error;
  }
  throw new AddressInUseError(path);
}

const STAGING_PREFIX = ".linesock-";
/** The flag of a listening socket in /proc/net/unix (`__SO_ACCEPTCON`). */
const ACCEPTING = 0x10000;

/**
 * Whether Linux's /proc/net/unix lists a listener bound to `path`, or to a linesock staging name for
 * it (`<dir>/.linesock-<name>-XXXXXX/s`, linked to `path` since), other than the caller's own
 * staging socket. False when the table cannot be
 * read (another system, no permission) or lists none: the caller then probes by connecting. A
 * listener in another network namespace is not listed either; the probe finds it.
 */
async function isListedAsListening(path: string, ownStaging: string): Promise<boolean> {
  let table: string;
  try {
    table = await Deno.readTextFile("/proc/net/unix");
  } catch {
    return false;
  }
  const target = resolve(path);
  const dir = dirname(target);
  const prefix = join(dir, `${STAGING_PREFIX}${basename(target)}-`);
  const own = resolve(ownStaging);
  for (const row of table.split("\n").slice(1)) {
    const fields = row.trim().split(/\s+/);
    const bound = fields[7];
    if (bound === undefined || (parseInt(fields[3]!, 16) & ACCEPTING) === 0) continue;
    const name = resolve(bound);
    if (name === own) continue;
    if (name === target) return true;
    if (
      name.startsWith(prefix) && name.endsWith("/s") && !name.slice(prefix.length, -2).includes("/")
    ) {
      return true;
    }
  }
  return false;
}

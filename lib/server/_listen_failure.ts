/**
 * Internal: why listening failed, in a few words for {@linkcode ListenError}, from the error the
 * runtime threw.
 *
 * @module
 */

/**
 * Describes a failed `listen` (or the creation of a Unix socket's staging directory).
 * @param error What the runtime threw.
 * @param missing What a `NotFound` means here (`"directory"` for a Unix socket's parent).
 * @returns A short reason: "address already in use", "no such directory", "cannot resolve host"…
 */
export function describeListenFailure(error: unknown, missing = "file"): string {
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available on this machine";
  if (error instanceof Deno.errors.NotFound) return `no such ${missing}`;
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  const message = error instanceof Error ? error.message : String(error);
  // A failed name lookup is a plain Error, with no class or code of its own.
  if (/failed to lookup address|Name or service not known|nodename nor servname/i.test(message)) {
    return "cannot resolve host";
  }
  return message;
}

/** File-system checks for tests. */

/**
 * Whether something exists at `path` (without following a final symbolic link).
 * @param path The path.
 * @returns `true` when it exists.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

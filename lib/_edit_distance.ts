/**
 * Internal: the edit distance behind every "did you mean" (routes files' keys, command-line
 * options).
 *
 * @module
 */

/**
 * Levenshtein distance: insertions, deletions and substitutions from `a` to `b`.
 * @returns The number of edits.
 */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

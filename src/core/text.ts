/**
 * Small text helpers shared by the library and the CLI.
 */

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[n]!;
}

/** Candidates close to `word` (prefix or small edit distance), best first: for "did you mean" hints. */
export function closest(word: string, candidates: readonly string[], maxDistance = 3): string[] {
  return candidates
    .map((c) => ({ c, d: c.startsWith(word) || word.startsWith(c) ? 1 : editDistance(word, c) }))
    .filter((x) => x.d <= Math.max(1, Math.min(maxDistance, Math.floor(word.length / 2))))
    .sort((a, b) => a.d - b.d)
    .map((x) => x.c);
}


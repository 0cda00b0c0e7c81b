/**
 * Small text helpers shared by the library and the CLI.
 */
import { StringDecoder } from 'node:string_decoder';

/**
 * Quote words for a POSIX shell: a word of safe characters as it is, any other in single quotes.
 * For the few places that must hand a shell one string (a command line over ssh, QEMU's `exec:`
 * migration URI) and for showing an argv; kumo runs its own programs by argv, never through this.
 */
export function shellQuote(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

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


/**
 * Text from a guest (its serial console), made safe to write to a terminal: control characters
 * that a terminal acts on (ESC and the other C0 controls, DEL, the C1 controls such as CSI U+009B)
 * are shown in caret or \xNN notation instead of reaching the terminal, so the guest cannot move
 * the cursor, retitle the window, rewrite the clipboard (OSC 52) or answer for the user. Tab,
 * newline and carriage return are kept.
 */
export function sanitizeTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0080-\u009f]/g, (c) => {
    const n = c.charCodeAt(0);
    if (n < 0x20) return '^' + String.fromCharCode(n + 0x40);
    if (n === 0x7f) return '^?';
    return `\\x${n.toString(16)}`;
  });
}

/** A sanitizer for a byte stream split in chunks (a UTF-8 character cut between two chunks is kept whole). */
export function terminalSanitizer(): (chunk: Uint8Array) => string {
  const d = new StringDecoder('utf8');
  return (chunk) => sanitizeTerminal(d.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
}

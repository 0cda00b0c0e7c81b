/**
 * Checksums: the user's `sha256:<hex>` / `sha512:<hex>`, and the checksum files distributions
 * publish beside their images (GNU `hex  name` / `hex *name` lines as in SHA256SUMS, BSD
 * `SHA256 (name) = hex` lines as in Fedora/CentOS/Rocky CHECKSUM files, possibly PGP clear-signed).
 */
import { InvalidInputError } from '../core/errors.js';

export type HashAlgo = 'sha256' | 'sha512';

export interface Checksum {
  algo: HashAlgo;
  hex: string;
}

const HEX_LEN: Record<HashAlgo, number> = { sha256: 64, sha512: 128 };

export function formatChecksum(c: Checksum): string {
  return `${c.algo}:${c.hex}`;
}

/** Parse `sha256:<hex>` or `sha512:<hex>` (a bare hex string is accepted by its length). */
export function parseChecksum(s: string): Checksum {
  const m = /^(?:(sha256|sha512)[:=])?([0-9a-fA-F]+)$/.exec(s.trim());
  const bad = () =>
    new InvalidInputError('BAD_CHECKSUM', `not a checksum: '${s}'`, { hint: 'write it as sha256:<64 hex digits> or sha512:<128 hex digits>' });
  if (!m) throw bad();
  const hex = m[2]!.toLowerCase();
  const algo: HashAlgo | undefined = (m[1] as HashAlgo | undefined) ?? (hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined);
  if (!algo || hex.length !== HEX_LEN[algo]) throw bad();
  return { algo, hex };
}

/** Every (file name → checksum) pair found in a checksum file, whatever its style. */
export function parseSumsFile(text: string, defaultAlgo?: HashAlgo): Map<string, Checksum> {
  const out = new Map<string, Checksum>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('-----') || /^Hash:/i.test(line)) continue;
    // BSD style: SHA256 (name) = hex
    let m = /^(SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/i.exec(line);
    if (m) {
      const algo = m[1]!.toLowerCase() as HashAlgo;
      const hex = m[3]!.toLowerCase();
      if (hex.length === HEX_LEN[algo]) out.set(baseName(m[2]!), { algo, hex });
      continue;
    }
    // GNU style: hex  name, hex *name (binary mode)
    m = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})\s+\*?(.+)$/.exec(line);
    if (m) {
      const hex = m[1]!.toLowerCase();
      const algo: HashAlgo = hex.length === 64 ? 'sha256' : 'sha512';
      if (defaultAlgo && defaultAlgo !== algo) continue;
      out.set(baseName(m[2]!.trim()), { algo, hex });
    }
  }
  return out;
}

function baseName(name: string): string {
  const n = name.replace(/^\.\//, '');
  const i = n.lastIndexOf('/');
  return i >= 0 ? n.slice(i + 1) : n;
}

/**
 * Sizes and durations as users write them ("512M", "2G", "1.5GiB", "90s", "10m"): one parser of
 * each for the spec, the CLI and the builder.
 */
import { InvalidInputError } from './errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** Parse "512M", "2G", "1.5GiB", "10240" (in `bareUnit`) into bytes; undefined when unparsable. */
export function parseSize(v: unknown, bareUnit = 1): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * bareUnit) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  if (!(unit in UNITS)) return undefined;
  const mult = unit === '' ? bareUnit : UNITS[unit]!;
  return Math.round(Number(m[1]) * mult);
}

/** `parseSize`, or a BAD_SIZE error naming the text (a bare number is bytes). */
export function requireSize(s: string): number {
  const n = parseSize(s);
  if (n === undefined) throw new InvalidInputError('BAD_SIZE', `'${s}' is not a size`, { hint: 'write it like 4G, 2048M or 10737418240' });
  return n;
}

/** Parse "90", "90s", "1500ms", "10m", "2h" into seconds; undefined when unparsable. */
export function parseDurationSec(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}

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

const DURATION_UNIT_SEC = [86400, 3600, 60, 1, 0.001];

/**
 * Parse a duration into seconds: a bare number (seconds), or one or more NUMBERunit parts in the
 * order d, h, m, s, ms ("90s", "1500ms", "10m", "1h30m", "2d12h"; no blanks inside);
 * undefined when it is none. The one duration syntax of timeouts, waits and ttls.
 */
export function parseDurationSec(s: string): number | undefined {
  const t = s.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Number(t);
  const num = String.raw`(\d+(?:\.\d+)?)`;
  const m = new RegExp(String.raw`^(?:${num}d)?(?:${num}h)?(?:${num}m(?!s))?(?:${num}s)?(?:${num}ms)?$`).exec(t);
  if (!t || !m) return undefined;
  return DURATION_UNIT_SEC.reduce((sum, unit, i) => sum + (m[i + 1] ? Number(m[i + 1]) * unit : 0), 0);
}

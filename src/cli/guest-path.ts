/**
 * `NAME:PATH` arguments of `kumo cp`: a guest path, or a host path.
 */
import { INSTANCE_NAME_RE } from '../core/names.js';

/** `NAME:PATH` → { name, path } when NAME is a valid instance name; undefined for host paths. */
export function parseGuestPath(s: string): { name: string; path: string } | undefined {
  const m = new RegExp(`^(${INSTANCE_NAME_RE.source.slice(1, -1)}):(.*)$`).exec(s);
  if (!m) return undefined;
  return { name: m[1]!, path: m[3] || '.' };
}

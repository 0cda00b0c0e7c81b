/**
 * `NAME:PATH` arguments of `kumo cp`: a guest path, or a host path.
 */

/** `NAME:PATH` → { name, path } when NAME is a valid instance name; undefined for host paths. */
export function parseGuestPath(s: string): { name: string; path: string } | undefined {
  const m = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?):(.*)$/.exec(s);
  if (!m) return undefined;
  return { name: m[1]!, path: m[3] || '.' };
}

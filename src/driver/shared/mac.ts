/**
 * An instance's MAC address, derived from its instance-id: identity, not a backend's detail, so
 * every driver (and the instance layer that stores it) gets the same address for an instance.
 */

/** A stable, locally administered unicast MAC derived from a seed string (the instance id). */
export function macFor(seed: string): string {
  let h = 2166136261;
  for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const b = [0x52, 0x54, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

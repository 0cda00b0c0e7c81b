/**
 * An instance's MAC address, derived from its instance-id: identity, not a backend's detail, so
 * every driver (and the instance layer that stores it) gets the same address for an instance.
 */
import { createHash } from 'node:crypto';

/** A stable, locally administered unicast MAC derived from a seed string (the instance id). */
export function macFor(seed: string): string {
  let h = 2166136261;
  for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const b = [0x52, 0x54, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The VM generation id (a UUID, for QEMU's vmgenid device) derived from the instance id: stable
 * for an instance across its boots, suspends and resumes, and new for every clone (a clone has its
 * own instance id), which is what makes a restored guest's kernel reseed its RNG.
 */
export function vmgenidFor(seed: string): string {
  const h = createHash('sha256').update(`vmgenid:${seed}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * IPv4 subnets for private networks (pure): parse a CIDR, test overlap, pick a default subnet that
 * overlaps no other, and hand out the lowest free host address of a subnet.
 */
import { InvalidInputError } from '../core/errors.js';

export interface Subnet {
  /** The network address as a 32-bit unsigned number. */
  base: number;
  prefix: number;
}

/** QEMU's user-mode network (every instance's first NIC): no private network may overlap it. */
export const QEMU_USER_SUBNET = '10.0.2.0/24';
/** Where default subnets are taken from: 10.99.0.0/24, 10.99.1.0/24, ... */
export const DEFAULT_POOL = { first: '10.99.0.0', count: 256, prefix: 24 };
/** The smallest and largest networks kumo makes (a /30 holds two instances; a /16 65,534). */
export const MIN_PREFIX = 16;
export const MAX_PREFIX = 30;

export class BadSubnetError extends InvalidInputError {
  constructor(text: string, why: string) {
    super('BAD_SUBNET', `'${text}' is not a usable subnet: ${why}`, { hint: `give an IPv4 network in CIDR form with a prefix from /${MIN_PREFIX} to /${MAX_PREFIX}, e.g. 10.99.7.0/24` });
  }
}

export function parseIp(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse `A.B.C.D/N`; host bits must be zero (10.99.1.5/24 is refused, naming 10.99.1.0/24). */
export function parseSubnet(text: string): Subnet {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) throw new BadSubnetError(text, 'not of the form A.B.C.D/N');
  const ip = parseIp(m[1]!);
  if (ip === undefined) throw new BadSubnetError(text, `'${m[1]}' is not an IPv4 address`);
  const prefix = Number(m[2]);
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) throw new BadSubnetError(text, `prefix /${prefix} is outside /${MIN_PREFIX}../${MAX_PREFIX}`);
  const base = (ip & mask(prefix)) >>> 0;
  if (base !== ip) throw new BadSubnetError(text, `host bits are set (the network is ${formatIp(base)}/${prefix})`);
  const first = ip >>> 24;
  if (first === 127 || first === 0 || first >= 224) throw new BadSubnetError(text, 'loopback, "this network", multicast and reserved ranges cannot be used');
  return { base, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp(s.base)}/${s.prefix}`;
}

export function subnetSize(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const aEnd = a.base + subnetSize(a) - 1;
  const bEnd = b.base + subnetSize(b) - 1;
  return a.base <= bEnd && b.base <= aEnd;
}

export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.base && ip < s.base + subnetSize(s);
}

/** Host addresses of a subnet (network and broadcast addresses left out). */
export function hostRange(s: Subnet): { first: number; last: number } {
  return { first: s.base + 1, last: s.base + subnetSize(s) - 2 };
}

/** The first subnet of the default pool that overlaps none of `taken` (nor QEMU's user network); undefined when all are used. */
export function pickDefaultSubnet(taken: readonly Subnet[]): Subnet | undefined {
  const avoid = [...taken, parseSubnet(QEMU_USER_SUBNET)];
  const first = parseIp(DEFAULT_POOL.first)!;
  for (let i = 0; i < DEFAULT_POOL.count; i++) {
    const s = { base: (first + i * 2 ** (32 - DEFAULT_POOL.prefix)) >>> 0, prefix: DEFAULT_POOL.prefix };
    if (!avoid.some((t) => overlaps(s, t))) return s;
  }
  return undefined;
}

/** The lowest host address of `s` not in `used` (dotted strings); undefined when the pool is exhausted. */
export function lowestFree(s: Subnet, used: Iterable<string>): string | undefined {
  const taken = new Set<number>();
  for (const u of used) {
    const n = parseIp(u);
    if (n !== undefined) taken.add(n);
  }
  const { first, last } = hostRange(s);
  for (let ip = first; ip <= last; ip++) if (!taken.has(ip)) return formatIp(ip);
  return undefined;
}

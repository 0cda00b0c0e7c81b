/**
 * The network store: one folder per private network in KUMO_HOME/networks/, and the addresses
 * handed out on it.
 *
 *   KUMO_HOME/networks/
 *     lock                 one lock for every change to any network (create, rm, allocate, release,
 *                          the switches): creates are rare, and one lock makes subnet overlap and
 *                          address allocation race-free across processes
 *     NAME/network.json    the record: subnet, and the leases (instance -> address, MAC); written
 *                          atomically, and LAST when a network is made (a folder without it is
 *                          a create that did not finish, and is swept)
 *     NAME/switch/         the VDE switch's control folder (QEMU's -netdev vde,sock=)
 *     NAME/switch.pid(.boot)  the switch's pid, and who that pid was (./switch.ts)
 *
 * A lease belongs to an instance while its folder exists (KUMO_HOME/instances/NAME): a lease of an
 * instance removed behind kumo's back is dropped the next time the network changes.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, InvalidInputError, NotFoundError, ValidationError } from '../core/errors.js';
import { exists, readJson, writeJsonAtomic } from '../core/fs.js';
import { acquireLock, type Lock } from '../core/lock.js';
import { nameIssues } from '../core/names.js';
import { closest } from '../core/text.js';
import { formatSubnet, lowestFree, overlaps, parseSubnet, pickDefaultSubnet, QEMU_USER_SUBNET, type Subnet } from './cidr.js';

export const NETWORK_RECORD_VERSION = 1;

export interface Lease {
  address: string;
  mac: string;
  at: string;
}

export interface NetworkRecord {
  version: number;
  name: string;
  /** CIDR, e.g. 10.99.0.0/24. */
  subnet: string;
  created: string;
  /** How instances are attached: a VDE switch kumo runs (the QEMU driver). */
  mode: 'vde';
  /** instance name -> its address on this network. */
  leases: Record<string, Lease>;
}

export interface NetworkFiles {
  dir: string;
  record: string;
  /** The VDE switch's control folder. */
  socket: string;
  pidFile: string;
}

export function networksDir(paths: KumoPaths): string {
  return join(paths.home, 'networks');
}

export function networkFiles(paths: KumoPaths, name: string): NetworkFiles {
  assertNetworkName(name);
  const dir = join(networksDir(paths), name);
  return { dir, record: join(dir, 'network.json'), socket: join(dir, 'switch'), pidFile: join(dir, 'switch.pid') };
}

export function assertNetworkName(name: unknown): asserts name is string {
  const issues = nameIssues(name, 'network');
  // `--network user` is the libvirt driver's user networking
  if (name === 'user') issues.push({ path: 'network', message: "'user' is reserved (--network user is the libvirt driver's user-mode networking)", hint: 'choose another name' });
  if (issues.length) throw new ValidationError('network name', issues);
}

export class NetworkNotFoundError extends NotFoundError {
  constructor(name: string, known: readonly string[]) {
    const near = closest(name, known);
    super('NETWORK_NOT_FOUND', `no network named '${name}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}`, {
      hint: known.length ? `the networks are: ${known.join(', ')}; or make it: kumo network create ${name}` : `make it first: kumo network create ${name}`,
    });
  }
}

export class NetworkExistsError extends ConflictError {
  constructor(name: string) {
    super('NETWORK_EXISTS', `a network named '${name}' already exists`, { hint: `choose another name, or remove it: kumo network rm ${name}` });
  }
}

export class SubnetOverlapError extends ConflictError {
  constructor(subnet: string, other: string, what: string) {
    super('SUBNET_OVERLAP', `subnet ${subnet} overlaps ${other} (${what})`, {
      hint: 'give a subnet that overlaps no other network (kumo network list shows them), or leave --subnet out to get a free one',
      details: { subnet, overlaps: other, with: what },
    });
  }
}

export class AddressPoolExhaustedError extends ConflictError {
  constructor(network: string, subnet: string, used: number) {
    super('ADDRESS_POOL_EXHAUSTED', `network '${network}' has no free address left: all ${used} of ${subnet} are given to instances`, {
      hint: `delete an instance on it, or make a network with a larger subnet: kumo network create NAME --subnet 10.99.0.0/16`,
      details: { network, subnet, used },
    });
  }
}

export class NetworkInUseError extends ConflictError {
  constructor(name: string, instances: readonly string[]) {
    super('NETWORK_IN_USE', `network '${name}' is used by ${instances.length === 1 ? 'instance' : 'instances'} ${instances.map((i) => `'${i}'`).join(', ')}`, {
      hint: `delete ${instances.length === 1 ? 'it' : 'them'} first: kumo delete ${instances.join(' ')}`,
      details: { network: name, instances: [...instances] },
    });
  }
}

/** Take the one lock of the network store (every change to a network is made under it). */
export async function lockNetworks(paths: KumoPaths, op: string, signal?: AbortSignal): Promise<Lock> {
  await mkdir(networksDir(paths), { recursive: true, mode: 0o700 });
  return acquireLock(join(networksDir(paths), 'lock'), { op, what: 'the network store', waitMs: 30_000, ...(signal ? { signal } : {}) });
}

/** Names of the networks that have a record (complete ones), sorted. */
export async function networkNames(paths: KumoPaths): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(networksDir(paths), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || nameIssues(e.name).length) continue;
    if (await exists(join(networksDir(paths), e.name, 'network.json'))) out.push(e.name);
  }
  return out.sort();
}

function recordProblems(r: unknown, name: string): string[] {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return ['it is not a JSON object'];
  const o = r as Record<string, unknown>;
  const out: string[] = [];
  if (o.name !== name) out.push(`name is ${JSON.stringify(o.name)}, not '${name}'`);
  if (typeof o.subnet !== 'string') out.push('subnet is missing');
  else {
    try {
      parseSubnet(o.subnet);
    } catch {
      out.push(`subnet ${JSON.stringify(o.subnet)} is not a CIDR`);
    }
  }
  if (typeof o.leases !== 'object' || o.leases === null || Array.isArray(o.leases)) out.push('leases is missing or not an object');
  return out;
}

export async function readNetwork(paths: KumoPaths, name: string): Promise<NetworkRecord> {
  const f = networkFiles(paths, name);
  if (!(await exists(f.record))) throw new NetworkNotFoundError(name, await networkNames(paths));
  const rec = await readJson<unknown>(f.record);
  const problems = recordProblems(rec, name);
  if (problems.length)
    throw new InvalidInputError('CORRUPT_STATE', `network '${name}': ${f.record} is damaged: ${problems.join('; ')}`, {
      hint: `fix or remove the file (kumo network rm ${name} removes the network)`,
    });
  return rec as NetworkRecord;
}

async function writeNetwork(paths: KumoPaths, rec: NetworkRecord): Promise<void> {
  await writeJsonAtomic(networkFiles(paths, rec.name).record, rec, 0o600);
}

export async function listNetworks(paths: KumoPaths): Promise<NetworkRecord[]> {
  const out: NetworkRecord[] = [];
  for (const n of await networkNames(paths)) out.push(await readNetwork(paths, n));
  return out;
}

/** Instances that hold a lease and still exist (their folder is there). */
export async function networkMembers(paths: KumoPaths, rec: NetworkRecord): Promise<string[]> {
  const out: string[] = [];
  for (const inst of Object.keys(rec.leases).sort()) if (await exists(join(paths.instances, inst))) out.push(inst);
  return out;
}

/** Drop the leases of instances whose folder is gone (removed behind kumo's back). */
async function pruneLeases(paths: KumoPaths, rec: NetworkRecord): Promise<NetworkRecord> {
  const live = new Set(await networkMembers(paths, rec));
  const leases = Object.fromEntries(Object.entries(rec.leases).filter(([k]) => live.has(k)));
  return Object.keys(leases).length === Object.keys(rec.leases).length ? rec : { ...rec, leases };
}

export interface CreateNetworkOptions {
  /** CIDR; default: the first free /24 of 10.99.0.0/16. */
  subnet?: string;
  signal?: AbortSignal;
}

/** Make a network (its record; the switch starts when the first instance needs it). */
export async function createNetwork(paths: KumoPaths, name: string, o: CreateNetworkOptions = {}): Promise<NetworkRecord> {
  assertNetworkName(name);
  const wanted = o.subnet !== undefined ? parseSubnet(o.subnet) : undefined;
  await using _lock = await lockNetworks(paths, 'network create', o.signal);
  const f = networkFiles(paths, name);
  if (await exists(f.record)) throw new NetworkExistsError(name);
  const others = await listNetworks(paths);
  let subnet: Subnet;
  if (wanted) {
    const user = parseSubnet(QEMU_USER_SUBNET);
    if (overlaps(wanted, user)) throw new SubnetOverlapError(formatSubnet(wanted), QEMU_USER_SUBNET, "QEMU's user-mode network, every instance's first NIC");
    for (const n of others) if (overlaps(wanted, parseSubnet(n.subnet))) throw new SubnetOverlapError(formatSubnet(wanted), n.subnet, `network '${n.name}'`);
    subnet = wanted;
  } else {
    const s = pickDefaultSubnet(others.map((n) => parseSubnet(n.subnet)));
    if (!s) throw new ConflictError('NO_FREE_SUBNET', 'every default subnet (10.99.0.0/24 .. 10.99.255.0/24) is taken', { hint: 'give one with --subnet CIDR' });
    subnet = s;
  }
  const rec: NetworkRecord = { version: NETWORK_RECORD_VERSION, name, subnet: formatSubnet(subnet), created: new Date().toISOString(), mode: 'vde', leases: {} };
  // A folder left by a create that died before its record: sweep it, then make it anew.
  await rm(f.dir, { recursive: true, force: true });
  await mkdir(f.dir, { recursive: true, mode: 0o700 });
  try {
    await writeNetwork(paths, rec);
  } catch (e) {
    await rm(f.dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  return rec;
}

export interface RemoveNetworkOptions {
  signal?: AbortSignal;
  /** Called under the store's lock before the folder goes: stops the switch (./switch.ts). */
  beforeRemove?: (files: NetworkFiles) => Promise<void>;
}

/** Remove a network; refused while an instance holds an address on it (naming them). */
export async function removeNetwork(paths: KumoPaths, name: string, o: RemoveNetworkOptions = {}): Promise<void> {
  await using _lock = await lockNetworks(paths, 'network rm', o.signal);
  const rec = await readNetwork(paths, name);
  const members = await networkMembers(paths, rec);
  if (members.length) throw new NetworkInUseError(name, members);
  const f = networkFiles(paths, name);
  await o.beforeRemove?.(f);
  await rm(f.dir, { recursive: true, force: true });
}

/** An instance's place on one network, as its record keeps it. */
export interface NetworkAttachment {
  network: string;
  address: string;
  /** CIDR prefix length, for the guest's configuration. */
  prefix: number;
  mac: string;
}

/**
 * Give `instance` an address on each of `networks` (the lowest free one), all under the store's
 * lock so that two creates at once never get the same address. All or nothing: when one network
 * is unknown or full, no lease is kept. `macFor(network)` gives the NIC's MAC there.
 */
export async function allocateAddresses(paths: KumoPaths, instance: string, networks: readonly string[], macFor: (network: string) => string, signal?: AbortSignal): Promise<NetworkAttachment[]> {
  if (!networks.length) return [];
  await using _lock = await lockNetworks(paths, `allocate ${instance}`, signal);
  const recs: NetworkRecord[] = [];
  const out: NetworkAttachment[] = [];
  for (const n of networks) {
    let rec = await pruneLeases(paths, await readNetwork(paths, n));
    const s = parseSubnet(rec.subnet);
    const have = rec.leases[instance];
    const address = have?.address ?? lowestFree(s, Object.values(rec.leases).map((l) => l.address));
    if (!address) throw new AddressPoolExhaustedError(n, rec.subnet, Object.keys(rec.leases).length);
    const mac = macFor(n);
    rec = { ...rec, leases: { ...rec.leases, [instance]: { address, mac, at: new Date().toISOString() } } };
    recs.push(rec);
    out.push({ network: n, address, prefix: s.prefix, mac });
  }
  for (const r of recs) await writeNetwork(paths, r);
  return out;
}

/**
 * Give back the addresses `instance` holds on `networks` (every network when left out: a delete
 * of an instance whose record is lost); missing networks and leases are skipped. Returns the
 * networks it left.
 */
export async function releaseAddresses(paths: KumoPaths, instance: string, networks?: readonly string[], signal?: AbortSignal): Promise<string[]> {
  if (networks && !networks.length) return [];
  if (!networks && !(await networkNames(paths)).length) return [];
  await using _lock = await lockNetworks(paths, `release ${instance}`, signal);
  const left: string[] = [];
  for (const n of networks ?? (await networkNames(paths))) {
    if (!(await exists(networkFiles(paths, n).record))) continue;
    const rec = await readNetwork(paths, n);
    if (!rec.leases[instance]) continue;
    const { [instance]: _gone, ...leases } = rec.leases;
    await writeNetwork(paths, { ...rec, leases });
    left.push(n);
  }
  return left;
}

/** Check that each named network exists (before anything is made); throws NetworkNotFoundError. */
export async function checkNetworksExist(paths: KumoPaths, networks: readonly string[]): Promise<void> {
  const known = await networkNames(paths);
  for (const n of networks) {
    assertNetworkName(n);
    if (!known.includes(n)) throw new NetworkNotFoundError(n, known);
  }
}

/** The name -> address table of a network (every member, running or not). */
export function hostsTable(rec: NetworkRecord): { name: string; address: string }[] {
  return Object.entries(rec.leases)
    .map(([name, l]) => ({ name, address: l.address }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Create an instance (disk overlay, seed, keys, record) without starting it; roll back on failure.
 * Also the two calls the instance layer makes into the image store and the disk area.
 */
import { mkdir, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import type { KumoPaths } from '../config/paths.js';
import { validateSpec, type InstanceSpec, type InstanceSpecInput, type DriverOptions } from '../config/spec.js';
import { checkMountSources, type ResolvedMount } from '../config/mounts.js';
import { loadUserData } from '../seed/userdata.js';
import { ConflictError, ValidationError } from '../core/errors.js';
import { exists, writeFileAtomic } from '../core/fs.js';
import { lockHolder } from '../core/lock.js';
import { Emitter, type EventSink } from '../events/events.js';
import { DriverUnsupportedError, driverNames, getDriver, macFor, portFree, PortInUseError, requireCapability } from '../driver/index.js';
import { ensureDefaultKey, generateHostKey, userKey, writeKnownHosts } from '../guest/keys.js';
import { ensureImage, withStoredImage } from '../image/index.js';
import { qemuImg } from '../disk/index.js';
import { writeSeed } from '../seed/index.js';
import { ensureTtlReaper } from './reaper.js';
import { allocateAddresses, checkNetworksExist, releaseAddresses, type NetworkAttachment } from '../network/store.js';
import { networkConfigV2 } from '../network/guest-config.js';
import { IncompleteInstanceError, RECORD_VERSION, instanceFiles, lockInstance, writeRecord, type InstanceRecord, type OpOptions } from './store.js';

export interface BaseImage {
  /** The image store's id. */
  id?: string;
  ref: string;
  /** Absolute path of the read-only base file. */
  path: string;
  format: string;
  virtualSize?: number;
}

/** Resolve an image reference (alias, URL, file, stored name or id) to a verified base file in the store. */
export async function resolveImage(paths: KumoPaths, ref: string, opts: { onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<BaseImage> {
  const r = await ensureImage(paths, ref, { ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  return { ref, id: r.id, path: r.path, format: r.format, virtualSize: r.virtualSize };
}

/** Create the instance's qcow2 overlay on the base (recording the backing format: -F). */
export async function createOverlay(path: string, base: BaseImage, size?: number): Promise<void> {
  await qemuImg.createOverlay(path, { backing: base.path, backingFormat: base.format, ...(size !== undefined ? { size } : {}) });
}

/** A fresh instance name (vm-xxxxxx) for a create or launch that was given none. */
export function newInstanceName(): string {
  return `vm-${randomBytes(3).toString('hex')}`;
}

export interface CreateOptions extends OpOptions {
  /** Where user-data and key paths are relative to. */
  cwd?: string;
  /** Use this base instead of resolving spec.image (kumo clone: the source's base, recorded as is). */
  image?: BaseImage;
  /** Make the instance's disk at `path` instead of a fresh overlay on the base (kumo clone: a copy of another instance's disk). */
  makeDisk?: (path: string) => Promise<void>;
  /** Fields to add to (or change in) the record before it is written (a template clone's restore, MAC). */
  extra?: (rec: InstanceRecord) => Partial<InstanceRecord>;
}

/** Create an instance (disk overlay, seed, keys, record) without starting it. Rolls back on failure. */
export async function createInstance(paths: KumoPaths, input: InstanceSpecInput | InstanceSpec, opts: CreateOptions = {}): Promise<InstanceRecord> {
  const em = new Emitter(opts.onEvent);
  const spec = isSpec(input) ? input : validateSpec(input, { ...(opts.cwd ? { cwd: opts.cwd } : {}), drivers: driverNames() });
  const files = instanceFiles(paths, spec.name);
  // Checks first: nothing is made until the input is known to be good.
  if (await exists(files.dir)) {
    if (!(await exists(files.record))) throw new IncompleteInstanceError(spec.name, !!(await lockHolder(files.lock)));
    throw new ConflictError('INSTANCE_EXISTS', `an instance named '${spec.name}' already exists`, { hint: `choose another name, or remove it: kumo delete ${spec.name}` });
  }
  const userData = await loadUserData(spec);
  const login = spec.sshKey ? await userKey(spec.sshKey) : undefined;
  for (const p of spec.ports) if (!(await portFree(p.hostPort, p.hostAddr))) throw new PortInUseError(p.hostAddr, p.hostPort, `forward to guest port ${p.guestPort}`);
  const driver = await getDriver(spec.driver);
  if (spec.networks?.length) {
    if (!driver.capabilities.privateNetworks)
      throw new DriverUnsupportedError(driver.name, "put instances on kumo's private networks (--network)", 'use the qemu driver (--driver qemu), or leave --network out');
    await checkNetworksExist(paths, spec.networks);
  }
  // The driver's settings as instance.json keeps them (defaults that depend on the environment pinned now).
  const resolved = driver.resolveOptions ? driver.resolveOptions(spec.driverOptions) : spec.driverOptions;
  const driverOptions = (await driver.check(paths, resolved, { cpus: spec.cpus, memoryMiB: spec.memoryMiB })) || resolved;
  // Shared folders: the host folders exist, and the driver says how each reaches the guest here.
  let mounts: ResolvedMount[] | undefined;
  if (spec.mounts?.length) {
    const sources = await checkMountSources(spec.mounts);
    mounts = await requireCapability(driver, 'mounts', 'share host folders (--mount) yet').planMounts(paths, sources, { type: spec.mountType ?? 'auto', ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) });
  }
  const image = opts.image ?? (await em.step('image', `image ${spec.image}`, () => resolveImage(paths, spec.image, opts)));
  if (spec.diskBytes !== undefined && image.virtualSize !== undefined && spec.diskBytes < image.virtualSize) {
    throw new ValidationError('invalid instance spec', [
      { path: 'disk', message: `${spec.diskBytes} bytes is smaller than the image (${image.virtualSize} bytes)`, hint: 'give at least the image size, or leave --disk out' },
    ]);
  }

  // Claim the name: mkdir is atomic, so of several creates of one name exactly one gets here.
  await mkdir(paths.instances, { recursive: true, mode: 0o700 });
  try {
    await mkdir(files.dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ConflictError('INSTANCE_EXISTS', `an instance named '${spec.name}' already exists (another command created it just now)`, { hint: 'choose another name' });
    throw e;
  }
  let attachments: NetworkAttachment[] = [];
  try {
    await using _lock = await lockInstance(paths, spec.name, 'create');
    const key = login ?? (await em.step('keys', 'ssh key', () => ensureDefaultKey(paths)));
    const hostKey = await generateHostKey(paths.tmp, 'ed25519', `kumo-${spec.name}`);
    await writeFileAtomic(files.hostKey, hostKey.privateKey, 0o600);
    await writeFileAtomic(`${files.hostKey}.pub`, hostKey.publicKey + '\n', 0o644);
    await writeKnownHosts(files.knownHosts, spec.name, [hostKey]);
    // A fresh overlay is made under the image store's lock, with the base checked there: a
    // concurrent `image rm`/`prune` either ran before (the create fails, IMAGE_NOT_FOUND) or sees the overlay.
    await em.step('disk', opts.makeDisk ? 'disk' : 'disk overlay', () =>
      opts.makeDisk ? opts.makeDisk(files.disk) : withStoredImage(paths, image, () => createOverlay(files.disk, image, spec.diskBytes), opts.signal ? { signal: opts.signal } : {}),
    );
    const instanceId = `i-${spec.name}-${randomBytes(6).toString('hex')}`;
    // Private networks: an address on each (under the network store's lock), given to the guest by the seed.
    if (spec.networks?.length) {
      const id = instanceId;
      attachments = await em.step('network', `addresses on ${spec.networks.join(', ')}`, () => allocateAddresses(paths, spec.name, spec.networks!, (n) => macFor(`${id}/network/${n}`), opts.signal));
    }
    await em.step('seed', 'cloud-init seed', () =>
      writeSeed(
        {
          format: spec.seedFormat,
          instanceId,
          hostname: spec.name,
          user: spec.user,
          sshAuthorizedKeys: [key.publicKey],
          hostKeys: [hostKey],
          ...(userData !== undefined ? { userData } : {}),
          ...(mounts ? { mounts: mounts.map((m) => ({ tag: m.tag, guest: m.guest, type: m.type, readOnly: m.readOnly })) } : {}),
          ...(mounts && guestUidForMounts() !== undefined ? { userUid: guestUidForMounts()! } : {}),
          ...(attachments.length ? { networkConfig: networkConfigV2(macFor(instanceId), attachments), networkConfigSource: 'kumo network-config' } : {}),
        },
        files.seed,
      ),
    );
    const createdAt = Date.now(); // the ttl counts from here
    const rec: InstanceRecord = {
      version: RECORD_VERSION,
      name: spec.name,
      driver: driver.name,
      created: new Date(createdAt).toISOString(),
      instanceId,
      image: { ref: spec.image, path: image.path, format: image.format, ...(image.id ? { id: image.id } : {}), ...(image.virtualSize ? { virtualSize: image.virtualSize } : {}) },
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
      ...(spec.diskBytes !== undefined ? { diskBytes: spec.diskBytes } : image.virtualSize ? { diskBytes: image.virtualSize } : {}),
      accel: spec.accel,
      firmware: spec.firmware,
      seedFormat: spec.seedFormat,
      mac: macFor(instanceId),
      ssh: { user: spec.user, port: 0, key: key.privateKeyPath },
      ports: spec.ports,
      timeoutSec: spec.timeoutSec,
      ...(spec.userDataPath ? { userDataSource: spec.userDataPath } : spec.userDataText !== undefined ? { userDataSource: '(inline)' } : {}),
      ...(driverOptions && Object.keys(driverOptions).length ? { driverOptions: driverOptions as DriverOptions } : {}),
      ...(spec.labels ? { labels: spec.labels } : {}),
      ...(spec.ttlSec !== undefined ? { expiresAt: new Date(createdAt + spec.ttlSec * 1000).toISOString() } : {}),
      ...(userData !== undefined ? { userDataDigest: userDataDigest(userData) } : {}),
      ...(mounts ? { mounts } : {}),
      ...(attachments.length ? { networks: attachments } : {}),
    };
    const full: InstanceRecord = opts.extra ? { ...rec, ...opts.extra(rec) } : rec;
    // The record is written last: it is the "complete" marker.
    await writeRecord(paths, full);
    if (full.expiresAt) ensureTtlReaper(paths);
    return full;
  } catch (e) {
    if (attachments.length) await releaseAddresses(paths, spec.name, attachments.map((a) => a.network)).catch(() => {});
    await rm(files.dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

/**
 * The guest account's uid for an instance with shared folders: the uid of the host user running
 * kumo (as Lima does), so the guest user may write where the host user may, and what it makes is
 * the host user's. Not for root or system accounts (the guest's own uid 1000 stays then).
 */
export function guestUidForMounts(): number | undefined {
  const uid = process.getuid?.();
  return uid !== undefined && uid >= 1000 && uid <= 59999 ? uid : undefined;
}

/** The digest kept in the record of the user-data an instance was made with. */
export function userDataDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function isSpec(x: InstanceSpecInput | InstanceSpec): x is InstanceSpec {
  return typeof (x as InstanceSpec).memoryMiB === 'number' && Array.isArray((x as InstanceSpec).ports) && typeof (x as InstanceSpec).timeoutSec === 'number';
}

/**
 * The storage-pool form of an instance's disks, as uvtool does it: the base image is uploaded
 * once into the pool as a `kumo-base-<id>.<format>` volume (shared by every instance from that
 * image, never removed by an instance's delete), the instance disk is a qcow2 volume whose
 * backing store is that base volume, and the seed is a raw volume. Uploads go through the libvirt
 * connection (`vol-upload`), so this works on remote hosts too.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { KumoError, NotFoundError } from '../../core/errors.js';
import type { Emitter } from '../../events/events.js';
import type { InstanceRuntime } from '../driver.js';
import { backingChain, type ChainLink } from '../../disk/index.js';
import { firstError, withXmlFile, type Virsh } from './virsh.js';
import { buildVolumeXml, type DiskSource } from './xml.js';

export interface PreparedVolumes {
  disk: DiskSource;
  seed?: DiskSource;
  /** Volumes that belong to the instance (removed on delete). */
  created: { pool: string; name: string }[];
}

/** The volume name of a base file: its image-store id when the file is named by one, else a hash of its path, size and mtime. */
export async function baseVolumeName(basePath: string, format: string): Promise<string> {
  const b = basename(basePath);
  const m = /^([0-9a-f]{64})\./.exec(b);
  if (m) return `kumo-base-${m[1]!.slice(0, 24)}.${format}`;
  const st = await stat(basePath);
  const h = createHash('sha256').update(`${resolve(basePath)}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 24);
  return `kumo-base-${h}.${format}`;
}

async function volExists(v: Virsh, pool: string, name: string): Promise<boolean> {
  const r = await v.raw(['vol-info', '--pool', pool, '--', name], { timeoutMs: 30_000 });
  return r.code === 0;
}

async function volPath(v: Virsh, pool: string, name: string): Promise<string> {
  return (await v.call(['vol-path', '--pool', pool, '--', name])).trim();
}

/**
 * kumo's own pool, used by default where the daemon's QEMU cannot read kumo's home (as Debian
 * ships qemu:///system: QEMU runs as libvirt-qemu, and kumo's home is mode 0700). A dir pool at
 * libvirt's image folder, made by kumo on first use (as uvtool makes its `uvtool` pool).
 */
export const KUMO_POOL = 'kumo';
export const KUMO_POOL_TARGET = '/var/lib/libvirt/images/kumo';

/** The account the daemon runs QEMU as (its DAC security model's base label), when it says. */
export function qemuAccountFromCaps(capsXml: string): { uid: number; gid: number } | undefined {
  for (const m of capsXml.matchAll(/<secmodel>([\s\S]*?)<\/secmodel>/g)) {
    const body = m[1]!;
    if (!/<model>\s*dac\s*<\/model>/.test(body)) continue;
    const label = /<baselabel type=['"](?:kvm|qemu)['"]>\s*\+?(\d+):\+?(\d+)\s*<\/baselabel>/.exec(body);
    if (label) return { uid: Number(label[1]), gid: Number(label[2]) };
  }
  return undefined;
}

/** Ask the daemon which account runs its QEMU (undefined when its capabilities do not say). */
export async function qemuAccount(v: Virsh): Promise<{ uid: number; gid: number } | undefined> {
  const r = await v.raw(['capabilities'], { timeoutMs: 30_000 });
  return r.code === 0 ? qemuAccountFromCaps(r.stdout) : undefined;
}

/**
 * Whether instance files in kumo's home can be given to that daemon's QEMU as they are: it runs
 * as root or as this user. Any other account (libvirt-qemu) cannot enter a 0700 home, so the
 * instance's disks go into a pool instead.
 */
export function filesReadableBy(account: { uid: number } | undefined, uid = process.getuid?.() ?? 0): boolean {
  return !account || account.uid === 0 || account.uid === uid;
}

/** Make kumo's own pool if the daemon has none (define, build, start, autostart); start it if it is stopped. */
export async function ensureKumoPool(v: Virsh): Promise<void> {
  const info = await v.raw(['pool-info', '--', KUMO_POOL], { timeoutMs: 30_000 });
  if (info.code !== 0) {
    const def = await v.raw(['pool-define-as', '--name', KUMO_POOL, '--type', 'dir', '--target', KUMO_POOL_TARGET], { timeoutMs: 30_000 });
    // another kumo defined it meanwhile: use theirs
    if (def.code !== 0 && (await v.raw(['pool-info', '--', KUMO_POOL], { timeoutMs: 30_000 })).code !== 0) {
      throw new KumoError('LIBVIRT_POOL_CREATE_FAILED', 'external', `kumo could not make its storage pool '${KUMO_POOL}' (${KUMO_POOL_TARGET}) at ${v.uri}: ${firstError(def.stderr)}`, {
        hint: `make one yourself (virsh -c ${v.uri} pool-define-as ${KUMO_POOL} dir --target DIR; pool-build ${KUMO_POOL}; pool-start ${KUMO_POOL}) or name another with --pool`,
        details: { pool: KUMO_POOL, uri: v.uri },
      });
    }
    await v.raw(['pool-build', '--', KUMO_POOL], { timeoutMs: 60_000 });
    await v.raw(['pool-autostart', '--', KUMO_POOL], { timeoutMs: 30_000 });
  }
  const now = await requirePool(v, KUMO_POOL);
  if (!/State:\s+running/.test(now)) {
    const r = await v.raw(['pool-start', '--', KUMO_POOL], { timeoutMs: 60_000 });
    if (r.code !== 0 && !/State:\s+running/.test(await requirePool(v, KUMO_POOL))) {
      throw new KumoError('LIBVIRT_POOL_CREATE_FAILED', 'external', `kumo could not start its storage pool '${KUMO_POOL}' at ${v.uri}: ${firstError(r.stderr)}`, {
        hint: `see 'virsh -c ${v.uri} pool-dumpxml ${KUMO_POOL}'; its folder must exist and be writable by the daemon`,
        details: { pool: KUMO_POOL, uri: v.uri },
      });
    }
  }
}

/** `pool-info` of a pool that must exist (LIBVIRT_POOL_NOT_FOUND otherwise); changes nothing. */
export async function requirePool(v: Virsh, pool: string): Promise<string> {
  const r = await v.raw(['pool-info', '--', pool], { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new NotFoundError('LIBVIRT_POOL_NOT_FOUND', `libvirt at ${v.uri} has no storage pool '${pool}': ${firstError(r.stderr)}`, {
      hint: `list the pools with 'virsh -c ${v.uri} pool-list --all', or create one (virsh pool-define-as NAME dir --target DIR; pool-build; pool-start)`,
      details: { pool, uri: v.uri },
    });
  }
  return r.stdout;
}

async function checkPool(v: Virsh, pool: string): Promise<void> {
  if (pool === KUMO_POOL) await ensureKumoPool(v);
  const info = await requirePool(v, pool);
  if (!/State:\s+running/.test(info)) await v.call(['pool-start', '--', pool]);
  await v.raw(['pool-refresh', '--', pool], { timeoutMs: 60_000 });
}

/** Upload a local file into a new volume of the pool. */
async function uploadVolume(v: Virsh, pool: string, name: string, file: string, format: string): Promise<void> {
  const size = (await stat(file)).size;
  await v.call(['vol-create-as', '--pool', pool, '--name', name, '--capacity', `${size}b`, '--format', format]);
  try {
    await v.call(['vol-upload', '--pool', pool, '--sparse', '--', name, file], { timeoutMs: 3_600_000 });
  } catch (e) {
    await v.raw(['vol-delete', '--pool', pool, '--', name]).catch(() => undefined);
    throw e;
  }
}

/** Make sure the instance's volumes exist in `pool` (uploading the base and the seed as needed). */
export async function prepareVolumes(v: Virsh, pool: string, domain: string, rt: InstanceRuntime, em: Emitter): Promise<PreparedVolumes> {
  await checkPool(v, pool);
  const created: { pool: string; name: string }[] = [];
  const diskName = `kumo-${domain}-disk.qcow2`;
  if (!(await volExists(v, pool, diskName))) {
    // the disk and its backing file, read from the qcow2 headers (relative names resolved as QEMU does)
    const [info, base] = (await backingChain(rt.disk.path)) as [ChainLink, ChainLink | undefined];
    if (base) {
      const baseFormat = info.backingFormat ?? base.format;
      const baseName = await baseVolumeName(base.path, baseFormat);
      if (!(await volExists(v, pool, baseName))) {
        em.info(`uploading the base image into pool '${pool}' as ${baseName}`);
        await uploadVolume(v, pool, baseName, base.path, baseFormat);
      }
      const basePath = await volPath(v, pool, baseName);
      const xml = buildVolumeXml({ name: diskName, capacityBytes: info.virtualSize, format: 'qcow2', backing: { path: basePath, format: baseFormat === 'raw' ? 'raw' : 'qcow2' } });
      await withXmlFile(xml, (f) => v.call(['vol-create', '--pool', pool, '--file', f]));
    } else {
      // A standalone disk (no base): upload it whole.
      await uploadVolume(v, pool, diskName, rt.disk.path, info.format);
    }
  }
  created.push({ pool, name: diskName });
  const out: PreparedVolumes = { disk: { kind: 'volume', pool, volume: diskName, format: 'qcow2' }, created };
  if (rt.seed) {
    const seedName = `kumo-${domain}-seed.iso`;
    // The seed is small and may have changed (a new instance-id): upload it again at each start.
    if (await volExists(v, pool, seedName)) await v.call(['vol-delete', '--pool', pool, '--', seedName]);
    await uploadVolume(v, pool, seedName, rt.seed.path, 'raw');
    created.push({ pool, name: seedName });
    out.seed = { kind: 'volume', pool, volume: seedName, format: 'raw' };
  }
  return out;
}

/** Delete volumes (never called with a base volume). */
export async function removeVolumes(v: Virsh, vols: { pool: string; name: string }[], o: { ifExists?: boolean } = {}): Promise<void> {
  for (const vol of vols) {
    if (vol.name.startsWith('kumo-base-')) continue;
    if (o.ifExists && !(await volExists(v, vol.pool, vol.name))) continue;
    await v.call(['vol-delete', '--pool', vol.pool, '--', vol.name]);
  }
}


/**
 * Usage: which stored images the disks of instances (and of drivers) use, through their whole
 * backing chains. The store does not know where disks live: whoever keeps disks registers a disk
 * source (`registerDiskSource`): the instance layer (src/instance/disks.ts) its instance folders,
 * the libvirt driver its pool volumes. Without the instances' source (INSTANCE_DISK_SOURCE),
 * usage is unknown, and nothing that depends on it (rm, prune) may go ahead: other sources alone
 * (a driver's) would make every image look unused.
 */
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { exists } from '../core/fs.js';
import { backingChain } from '../disk/index.js';
import type { KumoPaths } from '../config/paths.js';
import { withLock } from './lock.js';
import { scanStore, type ImageRecord } from './record.js';
import { storeLock } from './store.js';

/** A disk and who uses it (an instance name, or e.g. 'libvirt:DOMAIN'). */
export interface UsedDisk {
  owner: string;
  disk: string;
}

export type DiskSource = (paths: KumoPaths) => Promise<UsedDisk[]>;
const diskSources: { fn: DiskSource; name: string }[] = [];

/** The name of the instance layer's disk source, which every usage scan requires. */
export const INSTANCE_DISK_SOURCE = 'instances';

/**
 * Add a source of disks that may use stored images (instances' disks, a driver's volumes). Every
 * source is asked on each usage scan; adding the same function twice has no effect.
 */
export function registerDiskSource(fn: DiskSource, name = fn.name || 'anonymous'): void {
  if (!diskSources.some((s) => s.fn === fn)) diskSources.push({ fn, name });
}

export interface UsageScan {
  users: Map<string, string[]>;
  /** Disks whose chain could not be read: nothing may be removed while they are unknown. */
  unreadable: { owner: string; disk: string; error: string }[];
}

/** Which of `images` the registered disks' backing chains reach (by path, then by device and inode). */
export async function scanUsage(paths: KumoPaths, images: { id: string; path: string }[]): Promise<UsageScan> {
  if (!diskSources.some((s) => s.name === INSTANCE_DISK_SOURCE))
    throw new ConflictError('USAGE_UNKNOWN', "cannot tell which images are in use: the instances' disk source is not registered with the image store", {
      hint: "this is a bug in the program using kumo's library: import it from its entry ('kumo'), or call registerBuiltins() (src/builtins.ts) first",
    });
  const byIno = new Map<string, string>();
  const byPath = new Map<string, string>();
  for (const im of images) {
    byPath.set(resolvePath(im.path), im.id);
    const st = await stat(im.path).catch(() => undefined);
    if (st) byIno.set(`${st.dev}:${st.ino}`, im.id);
  }
  const disks: UsedDisk[] = [];
  for (const src of diskSources) {
    try {
      disks.push(...(await src.fn(paths)));
    } catch (e) {
      disks.push({ owner: '(disk source)', disk: `(${(e as Error).message})` });
    }
  }
  const users = new Map<string, string[]>();
  const unreadable: UsageScan['unreadable'] = [];
  for (const d of disks) {
    let chain: string[];
    try {
      chain = (await backingChain(d.disk)).map((l) => l.path);
    } catch (e) {
      if (!(await exists(d.disk))) continue; // deleted while we looked
      unreadable.push({ ...d, error: (e as Error).message });
      continue;
    }
    for (const link of chain) {
      let id = byPath.get(resolvePath(link));
      if (!id) {
        const st = await stat(link).catch(() => undefined);
        if (st) id = byIno.get(`${st.dev}:${st.ino}`);
      }
      if (!id) continue;
      const list = users.get(id) ?? [];
      if (!list.includes(d.owner)) list.push(d.owner);
      users.set(id, list);
    }
  }
  return { users, unreadable };
}

/** Which instances use which image: any disk whose backing chain (the whole chain) reaches it. */
export async function imageUsers(paths: KumoPaths): Promise<Map<string, string[]>> {
  const scan = await scanStore(paths.images);
  return (await scanUsage(paths, [...scan.records, ...scan.dataWithoutMeta])).users;
}

export function inUseError(rec: ImageRecord, users: string[]): ConflictError {
  const label = rec.name ?? rec.aliases[0] ?? rec.id.slice(0, 12);
  return new ConflictError('IMAGE_IN_USE', `image ${label} is in use by ${users.length === 1 ? 'instance' : 'instances'} ${users.join(', ')}`, {
    hint: `delete ${users.length === 1 ? 'that instance' : 'those instances'} first (kumo delete ${users.join(' ')}), or consolidate them`,
    details: { id: rec.id, instances: users },
  });
}

/**
 * Make a disk on the stored image at `base.path` (fn), holding the store's lock, after checking
 * that the image is still there. `image rm` and `image prune` take the same lock and see the new
 * disk in their usage scan once fn has made it, so an image cannot be removed between the caller's
 * resolving it and its new disk referring to it. Throws IMAGE_NOT_FOUND when it went meanwhile.
 */
export async function withStoredImage<T>(paths: KumoPaths, base: { path: string; ref: string }, fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
  return withLock(
    storeLock(paths),
    async () => {
      if (!(await exists(base.path)))
        throw new NotFoundError('IMAGE_NOT_FOUND', `image ${base.ref} was removed from the store (kumo image rm or prune) while this command was using it`, {
          hint: `pull or import it again (kumo image pull ${base.ref}) and try again`,
          details: { path: base.path },
        });
      return fn();
    },
    { what: 'the image store', op: 'create a disk on an image', ...(opts.signal ? { signal: opts.signal } : {}) },
  );
}

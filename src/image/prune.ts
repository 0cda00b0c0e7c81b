/**
 * Cleaning up: remove one image (refused while in use), prune unused ones, and repair the store
 * (metadata without data, data without metadata, temp files and partial downloads nobody holds).
 */
import { readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fs.js';
import { pidAlive } from '../core/exec.js';
import type { KumoPaths } from '../config/paths.js';
import { hostArch } from './catalog.js';
import { withLock } from './lock.js';
import { TEMP_RE } from './prepare.js';
import { metaPathOf, scanStore, type ImageRecord } from './record.js';
import { getImage } from './resolve.js';
import { deleteRecord, storeLock, virtualSizeOf } from './store.js';
import { inUseError, scanUsage } from './usage.js';

/** Remove one image; refuses (naming the instances) while any instance's chain reaches it. */
export async function removeImage(paths: KumoPaths, ref: string): Promise<void> {
  const rec = await getImage(paths, ref);
  await withLock(storeLock(paths), async () => {
    const scan = await scanStore(paths.images);
    const usage = await scanUsage(paths, scan.records);
    const users = usage.users.get(rec.id);
    if (users?.length) throw inUseError(rec, users);
    if (usage.unreadable.length)
      throw new ConflictError('USAGE_UNKNOWN', `cannot tell whether image ${rec.name ?? rec.aliases[0] ?? rec.id.slice(0, 12)} is in use: ${usage.unreadable.map((u) => `${u.disk} (${u.owner}): ${u.error}`).join('; ')}`, {
        hint: 'repair or delete the instance whose disk cannot be read, then try again',
      });
    await deleteRecord(paths, rec);
  }, { what: 'the image store', op: 'remove image' });
}

export interface PruneOptions {
  dryRun?: boolean;
  /** Also remove unused built/imported/captured images (by default only re-downloadable and superseded ones go). */
  all?: boolean;
}

export interface PruneResult {
  removed: ImageRecord[];
  /** What was repaired, one line each. */
  repaired: string[];
  /** Unused images kept (named images without --all). */
  kept?: ImageRecord[];
  /** Disks whose chain could not be read (nothing was removed while they are unknown). */
  unreadable?: { owner: string; disk: string; error: string }[];
}

/** A record is prunable when unused and re-fetchable, superseded or dangling. */
function prunable(r: ImageRecord, all: boolean): boolean {
  if (all) return true;
  if (r.supersededBy) return true;
  if (!r.name && !r.aliases.length) return true;
  return r.source.kind === 'alias' || r.source.kind === 'url' || r.source.kind === 'file';
}

/** Remove unused images and repair the store (metadata without data, data without metadata, debris). */
export async function pruneImages(paths: KumoPaths, opts: PruneOptions = {}): Promise<PruneResult> {
  return withLock(storeLock(paths), async () => {
    const scan = await scanStore(paths.images);
    const usage = await scanUsage(paths, [...scan.records, ...scan.dataWithoutMeta]);
    const repaired: string[] = [];
    const dry = !!opts.dryRun;
    for (const m of [...scan.metaWithoutData, ...scan.corruptMeta]) {
      repaired.push(`${scan.corruptMeta.includes(m) ? 'removed unreadable metadata' : 'removed metadata without data'}: ${m}`);
      if (!dry) await unlink(m).catch(() => {});
    }
    for (const d of scan.dataWithoutMeta) {
      const users = usage.users.get(d.id);
      if (users?.length) {
        // In use: never delete it; describe it again so that it shows (and stays protected).
        repaired.push(`restored metadata of ${d.path} (used by ${users.join(', ')})`);
        if (!dry) {
          const st = await stat(d.path);
          const rec: ImageRecord = {
            id: d.id,
            aliases: [],
            path: d.path,
            format: d.format,
            virtualSize: await virtualSizeOf(d.path).catch(() => 0),
            size: st.size,
            digest: `sha256:${d.id}`,
            arch: hostArch(),
            source: { kind: 'import', repaired: true },
            fetchedAt: new Date(st.mtimeMs).toISOString(),
          };
          await writeJsonAtomic(metaPathOf(paths.images, d.id), rec);
        }
      } else {
        repaired.push(`removed data without metadata: ${d.path}`);
        if (!dry) await rm(d.path, { force: true });
      }
    }
    for (const t of scan.temps) {
      repaired.push(`removed leftover temp file: ${t}`);
      if (!dry) await rm(t, { force: true });
    }
    repaired.push(...(await cleanCache(paths, dry)));
    const removed: ImageRecord[] = [];
    const kept: ImageRecord[] = [];
    if (!usage.unreadable.length) {
      for (const r of scan.records) {
        if (usage.users.get(r.id)?.length) continue;
        if (!prunable(r, !!opts.all)) {
          kept.push(r);
          continue;
        }
        if (!dry) await deleteRecord(paths, r);
        removed.push(r);
      }
    }
    return { removed, repaired, ...(kept.length ? { kept } : {}), ...(usage.unreadable.length ? { unreadable: usage.unreadable } : {}) };
  }, { what: 'the image store', op: 'prune' });
}

/** Remove partial downloads and temp files nobody is working on (no live lock holder). */
async function cleanCache(paths: KumoPaths, dry: boolean): Promise<string[]> {
  const out: string[] = [];
  const downloads = join(paths.cache, 'downloads');
  const locks = join(paths.cache, 'locks');
  const lockAlive = async (key: string) => {
    try {
      const body = JSON.parse(await readFile(join(locks, `${key}.lock`), 'utf8')) as { pid: number };
      return pidAlive(body.pid);
    } catch {
      return false;
    }
  };
  for (const f of await readdir(downloads).catch(() => [] as string[])) {
    const m = /^([0-9a-f]{32})\.part(\.json)?$/.exec(f);
    if (!m || (await lockAlive(m[1]!))) continue;
    if (!m[2]) out.push(`removed partial download: ${join(downloads, f)}`);
    if (!dry) await rm(join(downloads, f), { force: true });
  }
  for (const f of await readdir(paths.cache).catch(() => [] as string[])) {
    const m = TEMP_RE.exec(f);
    if (!m || pidAlive(Number(m[2]))) continue;
    out.push(`removed leftover temp file: ${join(paths.cache, f)}`);
    if (!dry) await rm(join(paths.cache, f), { force: true });
  }
  return out;
}

/**
 * The instances' disks, as a disk source of the image store's usage rule (src/image/usage.ts):
 * every instance folder's disk (from the folder's file table) and any other qcow2 disk kept in
 * it (extra disks), owned by the instance's name. The image store never reads instance folders
 * itself; `registerInstanceDiskSource()` must run before any image use case that asks what is in
 * use (rm, prune, info).
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fsError } from '../core/errors.js';
import type { KumoPaths } from '../config/paths.js';
import { instanceFilesIn } from '../config/instance-files.js';
import { INSTANCE_DISK_SOURCE, registerDiskSource } from '../image/index.js';

/** Every disk of every instance folder in KUMO_HOME/instances, sorted by instance, then file. */
export async function instanceDisks(paths: KumoPaths): Promise<{ owner: string; disk: string }[]> {
  let names: string[] = [];
  try {
    names = await readdir(paths.instances);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, paths.instances, 'read');
  }
  const out: { owner: string; disk: string }[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const files = instanceFilesIn(join(paths.instances, name));
    let entries: string[];
    try {
      entries = await readdir(files.dir);
    } catch {
      continue; // not a folder
    }
    // The instance's disk, and extra qcow2 disks beside it; dot-files are temp files (consolidate's).
    const main = basename(files.disk);
    const disks = entries.filter((f) => f === main || (f.endsWith('.qcow2') && !f.startsWith('.'))).sort();
    for (const f of disks) out.push({ owner: name, disk: join(files.dir, f) });
  }
  return out;
}

/** Register the instances' disks with the image store's usage rule (idempotent). */
export function registerInstanceDiskSource(): void {
  registerDiskSource(instanceDisks, INSTANCE_DISK_SOURCE);
}

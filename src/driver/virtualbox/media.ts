/**
 * The base disks VirtualBox runs instances on: each stored image an instance's overlay is backed
 * by is converted once (qemu-img convert -O vdi) into KUMO_HOME/drivers/virtualbox/media/KEY.vdi
 * and registered as a multiattach medium, so every VM gets its own differencing image on top of
 * the one shared base (the copy-on-write clone of the other backends). A sidecar KEY.json says
 * which image it was made from, for the image store's in-use rule. Bases are never deleted by an
 * instance's delete.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../../config/paths.js';
import { run } from '../../core/exec.js';
import { acquireLock } from '../../core/lock.js';
import { ensurePrivateDir, exists, fsyncFile, tempPathFor, writeJsonAtomic } from '../../core/fs.js';
import { InvalidInputError } from '../../core/errors.js';
import { backingChain } from '../../disk/index.js';
import type { VBox } from './vbox.js';
import { multiattachArgv } from './vboxmanage.js';

export interface BaseMedium {
  /** The VDI VirtualBox attaches (multiattach). */
  vdi: string;
  /** The image it was converted from (the overlay's backing file). */
  source: string;
  /** Bytes the instance's disk should have (the overlay's virtual size). */
  wantBytes: number;
  /** Bytes of the base (the image's virtual size). */
  baseBytes: number;
}

export interface MediumSidecar {
  source: string;
  size: number;
  mtimeMs: number;
  format: string;
  registered?: boolean;
}

export function mediaDir(paths: Pick<KumoPaths, 'home'>): string {
  return join(paths.home, 'drivers', 'virtualbox', 'media');
}

/** The qemu-img argv that converts a base image into a VDI. */
export function convertToVdiArgv(src: string, format: string, dst: string): string[] {
  return ['convert', '-f', format, '-O', 'vdi', src, dst];
}

/** The medium key of an image file: its path, size and mtime (a replaced image gets a new base). */
export function mediumKey(source: string, size: number, mtimeMs: number): string {
  return createHash('sha256').update(`${source}\0${size}\0${Math.trunc(mtimeMs)}`).digest('hex').slice(0, 24);
}

/** Which image the instance disk (a qcow2 overlay) is backed by, and the sizes. */
export async function baseOf(disk: string): Promise<{ source: string; format: string; wantBytes: number; baseBytes: number }> {
  const chain = await backingChain(disk);
  if (chain.length < 2)
    throw new InvalidInputError('VBOX_DISK_STANDALONE', `the disk ${disk} has no backing image: the VirtualBox driver runs instances on a stored image's base medium`, {
      hint: 'launch the instance from an image (kumo launch IMAGE --driver virtualbox); consolidated disks are not supported by this driver yet',
      details: { disk },
    });
  return { source: chain[1]!.path, format: chain[1]!.format, wantBytes: chain[0]!.virtualSize, baseBytes: chain[1]!.virtualSize };
}

/** The base medium for an instance disk: converted once per image (under a lock), registered multiattach. */
export async function ensureBaseMedium(paths: KumoPaths, vbox: VBox, disk: string, o: { signal?: AbortSignal } = {}): Promise<BaseMedium> {
  const b = await baseOf(disk);
  const st = await stat(b.source);
  const dir = mediaDir(paths);
  await ensurePrivateDir(join(paths.home, 'drivers'));
  await ensurePrivateDir(join(paths.home, 'drivers', 'virtualbox'));
  await ensurePrivateDir(dir);
  const key = mediumKey(b.source, st.size, st.mtimeMs);
  const vdi = join(dir, `${key}.vdi`);
  const side = join(dir, `${key}.json`);
  await using _lock = await acquireLock(join(dir, `${key}.lock`), { op: 'convert a base medium', what: `VirtualBox base medium ${key}`, waitMs: 30 * 60_000, ...(o.signal ? { signal: o.signal } : {}) });
  let meta: MediumSidecar | undefined;
  if ((await exists(vdi)) && (await exists(side))) meta = JSON.parse(await readFile(side, 'utf8')) as MediumSidecar;
  if (!meta) {
    const tmp = tempPathFor(vdi) + '.vdi';
    try {
      await run('qemu-img', convertToVdiArgv(b.source, b.format, tmp), { timeoutMs: 60 * 60_000, ...(o.signal ? { signal: o.signal } : {}) });
      await fsyncFile(tmp);
      await rename(tmp, vdi);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    meta = { source: b.source, size: st.size, mtimeMs: st.mtimeMs, format: b.format };
    await writeJsonAtomic(side, meta, 0o600);
  }
  if (!meta.registered) {
    await vbox.call(multiattachArgv(vdi), 'register the base medium');
    meta = { ...meta, registered: true };
    await writeJsonAtomic(side, meta, 0o600);
  }
  return { vdi, source: b.source, wantBytes: b.wantBytes, baseBytes: b.baseBytes };
}

/** The base media kumo converted in this home, with the image each came from. */
export async function listBaseMedia(paths: Pick<KumoPaths, 'home'>): Promise<{ vdi: string; sidecar: MediumSidecar }[]> {
  const { readdir } = await import('node:fs/promises');
  const dir = mediaDir(paths);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: { vdi: string; sidecar: MediumSidecar }[] = [];
  for (const n of names.filter((x) => x.endsWith('.json'))) {
    try {
      out.push({ vdi: join(dir, n.replace(/\.json$/, '.vdi')), sidecar: JSON.parse(await readFile(join(dir, n), 'utf8')) as MediumSidecar });
    } catch {
      /* a sidecar being written */
    }
  }
  return out;
}

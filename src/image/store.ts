/**
 * The store's records and what writes them: commit (a prepared file renamed into the store, its
 * metadata written after it, the alias or name moved to it), import of a local file, and removal
 * of one record. The layout on disk is record.ts; what a file must be to get in is prepare.ts.
 */
import { chmod, rename, stat, unlink, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { fsError, InvalidInputError } from '../core/errors.js';
import { ensurePrivateDir, fsyncDir, writeJsonAtomic, hashFile } from '../core/fs.js';
import { Emitter, type EventSink } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { diskInfo, NotAnImageError } from '../disk/index.js';
import { hostArch, normalizeArch } from './catalog.js';
import { formatChecksum, parseChecksum, type Checksum } from './checksums.js';
import { withLock } from './lock.js';
import { cleanup, prepare, tempIn } from './prepare.js';
import { dataPathOf, ID_RE, metaPathOf, scanStore, type ImageRecord } from './record.js';

export interface ImageOpOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface ImportOptions extends ImageOpOptions {
  name: string;
  move?: boolean;
  metadata?: Record<string, unknown>;
  source?: Record<string, unknown>;
  /** Verify the file against this checksum before importing it. */
  checksum?: string;
  arch?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$/;

/** Validate an image name (built, imported, captured). */
export function checkImageName(name: string): void {
  if (!NAME_RE.test(name) || ID_RE.test(name) || name.includes('..'))
    throw new InvalidInputError('BAD_IMAGE_NAME', `invalid image name '${name}'`, {
      hint: 'use letters, digits, dot, dash, underscore, colon or plus (up to 100), starting with a letter or digit; not a 64-hex id',
    });
}

export async function listImages(paths: KumoPaths): Promise<ImageRecord[]> {
  return (await scanStore(paths.images)).records;
}

/** The virtual size of a stored (or store-ready) file, read by kumo's own header reader. */
export async function virtualSizeOf(path: string): Promise<number> {
  return (await diskInfo(path)).virtualSize;
}

export interface Claim {
  alias?: string;
  name?: string;
}

export interface NewImage {
  /** A file in KUMO_HOME (same file system as the store); renamed into the store. */
  file: string;
  id: string;
  format: 'qcow2' | 'raw';
  arch: string;
  version?: string;
  source: ImageRecord['source'];
  metadata?: Record<string, unknown>;
}

export const storeLock = (paths: KumoPaths) => join(paths.images, '.store.lock');

/** Move a verified file into the store and write its metadata; move the alias/name to it. */
export async function commit(paths: KumoPaths, img: NewImage, claim: Claim, signal?: AbortSignal): Promise<ImageRecord> {
  await ensurePrivateDir(paths.images);
  return withLock(
    storeLock(paths),
    async () => {
      const scan = await scanStore(paths.images);
      const existing = scan.records.find((r) => r.id === img.id);
      const dataPath = dataPathOf(paths.images, img.id, img.format);
      let rec: ImageRecord;
      if (existing) {
        await unlink(img.file).catch(() => {});
        rec = { ...existing };
        delete rec.supersededBy;
        if (img.metadata) rec.metadata = { ...(rec.metadata ?? {}), ...img.metadata };
      } else {
        const virtualSize = await virtualSizeOf(img.file);
        try {
          await chmod(img.file, 0o444);
          await rename(img.file, dataPath);
        } catch (e) {
          throw fsError(e, dataPath, 'store');
        }
        await fsyncDir(paths.images);
        const st = await stat(dataPath);
        rec = {
          id: img.id,
          aliases: [],
          path: dataPath,
          format: img.format,
          virtualSize,
          size: st.size,
          digest: `sha256:${img.id}`,
          arch: img.arch,
          ...(img.version ? { version: img.version } : {}),
          source: img.source,
          fetchedAt: new Date().toISOString(),
          ...(img.metadata ? { metadata: img.metadata } : {}),
        };
      }
      // An alias means one image per architecture; a name means one image.
      for (const other of scan.records) {
        if (other.id === img.id) continue;
        let changed = false;
        if (claim.alias && other.arch === rec.arch && other.aliases.includes(claim.alias)) {
          other.aliases = other.aliases.filter((a) => a !== claim.alias);
          changed = true;
        }
        if (claim.name && other.name === claim.name) {
          delete other.name;
          changed = true;
        }
        if (claim.name && other.aliases.includes(claim.name)) {
          other.aliases = other.aliases.filter((a) => a !== claim.name);
          changed = true;
        }
        if (changed) {
          if (!other.name && !other.aliases.length) other.supersededBy = img.id;
          await writeJsonAtomic(metaPathOf(paths.images, other.id), other);
        }
      }
      if (claim.alias && !rec.aliases.includes(claim.alias)) rec.aliases.push(claim.alias);
      if (claim.name) {
        if (!rec.name) rec.name = claim.name;
        else if (rec.name !== claim.name && !rec.aliases.includes(claim.name)) rec.aliases.push(claim.name);
      }
      await writeJsonAtomic(metaPathOf(paths.images, rec.id), rec);
      return rec;
    },
    { ...(signal ? { signal } : {}), what: 'the image store', op: 'store image' },
  );
}

export async function importFile(
  paths: KumoPaths,
  file: string,
  o: { arch: string; checksum?: Checksum; claim: Claim; source: ImageRecord['source']; move: boolean; em: Emitter; signal?: AbortSignal; label: string; metadata?: Record<string, unknown> },
): Promise<ImageRecord> {
  await ensurePrivateDir(paths.cache);
  const temps: string[] = [];
  try {
    let input = file;
    let reuse = false;
    let knownSha: string | undefined;
    if (o.checksum) {
      const algo = o.checksum.algo;
      const got = await o.em.step('image.verify', `Verifying ${o.label}`, () => hashFile(file, { algo, signal: o.signal }));
      if (got !== o.checksum.hex)
        throw new InvalidInputError('CHECKSUM_MISMATCH', `${file} does not match its checksum: expected ${formatChecksum(o.checksum)}, got ${o.checksum.algo}:${got}`, { hint: 'check the file and the checksum; nothing was stored' });
      if (o.checksum.algo === 'sha256') knownSha = got;
    }
    if (o.move) {
      // Same file system: move it into KUMO_HOME first (cheap), then work on our own copy.
      const tmp = tempIn(paths, 'import');
      try {
        await rename(file, tmp);
        temps.push(tmp);
        input = tmp;
        reuse = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw fsError(e, file, 'move');
      }
    }
    let ready;
    try {
      ready = await prepare(paths, input, { ...(knownSha ? { knownSha256: knownSha } : {}), reuseInput: reuse, label: o.label, em: o.em, signal: o.signal, temps });
    } catch (e) {
      // A refused move must leave the user's file where it was.
      if (input !== file) await rename(input, file).catch(() => {});
      throw e;
    }
    const rec = await commit(paths, { file: ready.file, id: ready.id, format: ready.format, arch: o.arch, source: o.source, ...(o.metadata ? { metadata: o.metadata } : {}) }, o.claim, o.signal);
    if (o.move && input === file) await unlink(file).catch(() => {});
    return rec;
  } finally {
    await cleanup(temps);
  }
}

/** Register a local image file under a name (the image builder and `kumo capture` use this). */
export async function importImage(paths: KumoPaths, file: string, opts: ImportOptions): Promise<ImageRecord> {
  checkImageName(opts.name);
  const em = new Emitter(opts.onEvent);
  const p = resolvePath(file);
  const st = await stat(p).catch((e) => {
    throw fsError(e, p, 'import');
  });
  if (!st.isFile()) throw new NotAnImageError(p, 'it is not a file', { hint: 'give a disk image file' });
  const kind = typeof opts.source?.kind === 'string' && ['built', 'captured', 'import', 'file'].includes(opts.source.kind) ? (opts.source.kind as ImageRecord['source']['kind']) : 'import';
  return importFile(paths, p, {
    arch: normalizeArch(opts.arch ?? hostArch()),
    ...(opts.checksum ? { checksum: parseChecksum(opts.checksum) } : {}),
    claim: { name: opts.name },
    source: { ...(opts.source ?? {}), kind, file: p },
    move: !!opts.move,
    em,
    ...(opts.signal ? { signal: opts.signal } : {}),
    label: opts.name,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}

export async function deleteRecord(paths: KumoPaths, rec: { id: string; path: string }): Promise<void> {
  // Metadata first: a crash in between leaves data without metadata, which prune repairs.
  await unlink(metaPathOf(paths.images, rec.id)).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, metaPathOf(paths.images, rec.id), 'remove');
  });
  await rm(rec.path, { force: true });
  await fsyncDir(paths.images);
}

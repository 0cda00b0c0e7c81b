/**
 * The image store on disk: KUMO_HOME/images/<id>.<qcow2|raw> (read-only, mode 0444) and
 * KUMO_HOME/images/<id>.json (its metadata), where id is the sha256 of the data file. A data file
 * is renamed into place only after it was verified, and its metadata is written after it, so a
 * listing never shows a partial image.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError } from '../core/errors.js';

export interface ImageRecord {
  /** sha256 hex of the stored (decompressed) image file = content address. */
  id: string;
  /** For built/imported/captured images. */
  name?: string;
  /** E.g. ['debian-12'] for pulled images (per architecture). */
  aliases: string[];
  /** Absolute path of the base file, read-only (mode 0444). */
  path: string;
  format: 'qcow2' | 'raw';
  virtualSize: number;
  size: number;
  /** 'sha256:<hex>' */
  digest: string;
  arch: string;
  version?: string;
  source: { kind: 'alias' | 'url' | 'file' | 'built' | 'captured' | 'import'; [k: string]: unknown };
  fetchedAt: string;
  metadata?: Record<string, unknown>;
  /** Set when `image sync` (or a newer build/import under the same name) replaced this image. */
  supersededBy?: string;
}

export const ID_RE = /^[0-9a-f]{64}$/;
const DATA_RE = /^([0-9a-f]{64})\.(qcow2|raw)$/;
const META_RE = /^([0-9a-f]{64})\.json$/;

export const metaPathOf = (images: string, id: string): string => join(images, `${id}.json`);
export const dataPathOf = (images: string, id: string, format: string): string => join(images, `${id}.${format}`);

export interface StoreScan {
  records: ImageRecord[];
  /** Metadata files whose data file is missing. */
  metaWithoutData: string[];
  /** Data files (absolute paths) that no metadata describes. */
  dataWithoutMeta: { id: string; path: string; format: 'qcow2' | 'raw' }[];
  /** Metadata files that cannot be read as JSON. */
  corruptMeta: string[];
  /** Leftover temp files of interrupted atomic writes. */
  temps: string[];
}

/** Read the whole store, sorting out what is complete from what needs repair. */
export async function scanStore(images: string): Promise<StoreScan> {
  let names: string[];
  try {
    names = await readdir(images);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], metaWithoutData: [], dataWithoutMeta: [], corruptMeta: [], temps: [] };
    throw fsError(e, images, 'read');
  }
  const data = new Map<string, { path: string; format: 'qcow2' | 'raw' }>();
  const metas: string[] = [];
  const temps: string[] = [];
  for (const n of names) {
    let m = DATA_RE.exec(n);
    if (m) {
      data.set(m[1]!, { path: join(images, n), format: m[2] as 'qcow2' | 'raw' });
      continue;
    }
    m = META_RE.exec(n);
    if (m) metas.push(m[1]!);
    else if (n.startsWith('.') && n.includes('.tmp-')) temps.push(join(images, n));
  }
  const records: ImageRecord[] = [];
  const metaWithoutData: string[] = [];
  const corruptMeta: string[] = [];
  const described = new Set<string>();
  for (const id of metas) {
    const mp = metaPathOf(images, id);
    let rec: ImageRecord;
    try {
      rec = JSON.parse(await readFile(mp, 'utf8')) as ImageRecord;
      if (!rec || typeof rec !== 'object' || rec.id !== id || !['qcow2', 'raw'].includes(rec.format)) throw new Error('bad record');
    } catch {
      corruptMeta.push(mp);
      continue;
    }
    const d = data.get(id);
    if (!d || d.format !== rec.format) {
      metaWithoutData.push(mp);
      continue;
    }
    described.add(id);
    rec.path = d.path; // the store may have moved with KUMO_HOME
    rec.aliases ??= [];
    records.push(rec);
  }
  const dataWithoutMeta = [...data.entries()].filter(([id]) => !described.has(id)).map(([id, d]) => ({ id, ...d }));
  records.sort((a, b) => (a.name ?? a.aliases[0] ?? '~').localeCompare(b.name ?? b.aliases[0] ?? '~') || b.fetchedAt.localeCompare(a.fetchedAt));
  return { records, metaWithoutData, dataWithoutMeta, corruptMeta, temps };
}

/** A record as stored (path is recomputed on read, so it is not trusted from the file). */
export async function statSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/**
 * Preparing a file (downloaded and verified, or given) for the store: decompress by magic bytes,
 * check it is a disk image that references no other file (kumo's own header readers, before any
 * qemu tool opens it), convert foreign formats to qcow2. Temp files live in KUMO_HOME/cache under
 * names prune recognises (TEMP_RE) and removes once their process is gone.
 */
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '../core/fs.js';
import type { Emitter } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { assertSelfContained, NotAnImageError, qemuImg, sniffFormat } from '../disk/index.js';
import { compressionOf, decompressTo, readHead } from './decompress.js';

/** Names of the store's temp files in KUMO_HOME/cache: `.<tag>-<pid>-<hex>`. */
export const TEMP_RE = /^\.(unpack|convert|import)-(\d+)-[0-9a-f]{8}$/;

export function tempIn(paths: KumoPaths, tag: 'unpack' | 'convert' | 'import'): string {
  return join(paths.cache, `.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export async function cleanup(files: string[]): Promise<void> {
  for (const f of files) await unlink(f).catch(() => {});
}

/** qemu-img's driver names for the formats the store converts (QEMU calls VHD 'vpc'). */
const QEMU_DRIVER = { vmdk: 'vmdk', vhd: 'vpc', vhdx: 'vhdx' } as const;

function notAnImage(file: string, what: string): NotAnImageError {
  return new NotAnImageError(file, what, {
    hint: 'give a qcow2, raw, vmdk, vhd or vhdx disk image (optionally xz/gzip/zstd-compressed)',
  });
}

export interface PrepareOptions {
  /** The sha256 of `input` when already known (computed while downloading). */
  knownSha256?: string;
  /** `input` is kumo's own temp file and may become the stored file. */
  reuseInput: boolean;
  label: string;
  em: Emitter;
  signal?: AbortSignal;
  /** Temp files made here are added to this list (the caller removes them). */
  temps: string[];
}

/**
 * Turn a file into a store-ready file. Returns a temp file in KUMO_HOME/cache (or `input` itself
 * when it can be used as is and `reuseInput`), its sha256 and format.
 */
export async function prepare(paths: KumoPaths, input: string, opts: PrepareOptions): Promise<{ file: string; id: string; format: 'qcow2' | 'raw' }> {
  const head = await readHead(input, 8);
  const comp = compressionOf(head);
  let file = input;
  let id = opts.knownSha256;
  if (comp || !opts.reuseInput) {
    const out = tempIn(paths, 'unpack');
    opts.temps.push(out);
    const r = await opts.em.step('image.unpack', comp ? `Decompressing ${opts.label} (${comp})` : `Copying ${opts.label}`, () =>
      decompressTo(input, out, comp, { signal: opts.signal, label: opts.label, onProgress: (b) => opts.em.progress('image.unpack', comp ? 'Decompressing' : 'Copying', b, undefined, 'bytes') }),
    );
    file = out;
    id = r.sha256;
  }
  const fmt = await sniffFormat(file);
  if (fmt === 'qcow2' || fmt === 'raw' || fmt === 'vmdk' || fmt === 'vhd' || fmt === 'vhdx') {
    // A base image must not reach any other host file: no qemu tool opens it before this check.
    await assertSelfContained(file, fmt, opts.label);
  }
  if (fmt === 'qcow2' || fmt === 'raw') {
    id ??= await hashFile(file, { signal: opts.signal });
    return { file, id, format: fmt };
  }
  if (fmt === 'vmdk' || fmt === 'vhd' || fmt === 'vhdx') {
    const out = tempIn(paths, 'convert');
    opts.temps.push(out);
    await opts.em.step('image.convert', `Converting ${opts.label} from ${fmt} to qcow2`, () =>
      qemuImg.convert(file, out, { outFormat: 'qcow2', inFormat: QEMU_DRIVER[fmt], ...(opts.signal ? { signal: opts.signal } : {}) }),
    );
    return { file: out, id: await hashFile(out, { signal: opts.signal }), format: 'qcow2' };
  }
  if (fmt === 'iso') throw notAnImage(opts.label, 'it is an ISO 9660 CD image, not a disk to boot a cloud image from');
  if (fmt === 'xz' || fmt === 'gzip' || fmt === 'zstd') throw notAnImage(opts.label, `it is ${fmt}-compressed twice`);
  throw notAnImage(opts.label, 'no qcow2, vmdk, vhd(x) header and no partition table or file system signature');
}

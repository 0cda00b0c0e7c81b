/**
 * A thin, typed wrapper around qemu-img for what the native reader should not do: create
 * overlays (always recording the backing format with -F), convert (optionally compressed, with
 * progress, to a temp file then renamed), resize, rebase (including flattening), check and
 * internal snapshots. Every call runs `qemu-img` by argv through core/exec.
 *
 * The argv builders are pure and exported (qemuImgArgv) so they are unit-testable.
 */
import { rename, unlink, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { run, type RunResult } from '../core/exec.js';
import { CommandFailedError, ConflictError, DiskFullError, fsError, InvalidInputError, NotFoundError } from '../core/errors.js';
import { tempPathFor, fsyncDir } from '../core/fs.js';
import { Emitter, type EventSink } from '../events/events.js';
import { NotAnImageError, sniffFormat } from './qcow2.js';

export interface QemuImgCheck {
  ok: boolean;
  /** Corruptions found (the image is unsafe to use). */
  corruptions: number;
  /** Leaked clusters (harmless, repairable with -r leaks). */
  leaks: number;
  checkErrors: number;
  imageEndOffset?: number;
  raw: Record<string, unknown>;
}

export interface QemuSnapshot {
  id: string;
  name: string;
  vmSize: number;
  /** ISO 8601 */
  date: string;
}

const SIZE_MAX = 2 ** 53;

function checkSize(size: number, what = 'size'): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size >= SIZE_MAX || size % 512 !== 0)
    throw new InvalidInputError('BAD_DISK_SIZE', `the disk ${what} ${size} is not a positive whole number of 512-byte sectors`, {
      hint: 'give a size in bytes that is a multiple of 512, e.g. 10G = 10737418240',
    });
}

function checkSnapshotName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) || /^\d+$/.test(name))
    throw new InvalidInputError('BAD_SNAPSHOT_NAME', `'${name}' is not a valid snapshot name`, {
      hint: 'letters, digits and . _ -, starting with a letter or digit, not all digits (those are ids)',
    });
}

/** Pure argv builders, one per operation. */
export const qemuImgArgv = {
  createOverlay(path: string, o: { backing: string; backingFormat: string; size?: number }): string[] {
    return ['create', '-q', '-f', 'qcow2', '-b', o.backing, '-F', o.backingFormat, path, ...(o.size !== undefined ? [String(o.size)] : [])];
  },
  create(path: string, o: { format: 'qcow2' | 'raw'; size: number }): string[] {
    return ['create', '-q', '-f', o.format, path, String(o.size)];
  },
  convert(src: string, dst: string, o: { outFormat: 'qcow2' | 'raw'; inFormat?: string; compress?: boolean; progress?: boolean }): string[] {
    return [
      'convert',
      ...(o.progress ? ['-p'] : ['-q']),
      ...(o.inFormat ? ['-f', o.inFormat] : []),
      '-O',
      o.outFormat,
      ...(o.compress ? ['-c'] : []),
      src,
      dst,
    ];
  },
  resize(path: string, size: number): string[] {
    return ['resize', '-q', path, String(size)];
  },
  rebase(path: string, o: { backing: string | null; backingFormat?: string; unsafe?: boolean }): string[] {
    if (o.backing === null) return ['rebase', '-q', ...(o.unsafe ? ['-u'] : []), '-b', '', path];
    return ['rebase', '-q', ...(o.unsafe ? ['-u'] : []), '-b', o.backing, '-F', o.backingFormat!, path];
  },
  check(path: string): string[] {
    return ['check', '--output=json', path];
  },
  info(path: string, o: { backingChain?: boolean; forceShare?: boolean } = {}): string[] {
    return ['info', '--output=json', ...(o.backingChain ? ['--backing-chain'] : []), ...(o.forceShare ? ['-U'] : []), path];
  },
  snapshot(op: 'create' | 'apply' | 'delete', path: string, name: string): string[] {
    return ['snapshot', op === 'create' ? '-c' : op === 'apply' ? '-a' : '-d', name, path];
  },
};

/** Turn qemu-img's common complaints into typed errors that name the file. */
function mapFailure(e: unknown, path: string): unknown {
  if (!(e instanceof CommandFailedError)) return e;
  const err = e.stderr;
  if (/No such file or directory/i.test(err)) return new NotFoundError('FILE_NOT_FOUND', `qemu-img cannot open ${path}: no such file (or a missing backing file)`, { hint: "check the path and the backing chain ('kumo disk info')", cause: e });
  if (/Failed to get .*lock|Is another process using the image/i.test(err))
    return new ConflictError('IMAGE_IN_USE', `${path} is in use by another process (a running VM?)`, { hint: 'stop the VM that uses it and try again', cause: e });
  if (/Image is not in qcow2 format|Could not open .*: Image not in/i.test(err)) return new NotAnImageError(path, 'qemu-img cannot open it as qcow2', { cause: e });
  if (/No space left on device|Disk quota exceeded/i.test(err))
    return new DiskFullError(`qemu-img ran out of space working on ${path}`, { cause: e });
  return e;
}

async function runQemuImg(args: string[], path: string, extra: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  try {
    return await run('qemu-img', args, extra);
  } catch (e) {
    throw mapFailure(e, path);
  }
}

async function mustExist(path: string): Promise<void> {
  try {
    await stat(path);
  } catch (e) {
    throw fsError(e, path, 'read');
  }
}

async function mustNotExist(path: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    return;
  }
  throw new ConflictError('FILE_EXISTS', `${path} exists already`, { hint: 'remove it or choose another path' });
}

export const qemuImg = {
  argv: qemuImgArgv,

  /** A qcow2 overlay on `backing`, recording its format (-F). The backing name is kept as given (relative names are relative to the overlay's folder). */
  async createOverlay(path: string, o: { backing: string; backingFormat: string; size?: number }): Promise<void> {
    if (!o.backingFormat) throw new InvalidInputError('BACKING_FORMAT_REQUIRED', `an overlay needs the format of its backing file ${o.backing}`, { hint: "give backingFormat, e.g. 'qcow2' (see sniffFormat)" });
    if (o.size !== undefined) checkSize(o.size);
    await mustNotExist(path);
    const backingAbs = resolve(resolve(path, '..'), o.backing);
    await mustExist(backingAbs);
    const tmp = tempPathFor(path);
    try {
      // the temp file is in the same folder, so a relative backing name means the same thing
      await runQemuImg(qemuImgArgv.createOverlay(tmp, o), path);
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  },

  async create(path: string, o: { format: 'qcow2' | 'raw'; size: number }): Promise<void> {
    checkSize(o.size);
    await mustNotExist(path);
    const tmp = tempPathFor(path);
    try {
      await runQemuImg(qemuImgArgv.create(tmp, o), path);
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  },

  /** Convert `src` into `dst` (written to a temp file beside it, then renamed). Progress from `qemu-img convert -p`. */
  async convert(
    src: string,
    dst: string,
    o: { outFormat: 'qcow2' | 'raw'; inFormat?: string; compress?: boolean; onEvent?: EventSink; signal?: AbortSignal },
  ): Promise<void> {
    await mustExist(src);
    if (o.compress && o.outFormat !== 'qcow2') throw new InvalidInputError('BAD_CONVERT', 'only qcow2 output can be compressed', { hint: "use outFormat 'qcow2' or drop compress" });
    const inFormat = o.inFormat ?? (await sniffFormat(src));
    if (['xz', 'gzip', 'zstd', 'bzip2', 'unknown'].includes(inFormat))
      throw new NotAnImageError(src, `${inFormat === 'unknown' ? 'no known disk image signature' : `it is ${inFormat}-compressed`}; qemu-img cannot read it`, {
        hint: inFormat === 'unknown' ? 'give a disk image' : 'decompress it first',
      });
    const ev = new Emitter(o.onEvent);
    const tmp = tempPathFor(dst);
    const label = `converting ${src}`;
    let buf = '';
    let last = -1;
    try {
      await runQemuImg(qemuImgArgv.convert(src, tmp, { outFormat: o.outFormat, inFormat, ...(o.compress ? { compress: true } : {}), progress: true }), src, {
        ...(o.signal ? { signal: o.signal } : {}),
        onStdout: (c) => {
          buf += c.toString('latin1');
          const parts = buf.split(/[\r\n]/);
          buf = parts.pop() ?? '';
          for (const p of parts) {
            const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(p);
            if (!m) continue;
            const pct = Number(m[1]);
            if (pct !== last) {
              last = pct;
              ev.progress('disk.convert', label, pct, 100, 'percent');
            }
          }
        },
      });
      await rename(tmp, dst);
      await fsyncDir(resolve(dst, '..'));
      ev.progress('disk.convert', label, 100, 100, 'percent');
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  },

  async resize(path: string, size: number): Promise<void> {
    checkSize(size);
    await mustExist(path);
    await runQemuImg(qemuImgArgv.resize(path, size), path);
  },

  /** Point `path` at another backing file (copying the differences unless unsafe), or flatten it (backing null). */
  async rebase(path: string, o: { backing: string | null; backingFormat?: string; unsafe?: boolean }): Promise<void> {
    await mustExist(path);
    if (o.backing !== null && !o.backingFormat) throw new InvalidInputError('BACKING_FORMAT_REQUIRED', `rebasing ${path} needs the format of ${o.backing}`, { hint: "give backingFormat, e.g. 'qcow2'" });
    await runQemuImg(qemuImgArgv.rebase(path, o), path);
  },

  /** `qemu-img check`: corruptions make ok false; leaks alone do not. */
  async check(path: string): Promise<QemuImgCheck> {
    await mustExist(path);
    const r = await runQemuImg(qemuImgArgv.check(path), path, { allowFailure: true });
    // exit 0 clean, 1 check failed to run, 2 corruptions, 3 leaks only, 63 format has no check
    if (r.code === 63) return { ok: true, corruptions: 0, leaks: 0, checkErrors: 0, raw: {} };
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      throw mapFailure(new CommandFailedError(r.argv, r.code, r.signal, r.stderr), path);
    }
    const num = (k: string) => (typeof raw[k] === 'number' ? (raw[k] as number) : 0);
    const out: QemuImgCheck = {
      ok: r.code === 0 || r.code === 3,
      corruptions: num('corruptions'),
      leaks: num('leaks'),
      checkErrors: num('check-errors'),
      raw,
    };
    if (typeof raw['image-end-offset'] === 'number') out.imageEndOffset = raw['image-end-offset'] as number;
    return out;
  },

  async snapshotCreate(path: string, name: string): Promise<void> {
    checkSnapshotName(name);
    await mustExist(path);
    if ((await qemuImg_.snapshotList(path)).some((s) => s.name === name))
      throw new ConflictError('SNAPSHOT_EXISTS', `${path} already has a snapshot named '${name}'`, { hint: 'choose another name or delete the old one' });
    await runQemuImg(qemuImgArgv.snapshot('create', path, name), path);
  },

  async snapshotList(path: string): Promise<QemuSnapshot[]> {
    await mustExist(path);
    const r = await runQemuImg(qemuImgArgv.info(path, { forceShare: true }), path);
    const info = JSON.parse(r.stdout) as { snapshots?: { id: string; name: string; 'vm-state-size': number; 'date-sec': number; 'date-nsec': number }[] };
    return (info.snapshots ?? []).map((s) => ({
      id: String(s.id),
      name: s.name,
      vmSize: s['vm-state-size'] ?? 0,
      date: new Date(s['date-sec'] * 1000 + Math.floor((s['date-nsec'] ?? 0) / 1e6)).toISOString(),
    }));
  },

  async snapshotApply(path: string, name: string): Promise<void> {
    await mustHaveSnapshot(path, name);
    await runQemuImg(qemuImgArgv.snapshot('apply', path, name), path);
  },

  async snapshotDelete(path: string, name: string): Promise<void> {
    await mustHaveSnapshot(path, name);
    await runQemuImg(qemuImgArgv.snapshot('delete', path, name), path);
  },

  /** `qemu-img info --output=json` (with -U, so it works on images in use). */
  async info(path: string, o: { backingChain?: boolean } = {}): Promise<unknown> {
    await mustExist(path);
    const r = await runQemuImg(qemuImgArgv.info(path, { ...o, forceShare: true }), path);
    return JSON.parse(r.stdout) as unknown;
  },
};
const qemuImg_ = qemuImg;

async function mustHaveSnapshot(path: string, name: string): Promise<void> {
  const list = await qemuImg_.snapshotList(path);
  if (!list.some((s) => s.name === name))
    throw new NotFoundError('SNAPSHOT_NOT_FOUND', `${path} has no snapshot named '${name}'`, {
      hint: list.length ? `its snapshots: ${list.map((s) => s.name).join(', ')}` : 'it has no snapshots',
    });
}


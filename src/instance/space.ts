/**
 * Room on the disk before a long copy (clone, capture, consolidate), and turning running out of
 * space into a DISK_FULL error that names the place and what was being done.
 */
import { statfs } from 'node:fs/promises';
import { DiskFullError, type KumoError } from '../core/errors.js';
import { run } from '../core/exec.js';

/** Bytes a qcow2 copy of the whole chain of `disk` needs at most (qemu-img measure). */
export async function measureQcow2(disk: string): Promise<number> {
  const r = await run('qemu-img', ['measure', '--output=json', '-U', '-O', 'qcow2', disk]);
  const m = JSON.parse(r.stdout) as { required: number };
  return m.required;
}

/** Free bytes for an unprivileged writer in the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export function diskFullError(where: string, what: string, need?: number, free?: number): DiskFullError {
  const mib = (n: number) => `${Math.ceil(n / 1024 / 1024)} MiB`;
  return new DiskFullError(`not enough space in ${where} to ${what}${need !== undefined && free !== undefined ? ` (needs up to ${mib(need)}, ${mib(free)} free)` : ': no space left on device'}`, {
    hint: "free some space (delete instances you no longer need, 'kumo image prune'), or move KUMO_HOME to a larger disk; nothing was changed",
    ...(need !== undefined && free !== undefined ? { details: { need, free } } : {}),
  });
}

/** Refuse before a long copy when the file system clearly cannot hold it. */
export async function requireSpace(dir: string, need: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free < need) throw diskFullError(dir, what, need, free);
}

/** Out of space (qemu-img's DISK_FULL from src/disk, or an fs error): a DISK_FULL error naming where and what; anything else unchanged. */
export function mapDiskFull(e: unknown, where: string, what: string): unknown {
  if ((e as KumoError)?.code === 'DISK_FULL') return diskFullError(where, what);
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return diskFullError(where, what);
  return e;
}

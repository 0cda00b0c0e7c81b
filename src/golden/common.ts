/**
 * What the golden-image use cases share: "the instance must be stopped" (or stop it with
 * `stop: true`), room on the disk before a long copy, and turning qemu-img's ENOSPC into a
 * DISK_FULL error that names the place.
 */
import { statfs } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, DiskFullError, type KumoError } from '../core/errors.js';
import { run } from '../core/exec.js';
import type { EventSink } from '../events/events.js';
import { instanceStatus, stopInstance } from '../instance/index.js';

export interface GoldenOpOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface StopFirstOptions extends GoldenOpOptions {
  /** Stop a running instance first (graceful power-down) instead of refusing. */
  stop?: boolean;
  /** With `stop`: seconds to wait for the graceful power-down before forcing it (default: stopInstance's). */
  stopTimeoutSec?: number;
}

const RUNNING = new Set(['running', 'paused', 'unknown', 'creating']);

/**
 * Make sure the instance is stopped: refuse with a hint (INSTANCE_RUNNING), or stop it when
 * `stop` is set. `what` names the operation and `flag` the CLI way to ask for the stop.
 */
export async function ensureStopped(paths: KumoPaths, name: string, what: string, opts: StopFirstOptions & { usage: string }): Promise<void> {
  const st = await instanceStatus(paths, name);
  if (st.state === 'incomplete' || st.state === 'corrupt')
    throw new ConflictError('INSTANCE_INCOMPLETE', `instance '${name}' cannot be used: ${st.detail ?? st.state}`, { hint: `remove what is left with: kumo delete ${name}` });
  if (!RUNNING.has(st.state)) return;
  if (!opts.stop)
    throw new ConflictError('INSTANCE_RUNNING', `cannot ${what} instance '${name}' while it is ${st.state === 'creating' ? 'being created' : st.state}`, {
      hint: `stop it first (kumo stop ${name}), or let kumo stop it: ${opts.usage}`,
      details: { instance: name, state: st.state },
    });
  await stopInstance(paths, name, { ...(opts.stopTimeoutSec !== undefined ? { timeoutSec: opts.stopTimeoutSec } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
}

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

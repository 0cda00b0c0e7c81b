/**
 * Download and store locks, on top of the cross-process locks of src/core/lock.ts (O_EXCL file
 * with the owner's pid and start time; a dead owner's lock is broken). A held lock is waited
 * for: the second launch needing the same image waits for the first one's download.
 */
import { ConflictError } from '../core/errors.js';
import { acquireLock } from '../core/lock.js';

export interface WaitLockOptions {
  signal?: AbortSignal;
  /** What the lock protects, for messages. */
  what: string;
  op: string;
  /** Called once, when another live process holds the lock and we start waiting. */
  onWait?: (holderPid: number) => void;
}

/** Run `fn` holding the lock file `path`, waiting (abortably) for another holder to finish. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: WaitLockOptions): Promise<T> {
  let lock;
  try {
    lock = await acquireLock(path, { op: opts.op, what: opts.what, waitMs: 0, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    if (!(e instanceof ConflictError) || e.code !== 'LOCKED') throw e;
    opts.onWait?.(Number(e.details?.pid));
    lock = await acquireLock(path, { op: opts.op, what: opts.what, waitMs: Number.MAX_SAFE_INTEGER, ...(opts.signal ? { signal: opts.signal } : {}) });
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

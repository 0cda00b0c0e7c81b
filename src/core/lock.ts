/**
 * Cross-process locks on a file (one per instance: KUMO_HOME/instances/NAME/lock).
 *
 * The lock file is created with O_EXCL and holds the owner's pid, its start time (from
 * /proc/PID/stat, so a recycled pid is not mistaken for the owner) and what it is doing. A lock
 * whose owner is gone is stale and is broken; breaking is serialised by a second exclusive file
 * so that two processes breaking the same stale lock cannot delete each other's fresh one.
 */
import { open, readFile, unlink, rename, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { ConflictError, fsError, InterruptedError } from './errors.js';
import { pidAlive } from './exec.js';
import { sleep } from './time.js';

export interface LockOwner {
  pid: number;
  /** Start time of the owner in clock ticks since boot (field 22 of /proc/PID/stat). */
  start?: number;
  /** What the owner is doing ("create", "stop", ...). */
  op: string;
  at: string;
}

export interface LockOptions {
  /** What the owner is doing, shown to whoever finds the lock held. */
  op: string;
  /** The thing locked, for messages ("instance 'web'"). */
  what: string;
  /** Wait this long for a held lock (ms); 0 = fail at once (default). */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface Lock extends AsyncDisposable {
  readonly path: string;
  release(): Promise<void>;
}

/** Start time of a process (ticks since boot), or undefined when unknown. */
export function processStartTime(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const v = Number(rest[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the owner recorded in a lock file is still the live process that took it. */
export function ownerAlive(o: LockOwner): boolean {
  if (!pidAlive(o.pid)) return false;
  try {
    const st = readFileSync(`/proc/${o.pid}/stat`, 'utf8');
    if (st[st.lastIndexOf(')') + 2] === 'Z') return false;
  } catch {
    /* no /proc: trust the signal probe */
  }
  if (o.start === undefined) return true;
  const now = processStartTime(o.pid);
  return now === undefined || now === o.start;
}

export async function readLockOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as LockOwner;
    return typeof o?.pid === 'number' ? o : { pid: -1, op: 'unknown', at: '' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Half-written or garbage: treat as a dead owner.
    return { pid: -1, op: 'unknown', at: '' };
  }
}

/** Who holds the lock now, if a live process does. */
export async function lockHolder(path: string): Promise<LockOwner | undefined> {
  const o = await readLockOwner(path);
  return o && ownerAlive(o) ? o : undefined;
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fsError(e, path, 'create lock');
  }
  try {
    await fh.writeFile(JSON.stringify(owner));
  } finally {
    await fh.close();
  }
  return true;
}

/** Break a stale lock, serialised through `path.break`. Returns true when it was removed. */
async function breakStale(path: string, seen: LockOwner): Promise<boolean> {
  const breaker = `${path}.break`;
  let fh;
  try {
    fh = await open(breaker, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    // Another process is breaking it; a breaker older than 10 s is itself stale.
    try {
      const st = await stat(breaker);
      if (Date.now() - st.mtimeMs > 10_000) await unlink(breaker).catch(() => {});
    } catch {
      /* gone */
    }
    return false;
  }
  try {
    await fh.close();
    const now = await readLockOwner(path);
    if (!now) return true;
    if (now.pid !== seen.pid || now.start !== seen.start || ownerAlive(now)) return false;
    const grave = `${path}.stale-${process.pid}`;
    await rename(path, grave).catch(() => {});
    await unlink(grave).catch(() => {});
    return true;
  } finally {
    await unlink(breaker).catch(() => {});
  }
}


/**
 * Take the lock at `path` or throw a ConflictError naming who holds it. The lock is released by
 * `release()` or `await using`. A process that dies holding it leaves a stale lock that the next
 * taker breaks.
 */
export async function acquireLock(path: string, opts: LockOptions): Promise<Lock> {
  const me: LockOwner = { pid: process.pid, op: opts.op, at: new Date().toISOString() };
  const start = processStartTime(process.pid);
  if (start !== undefined) me.start = start;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let delay = 25;
  for (;;) {
    if (opts.signal?.aborted) throw new InterruptedError();
    if (await tryCreate(path, me)) break;
    const owner = await readLockOwner(path);
    if (owner && !ownerAlive(owner)) {
      await breakStale(path, owner);
      continue;
    }
    if (!owner) continue; // released meanwhile
    if (Date.now() >= deadline) {
      throw new ConflictError('LOCKED', `${opts.what} is busy: process ${owner.pid} is running '${owner.op}' on it`, {
        hint: 'wait for that command to finish and try again',
        details: { pid: owner.pid, op: owner.op, since: owner.at },
      });
    }
    await sleep(delay);
    delay = Math.min(250, delay * 2);
  }
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    const o = await readLockOwner(path);
    if (o && o.pid === me.pid && o.start === me.start) await unlink(path).catch(() => {});
  };
  return { path, release, [Symbol.asyncDispose]: release };
}

/**
 * Cross-process locks on a file (one per instance: KUMO_HOME/instances/NAME/lock).
 *
 * The lock file holds the owner's pid, its start time (from /proc/PID/stat, so a recycled pid is
 * not mistaken for the owner), the kernel's boot id (so a lock left before a reboot is dead even
 * when a new process has the same pid and start time), a random id of the holding and what it is doing. It is made
 * atomically: the owner is written to a temp file which is then link(2)ed into place, so the
 * lock file never exists without its owner (a reader never sees an empty lock and takes it for a
 * dead one). A lock whose owner is gone is stale and is broken; breaking is serialised by a
 * second file made the same way (`lock.break`), so that two processes breaking the same stale
 * lock cannot delete each other's fresh one; a breaker whose owner died is removed at once.
 * Every wait is a sleep bounded by the caller's `waitMs`.
 */
import { link, readFile, unlink, rename, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
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
  /** Random id of this holding (absent in locks written by older versions). */
  id?: string;
  /** The kernel's boot id when the lock was taken (absent in locks written by older versions). */
  boot?: string;
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

let cachedBootId: string | null | undefined;

/**
 * The kernel's boot id (/proc/sys/kernel/random/boot_id): a random UUID made at every boot, so a
 * pid or start time recorded under another boot id names some other process. Undefined without /proc.
 */
export function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      const v = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      cachedBootId = /^[0-9a-f-]{8,64}$/i.test(v) ? v : null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
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

/**
 * Whether a recorded process (a lock's owner, a daemon's pid record) is still that very live
 * process: not a zombie, recorded under this boot, with the recorded start time.
 */
export function ownerAlive(o: Pick<LockOwner, 'pid' | 'boot' | 'start'>): boolean {
  if (o.boot !== undefined) {
    const now = bootId();
    if (now !== undefined && now !== o.boot) return false; // taken before a reboot
  }
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

/** A fresh random id, so that one holding of a lock is told apart from the next one by the same process. */
function newId(): string {
  return randomBytes(8).toString('hex');
}

function sameHolding(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.start === b.start && a.id === b.id && a.boot === b.boot;
}

/**
 * Create `path` holding `owner`, atomically: the owner is written to a temp file beside it which is
 * then hard-linked into place (link(2) fails with EEXIST when the path exists), so the file never
 * exists without its owner. False when it exists.
 */
async function createWithOwner(path: string, owner: LockOwner): Promise<boolean> {
  const tmp = join(dirname(path), `.${basename(path)}.new-${process.pid}-${newId()}`);
  try {
    await writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    throw fsError(e, path, 'create lock');
  }
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fsError(e, path, 'create lock');
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Remove `path` if it still is the holding `seen` (a dead one): it is renamed to a private name
 * first and checked there; a file that turns out to be another holding is linked back.
 */
async function removeIfSame(path: string, seen: LockOwner): Promise<boolean> {
  const grave = join(dirname(path), `.${basename(path)}.stale-${process.pid}-${newId()}`);
  try {
    await rename(path, grave);
  } catch {
    return false;
  }
  const got = await readLockOwner(grave);
  if (got && !sameHolding(got, seen) && ownerAlive(got)) {
    // Not the one we judged dead (cannot happen while the breaker is exclusive): put it back.
    await link(grave, path).catch(() => {});
    await unlink(grave).catch(() => {});
    return false;
  }
  await unlink(grave).catch(() => {});
  return true;
}

/** How long an unreadable breaker file (written by an older kumo) is trusted. */
const BREAKER_UNREADABLE_MS = 10_000;

/**
 * Break a stale lock, serialised through `path.break` (which holds its owner like the lock does).
 * Returns 'broken' when the lock is gone, 'busy' when a live process is breaking it (or an
 * unreadable breaker is still young). A breaker whose owner died is removed at once.
 */
async function breakStale(path: string, seen: LockOwner, me: LockOwner): Promise<'broken' | 'busy' | 'retry'> {
  const breaker = `${path}.break`;
  const mine: LockOwner = { ...me, id: newId() };
  if (!(await createWithOwner(breaker, mine))) {
    const b = await readLockOwner(breaker);
    if (!b) return 'retry'; // gone meanwhile
    if (b.pid === -1) {
      // Unreadable (an older kumo creates it empty): trusted for a while by its age.
      try {
        const st = await stat(breaker);
        if (Date.now() - st.mtimeMs > BREAKER_UNREADABLE_MS && (await removeIfSame(breaker, b))) return 'retry';
      } catch {
        return 'retry';
      }
      return 'busy';
    }
    if (!ownerAlive(b)) return (await removeIfSame(breaker, b)) ? 'retry' : 'busy';
    return 'busy';
  }
  try {
    const now = await readLockOwner(path);
    if (!now) return 'broken';
    if (!sameHolding(now, seen) || ownerAlive(now)) return 'retry';
    return (await removeIfSame(path, now)) ? 'broken' : 'retry';
  } finally {
    const b = await readLockOwner(breaker);
    if (b && sameHolding(b, mine)) await unlink(breaker).catch(() => {});
  }
}

/**
 * Take the lock at `path` or throw a ConflictError naming who holds it. The lock is released by
 * `release()` or `await using`. A process that dies holding it leaves a stale lock that the next
 * taker breaks.
 */
export async function acquireLock(path: string, opts: LockOptions): Promise<Lock> {
  const me: LockOwner = { pid: process.pid, op: opts.op, at: new Date().toISOString(), id: newId() };
  const start = processStartTime(process.pid);
  if (start !== undefined) me.start = start;
  const boot = bootId();
  if (boot !== undefined) me.boot = boot;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let delay = 25;
  const wait = async (owner: LockOwner, doing: string) => {
    if (Date.now() >= deadline) {
      throw new ConflictError('LOCKED', `${opts.what} is busy: process ${owner.pid} is ${doing}`, {
        hint: 'wait for that command to finish and try again',
        details: { pid: owner.pid, op: owner.op, since: owner.at },
      });
    }
    await sleep(Math.max(1, Math.min(delay, deadline - Date.now())), opts.signal);
    delay = Math.min(250, delay * 2);
  };
  for (;;) {
    if (opts.signal?.aborted) throw new InterruptedError();
    if (await createWithOwner(path, me)) break;
    const owner = await readLockOwner(path);
    if (!owner) continue; // released meanwhile
    if (ownerAlive(owner)) {
      await wait(owner, `running '${owner.op}' on it`);
      continue;
    }
    const r = await breakStale(path, owner, me);
    if (r === 'busy') {
      // Another process is breaking the stale lock (and will take it): a held lock, as far as we are concerned.
      const b = (await readLockOwner(`${path}.break`)) ?? owner;
      await wait(b.pid > 0 ? b : owner, b.pid > 0 ? `taking over a stale lock (left by process ${owner.pid})` : `running '${owner.op}' on it`);
    }
  }
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    const o = await readLockOwner(path);
    if (o && sameHolding(o, me)) await unlink(path).catch(() => {});
  };
  return { path, release, [Symbol.asyncDispose]: release };
}

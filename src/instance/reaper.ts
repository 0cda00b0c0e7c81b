/**
 * Reaping: instances that must go without anybody calling kumo again.
 *
 * - Time to live: an instance whose record has `expiresAt` is powered off and deleted when that
 *   time has come. A detached reaper process per KUMO_HOME (src/reaper-main.ts `ttl HOME`,
 *   started by create when it makes an instance with a ttl; one at a time, by a lock in
 *   KUMO_HOME/run/) sleeps until the earliest expiry (re-reading the records every few seconds,
 *   so a newer, sooner expiry is seen), deletes through the normal delete path (its locks
 *   respected), and exits when no instance has a ttl left. Every kumo command also sweeps
 *   expired instances first (`sweepExpired`: a read of the records), and restarts the reaper when
 *   instances with a ttl are there and no reaper is.
 * - Test processes: the library's `launch()` registers each instance it makes to the calling
 *   process, in KUMO_HOME/run/reaper/PID-STARTTIME.json (written atomically; the start time from
 *   /proc/PID/stat tells a recycled pid apart), and starts one watchdog per process and home
 *   (src/reaper-main.ts `watch HOME PID START`, detached, stdio ignored, unref'd). The watchdog
 *   polls the parent's /proc entry; once the parent is gone, by any means (kill -9 included), it
 *   deletes the instances still registered, removes the file and exits. A normal dispose
 *   unregisters the instance. Opt out with `launch({ reap: false })` or KUMO_NO_REAP=1.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { kumoPaths, type KumoPaths } from '../config/paths.js';
import { ensurePrivateDir, exists, readJson, writeJsonAtomic } from '../core/fs.js';
import { acquireLock, lockHolder, ownerAlive, processStartTime, type Lock } from '../core/lock.js';
import { pidAlive } from '../core/exec.js';
import { sleep } from '../core/time.js';
import { NotFoundError } from '../core/errors.js';
import { deleteInstance } from './power.js';
import { instanceFiles, listNames, type InstanceRecord } from './store.js';

/** How often the ttl reaper re-reads the records at most, and how often a watchdog looks at its parent (ms). */
export const TTL_POLL_MS = 5000;
export const WATCH_POLL_MS = 500;

/** KUMO_HOME/run and the files of this module in it. */
export function runDir(paths: KumoPaths): string {
  return join(paths.home, 'run');
}
export function registrationDir(paths: KumoPaths): string {
  return join(runDir(paths), 'reaper');
}
function ttlLockPath(paths: KumoPaths): string {
  return join(runDir(paths), 'ttl-reaper.lock');
}

/** The program the detached reapers run (dist/src/reaper-main.js beside this module's folder). */
export const REAPER_MAIN = fileURLToPath(new URL('../reaper-main.js', import.meta.url));

/** Start a detached reaper process that outlives the caller and holds none of its stdio. */
function spawnReaper(args: string[]): void {
  try {
    const child = spawn(process.execPath, [REAPER_MAIN, ...args], { detached: true, stdio: 'ignore', env: process.env });
    child.on('error', () => {});
    child.unref();
  } catch {
    /* a reaper that cannot start leaves the sweep of the next kumo command */
  }
}

// ---------------------------------------------------------------------------------------------
// Time to live

export interface Expiry {
  name: string;
  /** ms since the epoch */
  at: number;
}

/** Every instance with a ttl and when it expires, from the records (never a lock). */
export async function expiries(paths: KumoPaths): Promise<Expiry[]> {
  const names = await listNames(paths);
  const recs = await Promise.all(names.map((n) => readJson<InstanceRecord>(instanceFiles(paths, n).record).catch(() => undefined)));
  const out: Expiry[] = [];
  recs.forEach((rec, i) => {
    const at = rec?.expiresAt ? Date.parse(rec.expiresAt) : NaN;
    if (Number.isFinite(at)) out.push({ name: names[i]!, at });
  });
  return out.sort((a, b) => a.at - b.at);
}

/**
 * Delete the instances whose time is up (forced: a running one is powered off). One whose lock
 * another live process holds is left for the next sweep. Returns the names deleted.
 */
export async function deleteExpired(paths: KumoPaths, now = Date.now(), known?: readonly Expiry[]): Promise<string[]> {
  const deleted: string[] = [];
  for (const e of known ?? (await expiries(paths))) {
    if (e.at > now) break;
    const holder = await lockHolder(instanceFiles(paths, e.name).lock).catch(() => undefined);
    if (holder && holder.pid !== process.pid && ownerAlive(holder)) continue;
    try {
      await deleteInstance(paths, e.name, { force: true });
      deleted.push(e.name);
    } catch {
      /* gone meanwhile, or busy: the next round sees it */
    }
  }
  return deleted;
}

/** Start the ttl reaper of this home unless one runs (it exits at once when another holds the lock). */
export function ensureTtlReaper(paths: KumoPaths): void {
  spawnReaper(['ttl', paths.home]);
}

/**
 * What every kumo command does first: delete the expired instances, reap the registrations of
 * dead processes, and start the ttl reaper when instances with a ttl remain and none runs.
 * Never throws; returns the names deleted.
 */
export async function sweepExpired(paths: KumoPaths): Promise<string[]> {
  try {
    const now = Date.now();
    const known = await expiries(paths);
    const deleted = await deleteExpired(paths, now, known);
    deleted.push(...(await reapOrphanedRegistrations(paths)));
    if (known.some((e) => e.at > now)) {
      const holder = await lockHolder(ttlLockPath(paths)).catch(() => undefined);
      if (!holder || !ownerAlive(holder)) ensureTtlReaper(paths);
    }
    return deleted;
  } catch {
    return [];
  }
}

/** The ttl reaper's loop (in its own process): until no instance has a ttl. */
export async function runTtlReaper(paths: KumoPaths): Promise<void> {
  await ensurePrivateDir(runDir(paths));
  for (;;) {
    let lock: Lock;
    try {
      lock = await acquireLock(ttlLockPath(paths), { op: 'reap expired instances', what: 'the ttl reaper' });
    } catch {
      return; // another reaper runs
    }
    try {
      for (;;) {
        await deleteExpired(paths);
        const next = (await expiries(paths))[0];
        if (!next) break;
        await sleep(Math.max(50, Math.min(TTL_POLL_MS, next.at - Date.now() + 20)));
      }
    } finally {
      await lock.release();
    }
    // An instance made while this one was giving up found the lock held: look once more.
    if (!(await expiries(paths)).length) return;
  }
}

// ---------------------------------------------------------------------------------------------
// Test processes

export interface Registration {
  pid: number;
  /** The process's start time (ticks since boot, /proc/PID/stat); undefined where unknown. */
  start?: number;
  instances: string[];
}

interface Registrar {
  file: string;
  reg: Registration;
  /** Writes in order, one at a time. */
  queue: Promise<void>;
  watching: boolean;
}

const registrars = new Map<string, Registrar>();

function registrarFor(paths: KumoPaths): Registrar {
  let r = registrars.get(paths.home);
  if (!r) {
    const start = processStartTime(process.pid);
    const reg: Registration = { pid: process.pid, ...(start !== undefined ? { start } : {}), instances: [] };
    r = { file: join(registrationDir(paths), `${process.pid}-${start ?? 0}.json`), reg, queue: Promise.resolve(), watching: false };
    registrars.set(paths.home, r);
  }
  return r;
}

function update(paths: KumoPaths, change: (names: string[]) => string[]): Promise<void> {
  const r = registrarFor(paths);
  const next = r.queue.then(async () => {
    r.reg = { ...r.reg, instances: change(r.reg.instances) };
    await mkdir(registrationDir(paths), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(r.file, r.reg, 0o600);
    if (!r.watching) {
      r.watching = true;
      spawnReaper(['watch', paths.home, String(r.reg.pid), String(r.reg.start ?? 0)]);
    }
  });
  r.queue = next.catch(() => {});
  return next;
}

/** Whether instances this process launches are reaped when it dies (KUMO_NO_REAP=1 turns it off). */
export function reapingWanted(reap: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (reap !== undefined) return reap;
  return !['1', 'true', 'yes'].includes((env.KUMO_NO_REAP ?? '').toLowerCase());
}

/** Register an instance to this process: it is deleted once the process is gone. */
export function registerForReaping(paths: KumoPaths, name: string): Promise<void> {
  return update(paths, (names) => (names.includes(name) ? names : [...names, name]));
}

/** The instance was disposed of normally (or is kept on purpose): no longer reaped. */
export async function unregisterFromReaping(paths: KumoPaths, name: string): Promise<void> {
  const r = registrars.get(paths.home);
  if (!r || !r.reg.instances.includes(name)) return;
  await update(paths, (names) => names.filter((n) => n !== name));
}

/** Whether the process of a registration is still the one that wrote it. */
function parentAlive(pid: number, start: number | undefined): boolean {
  if (start === undefined || start === 0) return pidAlive(pid);
  return processStartTime(pid) === start;
}

/** Delete the instances a dead process registered, and its registration file. */
async function reapRegistration(paths: KumoPaths, file: string): Promise<string[]> {
  const reg = await readJson<Registration>(file).catch(() => undefined);
  const deleted: string[] = [];
  for (const name of reg?.instances ?? []) {
    try {
      if (!(await exists(instanceFiles(paths, name).dir))) continue;
      await deleteInstance(paths, name, { force: true });
      deleted.push(name);
    } catch (e) {
      if (!(e instanceof NotFoundError)) {
        // busy (a lock held a moment): once more after a pause
        await sleep(1000);
        await deleteInstance(paths, name, { force: true }).then(() => deleted.push(name), () => {});
      }
    }
  }
  await unlink(file).catch(() => {});
  return deleted;
}

/** The registrations whose process is gone (a watchdog that was killed too, a reboot): reap them. */
export async function reapOrphanedRegistrations(paths: KumoPaths): Promise<string[]> {
  let files: string[];
  try {
    files = (await readdir(registrationDir(paths))).filter((f) => /^\d+-\d+\.json$/.test(f));
  } catch {
    return [];
  }
  const deleted: string[] = [];
  for (const f of files) {
    const [pid, start] = f.replace(/\.json$/, '').split('-').map(Number) as [number, number];
    if (pid === process.pid || parentAlive(pid, start)) continue;
    deleted.push(...(await reapRegistration(paths, join(registrationDir(paths), f))));
  }
  return deleted;
}

/** The watchdog's loop (in its own process): wait for the parent to be gone, then reap what it registered. */
export async function runWatchdog(paths: KumoPaths, pid: number, start: number | undefined): Promise<void> {
  const file = join(registrationDir(paths), `${pid}-${start ?? 0}.json`);
  while (parentAlive(pid, start)) await sleep(WATCH_POLL_MS);
  await reapRegistration(paths, file);
}

/** The reaper program's commands: `ttl HOME`, `watch HOME PID START`. */
export async function runReaperCommand(argv: readonly string[]): Promise<void> {
  const [cmd, home, pid, start] = argv;
  if (!home) throw new Error('usage: reaper-main ttl HOME | watch HOME PID START');
  const paths = kumoPaths({ home });
  if (cmd === 'ttl') return runTtlReaper(paths);
  if (cmd === 'watch' && pid) return runWatchdog(paths, Number(pid), start && start !== '0' ? Number(start) : undefined);
  throw new Error(`unknown reaper command ${cmd}`);
}

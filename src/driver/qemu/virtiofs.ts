/**
 * Shared folders for the QEMU driver: virtiofs through QEMU's virtiofsd (Debian 12 ships it in
 * qemu-system-common as /usr/lib/qemu/virtiofsd), one daemon per folder, started by kumo as the
 * user that runs kumo, and 9p (QEMU's own `-fsdev local`) where virtiofsd cannot run.
 *
 * A virtiofsd outlives kumo like QEMU does (its own session, output to virtiofsd-TAG.log in the
 * instance folder), serves the vhost-user socket virtiofsd-TAG.sock there, and exits by itself
 * when QEMU goes (the vhost-user connection closes). Beside it kumo records who it is
 * (virtiofsd-TAG.pid: pid, the kernel's boot id, its start time), so that a later command finds
 * the very process again after a crash and never signals another one that reused the pid: stop,
 * cleanup and the next start stop what is left and remove the files.
 *
 * Where virtiofs cannot run: QEMU 7.2's virtiofsd (the C one) needs root (it drops supplementary
 * groups and sets up namespaces); run unprivileged it exits at once. `planMounts` probes it once
 * per process (a real start on a scratch folder) and, for mounts left to it, falls back to 9p
 * with a warning; a mount that asks for virtiofs gets a typed error with the fix instead.
 * virtiofsd of QEMU 7.2 has no read-only mode: a read-only virtiofs mount is mounted ro by the
 * guest (root there could remount it); 9p (`readonly=on`) makes QEMU itself refuse writes, but
 * needs a guest kernel with 9p, which Debian's cloud kernel (linux-image-cloud-amd64) lacks.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KumoError, EnvironmentError } from '../../core/errors.js';
import { which } from '../../core/exec.js';
import { writeJsonAtomic } from '../../core/fs.js';
import { bootId, ownerAlive, processStartTime } from '../../core/lock.js';
import { debug } from '../../core/log.js';
import { sleep } from '../../core/time.js';
import { Emitter, type EventSink } from '../../events/events.js';
import { virtiofsdFilesIn, VIRTIOFSD_PID_RE } from '../../config/instance-files.js';
import type { KumoPaths } from '../../config/paths.js';
import { MountSourceMissingError, resolveMounts, type MountSpec, type MountType, type MountTypeChoice, type ResolvedMount } from '../../config/mounts.js';
import type { InstanceRuntime } from '../driver.js';
import { processLive } from './process.js';

/** Where virtiofsd is looked for, after $KUMO_VIRTIOFSD and `virtiofsd` on PATH (Debian's virtiofsd package: /usr/libexec). */
export const VIRTIOFSD_CANDIDATES = ['/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd'];
export const VIRTIOFSD_PACKAGE = 'qemu-system-common';
/** How long a virtiofsd may take to create its socket. */
const READY_MS = 10_000;

export class VirtiofsdMissingError extends EnvironmentError {
  constructor(looked: readonly string[]) {
    super('VIRTIOFSD_MISSING', `virtiofsd is not installed (looked for ${looked.join(', ')})`, {
      hint: `install it: apt-get install ${VIRTIOFSD_PACKAGE} (or set KUMO_VIRTIOFSD to its path), or use --mount-type 9p`,
      details: { looked },
    });
  }
}

export class VirtiofsUnavailableError extends EnvironmentError {
  constructor(binary: string, why: string) {
    super('VIRTIOFS_UNAVAILABLE', `virtiofsd (${binary}) cannot run here: ${why}`, {
      hint:
        process.getuid?.() === 0
          ? 'see virtiofsd --help, or use --mount-type 9p'
          : "QEMU 7.2's virtiofsd needs root: run kumo as root for virtiofs, or use --mount-type 9p (or leave --mount-type out: kumo then uses 9p by itself)",
      details: { binary, why },
    });
  }
}

export class VirtiofsdFailedError extends KumoError {
  constructor(instance: string, tag: string, why: string, log: string) {
    super('VIRTIOFSD_FAILED', 'external', `virtiofsd for the shared folder ${tag} of '${instance}' did not start: ${why}`, {
      hint: `see ${log}; delete the instance and launch it with --mount-type 9p to share the folder without virtiofsd`,
      details: { instance, tag, log },
    });
  }
}

/** The virtiofsd binary: $KUMO_VIRTIOFSD, `virtiofsd` on PATH, or Debian's places. */
export async function findVirtiofsd(env: NodeJS.ProcessEnv = process.env): Promise<{ path?: string; looked: string[] }> {
  if (env.KUMO_VIRTIOFSD) {
    const ok = await stat(env.KUMO_VIRTIOFSD).then((s) => s.isFile(), () => false);
    return { ...(ok ? { path: env.KUMO_VIRTIOFSD } : {}), looked: [`$KUMO_VIRTIOFSD (${env.KUMO_VIRTIOFSD})`] };
  }
  const onPath = await which('virtiofsd', env);
  if (onPath) return { path: onPath, looked: ['virtiofsd on PATH'] };
  for (const c of VIRTIOFSD_CANDIDATES) if (await stat(c).then((s) => s.isFile(), () => false)) return { path: c, looked: ['virtiofsd on PATH', ...VIRTIOFSD_CANDIDATES] };
  return { looked: ['virtiofsd on PATH', ...VIRTIOFSD_CANDIDATES] };
}

/** virtiofsd's argv for one folder (pure). The socket path names the instance, which is how kumo recognises its own daemon. */
export function virtiofsdArgv(source: string, socket: string): string[] {
  return [
    `--socket-path=${socket}`,
    '-o', `source=${source}`,
    // pivot_root into the folder in its own mount namespace: nothing outside it can be named
    '-o', 'sandbox=namespace',
    '-o', 'cache=auto',
    '-o', 'announce_submounts',
  ];
}

/** What kumo records about a virtiofsd it started. */
interface VirtiofsdRecord {
  pid: number;
  tag: string;
  socket: string;
  boot?: string;
  start?: number;
}

async function readRecord(path: string): Promise<VirtiofsdRecord | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as Partial<VirtiofsdRecord>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0 || typeof o.socket !== 'string' || typeof o.tag !== 'string') return undefined;
    return o as VirtiofsdRecord;
  } catch {
    return undefined;
  }
}

/** Whether the recorded process is still that virtiofsd (same boot, same start time, its argv names the socket). */
async function isOurs(rec: VirtiofsdRecord): Promise<boolean> {
  if (!processLive(rec.pid) || !ownerAlive(rec)) return false;
  try {
    const argv = (await readFile(`/proc/${rec.pid}/cmdline`, 'utf8')).split('\0');
    return /virtiofsd/.test(argv[0] ?? '') && argv.includes(`--socket-path=${rec.socket}`);
  } catch {
    return false;
  }
}

async function waitExit(rec: VirtiofsdRecord, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  let delay = 20;
  while (Date.now() < end) {
    if (!(await isOurs(rec))) return true;
    await sleep(delay);
    delay = Math.min(200, delay * 2);
  }
  return !(await isOurs(rec));
}

/** The virtiofsd processes kumo recorded in an instance folder that are still running. */
export async function runningVirtiofsds(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = VIRTIOFSD_PID_RE.exec(name);
    if (!m) continue;
    const rec = await readRecord(join(dir, name));
    if (rec && (await isOurs(rec))) out.push(rec.pid);
  }
  return out;
}

/**
 * Stop every virtiofsd recorded in the instance folder (left by a crash, or still serving a QEMU
 * that is gone) and remove their sockets and records. Only called when the instance's QEMU is not
 * running. A pid that is not our virtiofsd any more is never signalled.
 */
export async function stopVirtiofsds(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = VIRTIOFSD_PID_RE.exec(name);
    if (!m) continue;
    const files = virtiofsdFilesIn(dir, m[1]!);
    const rec = await readRecord(files.pid);
    if (rec && (await isOurs(rec))) {
      debug(`virtiofs: stopping virtiofsd ${rec.pid} (${rec.tag})`);
      try {
        process.kill(rec.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      if (!(await waitExit(rec, 3000))) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await waitExit(rec, 3000);
      }
    }
    await unlink(files.socket).catch(() => {});
    await unlink(files.pid).catch(() => {});
  }
}

async function socketReady(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isSocket(), () => false);
}

/** The last meaningful line of a virtiofsd log (what it said when it refused). */
async function lastLine(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? 'it exited without a word';
}

/**
 * Spawn one virtiofsd detached (it outlives kumo), its output to `log`; resolve once its socket
 * exists, or reject with what it said when it exited (or did not get ready in time).
 */
async function spawnVirtiofsd(bin: string, source: string, socket: string, log: string, onSpawn?: (pid: number) => Promise<void>): Promise<{ pid: number } | { error: string }> {
  await unlink(socket).catch(() => {});
  const fh = await open(log, 'w', 0o600);
  let exited: string | undefined;
  let pid: number | undefined;
  try {
    const child = spawn(bin, virtiofsdArgv(source, socket), { detached: true, stdio: ['ignore', fh.fd, fh.fd] });
    child.on('error', (e) => (exited = e.message));
    child.on('exit', (code, sig) => (exited = sig ? `killed by ${sig}` : `exit ${code}`));
    child.unref();
    pid = child.pid;
  } finally {
    await fh.close();
  }
  if (pid === undefined) return { error: exited ?? 'it could not be started' };
  // recorded before it is waited for: a kumo killed now leaves a daemon the next command finds
  await onSpawn?.(pid);
  const end = Date.now() + READY_MS;
  let delay = 5;
  for (;;) {
    if (await socketReady(socket)) return { pid };
    if (exited !== undefined || !processLive(pid)) return { error: `${await lastLine(log)} (${exited ?? 'exited'})` };
    if (Date.now() > end) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      return { error: `no socket within ${READY_MS / 1000} s` };
    }
    await sleep(delay);
    delay = Math.min(100, delay * 2);
  }
}

let probeCache: Map<string, Promise<string | undefined>> | undefined;

/**
 * Whether virtiofsd runs here for this user: started for real on a scratch folder, then stopped.
 * undefined when it does; else what it said. Asked once per binary and process.
 */
export function probeVirtiofsd(bin: string, tmpDir: string): Promise<string | undefined> {
  probeCache ??= new Map();
  let p = probeCache.get(bin);
  if (!p) {
    p = (async () => {
      const dir = await mkdtemp(join(tmpDir, 'virtiofsd-probe-'));
      try {
        const r = await spawnVirtiofsd(bin, dir, join(dir, 's'), join(dir, 'log'));
        if ('error' in r) return r.error;
        try {
          process.kill(r.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        return undefined;
      } finally {
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      }
    })();
    probeCache.set(bin, p);
  }
  return p;
}

/** Forget the probe's answers (tests that change the environment). */
export function forgetVirtiofsdProbe(): void {
  probeCache = undefined;
}

/**
 * Choose each mount's transport (the QEMU driver's `planMounts`): see the top of this file.
 * Nothing is started.
 */
export async function planQemuMounts(paths: KumoPaths, mounts: readonly MountSpec[], o: { type: MountTypeChoice; onEvent?: EventSink }): Promise<ResolvedMount[]> {
  const em = new Emitter(o.onEvent);
  const wanted = (m: MountSpec): MountType | undefined => m.type ?? (o.type === 'auto' ? undefined : o.type);
  let unavailable: KumoError | undefined;
  if (mounts.some((m) => wanted(m) !== '9p')) {
    const found = await findVirtiofsd();
    if (!found.path) unavailable = new VirtiofsdMissingError(found.looked);
    else {
      const why = await probeVirtiofsd(found.path, paths.tmp);
      if (why) unavailable = new VirtiofsUnavailableError(found.path, why);
    }
  }
  let warned = false;
  const roNote = (m: MountSpec) =>
    em.info(`${m.host} -> ${m.guest}: read-only in the guest (mounted ro); QEMU 7.2's virtiofsd cannot refuse writes itself, so root in the guest could remount it: --mount-type 9p makes QEMU refuse them (guest kernels with 9p)`);
  return resolveMounts(mounts, (m) => {
    const w = wanted(m);
    if (w === 'virtiofs') {
      if (unavailable) throw unavailable;
      if (m.host.includes(',')) throw new KumoError('VIRTIOFS_UNAVAILABLE', 'environment', `virtiofsd cannot share ${m.host}: its options cannot carry a ',' in a path`, { hint: 'use --mount-type 9p for this folder, or rename it' });
      if (m.readOnly) roNote(m);
      return 'virtiofs';
    }
    if (w === '9p') return '9p';
    // left to kumo
    if (m.host.includes(',')) return '9p';
    if (unavailable) {
      if (!warned) em.warn(`shared folders go over 9p: ${unavailable.message} (${unavailable.hint ?? ''}); the guest kernel needs 9p (Debian's cloud kernel has none)`);
      warned = true;
      return '9p';
    }
    if (m.readOnly) roNote(m);
    return 'virtiofs';
  });
}

/**
 * Start the virtiofsd of each virtiofs mount of the instance (stale ones were stopped already);
 * on a failure the ones started are stopped again.
 */
export async function startVirtiofsds(rt: InstanceRuntime): Promise<void> {
  const vfs = (rt.mounts ?? []).filter((m) => m.type === 'virtiofs');
  for (const m of rt.mounts ?? []) {
    const ok = await stat(m.host).then((s) => s.isDirectory(), () => false);
    if (!ok) throw new MountSourceMissingError(rt.name, m.host);
  }
  if (!vfs.length) return;
  const found = await findVirtiofsd();
  if (!found.path) throw new VirtiofsdMissingError(found.looked);
  try {
    for (const m of vfs) {
      const files = virtiofsdFilesIn(rt.dir, m.tag);
      const r = await spawnVirtiofsd(found.path, m.host, files.socket, files.log, async (pid) => {
        const rec: VirtiofsdRecord = { pid, tag: m.tag, socket: files.socket };
        const boot = bootId();
        if (boot !== undefined) rec.boot = boot;
        const start = processStartTime(pid);
        if (start !== undefined) rec.start = start;
        await writeJsonAtomic(files.pid, rec);
      });
      if ('error' in r) throw new VirtiofsdFailedError(rt.name, m.tag, r.error, files.log);
      debug(`virtiofs: virtiofsd ${r.pid} serves ${m.host} as ${m.tag}`);
    }
  } catch (e) {
    await stopVirtiofsds(rt.dir);
    throw e;
  }
}

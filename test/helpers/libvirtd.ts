/**
 * A real libvirtd for tests on this machine (no systemd here, so nobody else starts one).
 *
 * - Runs as root (libvirt's privileged daemon: qemu:///system), in a private mount namespace
 *   (`unshare -m`) where a temp folder is bind-mounted over /etc/libvirt: its qemu.conf runs QEMU
 *   as root with no security driver and no virtlogd (so QEMU reads disks in a temp KUMO_HOME of
 *   mode 0700), and the domains it defines live in that temp folder. /etc/libvirt itself is
 *   never edited.
 * - Reached only through a unix socket in a private folder (STATE/sock, mode 0700, in the root-only
 *   STATE of mode 0700): URI qemu+unix:///system?socket=STATE/sock/libvirt-sock. No TCP or TLS
 *   listener, so no other local user can reach a daemon that runs QEMU as root. startLibvirtd()
 *   sets LIBVIRT_DEFAULT_URI to it for the test process (and the kumo commands it runs), so code
 *   that uses libvirt's default URI reaches the test daemon and never a system one.
 * - Debian's daemon refuses to start without the `libvirt-qemu` user (its built-in default even
 *   when qemu.conf says root): it is created once, with the groups `kvm` and `libvirt-qemu`, as
 *   Debian's libvirt-daemon-system package would (useradd/groupadd; idempotent).
 * - Shared by test files that run at the same time: the first starts it, each user registers
 *   its pid (and start time), the last one to leave destroys every domain in it and stops it.
 * - It never outlives the tests: a detached watchdog started with the daemon checks every second
 *   that a registered user is alive and stops the daemon (domains first) once none is, so a test
 *   process killed by any means (kill -9 included) takes the daemon with it. A daemon left by a
 *   run whose watchdog died too (or by an older helper) is stopped by the next start; .ci/run
 *   stops it at the end (`stopTestLibvirtd`).
 * - An already running libvirtd that this helper did not start is not used (its qemu.conf is
 *   unknown): the helper refuses with a message.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile, unlink, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, ownerAlive, processStartTime, type LockOwner } from '../../src/core/lock.js';
import { pidAlive } from '../../src/core/exec.js';
import { sleep } from '../../src/core/time.js';

/** The helper's root-only state folder (daemon.json, users/, sock/). */
export const STATE = '/run/kumo-test-libvirtd';
const DAEMON_JSON = join(STATE, 'daemon.json');
const LOCK = join(STATE, 'daemon.lock');
const USERS = join(STATE, 'users');
const SOCK_DIR = join(STATE, 'sock');
const SOCK = join(SOCK_DIR, 'libvirt-sock');
const PID_FILE = join(STATE, 'libvirtd.pid');
/** The system daemon's socket: one answering there was not started by this helper. */
const SYSTEM_SOCK = '/run/libvirt/libvirt-sock';
const URI = `qemu+unix:///system?socket=${SOCK}`;

export interface TestLibvirtd {
  /** qemu+unix:///system?socket=PATH: the test daemon's private socket. */
  uri: string;
  /** This user's share of the daemon ends; the last one stops it. */
  release(): Promise<void>;
}

interface DaemonState {
  pid: number;
  /** The URI that reaches it (absent in the state of an older helper, whose daemon used the system socket and TCP). */
  uri?: string;
  etc: string;
  watchdog?: number;
}

/** Why libvirtd tests cannot run here (undefined when they can). */
export function libvirtdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the libvirtd tests need root (the privileged daemon)';
  for (const p of ['/usr/sbin/libvirtd', '/usr/bin/virsh', '/usr/bin/unshare']) if (!existsSync(p)) return `${p} is missing (apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)`;
  return undefined;
}

function sh(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The system accounts Debian's libvirt expects (created by libvirt-daemon-system's postinst). */
export function ensureLibvirtAccounts(): void {
  for (const g of ['kvm', 'libvirt-qemu', 'libvirt']) if (sh('getent', ['group', g]).status !== 0) sh('groupadd', ['-r', g]);
  if (sh('id', ['libvirt-qemu']).status !== 0) {
    const r = sh('useradd', ['-r', '-g', 'libvirt-qemu', '-G', 'kvm', '-d', '/var/lib/libvirt', '-M', '-s', '/usr/sbin/nologin', '-c', 'Libvirt Qemu', 'libvirt-qemu']);
    if (r.status !== 0 && sh('id', ['libvirt-qemu']).status !== 0) throw new Error(`cannot create the libvirt-qemu user: ${r.out}`);
  }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(STATE, { recursive: true, mode: 0o700 });
  await chmod(STATE, 0o700);
  const lock = await acquireLock(LOCK, { op: 'start or stop the test libvirtd', what: 'the test libvirtd', waitMs: 120_000 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** The recorded daemon, if its process is alive. */
async function readState(): Promise<DaemonState | undefined> {
  try {
    const s = JSON.parse(await readFile(DAEMON_JSON, 'utf8')) as DaemonState;
    return pidAlive(s.pid) ? s : undefined;
  } catch {
    return undefined;
  }
}

function virsh(uri: string, args: string[]): { status: number | null; out: string } {
  return sh('virsh', ['-q', '-c', uri, ...args]);
}

/** Registered users whose process is alive; the files of dead ones are removed. */
async function liveUsers(): Promise<number[]> {
  const live: number[] = [];
  for (const f of await readdir(USERS).catch(() => [] as string[])) {
    let o: LockOwner = { pid: Number(f), op: 'test', at: '' };
    try {
      o = { ...o, ...(JSON.parse(await readFile(join(USERS, f), 'utf8')) as Partial<LockOwner>) };
    } catch {
      /* an older helper's empty file: the pid alone */
    }
    if (ownerAlive(o)) live.push(o.pid);
    else await unlink(join(USERS, f)).catch(() => {});
  }
  return live;
}

async function startDaemon(): Promise<DaemonState> {
  ensureLibvirtAccounts();
  const etc = await mkdtemp('/tmp/kumo-test-libvirtd-etc-');
  for (const f of ['libvirt.conf', 'libvirt-admin.conf']) if (existsSync(join('/etc/libvirt', f))) await copyFile(join('/etc/libvirt', f), join(etc, f));
  await rm(SOCK_DIR, { recursive: true, force: true });
  await mkdir(SOCK_DIR, { mode: 0o700 });
  await chmod(SOCK_DIR, 0o700);
  await writeFile(
    join(etc, 'libvirtd.conf'),
    [
      '# kumo tests: a daemon for the test run only, reached by root through a socket in a 0700 folder',
      'listen_tls = 0',
      'listen_tcp = 0',
      `unix_sock_dir = "${SOCK_DIR}"`,
      'unix_sock_group = "root"',
      'unix_sock_rw_perms = "0700"',
      'unix_sock_ro_perms = "0700"',
      'unix_sock_admin_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'log_outputs = "3:stderr"',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(etc, 'qemu.conf'),
    ['# kumo tests: QEMU as root (disks in a 0700 temp KUMO_HOME), no security driver, no virtlogd', 'user = "root"', 'group = "root"', 'dynamic_ownership = 0', 'security_driver = "none"', 'stdio_handler = "file"', ''].join('\n'),
  );
  if (existsSync(SYSTEM_SOCK)) {
    const r = virsh('qemu:///system', ['uri']);
    if (r.status === 0) throw new Error('a libvirtd that the tests did not start is running; stop it (its qemu.conf may not let QEMU read a temp KUMO_HOME) or run the libvirt tests elsewhere');
  }
  await rm(PID_FILE, { force: true });
  // No --listen: unix sockets only.
  const r = sh('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/libvirt && exec libvirtd -d --pid-file "$1" --config /etc/libvirt/libvirtd.conf', etc, PID_FILE]);
  if (r.status !== 0) throw new Error(`libvirtd did not start: ${r.out}`);
  const end = Date.now() + 30_000;
  for (;;) {
    if (existsSync(SOCK) && virsh(URI, ['uri']).status === 0) break;
    if (Date.now() > end) throw new Error(`libvirtd did not answer within 30 s`);
    await sleep(200);
  }
  const pid = Number((await readFile(PID_FILE, 'utf8')).trim());
  const st: DaemonState = { pid, uri: URI, etc };
  const w = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(import.meta.url)}); await m.watchdog(${pid});`], { detached: true, stdio: 'ignore' });
  w.unref();
  if (w.pid) st.watchdog = w.pid;
  await writeFile(DAEMON_JSON, JSON.stringify(st));
  return st;
}

async function stopDaemon(st: DaemonState): Promise<void> {
  const uri = st.uri ?? 'qemu:///system';
  // Domains outlive the daemon: destroy and undefine them first, so no QEMU is left running.
  const list = virsh(uri, ['list', '--all', '--name']);
  for (const d of list.out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh(uri, ['destroy', d]);
    virsh(uri, ['undefine', '--nvram', d]);
  }
  for (const p of virsh(uri, ['pool-list', '--all', '--name']).out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh(uri, ['pool-destroy', p]);
    virsh(uri, ['pool-undefine', p]);
  }
  try {
    process.kill(st.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const end = Date.now() + 5000;
  while (pidAlive(st.pid) && Date.now() < end) await sleep(100);
  if (pidAlive(st.pid)) {
    try {
      process.kill(st.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (pidAlive(st.pid)) await sleep(50);
  }
  if (st.watchdog && st.watchdog !== process.pid && pidAlive(st.watchdog)) {
    try {
      process.kill(st.watchdog, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await rm(st.uri ? PID_FILE : '/run/libvirtd.pid', { force: true });
  await rm(st.etc, { recursive: true, force: true });
  await rm(SOCK_DIR, { recursive: true, force: true });
  await rm(DAEMON_JSON, { force: true });
}

/**
 * The watchdog (a detached process started with the daemon): once no registered user of the
 * daemon `pid` is alive, it stops the daemon; it ends when the daemon is gone.
 */
export async function watchdog(pid: number): Promise<void> {
  for (;;) {
    await sleep(1000);
    if (!pidAlive(pid)) return;
    if ((await liveUsers()).length) continue;
    const done = await withLock(async () => {
      const st = await readState();
      if (!st || st.pid !== pid) return true;
      if ((await liveUsers()).length) return false;
      await stopDaemon({ ...st, watchdog: process.pid });
      return true;
    }).catch(() => false);
    if (done) return;
  }
}

/** Stop the test daemon whoever uses it (.ci/run calls this at the end of a run). */
export async function stopTestLibvirtd(): Promise<void> {
  if (!existsSync(STATE)) return;
  await withLock(async () => {
    const st = await readState();
    if (st) await stopDaemon(st);
  });
}

/** Start (or join) the test libvirtd. Call `release()` when done (in an `after` hook). */
export async function startLibvirtd(): Promise<TestLibvirtd> {
  const why = libvirtdUnavailable();
  if (why) throw new Error(why);
  // A daemon of an older helper (TCP, the system socket) that other tests still use: wait for them.
  for (const end = Date.now() + 30 * 60_000; ; ) {
    const joined = await withLock(async () => {
      let s = await readState();
      // A daemon nobody watches (its watchdog died with its users) or an older helper's is
      // stale once no user is left: stop it and start afresh.
      if (s && (!s.uri || !s.watchdog || !pidAlive(s.watchdog)) && !(await liveUsers()).length) {
        await stopDaemon(s);
        s = undefined;
      }
      if (s && !s.uri) return false;
      s ??= await startDaemon();
      await mkdir(USERS, { recursive: true, mode: 0o700 });
      const me: LockOwner = { pid: process.pid, op: 'test', at: new Date().toISOString() };
      const start = processStartTime(process.pid);
      if (start !== undefined) me.start = start;
      await writeFile(join(USERS, String(process.pid)), JSON.stringify(me));
      return true;
    });
    if (joined) break;
    if (Date.now() > end) throw new Error(`a test libvirtd started by an older helper (TCP, the system socket) is still in use by process ${(await liveUsers()).join(', ')}`);
    await sleep(2000);
  }
  process.env.LIBVIRT_DEFAULT_URI = URI;
  let released = false;
  return {
    uri: URI,
    release: async () => {
      if (released) return;
      released = true;
      await withLock(async () => {
        await unlink(join(USERS, String(process.pid))).catch(() => {});
        if ((await liveUsers()).length) return;
        const s = await readState();
        if (s) await stopDaemon(s);
      });
    },
  };
}

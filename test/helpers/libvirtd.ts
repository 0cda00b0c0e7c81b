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
 * - Two profiles, each its own daemon, state folder and socket:
 *   - `root` (the default): the above, QEMU as root with no security driver and no virtlogd;
 *   - `stock`: libvirt configured as Debian ships it. Its qemu.conf sets nothing, so every setting
 *     is the built-in default of Debian's build: QEMU runs as `libvirt-qemu`, dynamic ownership is
 *     on, the DAC security driver relabels disks, and QEMU's output goes through virtlogd (started
 *     with it). /run/libvirt, /var/lib/libvirt and /var/log/libvirt are private temp folders of its
 *     mount namespace, so its pools, managed saves and logs never land on the host's. (AppArmor,
 *     which Debian's daemon also uses where the kernel has it, is absent from this kernel.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile, unlink, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, ownerAlive, processStartTime, type LockOwner } from '../../src/core/lock.js';
import { pidAlive } from '../../src/core/exec.js';
import { sleep } from '../../src/core/time.js';

/** The helper's root-only state folder of the `root` profile (daemon.json, users/, sock/). */
export const STATE = '/run/kumo-test-libvirtd';
/** The system daemon's socket: one answering there was not started by this helper. */
const SYSTEM_SOCK = '/run/libvirt/libvirt-sock';

export type DaemonProfile = 'root' | 'stock';
export const PROFILES: readonly DaemonProfile[] = ['root', 'stock'];

/** The files of one profile's daemon. */
export function profileFiles(profile: DaemonProfile) {
  const state = profile === 'root' ? STATE : `${STATE}-${profile}`;
  const sockDir = join(state, 'sock');
  const sock = join(sockDir, 'libvirt-sock');
  return {
    state,
    daemonJson: join(state, 'daemon.json'),
    lock: join(state, 'daemon.lock'),
    users: join(state, 'users'),
    sockDir,
    sock,
    pidFile: join(state, 'libvirtd.pid'),
    /** virtlogd's pid file (the stock profile). */
    virtlogdPid: join(state, 'virtlogd.pid'),
    uri: `qemu+unix:///system?socket=${sock}`,
  };
}

export interface TestLibvirtd {
  /** qemu+unix:///system?socket=PATH: the test daemon's private socket. */
  uri: string;
  /** This user's share of the daemon ends; the last one stops it. */
  release(): Promise<void>;
}

interface DaemonState {
  pid: number;
  /** The profile (absent in the state of an older helper: root). */
  profile?: DaemonProfile;
  /** virtlogd of the stock profile. */
  virtlogd?: number;
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

async function withLock<T>(profile: DaemonProfile, fn: () => Promise<T>): Promise<T> {
  const f = profileFiles(profile);
  await mkdir(f.state, { recursive: true, mode: 0o700 });
  await chmod(f.state, 0o700);
  const lock = await acquireLock(f.lock, { op: 'start or stop the test libvirtd', what: 'the test libvirtd', waitMs: 120_000 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** The recorded daemon, if its process is alive. */
async function readState(profile: DaemonProfile): Promise<DaemonState | undefined> {
  try {
    const s = JSON.parse(await readFile(profileFiles(profile).daemonJson, 'utf8')) as DaemonState;
    return pidAlive(s.pid) ? s : undefined;
  } catch {
    return undefined;
  }
}

function virsh(uri: string, args: string[]): { status: number | null; out: string } {
  return sh('virsh', ['-q', '-c', uri, ...args]);
}

/** Registered users whose process is alive; the files of dead ones are removed. */
async function liveUsers(profile: DaemonProfile): Promise<number[]> {
  const USERS = profileFiles(profile).users;
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

/** The stock profile's private folders, bind-mounted over the daemon's own in its namespace. */
const STOCK_BINDS = ['/run/libvirt', '/var/lib/libvirt', '/var/log/libvirt'] as const;

async function startDaemon(profile: DaemonProfile): Promise<DaemonState> {
  ensureLibvirtAccounts();
  const f = profileFiles(profile);
  const etc = await mkdtemp(`/tmp/kumo-test-libvirtd-${profile}-etc-`);
  for (const n of ['libvirt.conf', 'libvirt-admin.conf']) if (existsSync(join('/etc/libvirt', n))) await copyFile(join('/etc/libvirt', n), join(etc, n));
  await rm(f.sockDir, { recursive: true, force: true });
  await mkdir(f.sockDir, { mode: 0o700 });
  await chmod(f.sockDir, 0o700);
  await writeFile(
    join(etc, 'libvirtd.conf'),
    [
      '# kumo tests: a daemon for the test run only, reached by root through a socket in a 0700 folder',
      'listen_tls = 0',
      'listen_tcp = 0',
      `unix_sock_dir = "${f.sockDir}"`,
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
    profile === 'root'
      ? ['# kumo tests: QEMU as root (disks in a 0700 temp KUMO_HOME), no security driver, no virtlogd', 'user = "root"', 'group = "root"', 'dynamic_ownership = 0', 'security_driver = "none"', 'stdio_handler = "file"', ''].join('\n')
      : '# kumo tests: as Debian ships it (every line of its qemu.conf is a comment): QEMU as libvirt-qemu, dynamic ownership, DAC, virtlogd\n',
  );
  if (existsSync(SYSTEM_SOCK)) {
    const r = virsh('qemu:///system', ['uri']);
    if (r.status === 0) throw new Error('a libvirtd that the tests did not start is running; stop it (its qemu.conf may not let QEMU read a temp KUMO_HOME) or run the libvirt tests elsewhere');
  }
  await rm(f.pidFile, { force: true });
  const vlPid = f.virtlogdPid;
  let script = 'mount --bind "$0" /etc/libvirt && exec libvirtd -d --pid-file "$1" --config /etc/libvirt/libvirtd.conf';
  const args = [etc, f.pidFile];
  if (profile === 'stock') {
    // private /run/libvirt, /var/lib/libvirt, /var/log/libvirt (traversable by libvirt-qemu, as Debian's are), and virtlogd beside libvirtd
    const binds: string[] = [];
    for (const [i, target] of STOCK_BINDS.entries()) {
      const src = join(etc, `bind-${i}`);
      await mkdir(src, { mode: 0o755 });
      await chmod(src, 0o755);
      binds.push(`mount --bind "${src}" ${target}`);
      if (!existsSync(target)) await mkdir(target, { recursive: true, mode: 0o755 });
    }
    await rm(vlPid, { force: true });
    script = `mount --bind "$0" /etc/libvirt && ${binds.join(' && ')} && mkdir -p /var/log/libvirt/qemu && virtlogd -d -p "$2" && exec libvirtd -d --pid-file "$1" --config /etc/libvirt/libvirtd.conf`;
    args.push(vlPid);
  }
  // No --listen: unix sockets only.
  const r = sh('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, ...args]);
  if (r.status !== 0) throw new Error(`libvirtd did not start: ${r.out}`);
  const end = Date.now() + 30_000;
  for (;;) {
    if (existsSync(f.sock) && virsh(f.uri, ['uri']).status === 0) break;
    if (Date.now() > end) throw new Error(`libvirtd did not answer within 30 s`);
    await sleep(200);
  }
  const pid = Number((await readFile(f.pidFile, 'utf8')).trim());
  const st: DaemonState = { pid, profile, uri: f.uri, etc };
  if (profile === 'stock') st.virtlogd = Number((await readFile(vlPid, 'utf8')).trim());
  const w = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(import.meta.url)}); await m.watchdog(${pid}, ${JSON.stringify(profile)});`], { detached: true, stdio: 'ignore' });
  w.unref();
  if (w.pid) st.watchdog = w.pid;
  await writeFile(f.daemonJson, JSON.stringify(st));
  return st;
}

async function kill(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const end = Date.now() + 5000;
  while (pidAlive(pid) && Date.now() < end) await sleep(100);
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (pidAlive(pid)) await sleep(50);
  }
}

async function stopDaemon(st: DaemonState): Promise<void> {
  const f = profileFiles(st.profile ?? 'root');
  const uri = st.uri ?? 'qemu:///system';
  // Domains outlive the daemon: destroy and undefine them first, so no QEMU is left running.
  const list = virsh(uri, ['list', '--all', '--name']);
  for (const d of list.out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh(uri, ['destroy', d]);
    virsh(uri, ['undefine', '--nvram', '--managed-save', d]);
  }
  for (const p of virsh(uri, ['pool-list', '--all', '--name']).out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh(uri, ['pool-destroy', p]);
    virsh(uri, ['pool-undefine', p]);
  }
  await kill(st.pid);
  if (st.virtlogd && pidAlive(st.virtlogd)) await kill(st.virtlogd);
  if (st.watchdog && st.watchdog !== process.pid && pidAlive(st.watchdog)) {
    try {
      process.kill(st.watchdog, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await rm(st.uri ? f.pidFile : '/run/libvirtd.pid', { force: true });
  await rm(st.etc, { recursive: true, force: true });
  await rm(f.sockDir, { recursive: true, force: true });
  await rm(f.daemonJson, { force: true });
}

/**
 * The watchdog (a detached process started with the daemon): once no registered user of the
 * daemon `pid` is alive, it stops the daemon; it ends when the daemon is gone.
 */
export async function watchdog(pid: number, profile: DaemonProfile = 'root'): Promise<void> {
  for (;;) {
    await sleep(1000);
    if (!pidAlive(pid)) return;
    if ((await liveUsers(profile)).length) continue;
    const done = await withLock(profile, async () => {
      const st = await readState(profile);
      if (!st || st.pid !== pid) return true;
      if ((await liveUsers(profile)).length) return false;
      await stopDaemon({ ...st, watchdog: process.pid });
      return true;
    }).catch(() => false);
    if (done) return;
  }
}

/** Stop the test daemons whoever uses them (.ci/run calls this at the end of a run). */
export async function stopTestLibvirtd(): Promise<void> {
  for (const profile of PROFILES) {
    if (!existsSync(profileFiles(profile).state)) continue;
    await withLock(profile, async () => {
      const st = await readState(profile);
      if (st) await stopDaemon(st);
    });
  }
}

/**
 * Start (or join) the test libvirtd of a profile (see the module comment). Call `release()` when
 * done (in an `after` hook). It sets LIBVIRT_DEFAULT_URI to the daemon's URI.
 */
export async function startLibvirtd(profile: DaemonProfile = 'root'): Promise<TestLibvirtd> {
  const why = libvirtdUnavailable();
  if (why) throw new Error(why);
  const f = profileFiles(profile);
  // A daemon of an older helper (TCP, the system socket) that other tests still use: wait for them.
  for (const end = Date.now() + 30 * 60_000; ; ) {
    const joined = await withLock(profile, async () => {
      let s = await readState(profile);
      // A daemon nobody watches (its watchdog died with its users) or an older helper's is
      // stale once no user is left: stop it and start afresh.
      if (s && (!s.uri || !s.watchdog || !pidAlive(s.watchdog)) && !(await liveUsers(profile)).length) {
        await stopDaemon(s);
        s = undefined;
      }
      if (s && !s.uri) return false;
      s ??= await startDaemon(profile);
      await mkdir(f.users, { recursive: true, mode: 0o700 });
      const me: LockOwner = { pid: process.pid, op: 'test', at: new Date().toISOString() };
      const start = processStartTime(process.pid);
      if (start !== undefined) me.start = start;
      await writeFile(join(f.users, String(process.pid)), JSON.stringify(me));
      return true;
    });
    if (joined) break;
    if (Date.now() > end) throw new Error(`a test libvirtd started by an older helper (TCP, the system socket) is still in use by process ${(await liveUsers(profile)).join(', ')}`);
    await sleep(2000);
  }
  process.env.LIBVIRT_DEFAULT_URI = f.uri;
  let released = false;
  return {
    uri: f.uri,
    release: async () => {
      if (released) return;
      released = true;
      await withLock(profile, async () => {
        await unlink(join(f.users, String(process.pid))).catch(() => {});
        if ((await liveUsers(profile)).length) return;
        const s = await readState(profile);
        if (s) await stopDaemon(s);
      });
    },
  };
}

/**
 * Stop or start the stock daemon's virtlogd (in the daemon's mount namespace), for tests of a
 * daemon whose log daemon is down. The caller must have joined the stock daemon.
 */
export async function stockVirtlogd(action: 'stop' | 'start'): Promise<void> {
  await withLock('stock', async () => {
    const st = await readState('stock');
    if (!st) throw new Error('the stock test libvirtd is not running');
    const f = profileFiles('stock');
    if (action === 'stop') {
      if (st.virtlogd && pidAlive(st.virtlogd)) await kill(st.virtlogd);
      delete st.virtlogd;
    } else if (!st.virtlogd || !pidAlive(st.virtlogd)) {
      const vlPid = f.virtlogdPid;
      await rm(vlPid, { force: true });
      const r = sh('nsenter', ['-t', String(st.pid), '-m', 'virtlogd', '-d', '-p', vlPid]);
      if (r.status !== 0) throw new Error(`virtlogd did not start: ${r.out}`);
      for (const end = Date.now() + 10_000; !existsSync(vlPid); ) {
        if (Date.now() > end) throw new Error('virtlogd wrote no pid file within 10 s');
        await sleep(100);
      }
      st.virtlogd = Number((await readFile(vlPid, 'utf8')).trim());
    }
    await writeFile(f.daemonJson, JSON.stringify(st));
  });
}

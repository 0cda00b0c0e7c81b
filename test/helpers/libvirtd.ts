/**
 * A real libvirtd for tests on this machine (no systemd here, so nobody else starts one).
 *
 * - Runs as root (libvirt's privileged daemon: qemu:///system), in a private mount namespace
 *   (`unshare -m`) where a temp folder is bind-mounted over /etc/libvirt: its qemu.conf runs QEMU
 *   as root with no security driver and no virtlogd (so QEMU reads disks in a temp KUMO_HOME of
 *   mode 0700), and the domains it defines live in that temp folder. /etc/libvirt itself is
 *   never edited.
 * - Listens on the loopback with TCP and no authentication (127.0.0.1:<free port>), for the
 *   remote-URI test (qemu+tcp://127.0.0.1:PORT/system). Only while the tests run.
 * - Debian's daemon refuses to start without the `libvirt-qemu` user (its built-in default even
 *   when qemu.conf says root): it is created once, with the groups `kvm` and `libvirt-qemu`, as
 *   Debian's libvirt-daemon-system package would (useradd/groupadd; idempotent).
 * - Shared by test files that run at the same time: the first starts it, each user registers
 *   its pid, the last one to leave destroys every domain in it and stops it.
 * - An already running libvirtd that this helper did not start is not used (its qemu.conf is
 *   unknown): the helper refuses with a message.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, unlink, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../src/driver/net.js';
import { acquireLock } from '../../src/core/lock.js';
import { pidAlive } from '../../src/core/exec.js';
import { sleep } from '../../src/core/time.js';

const STATE = '/run/kumo-test-libvirtd';
const DAEMON_JSON = join(STATE, 'daemon.json');
const LOCK = join(STATE, 'daemon.lock');
const SOCK = '/run/libvirt/libvirt-sock';

export interface TestLibvirtd {
  /** qemu:///system of the test daemon. */
  uri: string;
  /** qemu+tcp://127.0.0.1:PORT/system (auth none, loopback only). */
  tcpUri: string;
  /** This user's share of the daemon ends; the last one stops it. */
  release(): Promise<void>;
}

interface DaemonState {
  pid: number;
  tcpPort: number;
  etc: string;
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
  const lock = await acquireLock(LOCK, { op: 'start or stop the test libvirtd', what: 'the test libvirtd', waitMs: 120_000 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

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

async function startDaemon(): Promise<DaemonState> {
  ensureLibvirtAccounts();
  const etc = await mkdtemp('/tmp/kumo-test-libvirtd-etc-');
  for (const f of ['libvirt.conf', 'libvirt-admin.conf']) if (existsSync(join('/etc/libvirt', f))) await copyFile(join('/etc/libvirt', f), join(etc, f));
  const tcpPort = await freePort();
  await writeFile(
    join(etc, 'libvirtd.conf'),
    [
      '# kumo tests: a daemon for the test run only',
      'listen_tls = 0',
      'listen_tcp = 1',
      'listen_addr = "127.0.0.1"',
      `tcp_port = "${tcpPort}"`,
      'auth_tcp = "none"',
      'unix_sock_group = "root"',
      'unix_sock_rw_perms = "0770"',
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
  if (existsSync(SOCK)) {
    const r = virsh('qemu:///system', ['uri']);
    if (r.status === 0) throw new Error('a libvirtd that the tests did not start is running; stop it (its qemu.conf may not let QEMU read a temp KUMO_HOME) or run the libvirt tests elsewhere');
  }
  await rm('/run/libvirtd.pid', { force: true });
  const r = sh('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/libvirt && exec libvirtd -d --listen --config /etc/libvirt/libvirtd.conf', etc]);
  if (r.status !== 0) throw new Error(`libvirtd did not start: ${r.out}`);
  const end = Date.now() + 30_000;
  for (;;) {
    if (existsSync(SOCK) && virsh('qemu:///system', ['uri']).status === 0) break;
    if (Date.now() > end) throw new Error(`libvirtd did not answer within 30 s`);
    await sleep(200);
  }
  const pid = Number((await readFile('/run/libvirtd.pid', 'utf8')).trim());
  const st: DaemonState = { pid, tcpPort, etc };
  await writeFile(DAEMON_JSON, JSON.stringify(st));
  return st;
}

async function stopDaemon(st: DaemonState): Promise<void> {
  // Domains outlive the daemon: destroy and undefine them first, so no QEMU is left running.
  const list = virsh('qemu:///system', ['list', '--all', '--name']);
  for (const d of list.out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh('qemu:///system', ['destroy', d]);
    virsh('qemu:///system', ['undefine', '--nvram', d]);
  }
  for (const p of virsh('qemu:///system', ['pool-list', '--all', '--name']).out.split('\n').map((l) => l.trim()).filter(Boolean)) {
    virsh('qemu:///system', ['pool-destroy', p]);
    virsh('qemu:///system', ['pool-undefine', p]);
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
  await rm('/run/libvirtd.pid', { force: true });
  await rm(st.etc, { recursive: true, force: true });
  await rm(DAEMON_JSON, { force: true });
}

/** Start (or join) the test libvirtd. Call `release()` when done (in an `after` hook). */
export async function startLibvirtd(): Promise<TestLibvirtd> {
  const why = libvirtdUnavailable();
  if (why) throw new Error(why);
  const st = await withLock(async () => {
    const s = (await readState()) ?? (await startDaemon());
    await mkdir(join(STATE, 'users'), { recursive: true });
    await writeFile(join(STATE, 'users', String(process.pid)), '');
    return s;
  });
  let released = false;
  return {
    uri: 'qemu:///system',
    tcpUri: `qemu+tcp://127.0.0.1:${st.tcpPort}/system`,
    release: async () => {
      if (released) return;
      released = true;
      await withLock(async () => {
        await unlink(join(STATE, 'users', String(process.pid))).catch(() => {});
        const users = (await readdir(join(STATE, 'users')).catch(() => [] as string[])).filter((p) => pidAlive(Number(p)));
        if (users.length) return;
        const s = await readState();
        if (s) await stopDaemon(s);
      });
    },
  };
}

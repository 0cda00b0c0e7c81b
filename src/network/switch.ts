/**
 * One VDE switch per network (`vde_switch` from Debian's vde2), run by kumo as an ordinary user:
 * daemonised, its control folder in the network's folder (QEMU joins it with -netdev vde,sock=),
 * its pid in switch.pid and, beside it, who that pid was (boot id and start time, as the QEMU
 * driver keeps for its processes), so a switch is found again after kumo exits and a dead one
 * (killed, or left from before a reboot) is told apart from a live one and started again.
 *
 * Called under the network store's lock (./store.ts lockNetworks): two kumo commands never start
 * two switches for one network.
 */
import { readFile, rm, stat, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { EnvironmentError, KumoError, ToolMissingError } from '../core/errors.js';
import { run, which } from '../core/exec.js';
import { writeJsonAtomic } from '../core/fs.js';
import { bootId, ownerAlive, processStartTime } from '../core/lock.js';
import { pidAlive } from '../core/exec.js';
import { sleep } from '../core/time.js';
import type { NetworkFiles } from './store.js';

export const VDE_SWITCH = 'vde_switch';
/** Longest path a unix socket can have (sun_path); the switch's sockets live under its folder. */
const SUN_PATH_MAX = 107;

interface SwitchPidRecord {
  pid: number;
  boot?: string;
  start?: number;
}

export interface SwitchState {
  running: boolean;
  pid?: number;
  /** What was found when it is not running cleanly ("switch.pid names pid 123, which is not running"). */
  detail?: string;
}

function live(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const s = st[st.lastIndexOf(')') + 2];
    return s !== 'Z' && s !== 'X';
  } catch {
    return false;
  }
}

async function readRecord(f: NetworkFiles): Promise<SwitchPidRecord | undefined> {
  try {
    const o = JSON.parse(await readFile(`${f.pidFile}.boot`, 'utf8')) as SwitchPidRecord;
    return typeof o.pid === 'number' && o.pid > 0 ? o : undefined;
  } catch {
    return undefined;
  }
}

async function readPid(f: NetworkFiles): Promise<number | undefined> {
  try {
    const t = (await readFile(f.pidFile, 'utf8')).trim();
    return /^\d{1,10}$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is this network's switch: alive, vde_switch, its argv names our folder, and the very process recorded. */
async function isOurSwitch(pid: number, f: NetworkFiles): Promise<boolean> {
  if (!live(pid)) return false;
  let argv: string[];
  try {
    argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return false;
  }
  if (!argv[0] || !argv[0].endsWith(VDE_SWITCH)) return false;
  const i = argv.indexOf('--sock');
  if (i < 0 || argv[i + 1] !== f.socket) return false;
  const rec = await readRecord(f);
  if (rec && rec.pid === pid) {
    if (!ownerAlive(rec)) return false;
  } else {
    // No record of who it was: trust the pid file only when it was written under this boot.
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      if (m && (await stat(f.pidFile)).mtimeMs < Number(m[1]) * 1000 - 2000) return false;
    } catch {
      /* no /proc/stat: trust the argv */
    }
  }
  return true;
}

/** What is running for the network's switch, read from the host (never trusted from a stored field). */
export async function switchState(f: NetworkFiles): Promise<SwitchState> {
  const pid = await readPid(f);
  if (pid === undefined) return { running: false };
  if (await isOurSwitch(pid, f)) return { running: true, pid };
  return { running: false, detail: live(pid) ? `switch.pid names pid ${pid}, which is another program now` : `switch.pid names pid ${pid}, which is not running: the switch died` };
}

async function removeLeftovers(f: NetworkFiles): Promise<void> {
  await unlink(f.pidFile).catch(() => {});
  await unlink(`${f.pidFile}.boot`).catch(() => {});
  await rm(f.socket, { recursive: true, force: true });
}

/** The argv of the switch (pure). */
export function switchArgv(f: NetworkFiles): string[] {
  return ['--sock', f.socket, '--dirmode', '0700', '--mode', '0600', '--pidfile', f.pidFile, '--daemon'];
}

/**
 * Make sure the network's switch runs: found again when it does, started (after removing what a
 * dead one left) when it does not. Returns its state and whether it was started now.
 */
export async function ensureSwitch(f: NetworkFiles, o: { onWarn?: (msg: string) => void; signal?: AbortSignal } = {}): Promise<SwitchState & { started: boolean }> {
  const st = await switchState(f);
  if (st.running) return { ...st, started: false };
  if (st.detail) o.onWarn?.(`${st.detail}; starting it again`);
  if (`${f.socket}/ctl`.length > SUN_PATH_MAX || `${f.socket}/.00000-00000`.length > SUN_PATH_MAX)
    throw new EnvironmentError('SOCKET_PATH_TOO_LONG', `the switch's socket folder ${f.socket} is too long for a unix socket (at most ${SUN_PATH_MAX} bytes)`, {
      hint: 'use a shorter KUMO_HOME (--home DIR or KUMO_HOME=DIR)',
    });
  if (!(await which(VDE_SWITCH))) throw new ToolMissingError(VDE_SWITCH, 'vde2');
  await removeLeftovers(f);
  const r = await run(VDE_SWITCH, switchArgv(f), { allowFailure: true, timeoutMs: 20_000, ...(o.signal ? { signal: o.signal } : {}) });
  if (r.code !== 0) {
    await removeLeftovers(f);
    throw new KumoError('SWITCH_START_FAILED', 'external', `vde_switch for ${f.socket} did not start (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`, {
      hint: 'run it by hand to see why: vde_switch --sock DIR',
    });
  }
  // The daemon writes its pid file and control socket after the fork: wait for both (bounded).
  const end = Date.now() + 10_000;
  let delay = 10;
  for (;;) {
    const pid = await readPid(f);
    const ctl = await stat(`${f.socket}/ctl`).then(() => true, () => false);
    if (pid !== undefined && ctl && live(pid)) {
      const rec: SwitchPidRecord = { pid };
      const b = bootId();
      if (b !== undefined) rec.boot = b;
      const s = processStartTime(pid);
      if (s !== undefined) rec.start = s;
      await writeJsonAtomic(`${f.pidFile}.boot`, rec, 0o600);
      return { running: true, pid, started: true };
    }
    if (Date.now() > end) {
      if (pid !== undefined && live(pid)) process.kill(pid, 'SIGKILL');
      await removeLeftovers(f);
      throw new KumoError('SWITCH_START_FAILED', 'external', `vde_switch for ${f.socket} started but made no control socket within 10 s`, { hint: 'run it by hand to see why: vde_switch --sock DIR' });
    }
    await sleep(delay);
    delay = Math.min(200, delay * 2);
  }
}

/** Stop the network's switch (SIGTERM, then SIGKILL) and remove its files. Nothing running is fine. */
export async function stopSwitch(f: NetworkFiles): Promise<boolean> {
  const st = await switchState(f);
  let was = false;
  if (st.running && st.pid !== undefined) {
    was = true;
    try {
      process.kill(st.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const end = Date.now() + 5000;
    while (live(st.pid) && Date.now() < end) await sleep(25);
    if (live(st.pid)) {
      try {
        process.kill(st.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      while (live(st.pid)) await sleep(25);
    }
  }
  await removeLeftovers(f);
  return was;
}

/**
 * The QEMU driver's view of its processes: the pid file of an instance folder, and whether a pid
 * is this instance's live QEMU (not a zombie, its argv names the instance's pid file, and it is
 * the process that was started: same kernel boot, same start time).
 * Shared by the driver and its snapshots (which go through the monitor when the machine runs).
 *
 * QEMU writes qemu.pid itself (just the pid). Beside it kumo records who that pid was when it
 * was written: `qemu.pid.boot` holds the pid, the kernel's boot id and the process's start time.
 * A pid file made under another boot id is ignored (after a reboot the pid names some other
 * process, or a QEMU kumo started again with the same argv); a pid file without that record,
 * written before the kernel booted (its mtime is older than the boot time), is ignored too.
 */
import { readFile, stat, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { pidAlive } from '../../core/exec.js';
import { writeJsonAtomic } from '../../core/fs.js';
import { bootId, ownerAlive, processStartTime } from '../../core/lock.js';
import { qemuFiles } from './argv.js';

/** What kumo recorded about the QEMU that wrote qemu.pid. */
export interface PidRecord {
  pid: number;
  /** The kernel's boot id when QEMU started. */
  boot?: string;
  /** QEMU's start time, in clock ticks since boot (field 22 of /proc/PID/stat). */
  start?: number;
}

/** The record beside the pid file (qemu.pid -> qemu.pid.boot). */
export function pidRecordPath(dir: string): string {
  return `${qemuFiles(dir).pidFile}.boot`;
}

async function readPidRecord(dir: string): Promise<PidRecord | undefined> {
  try {
    const o = JSON.parse(await readFile(pidRecordPath(dir), 'utf8')) as Partial<PidRecord>;
    if (typeof o?.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return undefined;
    return {
      pid: o.pid,
      ...(typeof o.boot === 'string' ? { boot: o.boot } : {}),
      ...(typeof o.start === 'number' && Number.isFinite(o.start) ? { start: o.start } : {}),
    };
  } catch {
    return undefined;
  }
}

/** When the running kernel booted (ms since the epoch, from /proc/stat's btime), if known. */
function bootTimeMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The number in a pid file's first line, if it holds one. */
function parsePid(text: string): number | undefined {
  const first = text.split('\n', 1)[0]!.trim();
  if (!/^\d{1,10}$/.test(first)) return undefined;
  const n = Number(first);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The pid in the instance's qemu.pid, if the file exists, holds a number and was written under
 * the running kernel (not left over from before a reboot).
 */
export async function readPidFile(dir: string): Promise<number | undefined> {
  const path = qemuFiles(dir).pidFile;
  let pid: number | undefined;
  let mtimeMs: number;
  try {
    pid = parsePid(await readFile(path, 'utf8'));
    mtimeMs = (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
  if (pid === undefined) return undefined;
  const rec = await readPidRecord(dir);
  if (rec && rec.pid === pid && rec.boot !== undefined) {
    const now = bootId();
    return now === undefined || now === rec.boot ? pid : undefined;
  }
  // No record (kumo was killed between QEMU's start and writing it, or an older kumo): judge by age.
  const booted = bootTimeMs();
  // btime is rounded to the second; allow that much.
  if (booted !== undefined && mtimeMs < booted - 2000) return undefined;
  return pid;
}

/**
 * Record, beside the pid file QEMU has just written, the pid's boot id and start time. Called
 * right after QEMU daemonized; does nothing when there is no pid file or no live process.
 */
export async function recordPidFile(dir: string): Promise<void> {
  const pid = await readPidFile(dir);
  if (pid === undefined || !processLive(pid)) return;
  const rec: PidRecord = { pid };
  const boot = bootId();
  if (boot !== undefined) rec.boot = boot;
  const start = processStartTime(pid);
  if (start !== undefined) rec.start = start;
  await writeJsonAtomic(pidRecordPath(dir), rec);
}

/** Remove the record beside the pid file (with the pid file, when the machine is gone). */
export async function removePidRecord(dir: string): Promise<void> {
  await unlink(pidRecordPath(dir)).catch(() => {});
}

/** Alive and not a zombie (a killed QEMU whose parent has not reaped it yet is dead for us). */
export function processLive(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is a live QEMU started for the instance in `dir`: its argv names our pid file,
 * and when kumo recorded the pid's start time, it is that very process (not a reused pid).
 */
export async function isOurQemu(pid: number, dir: string): Promise<boolean> {
  if (!processLive(pid)) return false;
  let argv: string[];
  try {
    argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return false;
  }
  if (!argv[0] || !/qemu-system/.test(argv[0])) return false;
  const i = argv.indexOf('-pidfile');
  if (i < 0 || argv[i + 1] !== qemuFiles(dir).pidFile) return false;
  const rec = await readPidRecord(dir);
  return !(rec && rec.pid === pid) || ownerAlive(rec);
}

/**
 * The QEMU driver's view of its processes: the pid file of an instance folder, and whether a pid
 * is this instance's live QEMU (not a zombie, and its argv names the instance's pid file).
 * Shared by the driver and its snapshots (which go through the monitor when the machine runs).
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { pidAlive } from '../../core/exec.js';
import { qemuFiles } from './argv.js';

/** The pid in the instance's qemu.pid, if the file exists and holds a number. */
export async function readPidFile(dir: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(qemuFiles(dir).pidFile, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
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

/** Whether `pid` is a live QEMU started for the instance in `dir` (its argv names our pid file). */
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
  return i >= 0 && argv[i + 1] === qemuFiles(dir).pidFile;
}

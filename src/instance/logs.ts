/**
 * The serial console of an instance (`kumo logs`): the whole file, or followed as it grows; its tail.
 */
import { open, stat } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { UnsupportedError } from '../core/errors.js';
import { getDriver } from '../driver/index.js';
import { tailFile } from '../guest/ready.js';
import { instanceFiles, readRecord, runtimeFor, type InstanceRecord } from './store.js';

export async function consoleLogPath(paths: KumoPaths, name: string): Promise<string> {
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  if (!driver.consoleLogPath) throw new UnsupportedError('DRIVER_UNSUPPORTED', `the ${driver.name} driver does not capture the serial console`, { hint: 'connect to the console with the hypervisor\'s own tools' });
  return driver.consoleLogPath(runtimeFor(paths, rec));
}

/**
 * The last `lines` lines of the instance's serial console (escapes stripped), [] when there is
 * none: what a failed launch shows before it removes the instance.
 */
export async function consoleTail(paths: KumoPaths, rec: InstanceRecord, lines = 20): Promise<string[]> {
  const driver = await getDriver(rec.driver).catch(() => undefined);
  const file = driver?.consoleLogPath?.(runtimeFor(paths, rec)) ?? instanceFiles(paths, rec.name).serialLog;
  return tailFile(file, lines);
}

/** Kernel lines that say the guest's vCPUs stopped making progress. */
const STALL_RE = /watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s|rcu: INFO: rcu_(?:preempt|sched) (?:self-)?detected stall|rcu_(?:preempt|sched) kthread starved/;

/**
 * What the console lines say about a guest that did not become ready, when they say something
 * kumo can name: today, a kernel CPU stall (soft lockup or RCU stall). Seen under TCG (no KVM)
 * when a multi-vCPU guest is starved of host CPU; the advice is what helps there.
 */
export function consoleDiagnosis(lines: readonly string[]): string | undefined {
  const stall = lines.find((l) => STALL_RE.test(l));
  if (!stall) return undefined;
  return `the guest's kernel reports a CPU stall (${stall.trim().replace(/^\[\s*[\d.]+\]\s*/, '')}): its vCPUs stopped making progress. Without KVM (software emulation) this happens when the host is short of CPU: fewer vCPUs (--cpus 1), fewer VMs at once, or KVM (see kumo doctor) help`;
}

/**
 * Write the console to `write`, then (with follow) keep writing what is appended until the signal
 * aborts. Resolves when done.
 */
export async function streamConsoleLog(paths: KumoPaths, name: string, write: (chunk: Buffer) => void, o: { follow?: boolean; signal?: AbortSignal; tailBytes?: number; previous?: boolean } = {}): Promise<void> {
  // The previous boot's console: the log rotated away at the last start (serial.log.1).
  const file = (await consoleLogPath(paths, name)) + (o.previous ? '.1' : '');
  let pos = 0;
  const pump = async () => {
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      return;
    }
    if (size < pos) pos = 0; // truncated: the instance was started again
    if (o.tailBytes !== undefined && pos === 0 && size > o.tailBytes) pos = size - o.tailBytes;
    if (size === pos) return;
    const fh = await open(file, 'r');
    try {
      while (pos < size) {
        const len = Math.min(size - pos, 1 << 20);
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        if (!bytesRead) break;
        pos += bytesRead;
        write(buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  };
  await pump();
  if (!o.follow) return;
  while (!o.signal?.aborted) {
    await new Promise<void>((r) => {
      const onAbort = () => (clearTimeout(t), r());
      const t = setTimeout(() => (o.signal?.removeEventListener('abort', onAbort), r()), 200);
      o.signal?.addEventListener('abort', onAbort, { once: true });
    });
    await pump();
  }
}

/**
 * The serial console file of a QEMU instance (serial.log), which the guest controls:
 *
 * - rotated at every start: serial.log becomes serial.log.1 (one previous boot is kept; `kumo logs
 *   --previous` shows it), so QEMU starts a fresh file;
 * - QEMU opens it with append=on (O_APPEND): its writes always go to the end of the file, so the
 *   file can be shortened under it;
 * - capped while running: a kumo command that looks at the instance (status: list, status, logs,
 *   ...) cuts a file grown past the cap (KUMO_SERIAL_LOG_MAX, default 64 MiB) down to its last half
 *   by removing whole blocks from its start (fallocate --collapse-range: atomic with respect to
 *   QEMU's appends, no byte is lost or reordered at the end). On a file system without collapse
 *   support (tmpfs, ...) the file keeps growing until the next start rotates it.
 */
import { rename, stat } from 'node:fs/promises';
import { run } from '../../core/exec.js';
import { debug } from '../../core/log.js';
import { parseSize } from '../../core/units.js';
import { qemuFiles } from './argv.js';

export const SERIAL_LOG_MAX_DEFAULT = 64 * 1024 * 1024;

/** The previous boot's console (serial.log.1). */
export function previousSerialLog(dir: string): string {
  return `${qemuFiles(dir).serialLog}.1`;
}

function serialLogMax(): number {
  const v = process.env.KUMO_SERIAL_LOG_MAX ? parseSize(process.env.KUMO_SERIAL_LOG_MAX, 1) : undefined;
  return v !== undefined && v >= 64 * 1024 ? v : SERIAL_LOG_MAX_DEFAULT;
}

/** Before QEMU starts: serial.log -> serial.log.1 (replacing the older one). */
export async function rotateSerialLog(dir: string): Promise<void> {
  await rename(qemuFiles(dir).serialLog, previousSerialLog(dir)).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') debug(`qemu: cannot rotate the serial log: ${e.message}`);
  });
}

/**
 * If serial.log has grown past the cap, remove whole blocks from its start so that about half the
 * cap is left. Best effort: returns whether the file was cut.
 */
export async function capSerialLog(dir: string): Promise<boolean> {
  const file = qemuFiles(dir).serialLog;
  const max = serialLogMax();
  let st;
  try {
    st = await stat(file);
  } catch {
    return false;
  }
  if (st.size <= max) return false;
  const blk = st.blksize > 0 ? st.blksize : 4096;
  const cut = Math.floor((st.size - Math.floor(max / 2)) / blk) * blk;
  if (cut <= 0) return false;
  const r = await run('fallocate', ['--collapse-range', '--offset', '0', '--length', String(cut), file], { allowFailure: true, timeoutMs: 10_000 }).catch((e: Error) => ({ code: -1, stderr: e.message }));
  if (r.code !== 0) {
    debug(`qemu: cannot cap the serial log (${st.size} bytes): ${r.stderr.trim()}`);
    return false;
  }
  return true;
}

/**
 * Leftovers of a killed `kumo capture`: its work folder KUMO_HOME/tmp/capture-NAME-XXXXXX (the
 * sealing overlay, the converted image) and the sealing copy's machine (a daemonized QEMU whose
 * pid file is in that folder, or the backend's equivalent). A capture holds instance NAME's lock
 * from before it makes the folder until after it removed it, so a folder whose instance lock has
 * no live holder belongs to a capture that died. Its machine is stopped through the driver, which
 * stops only a process it can prove is that machine (QEMU: /proc/PID/cmdline names the folder's
 * pid file, same boot, same start time), then the folder is removed.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { lockHolder } from '../core/lock.js';
import { getDriver, type InstanceRuntime } from '../driver/index.js';
import { instanceFiles, readRecord, runtimeFor } from '../instance/index.js';

/** `capture-` + an instance name + mkdtemp's 6 characters. */
const CAPTURE_DIR_RE = /^capture-([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-[A-Za-z0-9]{6}$/;

export interface SweptCapture {
  instance: string;
  /** The work folder removed. */
  dir: string;
  /** Whether a machine of the dead capture was found (and stopped). */
  machineStopped: boolean;
}

/** Find and remove the leftovers of captures whose process is gone. Captures in progress are left alone. */
export async function sweepCaptureLeftovers(paths: KumoPaths, o: { name?: string } = {}): Promise<SweptCapture[]> {
  let names: string[];
  try {
    names = await readdir(paths.tmp);
  } catch {
    return [];
  }
  const out: SweptCapture[] = [];
  for (const entry of names.sort()) {
    const m = CAPTURE_DIR_RE.exec(entry);
    if (!m) continue;
    const instance = m[1]!;
    if (o.name !== undefined && o.name !== instance) continue;
    if (await lockHolder(instanceFiles(paths, instance).lock)) continue; // a capture (or another command) is at work
    const dir = join(paths.tmp, entry);
    const rec = await readRecord(paths, instance).catch(() => undefined);
    const driver = await getDriver(rec?.driver ?? 'qemu').catch(() => undefined);
    let machineStopped = false;
    if (driver) {
      // The sealing copy's runtime, as capture made it (the folder, the overlay); a deleted instance's copy was a QEMU one at most.
      const base = rec ? runtimeFor(paths, rec) : ({ name: instance, paths, cpus: 1, memoryMiB: 128, mac: '52:54:00:00:00:00', accel: 'tcg' } as InstanceRuntime);
      const rt: InstanceRuntime = { ...base, name: `${instance}-capture`, dir, disk: { path: join(dir, 'seal.qcow2'), format: 'qcow2' }, sshPort: 0, ports: [] };
      const st = await driver.status(rt).catch(() => undefined);
      machineStopped = st?.pid !== undefined || st?.state === 'running' || st?.state === 'paused';
      await driver.stop(rt, { force: true });
      await driver.cleanup(rt).catch(() => {});
      await driver.purge?.(rt).catch(() => {});
    }
    await rm(dir, { recursive: true, force: true });
    out.push({ instance, dir, machineStopped });
  }
  return out;
}

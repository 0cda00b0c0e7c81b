/**
 * `kumo snapshot create|list|restore|delete NAME [SNAP]`: qcow2 internal snapshots of an
 * instance's disk, through its driver's snapshots capability. A stopped instance gets disk-only
 * snapshots (qemu-img); a running one, where the driver can (QEMU: savevm), disk + memory
 * snapshots that `restore` resumes. Each call holds the instance's lock.
 */
import type { KumoPaths } from '../config/paths.js';
import { getDriver, requireCapability, DriverUnsupportedError, type SnapshotInfo, type Driver, type SnapshotsCapability } from '../driver/index.js';
import { instanceStatus } from './status.js';
import { lockInstance, readRecord, runtimeFor, writeRecord, type InstanceRecord, type OpOptions } from './store.js';
import { ConflictError } from '../core/errors.js';
import type { RngReseed } from '../guest/identity.js';
import { refreshAfterSnapshot } from './power.js';
import type { InstanceRuntime } from '../driver/driver.js';

export type { SnapshotInfo };

async function withSnapshots<T>(
  paths: KumoPaths,
  name: string,
  op: string,
  fn: (d: Driver & SnapshotsCapability, rt: InstanceRuntime, running: boolean, rec: InstanceRecord) => Promise<T>,
  o: OpOptions & { lock?: boolean } = {},
): Promise<T> {
  const rec = await readRecord(paths, name);
  const driver = requireCapability(await getDriver(rec.driver), 'snapshots', 'take snapshots');
  const lock = o.lock === false ? undefined : await lockInstance(paths, name, `snapshot ${op}`, 5000, o.signal);
  try {
    const st = await instanceStatus(paths, name);
    const running = st.state === 'running' || st.state === 'paused';
    if (st.state === 'unknown' || st.state === 'creating')
      throw new ConflictError('INSTANCE_BUSY', `instance '${name}' is ${st.state}${st.detail ? ` (${st.detail})` : ''}; snapshots need it running or stopped`, { hint: `wait, or stop it: kumo stop ${name}` });
    if (op !== 'list') {
      if (st.state === 'suspended')
        throw new ConflictError('INSTANCE_SUSPENDED', `instance '${name}' is suspended; its saved memory belongs to the disk as it is`, {
          hint: `resume it (kumo start ${name}), or drop its saved state: kumo stop --force ${name}`,
        });
      if (running && !driver.capabilities.liveSnapshots)
        throw new DriverUnsupportedError(driver.name, 'take snapshots while the instance runs', `stop it first: kumo stop ${name}`);
      if (!running && !driver.capabilities.offlineSnapshots)
        throw new DriverUnsupportedError(driver.name, 'take snapshots of a stopped instance', `start it first: kumo start ${name}`);
    }
    return await fn(driver, runtimeFor(paths, rec), running, rec);
  } finally {
    await lock?.release();
  }
}

export async function createSnapshot(paths: KumoPaths, name: string, snap: string, o: OpOptions = {}): Promise<{ name: string; snapshot: string; live: boolean }> {
  return withSnapshots(paths, name, 'create', async (d, rt, running) => {
    await d.createSnapshot(rt, snap);
    return { name, snapshot: snap, live: running };
  }, o);
}

export async function listSnapshots(paths: KumoPaths, name: string, o: OpOptions = {}): Promise<SnapshotInfo[]> {
  return withSnapshots(paths, name, 'list', (d, rt) => d.listSnapshots(rt), { ...o, lock: false });
}

/**
 * Restore a snapshot. Running: the machine continues from it at once (disk and memory). Stopped:
 * the disk goes back to it, and when the snapshot holds memory too (taken while running), the next
 * start resumes it there (QEMU -loadvm: about as fast as a resume) instead of booting.
 */
export async function restoreSnapshot(
  paths: KumoPaths,
  name: string,
  snap: string,
  o: OpOptions = {},
): Promise<{ name: string; snapshot: string; live: boolean; resumesAtStart?: boolean; guest?: { rng: RngReseed; via: 'agent' | 'ssh' }; warning?: string }> {
  return withSnapshots(paths, name, 'restore', async (d, rt, running, rec) => {
    await d.restoreSnapshot(rt, snap);
    if (running) {
      // the guest went back in time: its clock stepped to now, its RNG reseeded (a warning if not)
      const fresh = await refreshAfterSnapshot(paths, rec);
      return { name, snapshot: snap, live: true, ...('rng' in fresh ? { guest: fresh } : fresh) };
    }
    if (rec.driver !== 'qemu') return { name, snapshot: snap, live: running };
    const info = (await d.listSnapshots(rt)).find((s) => s.name === snap);
    const { restore: _r, run: _run, ...rest } = rec;
    if (!info?.vmStateSize) {
      await writeRecord(paths, rest);
      return { name, snapshot: snap, live: false, resumesAtStart: false };
    }
    await writeRecord(paths, { ...rest, restore: { kind: 'snapshot', stateFile: '', snapshot: snap, ignoreShared: false, machine: '', ...(rec.run?.memoryFile ? { memoryFile: rec.run.memoryFile } : {}), at: new Date().toISOString() } });
    return { name, snapshot: snap, live: false, resumesAtStart: true };
  }, o);
}

export async function deleteSnapshot(paths: KumoPaths, name: string, snap: string, o: OpOptions = {}): Promise<{ name: string; snapshot: string }> {
  return withSnapshots(paths, name, 'delete', async (d, rt) => {
    await d.deleteSnapshot(rt, snap);
    return { name, snapshot: snap };
  }, o);
}

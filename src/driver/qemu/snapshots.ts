/**
 * Snapshots for the QEMU driver (the driver's SnapshotsCapability), qcow2 internal snapshots of
 * the instance's overlay (the read-only base is never touched):
 *
 *   stopped   qemu-img snapshot -c/-a/-d on disk.qcow2 (disk only; vm-state size 0)
 *   running   HMP savevm / loadvm / delvm through QMP: disk AND memory, so `restore` resumes the
 *             machine where the snapshot was taken. A disk-only snapshot cannot be loaded into a
 *             running machine (QEMU refuses): restoring one needs the machine stopped.
 *
 * Listing reads the qcow2 snapshot table with `qemu-img info -U` in both states.
 */
import { ConflictError, InvalidInputError, KumoError, NotFoundError } from '../../core/errors.js';
import { qemuImg, type QemuSnapshot } from '../../disk/qemuimg.js';
import type { InstanceRuntime, SnapshotInfo } from '../driver.js';
import { qemuFiles } from './argv.js';
import { isOurQemu, readPidFile } from './process.js';
import { QmpClient } from './qmp.js';

/** savevm writes the whole RAM; under TCG that takes a while. */
const LIVE_TIMEOUT_MS = 10 * 60_000;

export function checkSnapshotName(name: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) || /^\d+$/.test(name))
    throw new InvalidInputError('BAD_SNAPSHOT_NAME', `'${String(name)}' is not a valid snapshot name`, {
      hint: 'letters, digits and . _ -, starting with a letter or digit, not all digits (those are ids)',
    });
}

/** Whether this instance's QEMU is alive (then snapshots go through the monitor). */
async function live(rt: InstanceRuntime): Promise<boolean> {
  const pid = await readPidFile(rt.dir);
  return pid !== undefined && (await isOurQemu(pid, rt.dir));
}

async function hmp(rt: InstanceRuntime, line: string): Promise<string> {
  const c = await QmpClient.connect(qemuFiles(rt.dir).qmpSocket, 5000);
  try {
    return await c.execute<string>('human-monitor-command', { 'command-line': line }, LIVE_TIMEOUT_MS);
  } finally {
    c.close();
  }
}

function toInfo(s: QemuSnapshot): SnapshotInfo {
  return { name: s.name, created: s.date, vmStateSize: s.vmSize };
}

export async function listSnapshots(rt: InstanceRuntime): Promise<SnapshotInfo[]> {
  return (await qemuImg.snapshotList(rt.disk.path)).map(toInfo);
}

async function find(rt: InstanceRuntime, name: string): Promise<SnapshotInfo> {
  const list = await listSnapshots(rt);
  const s = list.find((x) => x.name === name);
  if (!s)
    throw new NotFoundError('SNAPSHOT_NOT_FOUND', `instance '${rt.name}' has no snapshot named '${name}'`, {
      hint: list.length ? `its snapshots: ${list.map((x) => x.name).join(', ')} (kumo snapshot list ${rt.name})` : `it has no snapshots; make one with: kumo snapshot create ${rt.name} ${name}`,
      details: { instance: rt.name, snapshot: name },
    });
  return s;
}

function monitorFailed(rt: InstanceRuntime, op: string, out: string): KumoError {
  return new KumoError('SNAPSHOT_FAILED', 'external', `QEMU could not ${op} for instance '${rt.name}': ${out.trim()}`, {
    hint: `stop the instance (kumo stop ${rt.name}) and try again: snapshots of a stopped disk always work`,
  });
}

export async function createSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
  checkSnapshotName(name);
  if ((await listSnapshots(rt)).some((s) => s.name === name))
    throw new ConflictError('SNAPSHOT_EXISTS', `instance '${rt.name}' already has a snapshot named '${name}'`, {
      hint: `choose another name, or delete the old one: kumo snapshot delete ${rt.name} ${name}`,
    });
  if (await live(rt)) {
    const out = await hmp(rt, `savevm ${name}`);
    if (out.trim()) throw monitorFailed(rt, `save snapshot '${name}'`, out);
    return;
  }
  await qemuImg.snapshotCreate(rt.disk.path, name);
}

export async function restoreSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
  checkSnapshotName(name);
  const s = await find(rt, name);
  if (await live(rt)) {
    if (!s.vmStateSize)
      throw new ConflictError('SNAPSHOT_DISK_ONLY', `snapshot '${name}' of instance '${rt.name}' holds the disk only (it was taken while the instance was stopped), so it cannot be loaded into the running machine`, {
        hint: `stop the instance first: kumo stop ${rt.name} && kumo snapshot restore ${rt.name} ${name}`,
      });
    const out = await hmp(rt, `loadvm ${name}`);
    if (out.trim()) throw monitorFailed(rt, `load snapshot '${name}'`, out);
    return;
  }
  await qemuImg.snapshotApply(rt.disk.path, name);
}

export async function deleteSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
  checkSnapshotName(name);
  await find(rt, name);
  if (await live(rt)) {
    const out = await hmp(rt, `delvm ${name}`);
    if (out.trim()) throw monitorFailed(rt, `delete snapshot '${name}'`, out);
    return;
  }
  await qemuImg.snapshotDelete(rt.disk.path, name);
}

/**
 * Change a stopped instance's shape after create (`kumo set NAME --cpus N --memory SIZE --disk
 * SIZE`, as Lima's `edit` and Multipass' `set`): cpus and memory are fields of the record that the
 * next start reads (the QEMU argv is built from them, the libvirt domain is defined again at each
 * start); the disk only grows, by `qemu-img resize` of the overlay, and the guest's root file
 * system grows at its next boot (cloud-init's growpart and resizefs run at every boot).
 *
 * Order: validate every value (all problems at once), take the instance stopped and locked, check
 * the disk growth against the overlay's real virtual size, grow the disk, write the record
 * atomically last. A failing step leaves the record as it was.
 */
import type { KumoPaths } from '../config/paths.js';
import { validateSpec } from '../config/spec.js';
import { ConflictError, InvalidInputError, UnsupportedError } from '../core/errors.js';
import { diskInfo, qemuImg } from '../disk/index.js';
import { getDriver } from '../driver/index.js';
import { Emitter } from '../events/events.js';
import { lockStopped } from './guard.js';
import { instanceFiles, readRecord, writeRecord, type InstanceRecord, type OpOptions } from './store.js';

export interface SetChanges {
  /** Virtual CPUs (1-64). */
  cpus?: number | string;
  /** Memory: 2G, 1536M, or a bare number of MiB. */
  memory?: number | string;
  /** The disk's new size (only growth): 20G, or a bare number of GiB. */
  disk?: number | string;
}

export interface SetOptions extends OpOptions {
  /** Stop a running instance first (graceful power-down) instead of refusing. */
  stop?: boolean;
  /** With `stop`: seconds to wait for the graceful power-down before forcing it. */
  stopTimeoutSec?: number;
}

export interface SetChange {
  field: 'cpus' | 'memory' | 'disk';
  /** cpus: a count; memory: MiB; disk: bytes. */
  from: number;
  to: number;
}

export interface SetResult {
  name: string;
  /** What changed (fields given with their current value are not listed). */
  changes: SetChange[];
  record: InstanceRecord;
}

export class DiskShrinkError extends InvalidInputError {
  constructor(name: string, current: number, asked: number) {
    super('DISK_SHRINK', `the disk of instance '${name}' is ${current} bytes; ${asked} bytes would shrink it, and a disk only grows`, {
      hint: `give at least its current size (${Math.ceil(current / 1024 ** 2)}M), or leave --disk out`,
      details: { instance: name, currentBytes: current, askedBytes: asked },
    });
  }
}

/** Change cpus, memory and/or grow the disk of a stopped instance; the record is written last, atomically. */
export async function setInstance(paths: KumoPaths, name: string, changes: SetChanges, opts: SetOptions = {}): Promise<SetResult> {
  const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as Record<string, unknown>;
  if (!Object.keys(given).length)
    throw new InvalidInputError('NOTHING_TO_SET', `nothing to change on instance '${name}'`, { hint: `give --cpus N, --memory SIZE and/or --disk SIZE, e.g. kumo set ${name} --memory 2G` });
  // The spec's own checks of these fields (every problem at once, with its field path).
  const spec = validateSpec(given, { requireName: false });
  const em = new Emitter(opts.onEvent);
  const usage = `kumo set --stop ${name} ...`;
  await using _lock = await lockStopped(paths, name, 'change', { ...opts, usage });
  const rec = await readRecord(paths, name);
  if (rec.restore)
    throw new ConflictError('INSTANCE_HAS_SAVED_STATE', `instance '${name}' has a saved ${rec.restore.kind === 'template' ? 'template state' : rec.restore.kind === 'snapshot' ? 'snapshot with memory' : 'state'} that its next start resumes, made with its current shape`, {
      hint: `start it once and stop it (kumo start ${name} && kumo stop ${name}), then change it`,
      details: { instance: name, restore: rec.restore.kind },
    });
  const out: SetChange[] = [];
  const next: InstanceRecord = { ...rec };
  if (given.cpus !== undefined && spec.cpus !== rec.cpus) {
    out.push({ field: 'cpus', from: rec.cpus, to: spec.cpus });
    next.cpus = spec.cpus;
  }
  if (given.memory !== undefined && spec.memoryMiB !== rec.memoryMiB) {
    out.push({ field: 'memory', from: rec.memoryMiB, to: spec.memoryMiB });
    next.memoryMiB = spec.memoryMiB;
  }
  const disk = instanceFiles(paths, name).disk;
  let growTo: number | undefined;
  if (given.disk !== undefined && spec.diskBytes !== undefined) {
    const current = (await diskInfo(disk)).virtualSize;
    if (spec.diskBytes < current) throw new DiskShrinkError(name, current, spec.diskBytes);
    if (spec.diskBytes > current) {
      // A libvirt instance with a storage pool runs on its pool volume (made at its first start), not on the overlay here.
      if (typeof rec.driverOptions?.pool === 'string' && rec.driverOptions.pool && rec.lastStart)
        throw new UnsupportedError('SET_DISK_UNSUPPORTED', `instance '${name}' runs on a volume of libvirt pool '${rec.driverOptions.pool}', which kumo set does not resize`, {
          hint: `resize the volume with virsh vol-resize (pool ${rec.driverOptions.pool}), or make a new instance with --disk`,
          details: { instance: name, pool: rec.driverOptions.pool },
        });
      out.push({ field: 'disk', from: current, to: spec.diskBytes });
      growTo = spec.diskBytes;
      next.diskBytes = spec.diskBytes;
    }
  }
  if (next.cpus !== rec.cpus || next.memoryMiB !== rec.memoryMiB) {
    // the host must be able to hold the new shape (MEMORY_TOO_LARGE, ...), checked before anything changes
    const driver = await getDriver(rec.driver);
    await driver.check(paths, rec.driverOptions, { cpus: next.cpus, memoryMiB: next.memoryMiB });
  }
  if (growTo !== undefined) await em.step('disk', 'grow the disk', () => qemuImg.resize(disk, growTo));
  if (out.length) await writeRecord(paths, next);
  return { name, changes: out, record: out.length ? next : rec };
}

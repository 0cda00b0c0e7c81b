/**
 * `kumo consolidate NAME`: cut an instance loose from its base image, so the base can be pruned.
 *
 * The whole chain (overlay → base) is converted into one standalone qcow2 written to a temp file
 * beside disk.qcow2 (a dot-file, which the image store's "in use" scan ignores) and renamed over
 * it: at every moment disk.qcow2 is either the old overlay or the complete new disk. The instance
 * keeps its identity (seed, keys, record) and its data; the record notes the consolidation.
 *
 * Refused while the instance runs (or stopped first with `stop: true`), when the disk holds
 * internal snapshots (they describe the overlay on top of its base and would not survive the
 * conversion: delete them first), and when the file system cannot hold the new disk.
 */
import type { KumoPaths } from '../config/paths.js';
import { ConflictError } from '../core/errors.js';
import { Emitter } from '../events/events.js';
import { backingChain, qemuImg } from '../disk/index.js';
import { instanceFiles, lockStopped, mapDiskFull, measureQcow2, readRecord, requireSpace, writeRecord, type InstanceRecord, type StopFirstOptions } from '../instance/index.js';
import { stat } from 'node:fs/promises';

export interface ConsolidateOptions extends StopFirstOptions {}

export interface ConsolidateResult {
  name: string;
  /** False when the disk had no backing file already (nothing was done). */
  changed: boolean;
  /** The backing chain the disk had (files it no longer needs). */
  detachedFrom: string[];
  /** Bytes the disk uses on the host now. */
  diskUsed: number;
}

/** The record with a note of the consolidation (the image it came from stays recorded). */
export type ConsolidatedRecord = InstanceRecord & { consolidated?: { at: string; from: string[] } };

export async function consolidateInstance(paths: KumoPaths, name: string, o: ConsolidateOptions = {}): Promise<ConsolidateResult> {
  const em = new Emitter(o.onEvent);
  await readRecord(paths, name);
  await using _lock = await lockStopped(paths, name, 'consolidate', { ...o, usage: `kumo consolidate --stop ${name}` });
  const files = instanceFiles(paths, name);
  const chain = await backingChain(files.disk);
  const backing = chain.slice(1).map((l) => l.path);
  if (!backing.length) return { name, changed: false, detachedFrom: [], diskUsed: (await stat(files.disk)).blocks * 512 };
  const snaps = await qemuImg.snapshotList(files.disk);
  if (snaps.length)
    throw new ConflictError('SNAPSHOTS_PRESENT', `instance '${name}' has ${snaps.length} snapshot(s) (${snaps.map((s) => s.name).join(', ')}), which a consolidated disk cannot keep`, {
      hint: `delete them first (kumo snapshot delete ${name} SNAP), then consolidate`,
    });
  await requireSpace(files.dir, await measureQcow2(files.disk), `consolidate instance '${name}'`);
  try {
    // convert writes a temp file beside disk.qcow2 and renames it over disk.qcow2 at the end.
    await em.step('consolidate.convert', `writing ${name}'s disk without its base`, () =>
      qemuImg.convert(files.disk, files.disk, { outFormat: 'qcow2', inFormat: 'qcow2', ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}) }),
    );
  } catch (e) {
    throw mapDiskFull(e, files.dir, `consolidate instance '${name}'`);
  }
  const rec = (await readRecord(paths, name)) as ConsolidatedRecord;
  await writeRecord(paths, { ...rec, consolidated: { at: new Date().toISOString(), from: backing } } as InstanceRecord);
  return { name, changed: true, detachedFrom: backing, diskUsed: (await stat(files.disk)).blocks * 512 };
}

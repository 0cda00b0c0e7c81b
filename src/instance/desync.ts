/**
 * De-sync (testcloud's word): the instance directories and the backends disagree.
 *
 * - An instance whose machine is gone behind kumo's back (its libvirt domain undefined by hand):
 *   the driver's status says so (`desync` on the status, shown by `kumo list`); the next start
 *   makes the machine again, and delete removes the instance as usual.
 * - A machine whose instance directory is gone (removed by hand, or a home restored from an old
 *   backup): an orphan. Drivers with the `desync` capability list them (`orphans`) and remove them
 *   (`removeOrphan`); `kumo list` shows them and `kumo repair` removes them.
 */
import type { DriverOptions } from '../config/spec.js';
import type { KumoPaths } from '../config/paths.js';
import { assertValidName } from '../core/names.js';
import { ConflictError } from '../core/errors.js';
import { debug } from '../core/log.js';
import { Emitter, type EventSink } from '../events/events.js';
import { DriverUnsupportedError, driverNames, getDriver, hasCapability, type OrphanMachine } from '../driver/index.js';
import { instanceStatus, listInstances } from './status.js';
import { instanceFiles } from './store.js';
import { exists } from '../core/fs.js';

export interface OrphanOptions {
  /** Look only at this driver's machines (default: every driver that can list orphans). */
  driver?: string;
  /** Where else the driver should look (e.g. libvirt's { connect: URI }); needs `driver`. */
  driverOptions?: DriverOptions;
}

/**
 * The machines of every backend that belong to this home but whose instance directory is gone.
 * Without `driver`, a backend that cannot be asked (daemon not running) is skipped; with it, its
 * error is thrown.
 */
export async function findOrphans(paths: KumoPaths, o: OrphanOptions = {}): Promise<OrphanMachine[]> {
  const out: OrphanMachine[] = [];
  for (const name of o.driver ? [o.driver] : driverNames()) {
    const d = await getDriver(name);
    if (!hasCapability(d, 'desync')) {
      if (o.driver) throw new DriverUnsupportedError(name, 'find machines whose instance directory is gone', 'it keeps nothing outside the instance directory: there is nothing to repair');
      continue;
    }
    try {
      out.push(...(await d.orphans(paths, o.driverOptions ? { driverOptions: o.driverOptions } : {})));
    } catch (e) {
      if (o.driver) throw e;
      debug(`${name}: could not look for orphans: ${(e as Error).message}`);
    }
  }
  return out.sort((a, b) => a.instance.localeCompare(b.instance));
}

export interface RepairOptions extends OrphanOptions {
  /** Only this instance name. */
  name?: string;
  /** Destroy running orphans too. */
  force?: boolean;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface RepairResult {
  /** Orphans removed. */
  removed: OrphanMachine[];
  /** Instances whose machine is gone: nothing to remove; each says what sets it straight. */
  desynced: { name: string; detail?: string; hint: string }[];
}

/**
 * Remove orphans (of one instance name, or all), and report instances whose machine is gone
 * (their repair is the next start, or a delete). A running orphan is removed only with `force`;
 * without it the others are still removed and then a ConflictError names the running ones.
 */
export async function repairInstances(paths: KumoPaths, o: RepairOptions = {}): Promise<RepairResult> {
  const em = new Emitter(o.onEvent);
  if (o.name !== undefined) assertValidName(o.name);
  let orphans = await findOrphans(paths, o);
  if (o.name !== undefined) orphans = orphans.filter((x) => x.instance === o.name);
  const result: RepairResult = { removed: [], desynced: [] };
  const running: OrphanMachine[] = [];
  for (const orphan of orphans) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (!o.force && (orphan.state === 'running' || orphan.state === 'paused' || orphan.state === 'unknown')) {
      running.push(orphan);
      continue;
    }
    const d = await getDriver(orphan.driver);
    await em.step('repair', `removing ${orphan.where} (instance '${orphan.instance}' has no folder)`, () => d.removeOrphan!(paths, orphan, { force: !!o.force }));
    result.removed.push(orphan);
  }
  const statuses = o.name !== undefined ? ((await exists(instanceFiles(paths, o.name).dir)) ? [await instanceStatus(paths, o.name)] : []) : await listInstances(paths);
  for (const s of statuses) {
    if (s.desync && (!o.driver || s.record?.driver === o.driver)) result.desynced.push({ name: s.name, ...(s.detail ? { detail: s.detail } : {}), hint: s.desync });
  }
  if (running.length) {
    throw new ConflictError('ORPHAN_RUNNING', `${running.map((r) => `${r.where} (instance '${r.instance}')`).join(', ')} ${running.length === 1 ? 'is' : 'are'} running and ${running.length === 1 ? 'its' : 'their'} instance folder is gone${result.removed.length ? `; removed the others: ${result.removed.map((r) => r.instance).join(', ')}` : ''}`, {
      hint: `destroy ${running.length === 1 ? 'it' : 'them'} too with: kumo repair --force${o.name ? ` ${o.name}` : ''}`,
      details: { running: running.map((r) => r.where), removed: result.removed.map((r) => r.where) },
    });
  }
  return result;
}

/**
 * What is really there: an instance's state derived from its folder and its driver (pid, QMP,
 * libvirt domain), never from a stored field; the list of all of them; `info`. Never takes a lock.
 */
import type { DriverOptions } from '../config/spec.js';
import { stat } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError } from '../core/errors.js';
import { exists } from '../core/fs.js';
import { lockHolder } from '../core/lock.js';
import { matchesLabels, parseLabelSelector, type LabelSelector } from '../config/labels.js';
import { getDriver, type Driver, type RuntimeStatus, type SshEndpoint } from '../driver/index.js';
import type { SshTarget } from '../guest/ssh.js';
import { endpointFor, resolveSshTarget, sshTargetFor } from './ssh-target.js';
import { InstanceNotFoundError, instanceFiles, listNames, readRecord, runtimeFor, type InstanceRecord } from './store.js';

/** 'suspended': stopped with a saved state that the next start resumes (kumo suspend). */
export type InstanceState = RuntimeStatus['state'] | 'suspended' | 'creating' | 'incomplete' | 'corrupt';

export interface InstanceStatus {
  name: string;
  state: InstanceState;
  detail?: string;
  /** The instance and its backend disagree (e.g. its libvirt domain is gone): what to run to set it straight. */
  desync?: string;
  pid?: number;
  /** Where the guest's sshd is reached from here, while it runs (from the driver when it knows better than 127.0.0.1). */
  ssh?: SshEndpoint;
  record?: InstanceRecord;
}

/** What is really there: derived from the driver (pid, QMP), never from a stored field. */
export async function instanceStatus(paths: KumoPaths, name: string): Promise<InstanceStatus> {
  const files = instanceFiles(paths, name);
  if (!(await exists(files.dir))) throw new InstanceNotFoundError(name);
  if (!(await exists(files.record))) {
    const holder = await lockHolder(files.lock);
    return holder
      ? { name, state: 'creating', detail: `process ${holder.pid} is creating it` }
      : { name, state: 'incomplete', detail: "kumo stopped while creating it; 'kumo delete' removes what is left" };
  }
  let rec: InstanceRecord;
  try {
    rec = await readRecord(paths, name);
  } catch (e) {
    return { name, state: 'corrupt', detail: (e as Error).message };
  }
  let driver: Driver;
  try {
    driver = await getDriver(rec.driver);
  } catch (e) {
    return { name, state: 'unknown', detail: (e as Error).message, record: rec };
  }
  const rt = runtimeFor(paths, rec);
  const st = await driver.status(rt);
  const live = st.state === 'running' || st.state === 'paused' || st.state === 'unknown';
  const ssh = live ? await endpointFor(driver, rt, rec).catch(() => undefined) : undefined;
  const suspended = st.state === 'stopped' && rec.restore?.kind === 'suspend';
  return {
    name,
    state: suspended ? 'suspended' : st.state,
    ...(suspended ? { detail: `suspended at ${rec.restore!.at}; 'kumo start ${name}' resumes it` } : {}),
    record: rec,
    ...(st.detail ? { detail: st.detail } : {}),
    ...(st.desync ? { desync: st.desync } : {}),
    ...(st.pid !== undefined ? { pid: st.pid } : {}),
    ...(ssh ? { ssh } : {}),
  };
}

export interface ListOptions {
  /** Only instances with these labels: "KEY=VALUE" (that value) or "KEY" (any value); all must match. */
  label?: string | readonly string[];
}

export async function listInstances(paths: KumoPaths, o: ListOptions = {}): Promise<InstanceStatus[]> {
  const selectors = labelSelectors(o.label);
  const names = await listNames(paths);
  const all = await Promise.all(names.map((n) => instanceStatus(paths, n).catch((e: Error) => ({ name: n, state: 'corrupt' as const, detail: e.message }) as InstanceStatus)));
  return selectors.length ? all.filter((s) => matchesLabels(s.record?.labels, selectors)) : all;
}

/** The selectors of a `label` option (each checked: a BAD_LABEL error names a bad one). */
export function labelSelectors(label: string | readonly string[] | undefined): LabelSelector[] {
  return (label === undefined ? [] : typeof label === 'string' ? [label] : label).map(parseLabelSelector);
}

export interface InstanceInfo extends InstanceStatus {
  dir: string;
  /** The driver and the settings it keeps (libvirt: connect URI, pool, network). */
  driver?: { name: string; options?: DriverOptions };
  /** Bytes the overlay really uses on the host. */
  diskUsed?: number;
  serialLog?: string;
}

export async function instanceInfo(paths: KumoPaths, name: string): Promise<InstanceInfo> {
  const st = await instanceStatus(paths, name);
  const files = instanceFiles(paths, name);
  const info: InstanceInfo = { ...st, dir: files.dir };
  if (st.record) info.driver = { name: st.record.driver, ...(st.record.driverOptions ? { options: st.record.driverOptions } : {}) };
  try {
    const s = await stat(files.disk);
    info.diskUsed = s.blocks * 512;
  } catch {
    /* no disk */
  }
  if (await exists(files.serialLog)) info.serialLog = files.serialLog;
  return info;
}

/** The ssh target of a running instance, or a clear error saying what state it is in. */
export async function requireRunning(paths: KumoPaths, name: string): Promise<SshTarget> {
  const st = await instanceStatus(paths, name);
  if (st.state !== 'running' || !st.record) {
    throw new ConflictError('INSTANCE_NOT_RUNNING', `instance '${name}' is not running (${st.state}${st.detail ? `: ${st.detail}` : ''})`, {
      hint: `start it: kumo start ${name}`,
    });
  }
  // The driver's idea of where sshd is (a libvirt network address, a remote host), when it has one.
  return st.ssh ? { ...sshTargetFor(paths, st.record), host: st.ssh.host, port: st.ssh.port } : resolveSshTarget(paths, st.record);
}

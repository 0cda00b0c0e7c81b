/**
 * Power use cases: start (and wait until ready), stop, restart, delete. Every one holds the
 * instance's lock while it changes the instance.
 */
import { rm } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { InstanceRunningError, InterruptedError, KumoError } from '../core/errors.js';
import { exists } from '../core/fs.js';
import { Emitter } from '../events/events.js';
import { folderDriver, getDriver, type Driver, type SshEndpoint } from '../driver/index.js';
import { NotReadyError, waitReady, type ReadyResult } from '../guest/ready.js';
import { closeMaster } from '../guest/master.js';
import { endpointFor, resolveSshTarget, sshTargetFor } from './ssh-target.js';
import {
  IncompleteInstanceError,
  InstanceNotFoundError,
  instanceFiles,
  lockInstance,
  readRecord,
  runtimeFor,
  writeRecord,
  type InstanceRecord,
  type OpOptions,
} from './store.js';

export interface StartInstanceOptions extends OpOptions {
  /** Wait until ssh answers and cloud-init has finished (default true). */
  wait?: boolean;
  /** Override the record's readiness timeout (seconds). */
  timeoutSec?: number;
}

export interface StartInstanceResult {
  record: InstanceRecord;
  accel: string;
  /** Where the guest's sshd is reached from here (undefined while a network address is not known yet). */
  ssh?: SshEndpoint;
  ready?: ReadyResult;
}

export async function startInstance(paths: KumoPaths, name: string, opts: StartInstanceOptions = {}): Promise<StartInstanceResult> {
  const em = new Emitter(opts.onEvent);
  let rec: InstanceRecord;
  let accel: string;
  let ep: SshEndpoint | undefined;
  let driver: Driver;
  {
    await using _lock = await lockInstance(paths, name, 'start', 2000, opts.signal);
    rec = await readRecord(paths, name);
    driver = await getDriver(rec.driver);
    const rt = runtimeFor(paths, rec);
    const res = await em.step('start', `starting ${name}`, () => driver.start(rt, opts));
    accel = res.accel;
    rec = { ...rec, ssh: { ...rec.ssh, port: res.sshPort }, ...(res.ports ? { ports: res.ports } : {}), lastStart: { at: new Date().toISOString(), accel: res.accel, ...(res.pid !== undefined ? { pid: res.pid } : {}) } };
    await writeRecord(paths, rec);
    ep = await endpointFor(driver, rt, rec).catch(() => undefined);
    em.info(`${name}: ${driver.name} running (${res.accel}), ${ep ? `ssh on ${ep.host}:${ep.port}` : 'ssh address not known yet'}`);
  }
  if (opts.wait === false) return { record: rec, accel, ...(ep ? { ssh: ep } : {}) };
  const ready = await waitInstanceReady(paths, rec, opts);
  ep ??= await endpointFor(driver, runtimeFor(paths, rec), rec).catch(() => undefined);
  return { record: rec, accel, ...(ep ? { ssh: ep } : {}), ready };
}

export async function waitInstanceReady(paths: KumoPaths, rec: InstanceRecord, opts: StartInstanceOptions = {}): Promise<ReadyResult> {
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  const serialLog = driver.consoleLogPath?.(rt) ?? instanceFiles(paths, rec.name).serialLog;
  const timeoutMs = (opts.timeoutSec ?? rec.timeoutSec) * 1000;
  const deadline = Date.now() + timeoutMs;
  const checkAlive = async () => {
    const st = await driver.status(rt);
    return st.state === 'stopped' || st.state === 'crashed' ? st.detail ?? `the ${driver.name} process exited` : undefined;
  };
  let target = sshTargetFor(paths, rec);
  if (driver.sshEndpoint) {
    // The address may come later (a DHCP lease on a libvirt network): ask until it is known.
    const em = new Emitter(opts.onEvent);
    let said = false;
    for (;;) {
      const ep = await driver.sshEndpoint(rt);
      if (ep) {
        target = { ...target, host: ep.host, port: ep.port };
        break;
      }
      if (!said) em.info(`${rec.name}: waiting for its address from ${driver.name}`);
      said = true;
      if (opts.signal?.aborted) throw new InterruptedError(`waiting for '${rec.name}' was interrupted`);
      const dead = await checkAlive();
      if (dead) throw new KumoError('INSTANCE_DIED', 'external', `instance '${rec.name}' stopped before it had an address: ${dead}`, { hint: `see 'kumo logs ${rec.name}'` });
      if (Date.now() > deadline) throw new NotReadyError(rec.name, 'address', Math.round(timeoutMs / 1000), [], `${driver.name} reports no address for it`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  return waitReady(target, {
    instanceId: rec.instanceId,
    serialLog,
    timeoutMs: Math.max(1000, deadline - Date.now()),
    checkAlive,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

export interface StopInstanceOptions extends OpOptions {
  force?: boolean;
  timeoutSec?: number;
}

export async function stopInstance(paths: KumoPaths, name: string, opts: StopInstanceOptions = {}): Promise<{ wasRunning: boolean }> {
  const em = new Emitter(opts.onEvent);
  await using _lock = await lockInstance(paths, name, 'stop', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  const st = await driver.status(rt);
  // The shared ssh connection goes with the machine (also when it crashed: its socket is removed).
  await closeMaster(await resolveSshTarget(paths, rec).catch(() => sshTargetFor(paths, rec)));
  if (st.state === 'stopped' || st.state === 'crashed') {
    await driver.cleanup(rt);
    return { wasRunning: false };
  }
  await em.step('stop', opts.force ? `stopping ${name} (forced)` : `stopping ${name}`, () =>
    driver.stop(rt, { ...(opts.force ? { force: true } : {}), ...(opts.timeoutSec !== undefined ? { timeoutMs: opts.timeoutSec * 1000 } : {}), ...opts }),
  );
  return { wasRunning: true };
}

export async function restartInstance(paths: KumoPaths, name: string, opts: StartInstanceOptions & StopInstanceOptions = {}): Promise<StartInstanceResult> {
  await stopInstance(paths, name, opts);
  return startInstance(paths, name, opts);
}

export interface DeleteOptions extends OpOptions {
  /** Stop a running instance first (forced). */
  force?: boolean;
}

/** Remove the instance: its process (with force), driver leftovers and its folder. Never the base image. */
export async function deleteInstance(paths: KumoPaths, name: string, opts: DeleteOptions = {}): Promise<void> {
  const files = instanceFiles(paths, name);
  if (!(await exists(files.dir))) throw new InstanceNotFoundError(name);
  await using _lock = await lockInstance(paths, name, 'delete', 5000, opts.signal);
  let rec: InstanceRecord | undefined;
  try {
    rec = await readRecord(paths, name);
  } catch (e) {
    if (!(e instanceof IncompleteInstanceError) && (e as KumoError).code !== 'CORRUPT_STATE') throw e;
  }
  // An incomplete or damaged record still may have left a QEMU behind: ask the driver that finds one from the folder alone.
  const { driver, rt } = rec ? { driver: await getDriver(rec.driver), rt: runtimeFor(paths, rec) } : await folderDriver(paths, name, files.dir);
  const st = await driver.status(rt);
  if (st.state === 'running' || st.state === 'paused' || st.state === 'unknown') {
    if (!opts.force) throw new InstanceRunningError(name, { hint: `stop it first (kumo stop ${name}) or use: kumo delete --force ${name}` });
    await driver.stop(rt, { force: true, ...opts });
  }
  if (rec) await closeMaster(await resolveSshTarget(paths, rec).catch(() => sshTargetFor(paths, rec!)));
  await driver.cleanup(rt);
  // What the backend keeps for the instance's whole life (a libvirt domain, its volumes).
  await driver.purge?.(rt);
  await rm(files.dir, { recursive: true, force: true });
}

/**
 * Power use cases: start (and wait until ready), stop, restart, delete. Every one holds the
 * instance's lock while it changes the instance.
 */
import { readFile, rm } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { InstanceRunningError, InterruptedError, isKumoError, KumoError } from '../core/errors.js';
import { hashFile } from '../core/fs.js';
import { sleep } from '../core/time.js';
import { readTemplate, type TemplateRecord } from '../template/store.js';
import { identityOverAgent, identityOverSsh, newMachineId, refreshRestoredGuest, type IdentityResult, type RngReseed } from '../guest/identity.js';
import { writeKnownHosts } from '../guest/keys.js';
import type { SshTarget } from '../guest/ssh.js';
import { exists } from '../core/fs.js';
import { Emitter } from '../events/events.js';
import { folderDriver, getDriver, requireCapability, type Driver, type SshEndpoint, type StartResult } from '../driver/index.js';
import { NotReadyError, sshBanner, waitReady, type ReadyResult } from '../guest/ready.js';
import { closeMaster } from '../guest/master.js';
import { withAgent } from '../guest/agent.js';
import { endpointFor, resolveSshTarget, sshTargetFor } from './ssh-target.js';
import { joinSwitches, leaveSwitches, networksOf, syncHosts } from './networks.js';
import { releaseAddresses } from '../network/store.js';
import {
  IncompleteInstanceError,
  InstanceNotFoundError,
  instanceFiles,
  lockInstance,
  readRecord,
  removeInstanceFolder,
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
  /** Set when the start restored a saved state instead of booting, with its timings. */
  restored?: RestoredStart;
}

export async function startInstance(paths: KumoPaths, name: string, opts: StartInstanceOptions = {}): Promise<StartInstanceResult> {
  const em = new Emitter(opts.onEvent);
  let rec: InstanceRecord;
  let accel: string;
  let ep: SshEndpoint | undefined;
  let driver: Driver;
  let restored: RestoredStart | undefined;
  {
    await using _lock = await lockInstance(paths, name, 'start', 2000, opts.signal);
    rec = await readRecord(paths, name);
    driver = await getDriver(rec.driver);
    // Its private networks' switches run before its machine joins them.
    await joinSwitches(paths, rec, opts);
    let started: Awaited<ReturnType<typeof startOrRestore>>;
    try {
      started = await startOrRestore(paths, rec, driver, opts);
    } catch (e) {
      await leaveSwitches(paths, networksOf(rec), name).catch(() => {});
      throw e;
    }
    rec = started.rec;
    restored = started.restored;
    const res = started.res;
    accel = res.accel;
    rec = { ...rec, ssh: { ...rec.ssh, port: res.sshPort }, ...(res.ports ? { ports: res.ports } : {}), lastStart: { at: new Date().toISOString(), accel: res.accel, ...(res.pid !== undefined ? { pid: res.pid } : {}) } };
    await writeRecord(paths, rec);
    const rt = runtimeFor(paths, rec);
    ep = await endpointFor(driver, rt, rec).catch(() => undefined);
    // The members already running learn its name now; it gets the table once it is ready.
    if (rec.networks?.length) await syncHosts(paths, networksOf(rec), { ...opts, skip: name });
    em.info(`${name}: ${driver.name} running (${res.accel})${restored ? `, ${restored.kind === 'template' ? `restored from template ${rec.template?.id}` : 'resumed'} in ${restored.startMs + restored.restoreMs} ms` : ''}, ${ep ? `ssh on ${ep.host}:${ep.port}` : 'ssh address not known yet'}`);
  }
  if (restored) {
    // A restored guest is up already: ready when sshd answers (its identity is done).
    const target = ep ? { ...sshTargetFor(paths, rec), host: ep.host, port: ep.port } : sshTargetFor(paths, rec);
    const t0 = Date.now();
    if (opts.wait !== false) await waitSshAnswers(rec.name, target.host, target.port, (opts.timeoutSec ?? rec.timeoutSec) * 1000, opts.signal);
    const sshMs = Date.now() - t0;
    if (opts.wait !== false && rec.networks?.length) await syncHosts(paths, networksOf(rec), { ...opts, only: [name] });
    const timings = { start: restored.startMs, restore: restored.restoreMs, ...(restored.identityMs !== undefined ? { identity: restored.identityMs } : {}), ssh: sshMs };
    return { record: rec, accel, ...(ep ? { ssh: ep } : {}), restored: { ...restored, sshMs }, ...(opts.wait !== false ? { ready: { timings, cloudInit: { status: 'done', errors: [] } } } : {}) };
  }
  if (opts.wait === false) return { record: rec, accel, ...(ep ? { ssh: ep } : {}) };
  const ready = await waitInstanceReady(paths, rec, opts);
  if (rec.networks?.length) await syncHosts(paths, networksOf(rec), { ...opts, only: [name] });
  ep ??= await endpointFor(driver, runtimeFor(paths, rec), rec).catch(() => undefined);
  return { record: rec, accel, ...(ep ? { ssh: ep } : {}), ready };
}

export interface RestoredStart {
  kind: 'template' | 'suspend' | 'snapshot';
  /** ms: QEMU's start, the state's restore, the identity steps (clones), sshd answering. */
  startMs: number;
  restoreMs: number;
  identityMs?: number;
  sshMs?: number;
  /** Clones: how the guest kernel's RNG was reseeded (its vmgenid driver, or the RNDRESEEDCRNG ioctl). */
  rng?: RngReseed;
}

/** Poll until the guest's sshd sends its banner (a restored guest's sshd is up already). */
async function waitSshAnswers(name: string, host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  let delay = 20;
  // A restored sshd is listening already; on a loaded host it may take seconds to answer (a
  // process per connection): each try waits longer, or a slow sshd is never heard.
  for (let i = 0; !(await sshBanner(host, port, Math.min(15_000, 2000 * 2 ** i))); i++) {
    if (signal?.aborted) throw new InterruptedError(`waiting for '${name}' was interrupted`);
    if (Date.now() > end) throw new NotReadyError(name, 'ssh (restored)', Math.round(timeoutMs / 1000), [], `no ssh banner on ${host}:${port}`);
    await sleep(delay);
    delay = Math.min(250, delay * 2);
  }
}

/**
 * Start the machine: restore a saved state when the record has one (a clone's template, a
 * suspend), else boot. A restore that fails (a damaged or foreign state, an identity that could
 * not be given) falls back to a boot, which is always safe: the disk is consistent and the seed
 * gives the instance its identity through cloud-init. Called under the instance's lock.
 */
async function startOrRestore(paths: KumoPaths, rec0: InstanceRecord, driver: Driver, opts: StartInstanceOptions): Promise<{ rec: InstanceRecord; res: StartResult; restored?: RestoredStart }> {
  const em = new Emitter(opts.onEvent);
  let rec = rec0;
  const cold = async (why: string): Promise<{ rec: InstanceRecord; res: StartResult }> => {
    em.warn(`${rec.name}: ${why}; booting it instead`);
    const stateFile = rec.restore?.kind === 'suspend' ? rec.restore.stateFile : undefined;
    // (a snapshot's disk was reverted already: the boot starts from the snapshot's disk)
    const { restore: _r, run: _run, ...rest } = rec;
    rec = rest;
    await writeRecord(paths, rec);
    if (stateFile) await rm(stateFile, { force: true });
    await driver.discardSavedState?.(runtimeFor(paths, rec)).catch(() => {});
    const res = await em.step('start', `starting ${rec.name}`, () => driver.start(runtimeFor(paths, rec), opts));
    return { rec, res };
  };
  const r = rec.restore;
  if (!r) return { rec, res: await em.step('start', `starting ${rec.name}`, () => driver.start(runtimeFor(paths, rec), opts)) };
  let tpl: TemplateRecord | undefined;
  if (r.kind === 'template') {
    tpl = rec.template ? await readTemplate(paths, rec.template.id).catch(() => undefined) : undefined;
    if (!tpl) return cold(`its template ${rec.template?.id ?? ''} is gone`);
    if ((await hashFile(r.stateFile).catch(() => '')) !== tpl.stateSha256) return cold(`the state file of template ${tpl.id} changed or is missing`);
    const here = await requireCapability(driver, 'templates', 'restore templates').templateHost(runtimeFor(paths, rec));
    if (here.version !== tpl.key.host.version || here.machine !== tpl.key.host.machine || here.accel !== tpl.key.host.accel)
      return cold(`template ${tpl.id} was made by QEMU ${tpl.key.host.version} (${tpl.key.host.machine}, ${tpl.key.host.accel}); this host runs ${here.version} (${here.machine}, ${here.accel})`);
  }
  let res: StartResult;
  try {
    const what = r.kind === 'template' ? `restoring ${rec.name} from its template` : r.kind === 'snapshot' ? `resuming ${rec.name} from snapshot '${r.snapshot}'` : `resuming ${rec.name}`;
    res = await em.step('restore', what, () => driver.start(runtimeFor(paths, rec), opts));
  } catch (e) {
    if (isKumoError(e) && (e.code === 'STATE_RESTORE_FAILED')) return cold(e.message);
    throw e;
  }
  const restored: RestoredStart = { kind: r.kind, startMs: res.restored?.startMs ?? 0, restoreMs: res.restored?.restoreMs ?? 0 };
  if (r.kind === 'template') {
    const t0 = Date.now();
    try {
      const given = await em.step('identity', `giving ${rec.name} its own identity`, () => giveIdentity(paths, { ...rec, ssh: { ...rec.ssh, port: res.sshPort } }, tpl!));
      restored.rng = given.rng;
    } catch (e) {
      // Never a clone with its template's identity: stop it, and boot it instead.
      await driver.stop(runtimeFor(paths, rec), { force: true }).catch(() => {});
      return cold(`${(e as Error).message}`);
    }
    restored.identityMs = Date.now() - t0;
  } else if (r.kind === 'suspend') {
    await rm(r.stateFile, { force: true });
  } else if (r.kind === 'snapshot') {
    // an earlier moment of this machine: step its clock and reseed its RNG (it keeps running if not)
    const fresh = await refreshAfterSnapshot(paths, { ...rec, ssh: { ...rec.ssh, port: res.sshPort } });
    if ('rng' in fresh) restored.rng = fresh.rng;
    else em.warn(fresh.warning);
  }
  const { restore: _r, ...rest } = rec;
  rec = { ...rest, run: { ...(r.memoryFile ? { memoryFile: r.memoryFile } : {}), machine: r.machine } };
  await writeRecord(paths, rec);
  return { rec, res, restored };
}

/**
 * After a snapshot's memory was restored: the clock stepped and the RNG reseeded, through the
 * guest agent (QEMU driver) or else over ssh; a failure is a warning (the guest runs on).
 */
export async function refreshAfterSnapshot(paths: KumoPaths, rec: InstanceRecord): Promise<{ rng: RngReseed; via: 'agent' | 'ssh' } | { warning: string }> {
  const target = sshTargetFor(paths, rec);
  // the guest's TCP state went back with it: a shared connection from before is dead
  await closeMaster(target).catch(() => {});
  try {
    return await refreshRestoredGuest(rec.name, { ...(rec.driver === 'qemu' ? { agentSocket: instanceFiles(paths, rec.name).agentSocket } : {}), ssh: target });
  } catch (e) {
    return { warning: (e as Error).message };
  }
}

/** The clone's identity: through the guest agent when the template has one, else over ssh with the template's key. */
async function giveIdentity(paths: KumoPaths, rec: InstanceRecord, tpl: TemplateRecord): Promise<IdentityResult> {
  const files = instanceFiles(paths, rec.name);
  const id = {
    hostname: rec.name,
    machineId: newMachineId(),
    hostKey: { type: 'ed25519', privateKey: await readFile(files.hostKey, 'utf8'), publicKey: await readFile(`${files.hostKey}.pub`, 'utf8') },
  };
  if (tpl.agent) return identityOverAgent(rec.name, files.agentSocket, id);
  // Over ssh: the guest still has the template's host key, pinned in a known_hosts of its own.
  const kh = `${files.knownHosts}.template`;
  await writeKnownHosts(kh, rec.name, [{ type: 'ed25519', privateKey: '', publicKey: tpl.hostKeyPublic }]);
  try {
    const target: SshTarget = { ...sshTargetFor(paths, rec), knownHosts: kh };
    const given = await identityOverSsh(rec.name, target, id);
    // that connection (and its master) knew the template's key: the next one must verify the new key
    await closeMaster(target);
    return given;
  } finally {
    await rm(kh, { force: true });
  }
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
    ...(rec.template?.instanceId ? { templateInstanceId: rec.template.instanceId } : {}),
    serialLog,
    timeoutMs: Math.max(1000, deadline - Date.now()),
    checkAlive,
    ...(rec.driver === 'qemu' ? { diagnose: () => guestNetworkView(instanceFiles(paths, rec.name).agentSocket) } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** What the guest says of its NICs, their config and their log, through the guest agent (read-only; undefined without one). */
const NETWORK_VIEW = [
  'ip -br link; ip -br addr',
  'for f in /etc/systemd/network/*.network /etc/network/interfaces.d/*; do [ -f "$f" ] && { echo "== $f"; grep -v "^#" "$f" | grep -v "^$"; }; done',
  'journalctl -b --no-pager -o short-monotonic 2>/dev/null | grep -E "renamed from|systemd-networkd\\[|cloud-init-local" | head -20',
].join('; ');

async function guestNetworkView(agentSocket: string): Promise<string[] | undefined> {
  if (!(await exists(agentSocket))) return undefined;
  const r = await withAgent(agentSocket, (a) => a.exec('/bin/sh', ['-c', NETWORK_VIEW], { timeoutMs: 15_000 }), 5_000);
  return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim()).slice(0, 60);
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
    if (rec.restore?.kind === 'suspend') {
      if (!opts.force)
        throw new KumoError('INSTANCE_SUSPENDED', 'conflict', `instance '${name}' is suspended`, {
          hint: `resume it (kumo start ${name}), or drop its saved state (the next start boots, as after a power cut): kumo stop --force ${name}`,
        });
      const { restore: _r, run: _run, ...rest } = rec;
      await driver.discardSavedState?.(rt);
      await writeRecord(paths, rest);
      await rm(rec.restore.stateFile, { force: true });
      em.info(`${name}: its saved state was dropped`);
    }
    await leaveSwitches(paths, networksOf(rec), name);
    return { wasRunning: false };
  }
  await em.step('stop', opts.force ? `stopping ${name} (forced)` : `stopping ${name}`, () =>
    driver.stop(rt, { ...(opts.force ? { force: true } : {}), ...(opts.timeoutSec !== undefined ? { timeoutMs: opts.timeoutSec * 1000 } : {}), ...opts }),
  );
  // A switch no running member needs any more is stopped.
  await leaveSwitches(paths, networksOf(rec), name);
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
  await removeInstanceFolder(paths, name);
  // Its addresses go back to their networks (every network when the record is lost); the members
  // left forget its name, and a switch no running member needs is stopped.
  const left = await releaseAddresses(paths, name, rec ? networksOf(rec) : undefined);
  if (left.length) {
    await leaveSwitches(paths, left, name);
    await syncHosts(paths, left, opts);
  }
}

export interface SuspendResult {
  /** Bytes of the saved state (the QEMU driver's file; 0 where the backend keeps it itself). */
  bytes: number;
  ms: number;
}

/**
 * Suspend: save the running machine's whole state and stop it; the next start resumes it (about
 * a second) instead of booting. The QEMU driver writes the state into the instance folder
 * (suspend.state); libvirt keeps a managed save.
 */
export async function suspendInstance(paths: KumoPaths, name: string, opts: OpOptions = {}): Promise<SuspendResult> {
  const em = new Emitter(opts.onEvent);
  await using _lock = await lockInstance(paths, name, 'suspend', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  const d = requireCapability(driver, 'suspend', 'suspend machines');
  const rt = runtimeFor(paths, rec);
  const st = await driver.status(rt);
  if (st.state !== 'running' && st.state !== 'paused')
    throw new KumoError('INSTANCE_NOT_RUNNING', 'conflict', `instance '${name}' is ${st.state === 'stopped' && rec.restore?.kind === 'suspend' ? 'suspended already' : st.state}`, {
      hint: rec.restore?.kind === 'suspend' ? `resume it with: kumo start ${name}` : `start it first: kumo start ${name}`,
    });
  await closeMaster(await resolveSshTarget(paths, rec).catch(() => sshTargetFor(paths, rec)));
  const stateFile = instanceFiles(paths, name).suspendState;
  const saved = await em.step('suspend', `saving ${name}'s state`, () => d.saveState(rt, stateFile, opts));
  await leaveSwitches(paths, networksOf(rec), name);
  const next: InstanceRecord = {
    ...rec,
    restore: {
      kind: 'suspend',
      stateFile,
      ignoreShared: false,
      machine: saved.machine,
      ...(rec.run?.memoryFile ? { memoryFile: rec.run.memoryFile } : {}),
      at: new Date().toISOString(),
    },
  };
  await writeRecord(paths, next);
  return { bytes: saved.bytes, ms: saved.ms };
}

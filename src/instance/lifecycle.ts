/**
 * Instance use cases: create (with rollback), start (and wait until ready), stop, restart, delete,
 * status, list, info, ports. Every mutation holds the instance's lock; reading status never does.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { KumoPaths } from '../config/paths.js';
import { ensureHome } from '../config/paths.js';
import { loadUserData, validateSpec, type InstanceSpec, type InstanceSpecInput, parsePortForward } from '../config/spec.js';
import { ConflictError, InterruptedError, InvalidInputError, KumoError, NotFoundError, ValidationError } from '../core/errors.js';
import { exists } from '../core/fs.js';
import { lockHolder } from '../core/lock.js';
import { Emitter, type EventSink } from '../events/events.js';
import { driverNames, getDriver, requireCapability, type PortForward, type RuntimeStatus, type Driver, type InstanceRuntime, type SshEndpoint } from '../driver/index.js';
import { portFree, PortInUseError } from '../driver/net.js';
import { macFor, qemuFiles } from '../driver/qemu/argv.js';
import { ensureDefaultKey, generateHostKey, hostKeyAlias, userKey, writeKnownHosts } from '../guest/keys.js';
import { NotReadyError, waitReady, type ReadyResult } from '../guest/ready.js';
import type { SshTarget } from '../guest/ssh.js';
import { closeMaster } from '../guest/master.js';
import { writeSeed } from '../seed/index.js';
import { createOverlay, resolveImage, type BaseImage } from './deps.js';
import {
  IncompleteInstanceError,
  InstanceNotFoundError,
  RECORD_VERSION,
  instanceFiles,
  listNames,
  lockInstance,
  readRecord,
  runtimeFor,
  writeRecord,
  type InstanceRecord,
} from './store.js';
import { writeFileAtomic } from '../core/fs.js';

export interface OpOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export type InstanceState = RuntimeStatus['state'] | 'creating' | 'incomplete' | 'corrupt';

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

// ---------------------------------------------------------------------------------------------
// create

export interface CreateOptions extends OpOptions {
  /** Where user-data and key paths are relative to. */
  cwd?: string;
  /** Use this base instead of resolving spec.image (kumo clone: the source's base, recorded as is). */
  image?: BaseImage;
  /** Make the instance's disk at `path` instead of a fresh overlay on the base (kumo clone: a copy of another instance's disk). */
  makeDisk?: (path: string) => Promise<void>;
}

/** Create an instance (disk overlay, seed, keys, record) without starting it. Rolls back on failure. */
export async function createInstance(paths: KumoPaths, input: InstanceSpecInput | InstanceSpec, opts: CreateOptions = {}): Promise<InstanceRecord> {
  const em = new Emitter(opts.onEvent);
  const spec = isSpec(input) ? input : validateSpec(input, { ...(opts.cwd ? { cwd: opts.cwd } : {}), drivers: driverNames() });
  const files = instanceFiles(paths, spec.name);
  // Checks first: nothing is made until the input is known to be good.
  if (await exists(files.dir)) {
    if (!(await exists(files.record))) throw new IncompleteInstanceError(spec.name, !!(await lockHolder(files.lock)));
    throw new ConflictError('INSTANCE_EXISTS', `an instance named '${spec.name}' already exists`, { hint: `choose another name, or remove it: kumo delete ${spec.name}` });
  }
  const userData = await loadUserData(spec);
  const login = spec.sshKey ? await userKey(spec.sshKey) : undefined;
  for (const p of spec.ports) if (!(await portFree(p.hostPort, p.hostAddr))) throw new PortInUseError(p.hostAddr, p.hostPort, `forward to guest port ${p.guestPort}`);
  const driver = await getDriver(spec.driver);
  // The driver's settings as instance.json keeps them (defaults that depend on the environment pinned now).
  const driverOptions = driver.resolveOptions ? driver.resolveOptions(spec.driverOptions) : spec.driverOptions;
  await driver.check(paths, driverOptions);
  const image = opts.image ?? (await em.step('image', `image ${spec.image}`, () => resolveImage(paths, spec.image, opts)));
  if (spec.diskBytes !== undefined && image.virtualSize !== undefined && spec.diskBytes < image.virtualSize) {
    throw new ValidationError('invalid instance spec', [
      { path: 'disk', message: `${spec.diskBytes} bytes is smaller than the image (${image.virtualSize} bytes)`, hint: 'give at least the image size, or leave --disk out' },
    ]);
  }

  // Claim the name: mkdir is atomic, so of several creates of one name exactly one gets here.
  await mkdir(paths.instances, { recursive: true, mode: 0o700 });
  try {
    await mkdir(files.dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ConflictError('INSTANCE_EXISTS', `an instance named '${spec.name}' already exists (another command created it just now)`, { hint: 'choose another name' });
    throw e;
  }
  try {
    await using _lock = await lockInstance(paths, spec.name, 'create');
    const key = login ?? (await em.step('keys', 'ssh key', () => ensureDefaultKey(paths)));
    const hostKey = await generateHostKey(paths.tmp, 'ed25519', `kumo-${spec.name}`);
    await writeFileAtomic(files.hostKey, hostKey.privateKey, 0o600);
    await writeFileAtomic(`${files.hostKey}.pub`, hostKey.publicKey + '\n', 0o644);
    await writeKnownHosts(files.knownHosts, spec.name, [hostKey]);
    await em.step('disk', opts.makeDisk ? 'disk' : 'disk overlay', () => (opts.makeDisk ? opts.makeDisk(files.disk) : createOverlay(files.disk, image, spec.diskBytes)));
    const instanceId = `i-${spec.name}-${randomBytes(6).toString('hex')}`;
    await em.step('seed', 'cloud-init seed', () =>
      writeSeed(
        {
          format: spec.seedFormat,
          instanceId,
          hostname: spec.name,
          user: spec.user,
          sshAuthorizedKeys: [key.publicKey],
          hostKeys: [hostKey],
          ...(userData !== undefined ? { userData } : {}),
        },
        files.seed,
      ),
    );
    const rec: InstanceRecord = {
      version: RECORD_VERSION,
      name: spec.name,
      driver: driver.name,
      created: new Date().toISOString(),
      instanceId,
      image: { ref: spec.image, path: image.path, format: image.format, ...(image.id ? { id: image.id } : {}), ...(image.virtualSize ? { virtualSize: image.virtualSize } : {}) },
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
      ...(spec.diskBytes !== undefined ? { diskBytes: spec.diskBytes } : image.virtualSize ? { diskBytes: image.virtualSize } : {}),
      accel: spec.accel,
      firmware: spec.firmware,
      seedFormat: spec.seedFormat,
      mac: macFor(instanceId),
      ssh: { user: spec.user, port: 0, key: key.privateKeyPath },
      ports: spec.ports,
      timeoutSec: spec.timeoutSec,
      ...(spec.userDataPath ? { userDataSource: spec.userDataPath } : spec.userDataText !== undefined ? { userDataSource: '(inline)' } : {}),
      ...(driverOptions && Object.keys(driverOptions).length ? { driverOptions } : {}),
    };
    // The record is written last: it is the "complete" marker.
    await writeRecord(paths, rec);
    return rec;
  } catch (e) {
    await rm(files.dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

function isSpec(x: InstanceSpecInput | InstanceSpec): x is InstanceSpec {
  return typeof (x as InstanceSpec).memoryMiB === 'number' && Array.isArray((x as InstanceSpec).ports) && typeof (x as InstanceSpec).timeoutSec === 'number';
}

// ---------------------------------------------------------------------------------------------
// status

async function driverFor(rec: InstanceRecord): Promise<Driver> {
  return getDriver(rec.driver);
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
    driver = await driverFor(rec);
  } catch (e) {
    return { name, state: 'unknown', detail: (e as Error).message, record: rec };
  }
  const rt = runtimeFor(paths, rec);
  const st = await driver.status(rt);
  const live = st.state === 'running' || st.state === 'paused' || st.state === 'unknown';
  const ssh = live ? await endpointFor(driver, rt, rec).catch(() => undefined) : undefined;
  return {
    name,
    state: st.state,
    record: rec,
    ...(st.detail ? { detail: st.detail } : {}),
    ...(st.desync ? { desync: st.desync } : {}),
    ...(st.pid !== undefined ? { pid: st.pid } : {}),
    ...(ssh ? { ssh } : {}),
  };
}

export async function listInstances(paths: KumoPaths): Promise<InstanceStatus[]> {
  const names = await listNames(paths);
  return Promise.all(names.map((n) => instanceStatus(paths, n).catch((e: Error) => ({ name: n, state: 'corrupt' as const, detail: e.message }))));
}

// ---------------------------------------------------------------------------------------------
// start / wait / stop / restart / delete

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
    driver = await driverFor(rec);
    const rt = runtimeFor(paths, rec);
    const res = await em.step('start', `starting ${name}`, () => driver.start(rt, opts));
    accel = res.accel;
    rec = { ...rec, ssh: { ...rec.ssh, port: res.sshPort }, lastStart: { at: new Date().toISOString(), accel: res.accel, ...(res.pid !== undefined ? { pid: res.pid } : {}) } };
    await writeRecord(paths, rec);
    ep = await endpointFor(driver, rt, rec).catch(() => undefined);
    em.info(`${name}: ${driver.name} running (${res.accel}), ${ep ? `ssh on ${ep.host}:${ep.port}` : 'ssh address not known yet'}`);
  }
  if (opts.wait === false) return { record: rec, accel, ...(ep ? { ssh: ep } : {}) };
  const ready = await waitInstanceReady(paths, rec, opts);
  ep ??= await endpointFor(driver, runtimeFor(paths, rec), rec).catch(() => undefined);
  return { record: rec, accel, ...(ep ? { ssh: ep } : {}), ready };
}

/**
 * The ssh target of an instance from its record alone: the forwarded port on 127.0.0.1 (the QEMU
 * driver's case). Use `resolveSshTarget` for an instance whose driver may know better (libvirt:
 * a network address, a remote host).
 */
export function sshTargetFor(paths: KumoPaths, rec: InstanceRecord): SshTarget {
  const f = instanceFiles(paths, rec.name);
  return { name: rec.name, host: '127.0.0.1', port: rec.ssh.port, user: rec.ssh.user, identity: rec.ssh.key, knownHosts: f.knownHosts, alias: hostKeyAlias(rec.name) };
}

/** Where the guest's sshd is reached: the driver's `sshEndpoint` when it has one, else 127.0.0.1:PORT from the record. */
async function endpointFor(driver: Driver, rt: InstanceRuntime, rec: InstanceRecord): Promise<SshEndpoint | undefined> {
  if (driver.sshEndpoint) return driver.sshEndpoint(rt);
  return rec.ssh.port ? { host: '127.0.0.1', port: rec.ssh.port } : undefined;
}

/** The ssh target of a started instance, asking its driver where the guest's sshd is (`sshEndpoint`). */
export async function resolveSshTarget(paths: KumoPaths, rec: InstanceRecord): Promise<SshTarget> {
  const driver = await driverFor(rec);
  const ep = await endpointFor(driver, runtimeFor(paths, rec), rec);
  if (!ep) {
    throw new ConflictError('SSH_ADDRESS_UNKNOWN', `instance '${rec.name}' has no known ssh address yet (${driver.name}: no address from its network yet, or never started)`, {
      hint: `wait until it is ready: kumo start ${rec.name} (waits), or see 'kumo info ${rec.name}'`,
    });
  }
  return { ...sshTargetFor(paths, rec), host: ep.host, port: ep.port };
}

export async function waitInstanceReady(paths: KumoPaths, rec: InstanceRecord, opts: StartInstanceOptions = {}): Promise<ReadyResult> {
  const driver = await driverFor(rec);
  const rt = runtimeFor(paths, rec);
  const serialLog = driver.consoleLogPath?.(rt) ?? qemuFiles(rt.dir).serialLog;
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
  const driver = await driverFor(rec);
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
  // An incomplete or damaged record still may have left a QEMU behind: check with the qemu driver.
  const driver = rec ? await driverFor(rec) : await getDriver('qemu');
  const rt = rec
    ? runtimeFor(paths, rec)
    : { name, dir: files.dir, paths, cpus: 1, memoryMiB: 128, disk: { path: files.disk, format: 'qcow2' as const }, mac: '', sshPort: 0, ports: [], accel: 'auto' as const };
  const st = await driver.status(rt);
  if (st.state === 'running' || st.state === 'paused' || st.state === 'unknown') {
    if (!opts.force) throw new ConflictError('INSTANCE_RUNNING', `instance '${name}' is running`, { hint: `stop it first (kumo stop ${name}) or use: kumo delete --force ${name}` });
    await driver.stop(rt, { force: true, ...opts });
  }
  if (rec) await closeMaster(await resolveSshTarget(paths, rec).catch(() => sshTargetFor(paths, rec!)));
  await driver.cleanup(rt);
  // What the backend keeps for the instance's whole life (a libvirt domain, its volumes).
  await driver.purge?.(rt);
  await rm(files.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// info

export interface InstanceInfo extends InstanceStatus {
  dir: string;
  /** The driver and the settings it keeps (libvirt: connect URI, pool, network). */
  driver?: { name: string; options?: Record<string, unknown> };
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
  if (await exists(qemuFiles(files.dir).serialLog)) info.serialLog = qemuFiles(files.dir).serialLog;
  return info;
}

// ---------------------------------------------------------------------------------------------
// ports

export interface PortList {
  ssh: PortForward;
  ports: PortForward[];
  running: boolean;
}

function parsePort(s: string): PortForward {
  const p = parsePortForward(s);
  if (typeof p === 'string') throw new ValidationError('invalid port forward', [{ path: 'port', message: p, hint: 'HOST:GUEST, e.g. 8080:80' }]);
  return p;
}

async function isRunning(driver: Driver, rt: ReturnType<typeof runtimeFor>): Promise<boolean> {
  const st = await driver.status(rt);
  return st.state === 'running' || st.state === 'paused';
}

/** Add a forward; applied at once when the instance runs (QMP hostfwd_add), and kept in instance.json. */
export async function addPort(paths: KumoPaths, name: string, spec: string | PortForward, opts: OpOptions = {}): Promise<PortForward> {
  const fwd = typeof spec === 'string' ? parsePort(spec) : spec;
  await using _lock = await lockInstance(paths, name, 'port add', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  if (rec.ports.some((p) => p.hostPort === fwd.hostPort && p.proto === fwd.proto && p.hostAddr === fwd.hostAddr) || (fwd.proto === 'tcp' && fwd.hostPort === rec.ssh.port)) {
    throw new ConflictError('PORT_EXISTS', `instance '${name}' already forwards ${fwd.hostAddr}:${fwd.hostPort}/${fwd.proto}`, { hint: `remove it first: kumo port rm ${name} ${fwd.hostPort}` });
  }
  const driver = await driverFor(rec);
  const rt = runtimeFor(paths, rec);
  if (await isRunning(driver, rt)) await requireCapability(driver, 'ports', 'change port forwards while running').addPort(rt, fwd);
  else if (!(await portFree(fwd.hostPort, fwd.hostAddr))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
  await writeRecord(paths, { ...rec, ports: [...rec.ports, fwd] });
  return fwd;
}

/** Remove a forward by host port ("8080", "8080/udp", "127.0.0.1:8080") or full HOST:GUEST. */
export async function removePort(paths: KumoPaths, name: string, spec: string, opts: OpOptions = {}): Promise<PortForward> {
  await using _lock = await lockInstance(paths, name, 'port rm', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+)(?::\d+)?(?:\/(tcp|udp))?$/.exec(spec.trim());
  if (!m) throw new InvalidInputError('INVALID_PORT', `'${spec}' is not a host port`, { hint: 'give the host port, e.g. 8080 or 8080/udp' });
  const hostPort = Number(m[2]);
  const proto = (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp';
  const fwd = rec.ports.find((p) => p.hostPort === hostPort && p.proto === proto && (!m[1] || p.hostAddr === m[1]));
  if (!fwd) throw new NotFoundError('PORT_NOT_FOUND', `instance '${name}' has no forward from host port ${hostPort}/${proto}`, { hint: `see: kumo port list ${name}` });
  const driver = await driverFor(rec);
  const rt = runtimeFor(paths, rec);
  if (await isRunning(driver, rt)) await requireCapability(driver, 'ports', 'change port forwards while running').removePort(rt, fwd);
  await writeRecord(paths, { ...rec, ports: rec.ports.filter((p) => p !== fwd) });
  return fwd;
}

export async function listPorts(paths: KumoPaths, name: string): Promise<PortList> {
  const rec = await readRecord(paths, name);
  const driver = await driverFor(rec);
  return { ssh: { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: rec.ssh.port, guestPort: 22 }, ports: rec.ports, running: await isRunning(driver, runtimeFor(paths, rec)) };
}

// ---------------------------------------------------------------------------------------------

/** Resolve KUMO_HOME for library calls: explicit paths, a home folder, or the environment. */
export async function homePaths(o: { home?: string; paths?: KumoPaths }): Promise<KumoPaths> {
  if (o.paths) return o.paths;
  return ensureHome({ ...(o.home ? { home: o.home } : {}) });
}


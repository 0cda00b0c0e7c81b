/**
 * The library's handle on one instance, and `launch()`:
 *
 *   await using vm = await launch({ image: 'debian-12', userDataText: '#cloud-config\n...' });
 *   const r = await vm.exec('uname -a');        // { code, stdout, stderr }
 *   await vm.exec(['make', 'test'], { cwd: '/src', env: { CI: '1' }, check: true });
 *   await vm.copyIn('./app', '/tmp/app');        // files and folders; copyOut the other way
 *   // leaving the block deletes the VM (Symbol.asyncDispose)
 */
import { ensureHome, type KumoPaths } from '../config/paths.js';
import type { InstanceSpecInput } from '../config/spec.js';
import { KumoError, NotFoundError } from '../core/errors.js';
import type { ExecResult, SshTarget } from '../guest/ssh.js';
import { copyIn, copyOut, execIn, type CopyOptions, type ExecOptions } from './exec.js';
import type { ReadyResult } from '../guest/ready.js';
import type { PortForward } from '../driver/driver.js';
import { createInstance, newInstanceName, resolveImage } from './create.js';
import { createFromTemplate, templateFor, templateIneligible } from './warm.js';
import { validateSpec } from '../config/spec.js';
import { driverNames, getDriver } from '../driver/index.js';
import { Emitter } from '../events/events.js';
import { consoleDiagnosis, consoleTail } from './logs.js';
import { addPort, mappedPort, removePort } from './ports.js';
import { conditionsFor, instanceWaitContext, waitConditions, waitForInstance, type WaitForOptions, type WaitResult, type WaitStrategy } from './wait.js';
import { deleteInstance, restartInstance, startInstance, stopInstance, waitInstanceReady, type StartInstanceResult } from './power.js';
import { resolveSshTarget } from './ssh-target.js';
import { instanceInfo, instanceStatus, type InstanceInfo, type InstanceStatus } from './status.js';
import { InstanceNotFoundError, instanceFiles, readRecord, type InstanceRecord, type OpOptions } from './store.js';
// Reaping, reuse and snapshots (issue 22: labels, reaping, fast reset)
import { UsageError } from '../core/errors.js';
import { sleep } from '../core/time.js';
import { exists } from '../core/fs.js';
import { closeMaster } from '../guest/master.js';
import { loadUserData } from '../seed/userdata.js';
import { userDataDigest } from './create.js';
import { reapingWanted, registerForReaping, unregisterFromReaping } from './reaper.js';
import { InstanceSpecDiffersError, specDifferences } from './reuse.js';
import { createSnapshot, deleteSnapshot, listSnapshots, restoreSnapshot, type SnapshotInfo } from './snapshot.js';

/** Resolve KUMO_HOME for library calls: explicit paths, a home folder, or the environment. */
export async function homePaths(o: { home?: string; paths?: KumoPaths }): Promise<KumoPaths> {
  if (o.paths) return o.paths;
  return ensureHome({ ...(o.home ? { home: o.home } : {}) });
}

export { ExecFailedError, CommandNotFoundError, ExecTimeoutError, type ExecOptions, type CopyOptions } from './exec.js';

export class Instance implements AsyncDisposable {
  constructor(
    readonly paths: KumoPaths,
    readonly name: string,
    /** What the start by `launch()` gave (record, accelerator, ssh endpoint, readiness); undefined for `getInstance()`. */
    readonly started?: StartInstanceResult,
  ) {}

  /** The record as stored now (re-read each call). */
  record(): Promise<InstanceRecord> {
    return readRecord(this.paths, this.name);
  }

  status(): Promise<InstanceStatus> {
    return instanceStatus(this.paths, this.name);
  }

  info(): Promise<InstanceInfo> {
    return instanceInfo(this.paths, this.name);
  }

  async sshTarget(): Promise<SshTarget> {
    return resolveSshTarget(this.paths, await this.record());
  }

  /**
   * Run a command in the guest. A string goes to the guest's shell as is; an array is quoted word
   * by word. Options: env, cwd, user, stdin, timeoutMs, signal, onStdout/onStderr, check.
   */
  async exec(command: string | readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
    return execIn(await this.sshTarget(), command, o);
  }

  /** Copy a host file or folder (recursively) into the guest. */
  async copyIn(localPath: string, guestPath: string, o: CopyOptions = {}): Promise<void> {
    return copyIn(await this.sshTarget(), localPath, guestPath, o);
  }

  /** Copy a guest file or folder (recursively) to the host. */
  async copyOut(guestPath: string, localPath: string, o: CopyOptions & { recursive?: boolean } = {}): Promise<void> {
    return copyOut(await this.sshTarget(), guestPath, localPath, o);
  }

  /** The older name of copyIn. */
  copyTo(localPath: string, guestPath: string, o: CopyOptions = {}): Promise<void> {
    return this.copyIn(localPath, guestPath, o);
  }

  /** The older name of copyOut. */
  copyFrom(guestPath: string, localPath: string, o: CopyOptions & { recursive?: boolean } = {}): Promise<void> {
    return this.copyOut(guestPath, localPath, o);
  }

  start(o: OpOptions & { wait?: boolean; timeoutSec?: number } = {}): Promise<{ record: InstanceRecord; ready?: ReadyResult }> {
    return startInstance(this.paths, this.name, o);
  }

  stop(o: OpOptions & { force?: boolean; timeoutSec?: number } = {}): Promise<{ wasRunning: boolean }> {
    return stopInstance(this.paths, this.name, o);
  }

  restart(o: OpOptions & { force?: boolean; wait?: boolean } = {}): Promise<StartInstanceResult> {
    return restartInstance(this.paths, this.name, o);
  }

  addPort(spec: string | PortForward): Promise<PortForward> {
    return addPort(this.paths, this.name, spec);
  }

  removePort(spec: string): Promise<PortForward> {
    return removePort(this.paths, this.name, spec);
  }

  /**
   * The host port (on its forward's address, 127.0.0.1 by default) forwarded to guest port
   * `guestPort`: a fixed one, or the one picked at start for a dynamic forward (`0:80`,
   * `{ guest: 80 }`), which stays the same while the instance runs.
   */
  mappedPort(guestPort: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
    return mappedPort(this.paths, this.name, guestPort, proto);
  }

  /**
   * Wait until every strategy holds: `{ port: 80 }`, `{ http: { port: 80, path: '/', status: 200 } }`,
   * `{ log: /ready/ }`, `{ logFile: '/var/log/x', log: /re/ }`, `{ command: 'test -f /x' }`
   * (src/instance/wait.ts). A WaitTimeoutError names what was seen last.
   */
  waitFor(strategies: WaitStrategy | readonly WaitStrategy[], o: WaitForOptions = {}): Promise<WaitResult> {
    return waitForInstance(this.paths, this.name, strategies, o);
  }

  /** Delete the instance (stopping it first); it is no longer reaped when this process ends. */
  async delete(o: OpOptions = {}): Promise<void> {
    try {
      await deleteInstance(this.paths, this.name, { ...o, force: true });
    } catch (e) {
      if (e instanceof NotFoundError) await unregisterFromReaping(this.paths, this.name);
      throw e;
    }
    await unregisterFromReaping(this.paths, this.name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }

  // --- fast reset: live snapshots of the running machine (disk + memory), disk-only when stopped

  /** Take a snapshot named `snap` (running: disk and memory, so restore resumes right there). */
  snapshot(snap: string, o: OpOptions = {}): Promise<{ name: string; snapshot: string; live: boolean }> {
    return createSnapshot(this.paths, this.name, snap, o);
  }

  /**
   * Go back to snapshot `snap`. The guest's TCP state jumps back with it, so the shared ssh
   * connection is closed (the next exec opens a fresh one); after a live restore this waits
   * until a command runs in the guest, so the handle is usable at once. The guest's clock is
   * stepped to now and its RNG reseeded (`guest`), or `warning` says why not.
   */
  async restore(snap: string, o: OpOptions & { timeoutMs?: number } = {}): ReturnType<typeof restoreSnapshot> {
    const target = await this.sshTarget().catch(() => undefined);
    if (target) await closeMaster(target);
    const r = await restoreSnapshot(this.paths, this.name, snap, o);
    if (target) await closeMaster(target);
    if (r.live) await this.waitForExec(o.timeoutMs ?? 60_000, o.signal);
    return r;
  }

  /** Remove snapshot `snap`. */
  deleteSnapshot(snap: string, o: OpOptions = {}): Promise<{ name: string; snapshot: string }> {
    return deleteSnapshot(this.paths, this.name, snap, o);
  }

  /** The instance's snapshots. */
  snapshots(o: OpOptions = {}): Promise<SnapshotInfo[]> {
    return listSnapshots(this.paths, this.name, o);
  }

  /** Until `true` runs in the guest over ssh (a fresh connection), or the last failure after `timeoutMs`. */
  private async waitForExec(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await this.exec(['true'], { timeoutMs: Math.max(1000, Math.min(15_000, deadline - Date.now())), ...(signal ? { signal } : {}) });
        if (r.code === 0) return;
        if (Date.now() > deadline) throw new KumoError('NOT_READY', 'timeout', `instance '${this.name}' does not run commands after the restore (exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''})`, { hint: `see 'kumo logs ${this.name}'` });
      } catch (e) {
        if (Date.now() > deadline || signal?.aborted) throw e;
      }
      await sleep(300, signal);
    }
  }
}

export interface LaunchOptions extends Omit<InstanceSpecInput, 'name'>, OpOptions {
  /** Instance name; generated (vm-xxxxxx) when left out. */
  name?: string;
  /** KUMO_HOME for this call (default: KUMO_HOME from the environment, or ~/.local/share/kumo). */
  home?: string;
  paths?: KumoPaths;
  /** Wait until ready: ssh answers and cloud-init has finished (default true; false returns once the machine is started). */
  wait?: boolean;
  /** Keep the instance when its start or readiness fails (default false: it is deleted, and the error carries its console's tail). */
  keepOnFailure?: boolean;
  /** Where relative paths (userData, sshKey) are resolved. */
  cwd?: string;
  /** After ready, wait until these hold too (see Instance.waitFor); a failure follows keepOnFailure. */
  waitFor?: WaitStrategy | readonly WaitStrategy[];
  /** How long `waitFor` may take (ms; default 60000). */
  waitForTimeoutMs?: number;
  /** Boot even when a warm template matches (default false: a matching template is restored, about a second). */
  cold?: boolean;
  /**
   * Delete the instance once this process is gone, by any means (kill -9 included): a watchdog
   * process notices (default true for `launch()`; false, or KUMO_NO_REAP=1, keeps it; `reuse`
   * turns it off unless given).
   */
  reap?: boolean;
  /**
   * With `name`: when an instance of that name exists with the same spec, return it (started
   * and ready; no new boot when it runs); a different spec is an InstanceSpecDiffersError
   * saying what differs; no such instance: create it as usual.
   */
  reuse?: boolean;
}

/** Lines of the serial console a failed launch puts in its error. */
const CONSOLE_TAIL_LINES = 20;

/**
 * The launch use case: create an instance, start it, wait until it is ready (unless `wait:
 * false`); `home` and `paths` of the options are not read (`paths` is given). One failure policy: a launch that fails leaves nothing behind (create rolls back
 * itself; a failed start or readiness deletes the instance) unless `keepOnFailure` is given; the
 * error keeps its code and gets the last lines of the instance's serial console, read before the
 * instance is removed (in `details.consoleTail`, and in the hint when the message does not show
 * them already), and a hint line saying what became of the instance.
 */
export async function launchInstance(paths: KumoPaths, o: LaunchOptions): Promise<StartInstanceResult> {
  const { spec, launch: { wait, keepOnFailure, onEvent, signal, cwd, waitFor, waitForTimeoutMs, cold } } = splitLaunchOptions(o);
  const conditions = waitFor !== undefined ? conditionsFor(waitFor) : undefined; // bad conditions fail before anything is made
  const name = o.name ?? newInstanceName();
  const ev = { ...(onEvent ? { onEvent } : {}), ...(signal ? { signal } : {}) };
  const rec = await createForLaunch(paths, { ...spec, name }, { ...ev, ...(cwd ? { cwd } : {}), ...(cold ? { cold } : {}) });
  try {
    const started = await startInstance(paths, name, { ...ev, wait: wait ?? true });
    if (conditions) await waitConditions(await instanceWaitContext(paths, name), conditions, { ...(waitForTimeoutMs !== undefined ? { timeoutMs: waitForTimeoutMs } : {}), ...(signal ? { signal } : {}) });
    return started;
  } catch (e) {
    const tail = await consoleTail(paths, rec, CONSOLE_TAIL_LINES).catch(() => []);
    const fate = keepOnFailure ? 'kept' : await deleteInstance(paths, name, { force: true }).then(() => 'removed' as const, () => 'left' as const);
    throw withConsoleTail(e, name, tail, fate);
  }
}

/**
 * Create the instance a launch starts: a clone of the warm template that matches its image and
 * shape on this host (its first start restores the template), or a fresh overlay that boots. Says
 * which, and why not a template.
 */
async function createForLaunch(paths: KumoPaths, input: InstanceSpecInput, o: OpOptions & { cwd?: string; cold?: boolean }): Promise<InstanceRecord> {
  const em = new Emitter(o.onEvent);
  const spec = validateSpec(input, { ...(o.cwd ? { cwd: o.cwd } : {}), drivers: driverNames() });
  const driver = await getDriver(spec.driver);
  if (o.cold || templateIneligible(spec, driver)) {
    if (o.cold) em.info(`${spec.name}: booting (--cold)`);
    else if (spec.networks?.length) em.info(`${spec.name}: booting: a warm template has no NICs on private networks`);
    return createInstance(paths, spec, o);
  }
  const image = await em.step('image', `image ${spec.image}`, () => resolveImage(paths, spec.image, o));
  const found = await templateFor(paths, spec, image, driver);
  if (found.template) {
    em.info(`${spec.name}: from warm template ${found.template.id} (--cold boots instead)`);
    return createFromTemplate(paths, spec, found.template, image, o);
  }
  em.info(`${spec.name}: booting: ${found.reason}`);
  return createInstance(paths, spec, { ...o, image });
}

/** The failed launch's error, same class and code, with the console tail and what became of the instance. */
function withConsoleTail(e: unknown, name: string, tail: string[], fate: 'removed' | 'kept' | 'left'): unknown {
  if (!(e instanceof KumoError)) return e;
  const said = {
    removed: `instance '${name}' was removed, so 'kumo logs ${name}' cannot show its console: launch with --keep-on-failure (keepOnFailure: true) to keep a failed instance`,
    kept: `instance '${name}' was kept for inspection: see its console with 'kumo logs ${name}', remove it with 'kumo delete --force ${name}'`,
    left: `removing instance '${name}' failed too: see its console with 'kumo logs ${name}', remove it with 'kumo delete --force ${name}'`,
  }[fate];
  const shown = /last lines of the serial console|the serial console is empty/.test(e.message);
  const lines = shown ? '' : tail.length ? `\nlast lines of its serial console:\n${tail.map((l) => `  | ${l}`).join('\n')}` : '\n(its serial console is empty)';
  const diagnosis = consoleDiagnosis(tail);
  const m = e as { hint?: string; details?: Record<string, unknown> };
  m.hint = `${said}${e.hint ? `\n${e.hint}` : ''}${diagnosis ? `\n${diagnosis}` : ''}${lines}`;
  m.details = { ...e.details, instance: name, consoleTail: tail, removed: fate === 'removed', ...(diagnosis ? { consoleDiagnosis: diagnosis } : {}) };
  return e;
}

/**
 * Create and start an instance, wait until it is ready, and return its handle (see
 * launchInstance for the failure policy). With `reuse`, an existing instance of that name and
 * spec is returned instead; with reaping (the default), the instance is registered to this
 * process before it is made, and is deleted by the watchdog when the process dies.
 */
export async function launch(o: LaunchOptions): Promise<Instance> {
  const paths = await homePaths(o);
  if (o.reuse) {
    if (!o.name) throw new UsageError('reuse needs the name of the instance to reuse', { hint: "give { reuse: true, name: 'NAME' } (kumo launch --reuse NAME)" });
    const existing = await reuseInstance(paths, o);
    if (existing) return existing;
  }
  const name = o.name ?? newInstanceName();
  // Registered before it is made (a kill during the boot is reaped too); never a name that is taken already.
  const reap = reapingWanted(o.reap ?? (o.reuse ? false : undefined)) && !(await exists(instanceFiles(paths, name).dir));
  if (reap) await registerForReaping(paths, name);
  let started: StartInstanceResult;
  try {
    started = await launchInstance(paths, { ...o, name });
  } catch (e) {
    // removed already, or kept on purpose for inspection: not reaped either way
    if (reap) await unregisterFromReaping(paths, name).catch(() => {});
    if (o.reuse && e instanceof KumoError && e.code === 'INSTANCE_EXISTS') {
      const existing = await reuseInstance(paths, o); // another process made it just now
      if (existing) return existing;
    }
    throw e;
  }
  return new Instance(paths, name, started);
}

/** LaunchOptions split into what only launch reads and the rest: the instance spec input (one list, so no option leaks into the spec). */
function splitLaunchOptions(o: LaunchOptions) {
  const { home: _h, paths: _p, wait, keepOnFailure, onEvent, signal, cwd, waitFor, waitForTimeoutMs, cold, reap, reuse, ...spec } = o;
  return { spec, launch: { wait, keepOnFailure, onEvent, signal, cwd, waitFor, waitForTimeoutMs, cold, reap, reuse } };
}

/** The reuse of `launch`: the existing instance with this name and spec, started and ready; undefined when there is none. */
async function reuseInstance(paths: KumoPaths, o: LaunchOptions): Promise<Instance | undefined> {
  const name = o.name!;
  let rec: InstanceRecord;
  try {
    rec = await readRecord(paths, name);
  } catch (e) {
    if (e instanceof InstanceNotFoundError) return undefined;
    throw e;
  }
  const { spec: input, launch: { wait, onEvent, signal, cwd, waitFor, waitForTimeoutMs } } = splitLaunchOptions(o);
  const conditions = waitFor !== undefined ? conditionsFor(waitFor) : undefined;
  const spec = validateSpec({ ...input, name }, { ...(cwd ? { cwd } : {}), drivers: driverNames() });
  const text = await loadUserData(spec);
  const diffs = specDifferences(rec, spec, text === undefined ? undefined : userDataDigest(text));
  if (diffs.length) throw new InstanceSpecDiffersError(name, diffs);
  const ev = { ...(onEvent ? { onEvent } : {}), ...(signal ? { signal } : {}) };
  const st = await instanceStatus(paths, name);
  let started: StartInstanceResult;
  if (st.state === 'running') {
    const ready = wait === false ? undefined : await waitInstanceReady(paths, rec, ev);
    started = { record: rec, accel: rec.lastStart?.accel ?? rec.accel, ...(st.ssh ? { ssh: st.ssh } : {}), ...(ready ? { ready } : {}) };
  } else if (st.state === 'stopped' || st.state === 'crashed' || st.state === 'suspended') {
    started = await startInstance(paths, name, { ...ev, wait: wait ?? true });
  } else {
    throw new KumoError('INSTANCE_BUSY', 'conflict', `instance '${name}' is ${st.state}${st.detail ? ` (${st.detail})` : ''}: it cannot be reused now`, { hint: `resume or stop it (kumo stop ${name}), or delete it: kumo delete --force ${name}` });
  }
  if (conditions) await waitConditions(await instanceWaitContext(paths, name), conditions, { ...(waitForTimeoutMs !== undefined ? { timeoutMs: waitForTimeoutMs } : {}), ...(signal ? { signal } : {}) });
  if (o.reap === true && reapingWanted(true)) await registerForReaping(paths, name);
  return new Instance(paths, name, started);
}

/** A handle on an existing instance. */
export async function getInstance(name: string, o: { home?: string; paths?: KumoPaths } = {}): Promise<Instance> {
  const paths = await homePaths(o);
  await readRecord(paths, name);
  return new Instance(paths, name);
}

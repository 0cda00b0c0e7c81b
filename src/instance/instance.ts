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
import { consoleTail } from './logs.js';
import { addPort, mappedPort, removePort } from './ports.js';
import { conditionsFor, instanceWaitContext, waitConditions, waitForInstance, type WaitForOptions, type WaitResult, type WaitStrategy } from './wait.js';
import { deleteInstance, restartInstance, startInstance, stopInstance, type StartInstanceResult } from './power.js';
import { resolveSshTarget } from './ssh-target.js';
import { instanceInfo, instanceStatus, type InstanceInfo, type InstanceStatus } from './status.js';
import { readRecord, type InstanceRecord, type OpOptions } from './store.js';

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

  /** Delete the instance (stopping it first). */
  delete(o: OpOptions = {}): Promise<void> {
    return deleteInstance(this.paths, this.name, { ...o, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
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
  const { home: _h, paths: _p, wait, keepOnFailure, onEvent, signal, cwd, waitFor, waitForTimeoutMs, cold, ...spec } = o;
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
  const m = e as { hint?: string; details?: Record<string, unknown> };
  m.hint = `${said}${e.hint ? `\n${e.hint}` : ''}${lines}`;
  m.details = { ...e.details, instance: name, consoleTail: tail, removed: fate === 'removed' };
  return e;
}

/** Create and start an instance, wait until it is ready, and return its handle (see launchInstance for the failure policy). */
export async function launch(o: LaunchOptions): Promise<Instance> {
  const paths = await homePaths(o);
  const name = o.name ?? newInstanceName();
  const started = await launchInstance(paths, { ...o, name });
  return new Instance(paths, name, started);
}

/** A handle on an existing instance. */
export async function getInstance(name: string, o: { home?: string; paths?: KumoPaths } = {}): Promise<Instance> {
  const paths = await homePaths(o);
  await readRecord(paths, name);
  return new Instance(paths, name);
}

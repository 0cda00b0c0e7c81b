/**
 * The library's handle on one instance, and `launch()`:
 *
 *   await using vm = await launch({ image: 'debian-12', userDataText: '#cloud-config\n...' });
 *   const r = await vm.exec('uname -a');        // { code, stdout, stderr }
 *   await vm.exec(['make', 'test'], { cwd: '/src', env: { CI: '1' }, check: true });
 *   await vm.copyIn('./app', '/tmp/app');        // files and folders; copyOut the other way
 *   // leaving the block deletes the VM (Symbol.asyncDispose)
 */
import { randomBytes } from 'node:crypto';
import type { KumoPaths } from '../config/paths.js';
import type { InstanceSpecInput } from '../config/spec.js';
import { NotFoundError } from '../core/errors.js';
import type { ExecResult, SshTarget } from '../guest/ssh.js';
import { copyIn, copyOut, execIn, type CopyOptions, type ExecOptions } from './exec.js';
import type { ReadyResult } from '../guest/ready.js';
import {
  addPort,
  createInstance,
  deleteInstance,
  homePaths,
  instanceInfo,
  instanceStatus,
  removePort,
  restartInstance,
  resolveSshTarget,
  startInstance,
  stopInstance,
  type InstanceInfo,
  type InstanceStatus,
  type OpOptions,
} from './lifecycle.js';
import { readRecord, type InstanceRecord } from './store.js';
import type { PortForward } from '../driver/driver.js';

export { ExecFailedError, CommandNotFoundError, ExecTimeoutError, type ExecOptions, type CopyOptions } from './exec.js';

export class Instance implements AsyncDisposable {
  constructor(
    readonly paths: KumoPaths,
    readonly name: string,
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

  restart(o: OpOptions & { force?: boolean; wait?: boolean } = {}): Promise<unknown> {
    return restartInstance(this.paths, this.name, o);
  }

  addPort(spec: string | PortForward): Promise<PortForward> {
    return addPort(this.paths, this.name, spec);
  }

  removePort(spec: string): Promise<PortForward> {
    return removePort(this.paths, this.name, spec);
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
  /** Wait until ready (default true). */
  wait?: boolean;
  /** Keep the instance when it fails to become ready (default false: it is deleted). */
  keepOnFailure?: boolean;
  /** Where relative paths (userData, sshKey) are resolved. */
  cwd?: string;
}

/** Create and start an instance, wait until it is ready, and return its handle. */
export async function launch(o: LaunchOptions): Promise<Instance> {
  const paths = await homePaths(o);
  const { home: _h, paths: _p, wait, keepOnFailure, onEvent, signal, cwd, ...spec } = o;
  const name = o.name ?? `vm-${randomBytes(3).toString('hex')}`;
  const ev = { ...(onEvent ? { onEvent } : {}), ...(signal ? { signal } : {}) };
  await createInstance(paths, { ...spec, name }, { ...ev, ...(cwd ? { cwd } : {}) });
  const vm = new Instance(paths, name);
  try {
    await startInstance(paths, name, { ...ev, wait: wait ?? true });
  } catch (e) {
    if (!keepOnFailure) await deleteInstance(paths, name, { force: true }).catch(() => {});
    throw e;
  }
  return vm;
}

/** A handle on an existing instance. */
export async function getInstance(name: string, o: { home?: string; paths?: KumoPaths } = {}): Promise<Instance> {
  const paths = await homePaths(o);
  await readRecord(paths, name);
  return new Instance(paths, name);
}

/**
 * The library's handle on one instance, and `launch()`:
 *
 *   await using vm = await launch({ image: 'debian-12', userDataText: '#cloud-config\n...' });
 *   const r = await vm.exec('uname -a');        // { code, stdout, stderr }
 *   await vm.copyTo('./app.tar', '/tmp/app.tar');
 *   // leaving the block deletes the VM (Symbol.asyncDispose)
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import type { InstanceSpecInput } from '../config/spec.js';
import { KumoError, NotFoundError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { remotePath, scpArgv, shellQuote, sshExec, type ExecResult, type SshTarget } from '../guest/ssh.js';
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
  type StartInstanceResult,
} from './lifecycle.js';
import { readRecord, type InstanceRecord } from './store.js';
import type { PortForward } from '../driver/driver.js';

export interface ExecOptions {
  /** Text written to the command's stdin. */
  input?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Throw an ExecFailedError when the command exits non-zero (default false: return the code). */
  check?: boolean;
}

export class ExecFailedError extends KumoError {
  constructor(name: string, command: string, r: ExecResult) {
    super('EXEC_FAILED', 'external', `'${command}' exited with status ${r.code} in instance '${name}'${r.stderr.trim() ? `:\n${r.stderr.trim().split('\n').slice(-8).join('\n')}` : ''}`, {
      details: { code: r.code },
    });
  }
}

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

  /** Run a command in the guest. A string goes to the guest's shell as is; an array is quoted word by word. */
  async exec(command: string | readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
    const cmd = typeof command === 'string' ? command : shellQuote(command);
    const t = await this.sshTarget();
    const r = await sshExec(t, cmd, {
      ...(o.input !== undefined ? { input: o.input } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (r.code === 255 && /Connection refused|Connection timed out|Host key verification failed|Permission denied|kex_exchange/i.test(r.stderr)) {
      throw new KumoError('SSH_FAILED', 'external', `cannot ssh into instance '${this.name}': ${r.stderr.trim().split('\n').pop()}`, {
        hint: `check it is running and ready: kumo info ${this.name}`,
      });
    }
    if (o.check && r.code !== 0) throw new ExecFailedError(this.name, cmd, r);
    return r;
  }

  /** Copy a host file or folder into the guest. */
  async copyTo(localPath: string, guestPath: string, o: { signal?: AbortSignal } = {}): Promise<void> {
    let st;
    try {
      st = await stat(localPath);
    } catch {
      throw new NotFoundError('FILE_NOT_FOUND', `${localPath}: no such file or directory`, { hint: 'check the host path' });
    }
    const t = await this.sshTarget();
    await run('scp', scpArgv(t, localPath, remotePath(t, guestPath), { recursive: st.isDirectory() }), {
      ...(o.signal ? { signal: o.signal } : {}),
      hint: `check the guest path and that '${this.name}' is running`,
    });
  }

  /** Copy a guest file or folder to the host. */
  async copyFrom(guestPath: string, localPath: string, o: { signal?: AbortSignal; recursive?: boolean } = {}): Promise<void> {
    const t = await this.sshTarget();
    await run('scp', scpArgv(t, remotePath(t, guestPath), localPath, { recursive: o.recursive ?? true }), {
      ...(o.signal ? { signal: o.signal } : {}),
      hint: `check the guest path and that '${this.name}' is running`,
    });
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
  /** Called with what the start returned (accelerator, ssh endpoint, readiness timings): the CLI prints it. */
  onStarted?: (r: StartInstanceResult) => void;
}

/** A fresh instance name, `vm-` and 6 hex digits: the one generator of the library and the CLI. */
export function newInstanceName(): string {
  return `vm-${randomBytes(3).toString('hex')}`;
}

/** Create and start an instance, wait until it is ready, and return its handle. */
export async function launch(o: LaunchOptions): Promise<Instance> {
  const paths = await homePaths(o);
  const { home: _h, paths: _p, wait, keepOnFailure, onEvent, signal, cwd, onStarted, ...spec } = o;
  const name = o.name ?? newInstanceName();
  const ev = { ...(onEvent ? { onEvent } : {}), ...(signal ? { signal } : {}) };
  await createInstance(paths, { ...spec, name }, { ...ev, ...(cwd ? { cwd } : {}) });
  const vm = new Instance(paths, name);
  try {
    const started = await startInstance(paths, name, { ...ev, wait: wait ?? true });
    onStarted?.(started);
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

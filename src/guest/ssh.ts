/**
 * SSH into instances with the system `ssh` and `scp`, always by argv. Every connection pins the
 * host key: the instance's own known_hosts, under its alias, with StrictHostKeyChecking=yes, and
 * the user's ~/.ssh/config is ignored (-F /dev/null) so that kumo behaves the same everywhere.
 * Connections are shared through one master per instance (see master.ts) when `controlPath` is
 * given; sshExec finds it by itself.
 */
import { spawn } from 'node:child_process';
import type { RunOptions } from '../core/exec.js';
import { InterruptedError, TimeoutError, ToolMissingError } from '../core/errors.js';
import { debug, formatArgv } from '../core/log.js';
import { shellQuote } from '../core/text.js';
import { controlOptions, controlPathFor, closeMasterAt, removeStaleSocket } from './master.js';

import type { SshTarget } from './target.js';

export type { SshTarget };

export interface SshArgvOptions {
  /** Allocate a terminal (-t) for interactive sessions. */
  tty?: boolean;
  connectTimeoutSec?: number;
  /** Extra -o options. */
  extra?: string[];
  /** Share the connection through the master at this ControlPath (see master.ts). */
  controlPath?: string;
}

/** Options common to ssh and scp. */
export function sshOptions(t: SshTarget, o: SshArgvOptions = {}): string[] {
  const opts = [
    'BatchMode=yes',
    'StrictHostKeyChecking=yes',
    `UserKnownHostsFile=${t.knownHosts}`,
    'GlobalKnownHostsFile=/dev/null',
    `HostKeyAlias=${t.alias}`,
    'IdentitiesOnly=yes',
    'IdentityAgent=none',
    'PasswordAuthentication=no',
    'KbdInteractiveAuthentication=no',
    `ConnectTimeout=${o.connectTimeoutSec ?? 10}`,
    'ServerAliveInterval=15',
    'ServerAliveCountMax=4',
    'LogLevel=ERROR',
    ...(o.controlPath ? controlOptions(o.controlPath) : []),
    ...(o.extra ?? []),
  ];
  return ['-F', '/dev/null', '-i', t.identity, ...opts.flatMap((x) => ['-o', x])];
}

/** argv (without the program) for `ssh` to the target, running `command` when given. */
export function sshArgv(t: SshTarget, command?: string, o: SshArgvOptions = {}): string[] {
  const a = [...sshOptions(t, o), '-p', String(t.port)];
  a.push(o.tty ? '-t' : '-T');
  a.push(`${t.user}@${t.host}`);
  if (command !== undefined) a.push(command);
  return a;
}

/** argv for `scp` (SFTP protocol, recursive when asked); paths are local or `remote:PATH` forms built by remotePath. */
export function scpArgv(t: SshTarget, from: string, to: string, o: SshArgvOptions & { recursive?: boolean } = {}): string[] {
  return [...sshOptions(t, o), '-P', String(t.port), '-q', ...(o.recursive ? ['-r'] : []), '--', from, to];
}

export function remotePath(t: SshTarget, path: string): string {
  return `${t.user}@${t.host}:${path}`;
}

/** Quote words for the remote POSIX shell (ssh hands the guest one command string). */
export { shellQuote };

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** ssh's complaints about a master that is there but cannot serve (its connection is gone). */
const MUX_FAILURE = /mux_client|control socket|ControlSocket|master (?:is )?(?:dead|refused|failed)|read from master failed|Session open refused by peer/i;

export interface SshExecOptions extends SshArgvOptions, Pick<RunOptions, 'input' | 'timeoutMs' | 'signal' | 'onStdout' | 'onStderr'> {
  /** Share the instance's master connection (default true; KUMO_SSH_SHARING=0 turns it off everywhere). */
  share?: boolean;
}

/** The ControlPath to use for `t` (undefined: no sharing). OpenSSH itself replaces a socket whose master died. */
export async function sharedControlPath(t: SshTarget, share = true): Promise<string | undefined> {
  if (!share) return undefined;
  return controlPathFor(t).catch(() => undefined);
}

/**
 * Run a command in the guest and collect its result. Exit 255 is ssh's own failure. Shared by
 * default: a master that is there but broken is closed and the command run once more.
 */
export async function sshExec(t: SshTarget, command: string, o: SshExecOptions = {}): Promise<ExecResult> {
  const { share, ...rest } = o;
  const cp = rest.controlPath ?? (await sharedControlPath(t, share));
  const once = (controlPath: string | undefined) => runSsh(sshArgv(t, command, { ...rest, ...(controlPath ? { controlPath } : {}) }), o);
  if (!cp) return once(undefined);
  const r = await once(cp);
  if (r.code === 255 && !r.stdout && MUX_FAILURE.test(r.stderr)) {
    debug(() => `ssh sharing: the master at ${cp} failed (${r.stderr.trim().split('\n').pop()}); replacing it`);
    await closeMasterAt(cp);
    return once(cp);
  }
  return r;
}

/** Options for sshArgv/scpArgv that share the target's master (none when sharing is off); a stale socket is removed first. */
export async function sharedArgvOptions(t: SshTarget, share = true): Promise<{ controlPath?: string }> {
  const controlPath = await prepareShared(t, share);
  return controlPath ? { controlPath } : {};
}

const MAX_BUFFER = 16 * 1024 * 1024;

/**
 * Run ssh to completion, collecting its output. Unlike core's run(), a stop (signal, timeout)
 * settles when ssh exits, without waiting for its pipes to close: a client of a shared master
 * has handed its stdio to the master, which holds them until the remote command ends. SIGKILL
 * follows SIGTERM quickly, because a master's client ignores SIGTERM while it waits.
 */
function runSsh(argv: string[], o: Pick<RunOptions, 'input' | 'timeoutMs' | 'signal' | 'onStdout' | 'onStderr'>): Promise<ExecResult> {
  debug(() => `$ ${formatArgv(['ssh', ...argv])}`);
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(new InterruptedError('ssh was interrupted'));
    const child = spawn('ssh', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let stopped: 'timeout' | 'abort' | undefined;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      timers.forEach(clearTimeout);
      o.signal?.removeEventListener('abort', onAbort);
      f();
    };
    const stop = (why: 'timeout' | 'abort') => {
      stopped ??= why;
      child.kill('SIGTERM');
      const k = setTimeout(() => child.kill('SIGKILL'), 500);
      k.unref();
      timers.push(k);
    };
    const onAbort = () => stop('abort');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.timeoutMs) timers.push(setTimeout(() => stop('timeout'), o.timeoutMs));
    child.stdout.on('data', (c: Buffer) => {
      o.onStdout?.(c);
      if (outLen < MAX_BUFFER) (out.push(c), (outLen += c.length));
    });
    child.stderr.on('data', (c: Buffer) => {
      o.onStderr?.(c);
      if (errLen < MAX_BUFFER) (err.push(c), (errLen += c.length));
    });
    child.stdin.on('error', () => {
      /* ssh may exit before reading its input */
    });
    child.stdin.end(o.input ?? '');
    const result = (code: number | null): ExecResult => ({ code: code ?? 255, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    const fail = () =>
      stopped === 'abort'
        ? new InterruptedError('ssh was interrupted')
        : new TimeoutError('COMMAND_TIMEOUT', `ssh did not finish within ${Math.round(o.timeoutMs! / 1000)} s`, { hint: 'run again with --debug to see the command line', details: { argv: ['ssh', ...argv] } });
    child.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(e.code === 'ENOENT' ? new ToolMissingError('ssh', 'openssh-client') : e)));
    child.on('exit', () => {
      if (!stopped) return;
      child.stdout.destroy();
      child.stderr.destroy();
      finish(() => reject(fail()));
    });
    child.on('close', (code) => finish(() => (stopped ? reject(fail()) : resolve(result(code)))));
  });
}

/** Before a copy (scp): clear a stale socket so that scp starts a new master instead of failing. */
export async function prepareShared(t: SshTarget, share = true): Promise<string | undefined> {
  const cp = await sharedControlPath(t, share);
  if (cp) await removeStaleSocket(cp);
  return cp;
}

/** Run ssh (or scp) with the terminal inherited; resolves with its exit code. */
export function spawnInherited(cmd: 'ssh' | 'scp', argv: string[], signal?: AbortSignal): Promise<number> {
  debug(() => `$ ${formatArgv([cmd, ...argv])}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: 'inherit' });
    const onAbort = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ToolMissingError(cmd, 'openssh-client') : e));
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      resolve(code ?? (sig ? 128 + (sig === 'SIGKILL' ? 9 : 15) : 1));
    });
  });
}

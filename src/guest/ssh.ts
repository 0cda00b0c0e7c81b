/**
 * SSH into instances with the system `ssh` and `scp`, always by argv. Every connection pins the
 * host key: the instance's own known_hosts, under its alias, with StrictHostKeyChecking=yes, and
 * the user's ~/.ssh/config is ignored (-F /dev/null) so that kumo behaves the same everywhere.
 */
import { spawn } from 'node:child_process';
import { run, type RunOptions } from '../core/exec.js';
import { ToolMissingError } from '../core/errors.js';
import { debug, formatArgv } from '../core/log.js';

export interface SshTarget {
  /** Instance name (for the host key alias and messages). */
  name: string;
  host: string;
  port: number;
  user: string;
  /** Private key file. */
  identity: string;
  /** The instance's known_hosts file. */
  knownHosts: string;
  /** Host key alias recorded in knownHosts. */
  alias: string;
}

export interface SshArgvOptions {
  /** Allocate a terminal (-t) for interactive sessions. */
  tty?: boolean;
  connectTimeoutSec?: number;
  /** Extra -o options. */
  extra?: string[];
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
export function shellQuote(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command in the guest and collect its result. Exit 255 is ssh's own failure. */
export async function sshExec(t: SshTarget, command: string, o: SshArgvOptions & Pick<RunOptions, 'input' | 'timeoutMs' | 'signal' | 'onStdout' | 'onStderr'> = {}): Promise<ExecResult> {
  const r = await run('ssh', sshArgv(t, command, o), {
    allowFailure: true,
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onStdout ? { onStdout: o.onStdout } : {}),
    ...(o.onStderr ? { onStderr: o.onStderr } : {}),
  });
  return { code: r.code ?? 255, stdout: r.stdout, stderr: r.stderr };
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

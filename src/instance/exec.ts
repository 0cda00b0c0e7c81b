/**
 * Exec and copies for programs (the library's `vm.exec`, `vm.copyIn`, `vm.copyOut`): commands as
 * a shell string or an argv, with env, cwd, user, stdin, a timeout, cancellation and streaming;
 * a non-zero exit is a result, or with `check` a typed error carrying the output's tail. All of
 * it rides the instance's shared ssh connection (src/guest/master.ts).
 */
import { stat } from 'node:fs/promises';
import { KumoError, NotFoundError, TimeoutError, InvalidInputError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { commandName, remoteCommand } from '../guest/command.js';
import { prepareShared, remotePath, scpArgv, sshExec, type ExecResult, type SshTarget } from '../guest/ssh.js';

export interface ExecOptions {
  /** Environment variables for the command (names: letters, digits, _). */
  env?: Readonly<Record<string, string>>;
  /** Working folder in the guest. */
  cwd?: string;
  /** Run as this guest user (sudo -n -u USER: the login user must have password-less sudo). */
  user?: string;
  /** Written to the command's stdin, which is then closed. */
  stdin?: string | Buffer;
  /** Same as stdin (the older name). */
  input?: string | Buffer;
  /** Stop the command (in the guest too) after this many ms: an ExecTimeoutError. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with each chunk of the command's stdout / stderr as it arrives. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Throw an ExecFailedError when the command exits non-zero (default false: return the code). */
  check?: boolean;
  /** Use the instance's shared ssh connection (default true). */
  share?: boolean;
}

const TAIL_LINES = 8;

function tail(s: string, n = TAIL_LINES): string {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

function describe(command: string | readonly string[]): string {
  return typeof command === 'string' ? command : command.join(' ');
}

/** A command exited non-zero (with `check: true`). */
export class ExecFailedError extends KumoError {
  readonly result: ExecResult;
  constructor(name: string, command: string, r: ExecResult, code: 'EXEC_FAILED' | 'COMMAND_NOT_FOUND' = 'EXEC_FAILED', what?: string) {
    const out = tail(r.stderr) || tail(r.stdout);
    super(code, 'external', `${what ?? `'${command}' exited with status ${r.code}`} in instance '${name}'${out ? `:\n${out}` : ''}`, {
      ...(code === 'COMMAND_NOT_FOUND' ? { hint: `install it in the guest, or check its name and PATH: kumo exec ${name} -- sh -c 'command -v ${commandName(command)}'` } : {}),
      details: { code: r.code, command, stdoutTail: tail(r.stdout), stderrTail: tail(r.stderr) },
    });
    this.result = r;
  }
}

/** The program does not exist in the guest (exit 127, with `check: true`). */
export class CommandNotFoundError extends ExecFailedError {
  constructor(name: string, command: string | readonly string[], r: ExecResult) {
    super(name, describe(command), r, 'COMMAND_NOT_FOUND', `command '${commandName(command)}' not found`);
  }
}

/** A command ran longer than its timeoutMs; it was stopped in the guest. */
export class ExecTimeoutError extends TimeoutError {
  constructor(name: string, command: string, timeoutMs: number, r?: ExecResult) {
    const out = r ? tail(r.stderr) || tail(r.stdout) : '';
    super('EXEC_TIMEOUT', `'${command}' did not finish within ${timeoutMs} ms in instance '${name}'${out ? `; its output ended with:\n${out}` : ''}`, {
      hint: 'give it more time (timeoutMs), or see what it waits for',
      details: { command, timeoutMs, ...(r ? { stdoutTail: tail(r.stdout), stderrTail: tail(r.stderr) } : {}) },
    });
  }
}

const SSH_FAILURE = /Connection refused|Connection timed out|Connection closed|Host key verification failed|Permission denied|kex_exchange|No route to host|Could not resolve/i;

/** Run `command` in the guest at `t` (see ExecOptions). */
export async function execIn(t: SshTarget, command: string | readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
  const shown = describe(command);
  const line = remoteCommand(command, {
    ...(o.env ? { env: o.env } : {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
  const stdin = o.stdin ?? o.input;
  const t0 = Date.now();
  let r: ExecResult;
  try {
    r = await sshExec(t, line, {
      ...(stdin !== undefined ? { input: stdin } : {}),
      // The guest stops the command at timeoutMs; the local limit is a backstop for a guest that cannot.
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs + 5000 } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onStdout ? { onStdout: o.onStdout } : {}),
      ...(o.onStderr ? { onStderr: o.onStderr } : {}),
      ...(o.share !== undefined ? { share: o.share } : {}),
    });
  } catch (e) {
    if (e instanceof TimeoutError && o.timeoutMs !== undefined) throw new ExecTimeoutError(t.name, shown, o.timeoutMs);
    throw e;
  }
  if (r.code === 255 && SSH_FAILURE.test(r.stderr) && !r.stdout) {
    throw new KumoError('SSH_FAILED', 'external', `cannot ssh into instance '${t.name}': ${r.stderr.trim().split('\n').pop()}`, {
      hint: `check it is running and ready: kumo info ${t.name}`,
    });
  }
  if (o.timeoutMs !== undefined && (r.code === 124 || r.code === 137) && Date.now() - t0 >= o.timeoutMs) throw new ExecTimeoutError(t.name, shown, o.timeoutMs, r);
  if (o.check && r.code === 127) throw new CommandNotFoundError(t.name, command, r);
  if (o.check && r.code !== 0) throw new ExecFailedError(t.name, shown, r);
  return r;
}

export interface CopyOptions {
  signal?: AbortSignal;
  /** Use the instance's shared ssh connection (default true). */
  share?: boolean;
}

/** Copy a host file or folder (recursively) to `guestPath`. */
export async function copyIn(t: SshTarget, localPath: string, guestPath: string, o: CopyOptions = {}): Promise<void> {
  let st;
  try {
    st = await stat(localPath);
  } catch {
    throw new NotFoundError('FILE_NOT_FOUND', `${localPath}: no such file or directory`, { hint: 'check the host path' });
  }
  if (!guestPath) throw new InvalidInputError('INVALID_PATH', 'the guest path is empty', { hint: "give a guest path, e.g. '/tmp/'" });
  const controlPath = await prepareShared(t, o.share ?? true);
  await run('scp', scpArgv(t, localPath, remotePath(t, guestPath), { recursive: st.isDirectory(), ...(controlPath ? { controlPath } : {}) }), {
    ...(o.signal ? { signal: o.signal } : {}),
    hint: `check the guest path and that '${t.name}' is running`,
  });
}

/** Copy a guest file or folder (recursively) to `localPath`. */
export async function copyOut(t: SshTarget, guestPath: string, localPath: string, o: CopyOptions & { recursive?: boolean } = {}): Promise<void> {
  if (!guestPath) throw new InvalidInputError('INVALID_PATH', 'the guest path is empty', { hint: "give a guest path, e.g. '/var/log/syslog'" });
  const controlPath = await prepareShared(t, o.share ?? true);
  await run('scp', scpArgv(t, remotePath(t, guestPath), localPath, { recursive: o.recursive ?? true, ...(controlPath ? { controlPath } : {}) }), {
    ...(o.signal ? { signal: o.signal } : {}),
    hint: `check the guest path and that '${t.name}' is running`,
  });
}

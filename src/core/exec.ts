/**
 * Running programs. Always an argv array, never a shell string. Every command is shown by
 * --debug. A missing program becomes a ToolMissingError naming the Debian package to install.
 */
import { spawn, type SpawnOptions, type ChildProcess } from 'node:child_process';
import { CommandFailedError, InterruptedError, TimeoutError, ToolMissingError } from './errors.js';
import { debug, formatArgv } from './log.js';

/** The Debian package that ships a tool, for install hints. */
export const TOOL_PACKAGES: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-system-aarch64': 'qemu-system-arm',
  'qemu-img': 'qemu-utils',
  debootstrap: 'debootstrap',
  mmdebstrap: 'mmdebstrap',
  isoinfo: 'genisoimage',
  xorriso: 'xorriso',
  'cloud-localds': 'cloud-image-utils',
  virsh: 'libvirt-clients',
  ssh: 'openssh-client',
  scp: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools',
  sfdisk: 'fdisk',
  'grub-mkimage': 'grub-common',
  VBoxManage: 'virtualbox',
  zstd: 'zstd',
  xz: 'xz-utils',
};

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Kill the process (SIGTERM, then SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Do not throw on a non-zero exit; return the result instead. */
  allowFailure?: boolean;
  /** Called with each chunk of stdout / stderr as it arrives. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most this many bytes of each stream (default 16 MiB). */
  maxBuffer?: number;
  /** Error hint used when the command fails. */
  hint?: string;
}

export interface RunResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
}

/** Run a program to completion. Throws CommandFailedError on a non-zero exit unless allowFailure. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = [cmd, ...args];
  debug(() => `$ ${formatArgv(argv)}`);
  const max = opts.maxBuffer ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    const spawnOpts: SpawnOptions = { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] };
    try {
      child = spawn(cmd, args, spawnOpts);
    } catch (e) {
      reject(e);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let aborted = false;
    let timer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 3000);
      killTimer.unref();
    };
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, opts.timeoutMs);
    }
    const onAbort = () => {
      aborted = true;
      kill();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (c: Buffer) => {
      opts.onStdout?.(c);
      if (outLen < max) {
        out.push(c);
        outLen += c.length;
      }
    });
    child.stderr!.on('data', (c: Buffer) => {
      opts.onStderr?.(c);
      if (errLen < max) {
        err.push(c);
        errLen += c.length;
      }
    });
    child.stdin!.on('error', () => {
      /* the program may exit before reading its input */
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (e.code === 'ENOENT') reject(new ToolMissingError(cmd, TOOL_PACKAGES[cmd]));
      else reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const stdoutBuffer = Buffer.concat(out);
      const result: RunResult = {
        argv,
        code,
        signal,
        stdout: stdoutBuffer.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBuffer,
      };
      if (aborted) return reject(new InterruptedError(`${cmd} was interrupted`));
      if (timedOut)
        return reject(
          new TimeoutError('COMMAND_TIMEOUT', `${cmd} did not finish within ${Math.round(opts.timeoutMs! / 1000)} s`, {
            hint: opts.hint ?? 'run again with --debug to see the command line',
            details: { argv },
          }),
        );
      if (code !== 0 && !opts.allowFailure) {
        return reject(new CommandFailedError(argv, code, signal, result.stderr, opts.hint ? { hint: opts.hint } : {}));
      }
      resolve(result);
    });
  });
}

/** Find a program on PATH; undefined when absent. */
export async function which(cmd: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const { access, constants } = await import('node:fs/promises');
  const { join, delimiter } = await import('node:path');
  if (cmd.includes('/')) {
    try {
      await access(cmd, constants.X_OK);
      return cmd;
    } catch {
      return undefined;
    }
  }
  const dirs = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  // sbin folders hold mkfs and friends; non-root users often lack them on PATH.
  for (const extra of ['/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, cmd);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Whether a process with this pid exists (signal 0 probe). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A client for QEMU's guest agent (qemu-guest-agent in the guest, reached through a virtio-serial
 * port that QEMU exposes on the host as a unix socket). The protocol is QMP's JSON without the
 * greeting: the client first sends `guest-sync-delimited` with a random id and skips everything up
 * to the 0xFF byte the agent puts before its answer (stale replies of an earlier client may sit in
 * the channel), then commands are answered in order.
 *
 * kumo uses it where an ssh handshake would cost seconds under emulation: the identity steps of a
 * clone restored from a warm template (guest-exec of a script), and reading the guest's clock.
 */
import { connect, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { KumoError, TimeoutError } from '../core/errors.js';
import { debug } from '../core/log.js';

export class AgentUnavailableError extends KumoError {
  constructor(socket: string, why: string, cause?: unknown) {
    super('AGENT_UNAVAILABLE', 'external', `the guest agent does not answer on ${socket}: ${why}`, {
      hint: 'the image needs qemu-guest-agent (kumo image build adds it with the qemu-guest-agent element); without it kumo boots cold',
      cause,
    });
  }
}

export class AgentCommandError extends KumoError {
  constructor(command: string, desc: string) {
    super('AGENT_ERROR', 'external', `the guest agent refused '${command}': ${desc}`, { hint: 'run again with --debug to see the exchange' });
  }
}

export interface AgentExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class GuestAgent {
  private buf = Buffer.alloc(0);
  private synced = false;
  private waiter?: { resolve: (v: Record<string, unknown>) => void; reject: (e: unknown) => void };
  private closedError?: Error;

  private constructor(
    private readonly sock: Socket,
    readonly socketPath: string,
  ) {
    sock.on('data', (d) => this.onData(d));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('the connection closed')));
  }

  /** Connect and synchronise (waits up to `timeoutMs` for the agent in the guest to answer). */
  static async connect(socketPath: string, timeoutMs = 10_000): Promise<GuestAgent> {
    const sock = connect({ path: socketPath });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', (e: NodeJS.ErrnoException) =>
        reject(new AgentUnavailableError(socketPath, e.code === 'ENOENT' ? 'the socket does not exist' : e.code === 'ECONNREFUSED' ? 'nobody listens on the socket' : e.message, e)),
      );
    });
    const a = new GuestAgent(sock, socketPath);
    try {
      await a.sync(timeoutMs);
      return a;
    } catch (e) {
      a.close();
      throw e instanceof KumoError ? e : new AgentUnavailableError(socketPath, (e as Error).message, e);
    }
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new AgentUnavailableError(this.socketPath, e.message, e));
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.synced) {
      const ff = this.buf.indexOf(0xff);
      if (ff < 0) {
        this.buf = Buffer.alloc(0);
        return;
      }
      this.buf = this.buf.subarray(ff + 1);
      this.synced = true;
    }
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      const line = this.buf.subarray(0, nl).toString('utf8').trim();
      this.buf = this.buf.subarray(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      debug(() => `qga < ${line.length > 300 ? line.slice(0, 300) + '…' : line}`);
      const w = this.waiter;
      this.waiter = undefined;
      w?.resolve(msg);
    }
  }

  private send(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.closedError) return Promise.reject(new AgentUnavailableError(this.socketPath, this.closedError.message));
    if (this.waiter) return Promise.reject(new Error(`guest agent: '${command}' sent while another command is waiting`));
    const line = JSON.stringify(args ? { execute: command, arguments: args } : { execute: command });
    debug(() => `qga > ${line.length > 300 ? line.slice(0, 300) + '…' : line}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError('AGENT_TIMEOUT', `the guest agent did not answer '${command}' within ${timeoutMs} ms`, { hint: 'the guest may be hung or the agent not running' }));
      }, timeoutMs);
      this.waiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.sock.write(line + '\n');
    });
  }

  private async sync(timeoutMs: number): Promise<void> {
    const id = randomInt(1, 2 ** 31);
    // The 0xFF makes an agent that was in the middle of reading a line drop it.
    this.sock.write(Buffer.from([0xff]));
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.synced = false;
      const r = await this.send('guest-sync-delimited', { id }, Math.max(100, end - Date.now()));
      if (r.return === id) return;
      // an older answer still in the channel: wait for ours
      if (Date.now() > end) throw new AgentUnavailableError(this.socketPath, 'no matching answer to guest-sync-delimited');
    }
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    const r = await this.send(command, args, timeoutMs);
    if ('error' in r) {
      const e = r.error as { desc?: string };
      throw new AgentCommandError(command, e.desc ?? 'unknown error');
    }
    return r.return as T;
  }

  /** Run a program in the guest (argv, optional stdin) and wait for it; output is captured. */
  async exec(path: string, args: string[], o: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<AgentExecResult> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const end = Date.now() + timeoutMs;
    const { pid } = await this.execute<{ pid: number }>('guest-exec', {
      path,
      arg: args,
      'capture-output': true,
      ...(o.stdin !== undefined ? { 'input-data': Buffer.from(o.stdin).toString('base64') } : {}),
    });
    let delay = 10;
    for (;;) {
      const st = await this.execute<{ exited: boolean; exitcode?: number; signal?: number; 'out-data'?: string; 'err-data'?: string }>('guest-exec-status', { pid });
      if (st.exited) {
        return {
          code: st.exitcode ?? (st.signal !== undefined ? 128 + st.signal : -1),
          stdout: Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64').toString('utf8'),
        };
      }
      if (Date.now() > end) throw new TimeoutError('AGENT_TIMEOUT', `'${path}' in the guest did not finish within ${timeoutMs} ms`, { hint: 'the guest may be hung' });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(100, delay * 2);
    }
  }

  close(): void {
    this.closedError ??= new Error('closed');
    this.sock.destroy();
  }
}

/** Connect, run `fn`, close. */
export async function withAgent<T>(socketPath: string, fn: (a: GuestAgent) => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const a = await GuestAgent.connect(socketPath, timeoutMs);
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

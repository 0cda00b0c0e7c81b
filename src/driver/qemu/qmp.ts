/**
 * A small QMP client: JSON lines over QEMU's unix socket. The server greets first, the client
 * must send `qmp_capabilities` before anything else, then commands are answered in order with
 * `return` or `error`; asynchronous `event` lines may arrive between them.
 */
import { connect, type Socket } from 'node:net';
import { KumoError, TimeoutError } from '../../core/errors.js';
import { debug } from '../../core/log.js';

export class QmpError extends KumoError {
  readonly qmpClass: string;
  constructor(command: string, cls: string, desc: string) {
    super('QMP_ERROR', 'external', `QEMU refused '${command}': ${desc}`, {
      hint: 'run again with --debug to see the QMP exchange',
      details: { command, class: cls },
    });
    this.qmpClass = cls;
  }
}

export class QmpUnavailableError extends KumoError {
  constructor(socket: string, why: string, cause?: unknown) {
    super('QMP_UNAVAILABLE', 'external', `cannot talk to QEMU on ${socket}: ${why}`, {
      hint: "the machine may have stopped; see 'kumo info NAME'",
      cause,
    });
  }
}

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class QmpClient {
  private buf = '';
  private readonly pending: Pending[] = [];
  private closed = false;
  readonly events: QmpEvent[] = [];
  private eventWaiters: { name: string; resolve: (e: QmpEvent) => void }[] = [];
  private closeWaiters: (() => void)[] = [];
  private greeting?: (v: unknown) => void;

  private constructor(
    private readonly sock: Socket,
    readonly socketPath: string,
  ) {}

  /** Connect, read the greeting and negotiate capabilities. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = connect({ path: socketPath });
    const c = new QmpClient(sock, socketPath);
    const timer = setTimeout(() => sock.destroy(new Error('timed out')), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        c.greeting = () => resolve();
        sock.on('data', (d) => c.onData(d));
        sock.on('close', () => c.onClose());
      });
      sock.on('error', () => {
        /* surfaced through pending rejections in onClose */
      });
      await c.execute('qmp_capabilities');
      return c;
    } catch (e) {
      sock.destroy();
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'the socket does not exist' : err.code === 'ECONNREFUSED' ? 'nobody listens on the socket' : err.message;
      throw new QmpUnavailableError(socketPath, why, e);
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(d: Buffer): void {
    this.buf += d.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      debug(() => `qmp < ${line.length > 400 ? line.slice(0, 400) + '…' : line}`);
      if ('QMP' in msg) {
        this.greeting?.(msg);
        this.greeting = undefined;
      } else if ('event' in msg) {
        const ev = msg as unknown as QmpEvent;
        this.events.push(ev);
        this.eventWaiters = this.eventWaiters.filter((w) => (w.name === ev.event ? (w.resolve(ev), false) : true));
      } else if ('return' in msg || 'error' in msg) {
        const p = this.pending.shift();
        if (!p) continue;
        if ('error' in msg) {
          const e = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(p.command, e.class ?? 'GenericError', e.desc ?? 'unknown error'));
        } else p.resolve(msg.return);
      }
    }
  }

  private onClose(): void {
    this.closed = true;
    for (const p of this.pending.splice(0)) p.reject(new QmpUnavailableError(this.socketPath, `the connection closed during '${p.command}'`));
    for (const w of this.closeWaiters.splice(0)) w();
  }

  /** Run one command; resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(new QmpUnavailableError(this.socketPath, 'the connection is closed'));
    const line = JSON.stringify(args ? { execute: command, arguments: args } : { execute: command });
    debug(() => `qmp > ${line}`);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TimeoutError('QMP_TIMEOUT', `QEMU did not answer '${command}' within ${timeoutMs} ms`, { hint: 'the machine may be hung; stop it with --force' }));
      }, timeoutMs);
      this.pending.push({
        command,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(line + '\n');
    });
  }

  /** A human monitor command (hostfwd_add and friends); returns its text output. */
  async hmp(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  async queryStatus(): Promise<{ status: string; running: boolean }> {
    return this.execute('query-status');
  }

  /** Resolve when the named event arrives (or has arrived since connect). */
  waitEvent(name: string, timeoutMs: number): Promise<QmpEvent | undefined> {
    const seen = this.events.find((e) => e.event === name);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.eventWaiters.push({
        name,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Resolve when the connection closes (QEMU exited), or false after the timeout. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}

/** Connect, run `fn`, close. */
export async function withQmp<T>(socketPath: string, fn: (c: QmpClient) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const c = await QmpClient.connect(socketPath, timeoutMs);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

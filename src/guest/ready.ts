/**
 * Readiness: the guest is ready when ssh answers with the host key kumo gave it AND cloud-init
 * has finished for THIS instance (its instance-id matches the seed's). Checked promptly, in
 * stages that are reported as step events:
 *
 *   booting     QEMU runs; the serial console shows the guest OS (kernel, systemd, login)
 *   network     the forwarded ssh port returns an SSH banner from the guest
 *   ssh         `ssh true` succeeds with kumo's key and the pinned host key
 *   cloud-init  `cloud-init status --wait` returns, the instance-id matches, no errors
 *
 * Polls are short (a TCP connect every few hundred ms, ssh with a short ConnectTimeout), never
 * multi-second sleeps. On timeout the error shows the last lines of the serial console.
 */
import { connect } from 'node:net';
import { open, stat } from 'node:fs/promises';
import { Emitter, type EventSink } from '../events/events.js';
import { InterruptedError, KumoError, TimeoutError } from '../core/errors.js';
import { sshExec, type SshTarget } from './ssh.js';

export interface WaitReadyOptions {
  instanceId: string;
  /**
   * A clone's template's instance-id, accepted too: a clone restored from its template and not
   * booted since has the cloud-init state of the template's boot (its identity was given by kumo).
   */
  templateInstanceId?: string;
  serialLog?: string;
  timeoutMs: number;
  /** Returns a reason when the machine died (then waiting stops at once). */
  checkAlive?: () => Promise<string | undefined>;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /**
   * When the wait fails before ssh answers: the guest's own view of its network (through a
   * channel that needs none, the guest agent), lines added to the error. Bounded by the caller.
   */
  diagnose?: () => Promise<string[] | undefined>;
}

export interface ReadyResult {
  /** ms from the call to each stage's end. */
  timings: Record<string, number>;
  cloudInit: { status: string; errors: string[] };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The last `n` lines of a text file (reads at most the last 64 KiB). */
export async function tailFile(path: string, n: number): Promise<string[]> {
  try {
    const st = await stat(path);
    const len = Math.min(st.size, 64 * 1024);
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, st.size - len);
      const lines = buf
        .toString('utf8')
        // The serial console is full of terminal escapes and carriage returns.
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .replace(/\r/g, '')
        .split('\n');
      if (lines.at(-1) === '') lines.pop();
      return lines.slice(-n);
    } finally {
      await fh.close();
    }
  } catch {
    return [];
  }
}

/** Whether the file contains a match of `re` (in its last 256 KiB). */
async function fileMatches(path: string, re: RegExp): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.size) return false;
    const len = Math.min(st.size, 256 * 1024);
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, st.size - len);
      return re.test(buf.toString('latin1'));
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/** Connect to host:port and resolve with true when an SSH banner arrives within `ms`. */
export function sshBanner(host: string, port: number, ms = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = '';
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.startsWith('SSH-')) done(true);
      else if (got.length >= 4) done(false);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

const OS_STARTED = /Linux version|systemd\[1\]|Welcome to|login:|cloud-init|Reached target|\[\s*OK\s*\]/;

export class NotReadyError extends TimeoutError {
  constructor(name: string, stage: string, seconds: number, serialTail: string[], lastError?: string) {
    const tail = serialTail.length ? `\nlast lines of the serial console:\n${serialTail.map((l) => `  | ${l}`).join('\n')}` : '\n(the serial console is empty)';
    super('NOT_READY', `instance '${name}' was not ready after ${seconds} s (stuck at: ${stage})${lastError ? `\nlast error: ${lastError}` : ''}${tail}`, {
      hint: `see the whole console with 'kumo logs ${name}'; a slow host may need a longer --timeout`,
      details: { stage },
    });
  }
}

export class CloudInitError extends KumoError {
  constructor(name: string, status: string, errors: string[]) {
    super('CLOUD_INIT_FAILED', 'external', `cloud-init reported errors in instance '${name}' (status: ${status})${errors.length ? `:\n${errors.map((e) => `  ${e}`).join('\n')}` : ''}`, {
      hint: `read the guest's log: kumo exec ${name} -- sudo cat /var/log/cloud-init-output.log`,
      details: { status, errors },
    });
  }
}

/** Wait until the guest is ready (see the module comment). */
export async function waitReady(t: SshTarget, o: WaitReadyOptions): Promise<ReadyResult> {
  const em = new Emitter(o.onEvent);
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  const timings: Record<string, number> = {};
  let stage = 'booting';
  let lastError: string | undefined;
  const fail = async (): Promise<never> => {
    em.emit({ type: 'step', id: `ready.${stage}`, label: stage, state: 'fail' });
    const view = stage === 'booting' || stage === 'network' ? await o.diagnose?.().catch(() => undefined) : undefined;
    const err = new NotReadyError(t.name, stage, Math.round(o.timeoutMs / 1000), o.serialLog ? await tailFile(o.serialLog, 20) : [], lastError);
    if (view?.length) {
      err.message += `\nthe guest's own view of its network (through its agent):\n${view.map((l) => `  | ${l}`).join('\n')}`;
      (err.details as Record<string, unknown>).guestNetwork = view;
    }
    throw err;
  };
  const guard = async () => {
    if (o.signal?.aborted) throw new InterruptedError(`waiting for '${t.name}' was interrupted`);
    const dead = o.checkAlive ? await o.checkAlive() : undefined;
    if (dead) {
      em.emit({ type: 'step', id: `ready.${stage}`, label: stage, state: 'fail', detail: dead });
      const tail = o.serialLog ? await tailFile(o.serialLog, 20) : [];
      throw new KumoError('INSTANCE_DIED', 'external', `instance '${t.name}' stopped while ${stage}: ${dead}${tail.length ? `\nlast lines of the serial console:\n${tail.map((l) => `  | ${l}`).join('\n')}` : ''}`, {
        hint: `see 'kumo logs ${t.name}'`,
      });
    }
  };
  const begin = (s: string, label: string) => {
    stage = s;
    em.emit({ type: 'step', id: `ready.${s}`, label, state: 'start' });
  };
  const end = (s: string, label: string) => {
    timings[s] = Date.now() - t0;
    em.emit({ type: 'step', id: `ready.${s}`, label, state: 'done' });
  };

  // booting + network: poll the banner; the console tells when the OS has started.
  begin('booting', 'booting');
  let booted = false;
  let checks = 0;
  for (;;) {
    if (!booted && o.serialLog && (await fileMatches(o.serialLog, OS_STARTED))) {
      booted = true;
      end('booting', 'booting');
      begin('network', 'network');
    }
    // A loaded host's guest may take seconds to send the banner (sshd starts a process per
    // connection): give each try a little longer, or a slow sshd is never heard.
    if (await sshBanner(t.host, t.port, Math.min(8000, 1500 + 500 * checks))) break;
    if (Date.now() > deadline) await fail();
    if (++checks % 3 === 0) await guard();
    await sleep(300, o.signal);
    if (o.signal?.aborted) await guard();
  }
  if (!booted) {
    end('booting', 'booting');
    begin('network', 'network');
  }
  end('network', 'network');

  // ssh: a real login with the pinned host key.
  begin('ssh', 'ssh');
  for (;;) {
    const r = await sshExec(t, 'true', { connectTimeoutSec: 5, timeoutMs: 20_000, ...(o.signal ? { signal: o.signal } : {}) }).catch((e: Error) => ({ code: 255, stdout: '', stderr: e.message }));
    if (r.code === 0) break;
    lastError = r.stderr.trim().split('\n').pop() || `ssh exited with ${r.code}`;
    if (Date.now() > deadline) await fail();
    await guard();
    await sleep(500, o.signal);
  }
  lastError = undefined;
  end('ssh', 'ssh');

  // cloud-init: wait in the guest, then check the instance-id and the errors.
  begin('cloud-init', 'cloud-init');
  const script = [
    'if command -v cloud-init >/dev/null 2>&1; then sudo -n cloud-init status --wait --long >/tmp/.kumo-ci-status 2>&1; echo "rc=$?"; else echo "rc=none"; fi',
    'echo "iid=$(sudo -n cat /var/lib/cloud/data/instance-id 2>/dev/null)"',
    'echo "---status"; cat /tmp/.kumo-ci-status 2>/dev/null',
    'echo "---result"; sudo -n cat /var/lib/cloud/data/result.json 2>/dev/null',
  ].join('; ');
  let out = '';
  for (;;) {
    const remaining = Math.max(5_000, deadline - Date.now());
    const r = await sshExec(t, script, { connectTimeoutSec: 10, timeoutMs: remaining, ...(o.signal ? { signal: o.signal } : {}) }).catch((e: Error) => ({ code: 255, stdout: '', stderr: e.message }));
    if (r.code === 0) {
      out = r.stdout;
      const iid = /^iid=(.*)$/m.exec(out)?.[1]?.trim();
      const rc = /^rc=(.*)$/m.exec(out)?.[1]?.trim();
      if (rc === 'none') break;
      if (iid === o.instanceId || (o.templateInstanceId !== undefined && iid === o.templateInstanceId)) break;
      lastError = `cloud-init reports instance-id '${iid || '(none)'}', not this instance's '${o.instanceId}'${o.templateInstanceId ? ` (nor its template's '${o.templateInstanceId}')` : ''}`;
    } else lastError = r.stderr.trim().split('\n').pop() || `ssh exited with ${r.code}`;
    if (Date.now() > deadline) await fail();
    await guard();
    await sleep(500, o.signal);
  }
  const statusText = out.split('---status\n')[1]?.split('---result')[0] ?? '';
  const status = /^status:\s*(\S+)/m.exec(statusText)?.[1] ?? (/^rc=none/m.test(out) ? 'absent' : 'unknown');
  const errors: string[] = [];
  const resultJson = out.split('---result\n')[1]?.trim();
  if (resultJson) {
    try {
      const r = JSON.parse(resultJson) as { v1?: { errors?: unknown[] } };
      for (const e of r.v1?.errors ?? []) errors.push(String(e));
    } catch {
      /* not JSON: ignore */
    }
  }
  if (status === 'error' || errors.length) {
    em.emit({ type: 'step', id: 'ready.cloud-init', label: 'cloud-init', state: 'fail' });
    throw new CloudInitError(t.name, status, errors.length ? errors : statusText.trim().split('\n').slice(-10));
  }
  end('cloud-init', 'cloud-init');
  return { timings, cloudInit: { status, errors } };
}

/**
 * Small helpers the CLI commands share (kept in the library so that command modules stay thin).
 */
import type { KumoPaths } from '../config/paths.js';
import { ConflictError } from '../core/errors.js';
import { INSTANCE_NAME_RE } from '../core/names.js';
import type { SshTarget } from '../guest/ssh.js';
import { instanceStatus, resolveSshTarget, sshTargetFor } from './lifecycle.js';

/** The ssh target of a running instance, or a clear error saying what state it is in. */
export async function requireRunning(paths: KumoPaths, name: string): Promise<SshTarget> {
  const st = await instanceStatus(paths, name);
  if (st.state !== 'running' || !st.record) {
    throw new ConflictError('INSTANCE_NOT_RUNNING', `instance '${name}' is not running (${st.state}${st.detail ? `: ${st.detail}` : ''})`, {
      hint: `start it: kumo start ${name}`,
    });
  }
  // The driver's idea of where sshd is (a libvirt network address, a remote host), when it has one.
  return st.ssh ? { ...sshTargetFor(paths, st.record), host: st.ssh.host, port: st.ssh.port } : resolveSshTarget(paths, st.record);
}

/** `NAME:PATH` → { name, path } when NAME is a valid instance name; undefined for host paths. */
export function parseGuestPath(s: string): { name: string; path: string } | undefined {
  const m = new RegExp(`^(${INSTANCE_NAME_RE.source.slice(1, -1)}):(.*)$`).exec(s);
  if (!m) return undefined;
  return { name: m[1]!, path: m[3] || '.' };
}

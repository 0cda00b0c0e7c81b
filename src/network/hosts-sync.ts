/**
 * Keep the name -> address table current in running guests: the network's /etc/hosts block is
 * replaced over ssh (the instance's shared connection) in every running member, when an instance
 * joins (starts) or leaves (is deleted). Which members run, and how to reach them, the instance
 * layer says (it knows the drivers); this module only pushes.
 */
import { remoteCommand } from '../guest/command.js';
import { sshExec, type SshTarget } from '../guest/ssh.js';
import { hostsBlock, hostsUpdateArgv } from './guest-config.js';

export interface HostsPushResult {
  instance: string;
  ok: boolean;
  /** Why it failed (ssh refused, sudo, ...). */
  error?: string;
}

/** Replace the network's block of /etc/hosts in one guest. */
export async function pushHosts(target: SshTarget, network: string, table: readonly { name: string; address: string }[], o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<HostsPushResult> {
  try {
    const r = await sshExec(target, remoteCommand(hostsUpdateArgv(network)), {
      input: hostsBlock(network, table),
      timeoutMs: o.timeoutMs ?? 30_000,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (r.code === 0) return { instance: target.name, ok: true };
    return { instance: target.name, ok: false, error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}` };
  } catch (e) {
    return { instance: target.name, ok: false, error: (e as Error).message };
  }
}

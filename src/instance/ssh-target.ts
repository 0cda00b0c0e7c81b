/**
 * Where an instance's sshd is reached from here: from the record alone (the forwarded port on
 * 127.0.0.1), or asking its driver (a libvirt network address, a remote host).
 */
import type { KumoPaths } from '../config/paths.js';
import { ConflictError } from '../core/errors.js';
import type { Driver, InstanceRuntime, SshEndpoint } from '../driver/index.js';
import { getDriver } from '../driver/index.js';
import { hostKeyAlias } from '../guest/keys.js';
import type { SshTarget } from '../guest/ssh.js';
import { instanceFiles, runtimeFor, type InstanceRecord } from './store.js';

/**
 * The ssh target of an instance from its record alone: the forwarded port on 127.0.0.1 (the QEMU
 * driver's case). Use `resolveSshTarget` for an instance whose driver may know better (libvirt:
 * a network address, a remote host).
 */
export function sshTargetFor(paths: KumoPaths, rec: InstanceRecord): SshTarget {
  const f = instanceFiles(paths, rec.name);
  return { name: rec.name, host: '127.0.0.1', port: rec.ssh.port, user: rec.ssh.user, identity: rec.ssh.key, knownHosts: f.knownHosts, alias: hostKeyAlias(rec.name) };
}

/** Where the guest's sshd is reached: the driver's `sshEndpoint` when it has one, else 127.0.0.1:PORT from the record. */
export async function endpointFor(driver: Driver, rt: InstanceRuntime, rec: InstanceRecord): Promise<SshEndpoint | undefined> {
  if (driver.sshEndpoint) return driver.sshEndpoint(rt);
  return rec.ssh.port ? { host: '127.0.0.1', port: rec.ssh.port } : undefined;
}

/** The ssh target of a started instance, asking its driver where the guest's sshd is (`sshEndpoint`). */
export async function resolveSshTarget(paths: KumoPaths, rec: InstanceRecord): Promise<SshTarget> {
  const driver = await getDriver(rec.driver);
  const ep = await endpointFor(driver, runtimeFor(paths, rec), rec);
  if (!ep) {
    throw new ConflictError('SSH_ADDRESS_UNKNOWN', `instance '${rec.name}' has no known ssh address yet (${driver.name}: no address from its network yet, or never started)`, {
      hint: `wait until it is ready: kumo start ${rec.name} (waits), or see 'kumo info ${rec.name}'`,
    });
  }
  return { ...sshTargetFor(paths, rec), host: ep.host, port: ep.port };
}

/**
 * A fast way to the ssh target of a running QEMU instance for `kumo exec`: when the instance's
 * shared ssh master is alive, the VM is running (the master's connection goes to its QEMU) and its
 * host key was verified when the master was opened, so the driver's status check and the whole
 * driver/image module graph can be skipped (a third of the CLI's time). Anything else (no master,
 * another driver, an odd record) returns undefined and the caller takes the full path.
 * Imports are kept small on purpose: this module is loaded on every `kumo exec`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { instanceFilesIn } from '../config/instance-files.js';
import { controlPathFor, probeSocket } from '../guest/master.js';
import type { SshTarget } from '../guest/ssh.js';

interface RecordLite {
  name?: unknown;
  driver?: unknown;
  ssh?: { user?: unknown; port?: unknown; key?: unknown };
}

/** The target of `name` when its master is alive (QEMU driver, 127.0.0.1:PORT), else undefined. */
export async function liveSharedTarget(paths: KumoPaths, name: string): Promise<SshTarget | undefined> {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) return undefined;
  const files = instanceFilesIn(join(paths.instances, name));
  let rec: RecordLite;
  try {
    rec = JSON.parse(await readFile(files.record, 'utf8')) as RecordLite;
  } catch {
    return undefined;
  }
  const ssh = rec.ssh;
  if (rec.name !== name || rec.driver !== 'qemu' || !ssh || typeof ssh.user !== 'string' || typeof ssh.key !== 'string' || typeof ssh.port !== 'number' || !ssh.port) return undefined;
  // The alias is hostKeyAlias(name) (guest/keys.ts), spelled here to keep this module light.
  const t: SshTarget = { name, host: '127.0.0.1', port: ssh.port, user: ssh.user, identity: ssh.key, knownHosts: files.knownHosts, alias: `kumo-${name}` };
  const cp = await controlPathFor(t).catch(() => undefined);
  return cp && (await probeSocket(cp, 300)) === 'alive' ? t : undefined;
}

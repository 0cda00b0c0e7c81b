/**
 * What `kumo doctor` says about the libvirt daemon at the default URI: whether it answers, which
 * account runs its QEMU and so where an instance's disks go (kumo's home, or kumo's pool when that
 * account cannot read it), and, for the local system daemon, whether virtlogd runs (without it
 * Debian's daemon starts no machine). Never throws; the daemon is optional.
 */
import { existsSync } from 'node:fs';
import type { HostCheck } from '../shared/checks.js';
import { defaultUri, isLocalUri, parseUri, Virsh } from './virsh.js';
import { filesReadableBy, KUMO_POOL, qemuAccount } from './pool.js';

const NEEDED = 'the libvirt driver (optional)';

export async function daemonChecks(uri = defaultUri()): Promise<HostCheck[]> {
  const out: HostCheck[] = [];
  const v = new Virsh(uri, { timeoutMs: 5_000 });
  try {
    await v.ping();
  } catch (e) {
    out.push({ id: 'libvirt-daemon', name: 'libvirt daemon', status: 'warn', found: `${uri}: ${(e as Error).message.split('\n')[0]}`, neededFor: NEEDED, hint: (e as { hint?: string }).hint ?? 'start libvirtd' });
    return out;
  }
  let local = false;
  try {
    local = isLocalUri(uri);
  } catch {
    /* checked by ping */
  }
  const account = await qemuAccount(v).catch(() => undefined);
  const where = !local ? `disks go into the pool you name (--pool)` : filesReadableBy(account) ? "instance disks stay in kumo's home" : `QEMU cannot enter kumo's home, so instance disks go into kumo's pool '${KUMO_POOL}'`;
  out.push({ id: 'libvirt-daemon', name: 'libvirt daemon', status: 'ok', found: `${uri}: QEMU runs as ${account ? `uid ${account.uid}` : 'an account it does not report'}; ${where}`, neededFor: NEEDED });
  const p = local ? parseUri(uri) : undefined;
  // The stock system daemon logs QEMU's output through virtlogd; its socket sits beside libvirt's own.
  if (p && p.path === '/system' && !uri.includes('socket=')) {
    const sock = ['/run/libvirt/virtlogd-sock', '/var/run/libvirt/virtlogd-sock'].find((f) => existsSync(f));
    out.push(
      sock
        ? { id: 'libvirt-virtlogd', name: 'virtlogd', status: 'ok', found: sock, neededFor: NEEDED }
        : { id: 'libvirt-virtlogd', name: 'virtlogd', status: 'warn', found: 'no virtlogd socket in /run/libvirt', neededFor: NEEDED, hint: 'start it (systemctl start virtlogd.socket); without it libvirt starts no machine unless qemu.conf sets stdio_handler = "file"' },
    );
  }
  return out;
}

/**
 * `kumo doctor`: what kumo needs from the host, what it finds, and how to fix what is missing.
 */
import { statfs } from 'node:fs/promises';
import { driverBackends, toolCheck, type HostCheck, type HostCheckStatus } from '../driver/index.js';
import { ensureHome, kumoPaths, type HomeOptions } from '../config/paths.js';
import { isKumoError } from '../core/errors.js';

export type CheckStatus = HostCheckStatus;

/** One check: what was found, what it is needed for, how to fix it (src/driver/shared/checks.ts). */
export type DoctorCheck = HostCheck;

export interface DoctorReport {
  home: string;
  checks: DoctorCheck[];
  /** True when everything needed to launch VMs with the QEMU driver is there. */
  ready: boolean;
}

/** A registered driver's checks; a driver whose checks fail is one 'error' check, not a failed doctor. */
async function driverChecks(b: ReturnType<typeof driverBackends>[number], o: { freshProbe?: boolean }): Promise<DoctorCheck[]> {
  if (!b.checks) return [];
  try {
    return await b.checks(o);
  } catch (e) {
    return [{ id: `driver-${b.name}`, name: `${b.name} driver`, status: 'error', found: `its checks failed: ${(e as Error).message}`, neededFor: `the ${b.name} driver`, hint: "run 'kumo doctor --debug'" }];
  }
}

export async function doctor(opts: HomeOptions & { freshProbe?: boolean } = {}): Promise<DoctorReport> {
  const paths = kumoPaths(opts);
  const checks: DoctorCheck[] = [];
  const ver = /version ([\d.]+)/;
  // Each registered driver's own checks (qemu: QEMU, KVM, OVMF; libvirt: virsh).
  for (const b of driverBackends()) checks.push(...(await driverChecks(b, { freshProbe: opts.freshProbe ?? true })));
  checks.push(await toolCheck('qemu-img', 'qemu-img', 'qemu-utils', 'overlays, conversion, snapshots', ['--version'], ver));
  checks.push(await toolCheck('ssh', 'ssh', 'openssh-client', 'ssh, exec, cp and readiness checks', ['-V'], /OpenSSH_([\w.]+)/));
  checks.push(await toolCheck('ssh-keygen', 'ssh-keygen', 'openssh-client', 'ssh keys for instances', undefined, ver));
  checks.push(await toolCheck('xz', 'xz', 'xz-utils', 'xz-compressed images (.xz downloads and imports)', ['--version'], /([\d.]+)/, 'warn'));
  checks.push(await toolCheck('zstd', 'zstd', 'zstd', 'zstd-compressed images (.zst downloads and imports)', ['--version'], /v([\d.]+)/, 'warn'));
  const deb = await toolCheck('debootstrap', 'debootstrap', 'debootstrap', 'building images (kumo image build)', ['--version'], /([\d.]+)/, 'warn');
  const mm = await toolCheck('mmdebstrap', 'mmdebstrap', 'mmdebstrap', 'building images (kumo image build)', ['--version'], /([\d.]+)/, 'warn');
  const bootstrap: DoctorCheck =
    deb.status === 'ok' ? deb : mm.status === 'ok' ? mm : { ...deb, name: 'debootstrap or mmdebstrap', hint: 'apt-get install debootstrap' };
  checks.push(bootstrap);
  checks.push(await toolCheck('mkfs.ext4', 'mkfs.ext4', 'e2fsprogs', 'building images', undefined, ver, 'warn'));
  checks.push(await toolCheck('grub', 'grub-mkimage', 'grub-pc-bin grub-efi-amd64-bin', 'making built images bootable', ['--version'], /\(GRUB\) (\S+)/, 'warn'));

  // KUMO_HOME: writable, and free space.
  try {
    await ensureHome(opts);
    const s = await statfs(paths.home);
    const free = Number(s.bavail) * Number(s.bsize);
    const gib = free / 1024 ** 3;
    checks.push({
      id: 'home',
      name: 'KUMO_HOME',
      status: gib < 5 ? 'warn' : 'ok',
      found: `${paths.home} (${gib.toFixed(1)} GiB free)`,
      neededFor: 'images and instances',
      ...(gib < 5 ? { hint: "less than 5 GiB free: free space, run 'kumo image prune', or move KUMO_HOME" } : {}),
    });
  } catch (e) {
    checks.push({
      id: 'home',
      name: 'KUMO_HOME',
      status: 'error',
      found: `${paths.home}: ${(e as Error).message}`,
      neededFor: 'everything',
      hint: isKumoError(e) && e.hint ? e.hint : 'choose a writable folder with --home or KUMO_HOME',
    });
  }

  const essential = ['qemu', 'qemu-img', 'ssh', 'ssh-keygen', 'home'];
  const ready = checks.filter((c) => essential.includes(c.id)).every((c) => c.status === 'ok' || c.status === 'warn');
  return { home: paths.home, checks, ready };
}

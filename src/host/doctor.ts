/**
 * `kumo doctor`: what kumo needs from the host, what it finds, and how to fix what is missing.
 */
import { statfs } from 'node:fs/promises';
import { which, run } from '../core/exec.js';
import { kvmUsable } from '../driver/qemu/accel.js';
import { ensureHome, kumoPaths, type HomeOptions } from '../config/paths.js';
import { isKumoError } from '../core/errors.js';

export type CheckStatus = 'ok' | 'warn' | 'missing' | 'error';

export interface DoctorCheck {
  id: string;
  name: string;
  status: CheckStatus;
  /** What was found: a path, a version, a figure. */
  found: string;
  /** What it is needed for. */
  neededFor: string;
  /** How to fix it; present unless ok. */
  hint?: string;
}

export interface DoctorReport {
  home: string;
  checks: DoctorCheck[];
  /** True when everything needed to launch VMs with the QEMU driver is there. */
  ready: boolean;
}

async function versionOf(cmd: string, args: string[], pattern: RegExp): Promise<string | undefined> {
  try {
    const r = await run(cmd, args, { allowFailure: true, timeoutMs: 10000 });
    const m = (r.stdout + r.stderr).match(pattern);
    return m?.[1] ?? (r.stdout.split('\n')[0] || undefined);
  } catch {
    return undefined;
  }
}

async function toolCheck(
  id: string,
  cmd: string,
  pkg: string,
  neededFor: string,
  versionArgs: string[] | undefined,
  pattern: RegExp,
  missing: CheckStatus = 'missing',
): Promise<DoctorCheck> {
  const path = await which(cmd);
  if (!path) return { id, name: cmd, status: missing, found: 'not found', neededFor, hint: `apt-get install ${pkg}` };
  const v = versionArgs ? await versionOf(path, versionArgs, pattern) : undefined;
  return { id, name: cmd, status: 'ok', found: v ? `${path} (${v})` : path, neededFor };
}

export async function doctor(opts: HomeOptions & { freshProbe?: boolean } = {}): Promise<DoctorReport> {
  const paths = kumoPaths(opts);
  const checks: DoctorCheck[] = [];
  const ver = /version ([\d.]+)/;
  checks.push(await toolCheck('qemu', 'qemu-system-x86_64', 'qemu-system-x86', 'running VMs with the QEMU driver', ['--version'], ver));
  checks.push(await toolCheck('qemu-img', 'qemu-img', 'qemu-utils', 'overlays, conversion, snapshots', ['--version'], ver));
  checks.push(await toolCheck('ssh', 'ssh', 'openssh-client', 'ssh, exec, cp and readiness checks', ['-V'], /OpenSSH_([\w.]+)/));
  checks.push(await toolCheck('ssh-keygen', 'ssh-keygen', 'openssh-client', 'ssh keys for instances', undefined, ver));

  // KVM: a real probe, not just the device node.
  if (checks[0]!.status === 'ok') {
    try {
      const p = await kvmUsable(undefined, { fresh: opts.freshProbe ?? true });
      checks.push({
        id: 'kvm',
        name: 'KVM',
        status: p.usable ? 'ok' : 'warn',
        found: p.usable ? `usable: ${p.reason}` : `not usable: ${p.reason}`,
        neededFor: 'fast VMs (without it kumo uses TCG, which is several times slower)',
        ...(p.usable ? {} : { hint: 'VMs still run under TCG; for speed enable virtualisation in the firmware, load kvm_intel/kvm_amd, and give your user access to /dev/kvm' }),
      });
    } catch (e) {
      checks.push({ id: 'kvm', name: 'KVM', status: 'warn', found: `probe failed: ${(e as Error).message}`, neededFor: 'fast VMs', hint: "run 'kumo doctor --debug'" });
    }
  } else {
    checks.push({ id: 'kvm', name: 'KVM', status: 'warn', found: 'not probed (no qemu-system-x86_64)', neededFor: 'fast VMs', hint: 'apt-get install qemu-system-x86' });
  }

  checks.push(await toolCheck('virsh', 'virsh', 'libvirt-clients libvirt-daemon-system', 'the libvirt driver (optional)', ['--version'], /([\d.]+)/, 'warn'));
  checks.push(await toolCheck('vboxmanage', 'VBoxManage', 'virtualbox', 'the VirtualBox driver (optional)', ['--version'], /([\d.]+\w*)/, 'warn'));
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

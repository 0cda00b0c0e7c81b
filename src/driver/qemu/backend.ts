/**
 * The QEMU backend as the registry keeps it: the driver (loaded when first asked for), its host
 * checks for `kumo doctor` (QEMU, a real KVM probe, OVMF for UEFI guests), and the runtime with
 * which it finds a machine from an instance folder alone (its pid file).
 */
import type { DriverBackend, InstanceRuntime } from '../driver.js';
import type { KumoPaths } from '../../config/paths.js';
import { instanceFilesIn } from '../../config/instance-files.js';
import { isKumoError } from '../../core/errors.js';
import { toolCheck, type HostCheck } from '../shared/checks.js';
import { kvmUsable } from '../shared/accel.js';
import { findOvmf, OVMF_CANDIDATES } from './firmware.js';

const QEMU = 'qemu-system-x86_64';

async function qemuChecks(o: { freshProbe?: boolean }): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  const qemu = await toolCheck('qemu', QEMU, 'qemu-system-x86', 'running VMs with the QEMU driver', ['--version'], /version ([\d.]+)/);
  checks.push(qemu);
  // KVM: a real probe, not just the device node.
  if (qemu.status === 'ok') {
    try {
      const p = await kvmUsable(undefined, { qemu: QEMU, fresh: o.freshProbe ?? true });
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
    checks.push({ id: 'kvm', name: 'KVM', status: 'warn', found: `not probed (no ${QEMU})`, neededFor: 'fast VMs', hint: 'apt-get install qemu-system-x86' });
  }
  // OVMF: the same lookup the driver does when it starts a UEFI guest.
  try {
    const f = await findOvmf();
    checks.push({ id: 'ovmf', name: 'OVMF', status: 'ok', found: `${f.code} (variables template ${f.vars})`, neededFor: 'UEFI guests (--firmware uefi)' });
  } catch (e) {
    checks.push({
      id: 'ovmf',
      name: 'OVMF',
      status: 'warn',
      found: `not found (looked for ${OVMF_CANDIDATES.map((c) => c.code).join(', ')})`,
      neededFor: 'UEFI guests (--firmware uefi)',
      hint: isKumoError(e) && e.hint ? e.hint : 'apt-get install ovmf',
    });
  }
  return checks;
}

export const qemuBackend: DriverBackend = {
  name: 'qemu',
  create: async () => new (await import('./driver.js')).QemuDriver(),
  checks: qemuChecks,
  folderRuntime(paths: KumoPaths, name: string, dir: string): InstanceRuntime {
    const f = instanceFilesIn(dir);
    return { name, dir, paths, cpus: 1, memoryMiB: 128, disk: { path: f.disk, format: 'qcow2' }, mac: '', sshPort: 0, ports: [], accel: 'auto' };
  },
};

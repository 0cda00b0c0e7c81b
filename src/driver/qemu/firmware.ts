/**
 * UEFI firmware for QEMU: OVMF's code image (shared, read-only) and a per-instance copy of its
 * variable store (boot entries live there), made from the distribution's template on first start.
 */
import { access, chmod, constants, copyFile, rename } from 'node:fs/promises';
import { EnvironmentError } from '../../core/errors.js';
import { exists, tempPathFor } from '../../core/fs.js';
import { instanceFilesIn } from '../../config/instance-files.js';

/** Code + variables template pairs, as Debian/Ubuntu (ovmf), Fedora (edk2-ovmf) and Arch ship them. */
export const OVMF_CANDIDATES: readonly { code: string; vars: string }[] = [
  { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
  { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' },
  { code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' },
];

export async function findOvmf(candidates = OVMF_CANDIDATES): Promise<{ code: string; vars: string }> {
  for (const c of candidates) {
    try {
      await access(c.code, constants.R_OK);
      await access(c.vars, constants.R_OK);
      return c;
    } catch {
      /* next */
    }
  }
  throw new EnvironmentError('OVMF_MISSING', 'UEFI firmware (OVMF) was not found', {
    hint: 'install it (apt-get install ovmf), or use --firmware bios',
    details: { looked: candidates.map((c) => c.code) },
  });
}

/** The firmware files for an instance: OVMF's code and the instance's own variable store. */
export async function instanceFirmware(dir: string): Promise<{ code: string; vars: string }> {
  const ovmf = await findOvmf();
  const vars = instanceFilesIn(dir).efiVars;
  if (!(await exists(vars))) {
    const tmp = tempPathFor(vars);
    await copyFile(ovmf.vars, tmp);
    await chmod(tmp, 0o600);
    await rename(tmp, vars);
  }
  return { code: ovmf.code, vars };
}

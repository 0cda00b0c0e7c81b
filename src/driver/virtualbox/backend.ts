/**
 * The VirtualBox backend as the registry keeps it: the driver (loaded when first asked for), its
 * spec fields (ostype, vrdePort), its host checks for `kumo doctor` (VBoxManage and its version,
 * the vboxdrv kernel driver, and a plain statement of what has been exercised live), and, once
 * registered, the base images its VMs use for the image store's in-use rule.
 */
import { access } from 'node:fs/promises';
import type { DriverBackend } from '../driver.js';
import type { KumoPaths } from '../../config/paths.js';
import { registerDiskSource } from '../../image/index.js';
import { toolCheck, type HostCheck } from '../shared/checks.js';
import { VIRTUALBOX_OPTION_FIELDS } from './options.js';
import { VBOX_PACKAGE_HINT } from './vbox.js';
import { VBOXMANAGE } from './vboxmanage.js';

/** What kumo's own runs have exercised of this backend; doctor says it, docs/virtualbox.md has the details. */
export const VIRTUALBOX_LIVE_STATUS =
  'not exercised against a real VirtualBox yet: built from the VBoxManage manual, every command unit-tested, the whole lifecycle run against a recording fake VBoxManage (see docs/virtualbox.md)';

export async function virtualboxChecks(): Promise<HostCheck[]> {
  const tool = await toolCheck('virtualbox', VBOXMANAGE, VBOX_PACKAGE_HINT, 'the VirtualBox driver (optional)', ['--version'], /(\d+\.\d+\.\d+)/, 'warn');
  if (tool.status !== 'ok') tool.hint = `install VirtualBox (${VBOX_PACKAGE_HINT}) to use --driver virtualbox`;
  const checks: HostCheck[] = [tool];
  if (tool.status === 'ok') {
    const dev = await access('/dev/vboxdrv').then(
      () => true,
      () => false,
    );
    checks.push({
      id: 'vboxdrv',
      name: 'VirtualBox kernel driver',
      status: dev ? 'ok' : 'warn',
      found: dev ? '/dev/vboxdrv' : 'no /dev/vboxdrv (the vboxdrv module is not loaded)',
      neededFor: 'starting VirtualBox VMs',
      ...(dev ? {} : { hint: "as root: 'modprobe vboxdrv', or '/sbin/vboxconfig' to build it for this kernel" }),
    });
  }
  checks.push({
    id: 'virtualbox-live',
    name: 'VirtualBox driver',
    status: 'warn',
    found: VIRTUALBOX_LIVE_STATUS,
    neededFor: 'knowing how far to trust --driver virtualbox',
    hint: tool.status === 'ok' ? "run the live tests here (KUMO_TEST_FILTER=virtualbox node test/run.js e2e) and report what fails" : 'the qemu and libvirt drivers are the tested ones',
  });
  return checks;
}

export const virtualboxBackend: DriverBackend = {
  name: 'virtualbox',
  create: async () => new (await import('./driver.js')).VirtualBoxDriver(),
  optionFields: VIRTUALBOX_OPTION_FIELDS,
  checks: virtualboxChecks,
  onRegister() {
    registerDiskSource(async (paths: KumoPaths) => (await import('./driver.js')).virtualboxDisks(paths), 'virtualbox');
  },
};

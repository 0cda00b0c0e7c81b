/**
 * The libvirt backend as the registry keeps it: the driver (loaded when first asked for), its
 * spec fields (connect, pool, network), its host check (virsh), and, once registered, the disks
 * of its domains for the image store's in-use rule (`registerDiskSource`), so `kumo image
 * rm/prune` see images that libvirt domains use.
 */
import type { DriverBackend } from '../driver.js';
import type { KumoPaths } from '../../config/paths.js';
import { registerDiskSource } from '../../image/index.js';
import { toolCheck } from '../shared/checks.js';
import { LIBVIRT_OPTION_FIELDS } from './options.js';

export const libvirtBackend: DriverBackend = {
  name: 'libvirt',
  create: async () => new (await import('./driver.js')).LibvirtDriver(),
  optionFields: LIBVIRT_OPTION_FIELDS,
  checks: async () => {
    const tool = await toolCheck('virsh', 'virsh', 'libvirt-clients libvirt-daemon-system', 'the libvirt driver (optional)', ['--version'], /([\d.]+)/, 'warn');
    return tool.status === 'ok' ? [tool, ...(await (await import('./doctor.js')).daemonChecks())] : [tool];
  },
  onRegister() {
    registerDiskSource(async (paths: KumoPaths) => (await import('./sync.js')).libvirtDisks(paths), 'libvirt');
  },
};

// The public API of src/driver: the interface, the registry, and the built-in backends.
import { registerDriver } from './driver.js';
import { QemuDriver } from './qemu/driver.js';

export * from './driver.js';
export { freePort, portFree, PortInUseError } from './net.js';
export * from './qemu/index.js';

registerDriver('qemu', () => new QemuDriver());

// The libvirt backend registers itself (driver 'libvirt', and its disks with the image store).
export * as libvirt from './libvirt/index.js';

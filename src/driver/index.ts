// The public API of src/driver: the interface, the registry, what the backends share, and the
// built-in backends' own exports (for advanced use; the registry is what finds them by name).
export * from './driver.js';
export {
  BUILTIN_BACKENDS,
  registerBackend,
  registerBuiltinDrivers,
  registerDriver,
  driverNames,
  driverBackends,
  getDriver,
  folderDriver,
} from './registry.js';
export { freePort, portFree, PortInUseError } from './net.js';
export { macFor, vmgenidFor } from './shared/mac.js';
export { hostfwdRule } from './shared/hostfwd.js';
export { detectAccel, kvmUsable, probeAccel, type Accel, type AccelChoice, type KvmProbe } from './shared/accel.js';
export { toolCheck, type HostCheck, type HostCheckStatus } from './shared/checks.js';
export * from './qemu/index.js';
export * as libvirt from './libvirt/index.js';
export * as virtualbox from './virtualbox/index.js';

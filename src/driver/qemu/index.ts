// The QEMU backend.
export { QemuDriver, QEMU_BINARY, readPidFile, isOurQemu } from './driver.js';
export { buildQemuArgv, qemuFiles, hostfwdRule, macFor, qemuOptValue, type QemuArgvOptions, type QemuFiles } from './argv.js';
export { QmpClient, QmpError, QmpUnavailableError, withQmp, type QmpEvent } from './qmp.js';
export { detectAccel, type Accel, type AccelChoice } from './accel.js';

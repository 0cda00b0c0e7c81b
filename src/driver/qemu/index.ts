// The QEMU backend.
export { QemuDriver, QEMU_BINARY } from './driver.js';
export { readPidFile, isOurQemu, processLive } from './process.js';
export { buildQemuArgv, qemuFiles, qemuOptValue, type QemuArgvOptions, type QemuFiles } from './argv.js';
export { QmpClient, QmpError, QmpUnavailableError, withQmp, type QmpEvent } from './qmp.js';
export { findOvmf, OVMF_CANDIDATES } from './firmware.js';
export { qemuBackend } from './backend.js';

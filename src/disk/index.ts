// The public API of src/disk: format sniffing, the qcow2 header reader, backing chains, disk info,
// and the qemu-img wrapper.
export {
  sniffFormat,
  sniffBytes,
  parseQcow2Header,
  readQcow2Header,
  resolveBackingPath,
  backingChain,
  diskInfo,
  canonicalPath,
  NotAnImageError,
  CorruptImageError,
  BackingLoopError,
  BackingMissingError,
  QCOW2_EXT_BACKING_FORMAT,
  QCOW2_EXT_FEATURE_TABLE,
  QCOW2_EXT_BITMAPS,
  QCOW2_EXT_ENCRYPTION,
  QCOW2_EXT_DATA_FILE,
} from './qcow2.js';
export type { DiskFormat, Qcow2Header, Qcow2Extension, ChainLink, DiskInfo } from './qcow2.js';
export { qemuImg, qemuImgArgv } from './qemuimg.js';
export type { QemuImgCheck, QemuSnapshot } from './qemuimg.js';
export { assertSelfContained, ImageNotSelfContainedError } from './contained.js';

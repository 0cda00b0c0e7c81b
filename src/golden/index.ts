// The public API of src/golden: golden images (capture + seal), consolidate, clone, snapshots.
export { captureInstance, captureMetadata, ImageExistsError, type CaptureOptions, type CaptureResult } from './capture.js';
export { consolidateInstance, type ConsolidateOptions, type ConsolidateResult, type ConsolidatedRecord } from './consolidate.js';
export { cloneInstance, type CloneOptions, type CloneResult } from './clone.js';
export { createSnapshot, listSnapshots, restoreSnapshot, deleteSnapshot } from './snapshot.js';
export { sealScript, sealHookScript, sealFilesFunction, SEAL_OPERATIONS, SEAL_DONE_MARKER, SEAL_HOOK_PATH } from './seal.js';
export { ensureStopped, type GoldenOpOptions, type StopFirstOptions } from './common.js';

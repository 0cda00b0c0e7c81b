// The public API of src/golden: golden images (capture + seal) and consolidate.
// (Snapshots and clone are instance operations: src/instance.)
export { captureInstance, captureMetadata, ImageExistsError, type CaptureOptions, type CaptureResult } from './capture.js';
export { consolidateInstance, type ConsolidateOptions, type ConsolidateResult, type ConsolidatedRecord } from './consolidate.js';
export { sealScript, sealHookScript, sealFilesFunction, SEAL_OPERATIONS, SEAL_DONE_MARKER, SEAL_HOOK_PATH } from './seal.js';
export { sweepCaptureLeftovers, type SweptCapture } from './sweep.js';

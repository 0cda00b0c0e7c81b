/**
 * The public API of src/image: the catalog (aliases → vendors' cloud images), verified downloads,
 * the content-addressed image store, "in use" detection and safe cleanup.
 */
export type { ImageRecord } from './record.js';
export { ensureImage, type EnsureOptions } from './pull.js';
export { importImage, listImages, checkImageName, type ImportOptions } from './store.js';
export { findImage, getImage } from './resolve.js';
export { removeImage, pruneImages, type PruneOptions, type PruneResult } from './prune.js';
export { syncImages, type SyncOptions, type SyncResult } from './sync.js';
export { imageUsers, registerDiskSource, withStoredImage, INSTANCE_DISK_SOURCE } from './usage.js';
export {
  loadCatalog,
  findAlias,
  suggestAliases,
  resolveRemote,
  builtinCatalogPath,
  hostArch,
  normalizeArch,
  ARCHES,
  type Catalog,
  type CatalogAlias,
  type CatalogSource,
  type RemoteImage,
} from './catalog.js';
export { parseChecksum, parseSumsFile, formatChecksum, type Checksum, type HashAlgo } from './checksums.js';
export { HttpError, NetworkError } from './http.js';

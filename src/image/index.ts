/**
 * The public API of src/image: the catalog (aliases → vendors' cloud images), verified downloads,
 * the content-addressed image store, "in use" detection and safe cleanup.
 */
export type { ImageRecord } from './record.js';
export {
  ensureImage,
  importImage,
  findImage,
  getImage,
  listImages,
  removeImage,
  pruneImages,
  syncImages,
  imageUsers,
  registerDiskSource,
  checkImageName,
  type EnsureOptions,
  type ImportOptions,
  type PruneOptions,
  type PruneResult,
  type SyncOptions,
  type SyncResult,
} from './store.js';
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

// The public API of src/seed: the ISO 9660 writer, cloud-init seeds and cloud-config composition.
export { buildIso, writeIso, layoutIso, IsoNameError, IsoTooLargeError } from './iso.js';
export type { IsoFile, IsoOptions, IsoLayout } from './iso.js';
export { writeSeed, buildSeed, seedFiles, validateSeedSpec, kumoCloudConfig, seedMountEntry, DEFAULT_SEED_USER } from './seed.js';
export type { SeedSpec, HostKey, SeedMount } from './seed.js';
export { cernvmFiles, CERNVM_PATHS, CERNVM_VOLUME_ID } from './cernvm.js';
export {
  composeUserData,
  mergeCloudConfig,
  parseCloudConfig,
  classifyUserData,
  isUserDataContent,
  userDataProblem,
  loadUserData,
  USER_DATA_HINT,
  cloudConfigText,
  APPEND_KEYS,
  KUMO_MERGE_TYPE,
} from './userdata.js';
export type { UserDataKind } from './userdata.js';

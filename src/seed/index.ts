// The public API of src/seed: the ISO 9660 writer, cloud-init seeds and cloud-config composition.
export { buildIso, writeIso, layoutIso, IsoNameError, IsoTooLargeError } from './iso.js';
export type { IsoFile, IsoOptions, IsoLayout } from './iso.js';

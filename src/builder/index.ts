// The public API of src/builder: the image builder.
export { buildImage, recipeHash, defaultElements, requestedElements, safeRemoveTree } from './builder.js';
export type { BuildOptions, BuildResult, PackageEntry } from './builder.js';
export { buildAndRegisterImage, type BuildAndRegisterOptions } from './register.js';
export { DISTROS, resolveDistro, bootstrapArgv } from './distro.js';
export type { DistroInfo, ReleaseInfo, ResolvedDistro } from './distro.js';
export { PHASES, IN_CHROOT, listElements, resolveElements, loadElementSet, elementSearchPath, builtinElementsDir } from './elements.js';
export type { Element, ElementSet, Phase, PhaseScript, PackageInstall } from './elements.js';
export { planLayout, sfdiskScript, grubEarlyConfig, ROOT_LABEL } from './disk.js';
export type { DiskLayout } from './disk.js';
export { ScriptFailedError, MirrorUnreachableError, NotRootError, KeyringMissingError } from './errors.js';

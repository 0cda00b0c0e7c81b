/**
 * kumo's library API: a hand-picked list of names (docs/library.md). Advanced pieces live behind
 * subpath exports (package.json "exports"): 'kumo/disk', 'kumo/seed', 'kumo/image',
 * 'kumo/builder', 'kumo/guest', 'kumo/driver'. Every name here is listed on purpose; add a name
 * only when a user needs it, and document it in docs/library.md.
 *
 *   import { launch } from 'kumo';
 *   await using vm = await launch({ image: 'debian-12' });
 *   const r = await vm.exec('uname -a');
 */

// Instances: the handle, launch, and the lifecycle use cases.
export { launch, getInstance, Instance, ExecFailedError, type LaunchOptions, type ExecOptions } from './instance/index.js';
// Wait strategies (vm.waitFor, launch({ waitFor })) and mapped ports.
export {
  waitForInstance,
  mappedPort,
  forPort,
  forHttp,
  forLog,
  forLogFile,
  forCommand,
  WaitTimeoutError,
  type WaitStrategy,
  type WaitForOptions,
  type WaitResult,
} from './instance/index.js';
export {
  createInstance,
  startInstance,
  stopInstance,
  restartInstance,
  deleteInstance,
  instanceStatus,
  instanceInfo,
  listInstances,
  addPort,
  removePort,
  listPorts,
  findOrphans,
  repairInstances,
  InstanceNotFoundError,
  IncompleteInstanceError,
  type InstanceStatus,
  type InstanceState,
  type InstanceInfo,
  type InstanceRecord,
  type CreateOptions,
  type StartInstanceOptions,
  type StartInstanceResult,
  type StopInstanceOptions,
  type DeleteOptions,
  type OpOptions,
  type PortList,
  type RepairOptions,
  type RepairResult,
} from './instance/index.js';
export type { PortForward, SnapshotInfo } from './driver/driver.js';
// Labels, reaping and reuse: delete by label or all; launch({ reuse }) reports what differs.
export { deleteInstances, InstanceSpecDiffersError, type DeleteManyOptions, type ListOptions, type SpecDifference } from './instance/index.js';
// The instance spec: load, then validate (every problem at once).
export {
  loadSpecFile,
  validateSpec,
  type InstanceSpec,
  type InstanceSpecInput,
  type UntypedSpecInput,
  type SizeInput,
  type DurationInput,
  type PortForwardInput,
  type ValidateOptions,
  type DriverOptions,
  type LibvirtDriverOptions,
} from './config/spec.js';

// Snapshots, clones, golden images.
export { createSnapshot, listSnapshots, restoreSnapshot, deleteSnapshot } from './instance/index.js';
export { cloneInstance, type CloneOptions, type CloneResult } from './instance/index.js';
// Change a stopped instance's cpus, memory, disk size (kumo set).
export { setInstance, DiskShrinkError, type SetChanges, type SetOptions, type SetChange, type SetResult } from './instance/set.js';
// Warm templates (instant clones) and suspend/resume (docs/templates.md).
export {
  warmTemplate,
  listTemplates,
  removeTemplate,
  pruneTemplates,
  templateUsers,
  suspendInstance,
  type WarmOptions,
  type WarmResult,
  type TemplateRecord,
  type TemplateKey,
  type TemplatePruneResult,
  type SuspendResult,
  type RestoredStart,
} from './instance/index.js';
export { captureInstance, ImageExistsError, type CaptureOptions, type CaptureResult } from './golden/index.js';
export { consolidateInstance, type ConsolidateOptions, type ConsolidateResult } from './golden/index.js';

// Images: resolve, fetch and verify, the store, cleanup.
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
  HttpError,
  NetworkError,
  type ImageRecord,
  type EnsureOptions,
  type ImportOptions,
  type PruneOptions,
  type PruneResult,
  type SyncOptions,
  type SyncResult,
} from './image/index.js';

// Private networks between instances (launch({ networks: ['NAME'] }) joins one; docs/networks.md).
export { createNetwork, removeNetwork, networkList, networkInfo, NetworkNotFoundError, NetworkInUseError, SubnetOverlapError, AddressPoolExhaustedError, type NetworkInfo } from './network/index.js';

// Seeds (cloud-localds, natively).
export { writeSeed, buildSeed, type SeedSpec, type HostKey } from './seed/index.js';

// Disks: what a disk image is and what it stands on.
export {
  diskInfo,
  backingChain,
  sniffFormat,
  NotAnImageError,
  CorruptImageError,
  BackingLoopError,
  BackingMissingError,
  ImageNotSelfContainedError,
  type DiskInfo,
  type ChainLink,
  type DiskFormat,
} from './disk/index.js';

// The image builder.
export { buildImage, ScriptFailedError, MirrorUnreachableError, NotRootError, KeyringMissingError, type BuildOptions, type BuildResult } from './builder/index.js';

// The host check.
export { doctor, type DoctorReport, type DoctorCheck, type CheckStatus } from './host/doctor.js';

// Readiness errors a caller of launch/startInstance catches.
export { NotReadyError, CloudInitError } from './guest/index.js';

// Errors: every expected failure is a KumoError with a stable code (ERROR_CODES) and a hint.
export {
  KumoError,
  isKumoError,
  ERROR_CODES,
  UsageError,
  ValidationError,
  InvalidInputError,
  NotFoundError,
  ConflictError,
  EnvironmentError,
  TimeoutError,
  InterruptedError,
  UnsupportedError,
  CommandFailedError,
  ToolMissingError,
  DiskFullError,
  InstanceRunningError,
  type ErrorKind,
  type ErrorCode,
  type KumoErrorOptions,
  type ValidationIssue,
} from './core/errors.js';

// Events (the library is silent; long operations take { onEvent }) and debug output.
export type { KumoEvent, EventSink, EventOptions } from './events/events.js';
export { setDebugSink, type DebugSink } from './core/log.js';

// Where kumo keeps things (KUMO_HOME).
export { kumoPaths, ensureHome, resolveHome, type KumoPaths, type HomeOptions } from './config/paths.js';

// kumo's built-in parts (drivers, the instances' disks as image users) are registered explicitly,
// here for library users (the CLI does it before a command runs).
import { registerBuiltins } from './builtins.js';
registerBuiltins();

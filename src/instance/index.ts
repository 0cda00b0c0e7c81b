// The public API of src/instance: the instance store, its use cases (create, power, status, ports,
// ssh target, snapshots, clone) and the library handle (launch, Instance).
export { createInstance, newInstanceName, resolveImage, createOverlay, type CreateOptions, type BaseImage } from './create.js';
export {
  startInstance,
  stopInstance,
  restartInstance,
  deleteInstance,
  waitInstanceReady,
  suspendInstance,
  type SuspendResult,
  type RestoredStart,
  type StartInstanceOptions,
  type StartInstanceResult,
  type StopInstanceOptions,
  type DeleteOptions,
} from './power.js';
export { instanceStatus, instanceInfo, listInstances, requireRunning, type InstanceStatus, type InstanceState, type InstanceInfo } from './status.js';
export { addPort, removePort, listPorts, mappedPort, type PortList } from './ports.js';
export {
  waitForInstance,
  waitConditions,
  conditionsFor,
  instanceWaitContext,
  parseHttpFlag,
  toRegExp,
  forPort,
  forHttp,
  forLog,
  forLogFile,
  forCommand,
  WaitTimeoutError,
  DEFAULT_WAIT_TIMEOUT_MS,
  type WaitStrategy,
  type PortStrategy,
  type HttpStrategy,
  type LogStrategy,
  type CommandStrategy,
  type WaitForOptions,
  type WaitResult,
  type WaitContext,
  type Condition,
  type Observation,
} from './wait.js';
export { sshTargetFor, resolveSshTarget } from './ssh-target.js';
export { Instance, launch, launchInstance, getInstance, homePaths, ExecFailedError, CommandNotFoundError, ExecTimeoutError, type LaunchOptions, type ExecOptions, type CopyOptions } from './instance.js';
// Operations on an instance's disk: qcow2 snapshots, clones.
export { createSnapshot, listSnapshots, restoreSnapshot, deleteSnapshot, type SnapshotInfo } from './snapshot.js';
export { cloneInstance, CLONE_USER_DATA, type CloneOptions, type CloneResult } from './clone.js';
// "The instance must be stopped" (check, lock, check again), and room on the disk for a copy.
export { ensureStopped, lockStopped, type StopFirstOptions } from './guard.js';
export { measureQcow2, freeBytes, diskFullError, requireSpace, mapDiskFull } from './space.js';
export {
  instanceDir,
  instanceFiles,
  listNames,
  lockInstance,
  readRecord,
  writeRecord,
  runtimeFor,
  InstanceNotFoundError,
  IncompleteInstanceError,
  RECORD_VERSION,
  type OpOptions,
  type InstanceRecord,
  type InstanceFiles,
} from './store.js';
export { consoleLogPath, streamConsoleLog } from './logs.js';
// The instance spec (src/config/spec.ts): load, then validate.
export {
  loadSpecFile,
  validateSpec,
  parsePortForward,
  type InstanceSpec,
  type InstanceSpecInput,
  type ValidateOptions,
} from '../config/spec.js';
// De-sync: instances whose machine is gone, machines whose instance is gone.
export { findOrphans, repairInstances, type OrphanOptions, type RepairOptions, type RepairResult } from './desync.js';
// The instances' disks count as users of stored images (image rm/prune); src/builtins.ts registers it.
export { registerInstanceDiskSource } from './disks.js';
// Warm templates: make one, the one a launch uses, who uses it, remove one (src/instance/warm.ts; the store is src/template/).
export { warmTemplate, createFromTemplate, removeTemplate, pruneTemplates, type TemplatePruneResult, templateUsers, sweepWarmLeftovers, templateFor, type WarmOptions, type WarmResult } from './warm.js';
export { listTemplates, readTemplate, findTemplate, registerTemplateDiskSource, type TemplateRecord, type TemplateKey } from '../template/store.js';
// Labels and reaping: instances by label, ttl expiry, the watchdog of test processes; launch's reuse.
export { deleteInstances, type DeleteManyOptions } from './labels.js';
export { labelSelectors, type ListOptions } from './status.js';
export { sweepExpired, deleteExpired, expiries, reapingWanted, registerForReaping, unregisterFromReaping, type Expiry } from './reaper.js';
export { specDifferences, InstanceSpecDiffersError, type SpecDifference } from './reuse.js';

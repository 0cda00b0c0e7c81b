// The public API of src/instance: the instance store, lifecycle use cases and the library handle.
export {
  createInstance,
  startInstance,
  stopInstance,
  restartInstance,
  deleteInstance,
  instanceStatus,
  instanceInfo,
  listInstances,
  waitInstanceReady,
  sshTargetFor,
  resolveSshTarget,
  addPort,
  removePort,
  listPorts,
  homePaths,
  type InstanceStatus,
  type InstanceState,
  type InstanceInfo,
  type CreateOptions,
  type StartInstanceOptions,
  type StartInstanceResult,
  type StopInstanceOptions,
  type DeleteOptions,
  type PortList,
  type OpOptions,
} from './lifecycle.js';
export { Instance, launch, getInstance, ExecFailedError, CommandNotFoundError, ExecTimeoutError, type LaunchOptions, type ExecOptions, type CopyOptions } from './instance.js';
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
  type InstanceRecord,
  type InstanceFiles,
} from './store.js';
export { consoleLogPath, streamConsoleLog } from './logs.js';
// The instance spec (src/config/spec.ts): load, then validate.
export {
  loadSpecFile,
  validateSpec,
  loadUserData,
  userDataProblem,
  nameIssues,
  assertValidName,
  parsePortForward,
  type InstanceSpec,
  type InstanceSpecInput,
  type ValidateOptions,
} from '../config/spec.js';
// De-sync: instances whose machine is gone, machines whose instance is gone.
export { findOrphans, repairInstances, type OrphanOptions, type RepairOptions, type RepairResult } from './desync.js';

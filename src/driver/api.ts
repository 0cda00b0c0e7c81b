/**
 * 'kumo/driver': the driver interface and the registry, for writing or choosing a backend
 * (docs/drivers.md). Explicit names only; the backends' own modules are not part of the API.
 * Importing through ./index.js registers the built-in drivers as the rest of kumo sees them.
 */
export { registerDriver, getDriver, driverNames, hasCapability, requireCapability, DriverUnsupportedError } from './index.js';
export type {
  Driver,
  DriverFactory,
  InstanceRuntime,
  RuntimeStatus,
  PowerState,
  StartOptions,
  StartResult,
  StopOptions,
  PortForward,
  SnapshotInfo,
  SshEndpoint,
} from './index.js';

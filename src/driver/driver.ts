/**
 * The driver interface: one object per backend (qemu, libvirt), built from small
 * capabilities. The core (`check`, `start`, `stop`, `status`, `cleanup`) is what every backend
 * must do; `purge` and `resolveOptions` are optional parts of the core for backends that keep
 * something for the instance's whole life (a libvirt domain) or have settings with defaults that
 * must not drift. Optional capabilities (`ports`, `snapshots`, `consoleLog`, `sshEndpoint`,
 * `desync`) are present only when the backend can do them (`hasCapability`), so the CLI and the
 * library can refuse early with a typed UnsupportedError (`requireCapability`); `capabilities`
 * adds the few flags a method's presence cannot say (snapshots while running or stopped, live
 * port forwards), per instance where they depend on its settings (`capabilitiesFor`).
 *
 * A driver never owns the instance directory: the instance layer creates the disk overlay, the
 * seed and the keys, and hands the driver an `InstanceRuntime` describing them. The driver turns
 * that into a running machine and reports what is really running.
 *
 * A backend is registered as a `DriverBackend` (the per-backend factory, as Multipass separates
 * it from the per-VM object): its name, how to make its driver, the spec fields it takes, its
 * host checks for `kumo doctor`, and what else it registers. The registry (./registry.ts) knows
 * the built-in backends; everything else finds drivers by name there (`getDriver`).
 */
import { UnsupportedError } from '../core/errors.js';
import type { KumoPaths } from '../config/paths.js';
import type { DriverOptionFields } from '../config/driver-options.js';
import type { PortForward } from '../config/port-forward.js';
import type { MountSpec, MountTypeChoice, ResolvedMount } from '../config/mounts.js';
import type { EventSink } from '../events/events.js';
import type { HostCheck } from './shared/checks.js';

export type { PortForward };

/** The size of a machine asked for (checked against the host by `Driver.check`). */
export interface MachineShape {
  cpus: number;
  /** MiB. */
  memoryMiB: number;
}

/** Everything a driver needs to run one instance; built by the instance layer from instance.json. */
export interface InstanceRuntime {
  name: string;
  /** The instance directory (KUMO_HOME/instances/NAME). */
  dir: string;
  paths: KumoPaths;
  cpus: number;
  /** MiB. */
  memoryMiB: number;
  /** The instance's writable disk (qcow2 overlay on the read-only base). */
  disk: { path: string; format: 'qcow2' | 'raw' };
  /** The cloud-init seed (NoCloud `cidata` or ConfigDrive `config-2`), attached read-only. */
  seed?: { path: string; format: 'nocloud' | 'configdrive' | 'cernvm' };
  /** Stable MAC address of the first NIC. */
  mac: string;
  /** Host port forwarded to the guest's ssh (22). */
  sshPort: number;
  /** Extra forwards stored in instance.json. */
  ports: PortForward[];
  /** Accelerator wish: auto (probe), kvm or tcg. */
  accel: 'auto' | 'kvm' | 'tcg';
  /** Firmware: BIOS (SeaBIOS) or UEFI (OVMF). */
  firmware?: 'bios' | 'uefi';
  /** Driver-specific settings kept in instance.json (e.g. libvirt's connect URI). */
  driverOptions?: Record<string, unknown>;
  /**
   * The guest's RAM in a file instead of anonymous memory (warm templates): `share: true` while a
   * template is made (the file becomes the template's memory), `share: false` for a clone (the
   * file is mapped private, so the clone's writes stay in its own memory and the file never changes).
   */
  memoryFile?: { path: string; share: boolean };
  /** The machine type pinned for a saved state (`pc-q35-7.2`), instead of the `q35` alias. */
  machine?: string;
  /** The VM generation id (vmgenid device): a new one tells the guest kernel to reseed its RNG. */
  vmgenid?: string;
  /** Start by restoring this saved state instead of booting (a clone of a template, a suspended instance). */
  restore?: RestoreSpec;
  /** Shared host folders (transport decided at create by the driver's `planMounts`). */
  mounts?: ResolvedMount[];
  /** Private networks (src/network/): one more NIC each, with its own MAC, on the network's VDE switch. */
  networks?: RuntimeNetwork[];
}

/** One private network NIC of an instance. */
export interface RuntimeNetwork {
  /** The network's name. */
  name: string;
  /** The NIC's MAC (the guest's network-config matches it). */
  mac: string;
  /** The VDE switch's control folder (QEMU: -netdev vde,sock=). */
  socket: string;
}

/** A saved machine state to start from. */
export interface RestoreSpec {
  /** The state file (a QEMU migration stream); unused with `snapshot`. */
  stateFile: string;
  /** Resume from this internal snapshot of the disk, which holds the memory too (QEMU -loadvm). */
  snapshot?: string;
  /** The state was saved with RAM left in a shared memory file (x-ignore-shared): memoryFile must be set. */
  ignoreShared: boolean;
}

export type PowerState =
  | 'running' // the machine is up (QMP answers `running`, libvirt says running)
  | 'paused'
  | 'stopped' // no process; a clean state
  | 'crashed' // the process died behind kumo's back (stale pid file or socket left)
  | 'unknown'; // a process exists but does not answer (hung, or just starting)

export interface RuntimeStatus {
  state: PowerState;
  pid?: number;
  /** What was found, in words, when the state is not a clean one ("qemu.pid names pid 123, which is not running"). */
  detail?: string;
  /**
   * Set when the instance directory and the backend disagree (testcloud's "de-sync"), e.g. the
   * instance's libvirt domain was removed behind kumo's back: what to run to set it straight.
   */
  desync?: string;
  /** Accelerator in use, when known. */
  accel?: string;
}

export interface StartResult {
  pid?: number;
  /** Set when the start restored a saved state (ms spent in QEMU's start and in the restore). */
  restored?: { startMs: number; restoreMs: number };
  accel: string;
  /** The ssh port really used (a driver may have had to pick another). */
  sshPort: number;
  /** The forwards as started: each dynamic one (`0:80`) with the host port picked for it. */
  ports?: PortForward[];
}

export interface StartOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface StopOptions {
  /** Skip the graceful power-down and kill at once. */
  force?: boolean;
  /** How long to wait for the graceful power-down before forcing (ms). */
  timeoutMs?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

/**
 * What a backend can do, declared up front: true only when it holds for every instance of the
 * backend. Where it depends on the instance's settings (libvirt forwards ports only with user
 * networking), the driver's `capabilitiesFor(rt)` says what holds for that instance.
 */
export interface DriverCapabilities {
  /** Add and remove port forwards while the machine runs. */
  livePorts: boolean;
  /** qcow2 internal snapshots of a stopped machine. */
  offlineSnapshots: boolean;
  /** Snapshots while running (savevm through the monitor). */
  liveSnapshots: boolean;
  /** NICs on kumo's private networks (VDE switches, src/network/): RuntimeNetwork entries are honoured. */
  privateNetworks?: boolean;
}

export interface PortsCapability {
  addPort(rt: InstanceRuntime, fwd: PortForward): Promise<void>;
  removePort(rt: InstanceRuntime, fwd: PortForward): Promise<void>;
}

export interface SnapshotInfo {
  name: string;
  created?: string;
  vmStateSize?: number;
}

export interface SnapshotsCapability {
  createSnapshot(rt: InstanceRuntime, name: string): Promise<void>;
  listSnapshots(rt: InstanceRuntime): Promise<SnapshotInfo[]>;
  restoreSnapshot(rt: InstanceRuntime, name: string): Promise<void>;
  deleteSnapshot(rt: InstanceRuntime, name: string): Promise<void>;
}

export interface ConsoleLogCapability {
  /** Path of the file holding the serial console output. */
  consoleLogPath(rt: InstanceRuntime): string;
}

/** Where this machine reaches a guest's sshd. */
export interface SshEndpoint {
  host: string;
  port: number;
}

export interface SshEndpointCapability {
  /**
   * Where this machine reaches the guest's sshd, for backends where that is not
   * 127.0.0.1:`sshPort` (the port `start` returned): a libvirt network's DHCP address, the
   * forward on a remote libvirt host. `undefined` while it is not known yet (no DHCP lease):
   * the caller asks again. Without this capability the instance layer uses 127.0.0.1:sshPort.
   */
  sshEndpoint(rt: InstanceRuntime): Promise<SshEndpoint | undefined>;
}

export interface SaveStateOptions {
  /** RAM stays in the machine's shared memory file (a warm template): only device state is written. */
  ignoreShared?: boolean;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface SavedState {
  /** Bytes of the state file. */
  bytes: number;
  /** ms from pausing the guest to the state being on disk. */
  ms: number;
  /** The machine type the state needs (pinned by the start that restores it). */
  machine: string;
}

export interface SuspendCapability {
  /**
   * Save the running machine's whole state and stop it: the QEMU driver writes it to
   * `stateFile` (start with `rt.restore` resumes it); libvirt keeps it itself (managed save, and
   * `stateFile` is not used). The machine is stopped afterwards, and never half: on failure it
   * is left running (resumed) and the partial file removed.
   */
  saveState(rt: InstanceRuntime, stateFile: string, o?: SaveStateOptions): Promise<SavedState>;
  /** Whether the backend holds a saved state of its own for the instance (libvirt's managed save). */
  hasSavedState?(rt: InstanceRuntime): Promise<boolean>;
  /** Drop a saved state the backend holds (libvirt's managed save); the next start boots. */
  discardSavedState?(rt: InstanceRuntime): Promise<void>;
}

export interface MountsCapability {
  /**
   * Decide how each shared folder reaches the guest on this host, at create: a mount with its own
   * `type`, or `o.type` when that is not auto, must be able to run here (else a typed error with
   * the fix); the others get the best transport that runs here, with a warning event when that is
   * not the first choice. Does not start anything.
   */
  planMounts(paths: KumoPaths, mounts: readonly MountSpec[], o: { type: MountTypeChoice; onEvent?: EventSink }): Promise<ResolvedMount[]>;
}

export interface TemplatesCapability {
  /**
   * What a template made by this backend on this host needs, to tell later whether a clone can
   * be restored here: the hypervisor's version, the pinned machine type, the accelerator.
   */
  templateHost(rt: InstanceRuntime): Promise<TemplateHost>;
}

export interface TemplateHost {
  hypervisor: string;
  version: string;
  machine: string;
  accel: string;
}

/** A machine the backend runs for a kumo home whose instance directory is gone (an orphan). */
export interface OrphanMachine {
  driver: string;
  /** The kumo instance it was made for. */
  instance: string;
  /** The instance directory it names (no longer there). */
  dir: string;
  /** Where it is, in words: "libvirt domain 'web' at qemu:///system". */
  where: string;
  state: PowerState;
  /** The driver settings that locate it (e.g. libvirt's connect URI and domain). */
  driverOptions: Record<string, unknown>;
}

export interface DesyncCapability {
  /**
   * The backend's machines that belong to `paths.home` but whose instance directory is gone.
   * `driverOptions` names a place to look besides the ones the backend knows (e.g. a libvirt
   * URI: then that place must be reachable, or this throws its typed error).
   */
  orphans(paths: KumoPaths, o?: { driverOptions?: Record<string, unknown> }): Promise<OrphanMachine[]>;
  /** Remove an orphan and what the backend kept for it (never a base image); a running one only with `force`. */
  removeOrphan(paths: KumoPaths, orphan: OrphanMachine, o?: { force?: boolean }): Promise<void>;
}

export interface CloneCapability {
  /**
   * Make the new instance `dst`'s machine as a copy of the stopped `src`'s, for backends whose
   * disk state is not the instance's qcow2 overlay (VirtualBox keeps it in its own media): the
   * instance layer's clone calls it after making `dst`'s folder and record.
   */
  cloneMachine(src: InstanceRuntime, dst: InstanceRuntime): Promise<void>;
}

/** The core every driver implements. */
export interface DriverCore {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /** The capabilities for one instance, when they depend on its settings (default: `capabilities`). */
  capabilitiesFor?(rt: Pick<InstanceRuntime, 'name' | 'driverOptions'>): DriverCapabilities;
  /**
   * Check the host can run this driver with these settings (programs present, daemon reachable,
   * a named storage pool or network there); throws a KumoError with a hint. `driverOptions` are
   * the instance's driver settings as instance.json will keep them (after `resolveOptions`);
   * `shape`, when given, is the machine asked for: a backend whose machines run on this host
   * refuses what the host cannot give (memory) before anything is made. It may return the
   * settings to keep instead, with a default only the host can decide filled in (libvirt: its
   * own storage pool where the daemon's QEMU cannot read kumo's home); nothing is made by it.
   */
  check(paths: KumoPaths, driverOptions?: Record<string, unknown>, shape?: MachineShape): Promise<Record<string, unknown> | undefined | void>;
  /**
   * The driver settings to store in instance.json, with the driver's defaults filled in where a
   * default depends on the environment (libvirt's connect URI depends on LIBVIRT_DEFAULT_URI and
   * the user): pinned at create, so later commands find the same machine. Pure; validates.
   */
  resolveOptions?(driverOptions: Record<string, unknown> | undefined): Record<string, unknown> | undefined;
  /** Start the machine and return once the hypervisor runs it (not when the guest is ready). */
  start(rt: InstanceRuntime, opts?: StartOptions): Promise<StartResult>;
  /** Graceful power-down, forced after `timeoutMs`, or at once with `force`. Idempotent. */
  stop(rt: InstanceRuntime, opts?: StopOptions): Promise<void>;
  /** What is really running, derived from the host (never from a stored field). */
  status(rt: InstanceRuntime): Promise<RuntimeStatus>;
  /**
   * Remove the leftovers of a run (pid file, sockets) after a stop. Keeps what the instance needs
   * for its next start (a libvirt domain stays defined). The machine must be stopped.
   */
  cleanup(rt: InstanceRuntime): Promise<void>;
  /**
   * Delete: remove what the backend keeps for the instance's whole life (a libvirt domain, its
   * storage volumes; never a base image). Called by the instance layer's delete, after `cleanup`,
   * under the instance's lock. The machine must be stopped. Idempotent.
   */
  purge?(rt: InstanceRuntime): Promise<void>;
}

export type Driver = DriverCore &
  Partial<PortsCapability> &
  Partial<SnapshotsCapability> &
  Partial<ConsoleLogCapability> &
  Partial<SshEndpointCapability> &
  Partial<DesyncCapability> &
  Partial<SuspendCapability> &
  Partial<TemplatesCapability> &
  Partial<CloneCapability> &
  Partial<MountsCapability>;

type CapabilityMethods = {
  ports: PortsCapability;
  snapshots: SnapshotsCapability;
  consoleLog: ConsoleLogCapability;
  sshEndpoint: SshEndpointCapability;
  desync: DesyncCapability;
  suspend: SuspendCapability;
  templates: TemplatesCapability;
  clone: CloneCapability;
  mounts: MountsCapability;
};

const CAPABILITY_METHOD: { [K in keyof CapabilityMethods]: keyof CapabilityMethods[K] } = {
  ports: 'addPort',
  snapshots: 'createSnapshot',
  consoleLog: 'consoleLogPath',
  sshEndpoint: 'sshEndpoint',
  desync: 'orphans',
  suspend: 'saveState',
  templates: 'templateHost',
  clone: 'cloneMachine',
  mounts: 'planMounts',
};

/** Whether a driver implements a capability group. */
export function hasCapability<K extends keyof CapabilityMethods>(d: Driver, cap: K): d is Driver & CapabilityMethods[K] {
  return typeof (d as unknown as Record<string, unknown>)[CAPABILITY_METHOD[cap] as string] === 'function';
}

/** The driver with the capability, or a typed UnsupportedError naming the driver and what it lacks. */
export function requireCapability<K extends keyof CapabilityMethods>(d: Driver, cap: K, what?: string): Driver & CapabilityMethods[K] {
  if (hasCapability(d, cap)) return d;
  throw new DriverUnsupportedError(d.name, what ?? cap);
}

export class DriverUnsupportedError extends UnsupportedError {
  constructor(driver: string, what: string, hint?: string) {
    super('DRIVER_UNSUPPORTED', `the ${driver} driver cannot ${what}`, {
      hint: hint ?? `use an instance on a driver that can (see 'kumo help launch', --driver)`,
      details: { driver, what },
    });
  }
}

/** What a driver can do for one instance (its `capabilitiesFor`, else its `capabilities`). */
export function capabilitiesOf(d: Driver, rt: Pick<InstanceRuntime, 'name' | 'driverOptions'>): DriverCapabilities {
  return d.capabilitiesFor?.(rt) ?? d.capabilities;
}

// ---------------------------------------------------------------------------------------------
// The per-backend factory

export type DriverFactory = () => Driver | Promise<Driver>;

/** A backend, as the registry keeps it: what is per backend, not per machine. */
export interface DriverBackend {
  readonly name: string;
  /** Make the driver (once per process; the registry keeps it). */
  create: DriverFactory;
  /** Spec fields of this driver only (libvirt: connect, pool, network), handed to the spec validator. */
  optionFields?: DriverOptionFields;
  /** What `kumo doctor` checks for this backend (programs, devices, firmware). Never throws. */
  checks?(o: { paths?: KumoPaths; freshProbe?: boolean }): Promise<HostCheck[]>;
  /**
   * For an instance folder whose record cannot be read (an interrupted create, a damaged
   * instance.json): the runtime with which this backend still finds a machine it runs from the
   * folder alone (QEMU: its pid file), so delete can stop it. Backends that need the record to
   * find their machine (a libvirt URI) have none.
   */
  folderRuntime?(paths: KumoPaths, name: string, dir: string): InstanceRuntime;
  /** Called once when the backend is registered, e.g. to tell the image store which disks it uses. */
  onRegister?(): void;
}

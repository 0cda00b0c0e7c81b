/**
 * The driver registry: the one module (with the public index) that knows the built-in backends.
 * Backends are registered explicitly, by `registerBuiltinDrivers()` (the CLI calls it before a
 * command runs, the library entry when it is loaded) or `registerBackend()` / `registerDriver()`;
 * importing a backend registers nothing. `getDriver`, `driverNames` and `driverBackends` register
 * the built-ins first if nobody has yet, so every caller finds them.
 *
 * Registering a backend also hands its spec fields to the spec validator (config/driver-options)
 * and runs its `onRegister` (libvirt tells the image store which disks its domains use, so
 * `kumo image rm/prune` never removes an image a domain runs on).
 */
import { NotFoundError } from '../core/errors.js';
import type { KumoPaths } from '../config/paths.js';
import { registerDriverOptionFields } from '../config/driver-options.js';
import type { Driver, DriverBackend, DriverFactory, InstanceRuntime } from './driver.js';
import { qemuBackend } from './qemu/backend.js';
import { libvirtBackend } from './libvirt/backend.js';
import { virtualboxBackend } from './virtualbox/backend.js';

/** The backends kumo ships, in the order doctor reports them. */
export const BUILTIN_BACKENDS: readonly DriverBackend[] = [qemuBackend, libvirtBackend, virtualboxBackend];

const backends = new Map<string, DriverBackend>();
const drivers = new Map<string, Promise<Driver>>();
const hooked = new Set<string>();
let builtins = false;

/** Register a backend under its name (replacing one of that name); its option fields and `onRegister` (once per name) with it. */
export function registerBackend(b: DriverBackend): void {
  backends.set(b.name, b);
  drivers.delete(b.name);
  if (b.optionFields) registerDriverOptionFields(b.name, b.optionFields);
  if (b.onRegister && !hooked.has(b.name)) {
    hooked.add(b.name);
    b.onRegister();
  }
}

/** Register a driver by name and factory (a backend with nothing else to declare). Later registrations replace earlier ones. */
export function registerDriver(name: string, factory: DriverFactory): void {
  const old = backends.get(name);
  registerBackend(old ? { ...old, create: factory } : { name, create: factory });
}

/** Register the built-in backends (qemu, libvirt). Idempotent; a backend registered before under the same name is kept. */
export function registerBuiltinDrivers(): void {
  builtins = true;
  for (const b of BUILTIN_BACKENDS) if (!backends.has(b.name)) registerBackend(b);
}

function ensureBuiltins(): void {
  if (!builtins) registerBuiltinDrivers();
}

export function driverNames(): string[] {
  ensureBuiltins();
  return [...backends.keys()].sort();
}

/** The registered backends, in registration order (built-ins first). */
export function driverBackends(): DriverBackend[] {
  ensureBuiltins();
  return [...backends.values()];
}

/** The driver registered under `name` (made once); a NotFoundError listing the known ones otherwise. */
export async function getDriver(name: string): Promise<Driver> {
  ensureBuiltins();
  const b = backends.get(name);
  if (!b) {
    throw new NotFoundError('DRIVER_NOT_FOUND', `unknown driver '${name}'`, {
      hint: `known drivers: ${driverNames().join(', ') || '(none)'}`,
      details: { driver: name },
    });
  }
  let p = drivers.get(name);
  if (!p) {
    p = Promise.resolve(b.create());
    drivers.set(name, p);
    p.catch(() => drivers.delete(name));
  }
  return p;
}

/**
 * For an instance folder whose record cannot be read: the driver that finds a machine from the
 * folder alone (`DriverBackend.folderRuntime`: QEMU's pid file), and the runtime to ask it with.
 */
export async function folderDriver(paths: KumoPaths, name: string, dir: string): Promise<{ driver: Driver; rt: InstanceRuntime }> {
  const b = driverBackends().find((x) => x.folderRuntime);
  if (!b) throw new NotFoundError('DRIVER_NOT_FOUND', `no driver can look for a machine of instance '${name}' without its instance.json`, { hint: 'register the qemu driver' });
  return { driver: await getDriver(b.name), rt: b.folderRuntime!(paths, name, dir) };
}

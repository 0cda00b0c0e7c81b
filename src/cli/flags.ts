/**
 * Flag sets that several commands share: what an instance is made of (`kumo launch`, `kumo
 * create`), waiting for readiness (`launch`, `start`, `restart`), and the instance-name argument.
 * Imported at the top of command modules: keep it free of library imports.
 */
import { argString, optList, optString, type ArgSpec, type OptionSpec, type ParsedArgs } from './command.js';

/** Options shared by `kumo launch` and `kumo create`: what the instance is made of. */
export const INSTANCE_OPTIONS: Record<string, OptionSpec> = {
  name: { type: 'string', short: 'n', description: 'instance name (default: generated)', placeholder: 'NAME' },
  spec: { type: 'string', description: 'read the instance spec from a YAML file (flags override it)', placeholder: 'FILE' },
  cpus: { type: 'string', short: 'c', description: 'virtual CPUs (default 2)', placeholder: 'N' },
  memory: { type: 'string', short: 'm', description: 'memory, e.g. 1G or 1024 (MiB; default 1G)', placeholder: 'SIZE' },
  disk: { type: 'string', description: 'grow the disk to SIZE (e.g. 20G)', placeholder: 'SIZE' },
  'user-data': { type: 'string', description: 'cloud-init user-data file (#cloud-config, script, ...)', placeholder: 'FILE' },
  'ssh-key': { type: 'string', description: 'your private ssh key (FILE.pub beside it; default: kumo\u2019s own key)', placeholder: 'FILE' },
  port: { type: 'string', short: 'p', multiple: true, description: 'forward a host port to the guest (127.0.0.1 unless ADDR is given; HOST 0 picks a free one)', placeholder: '[ADDR:]HOST:GUEST[/udp]' },
  accel: { type: 'string', description: 'accelerator (default auto: KVM when a probe shows it works, else TCG)', choices: ['auto', 'kvm', 'tcg'] },
  firmware: { type: 'string', description: 'firmware: bios (SeaBIOS, default) or uefi (OVMF, with per-instance EFI variables)', choices: ['bios', 'uefi'], placeholder: 'FW' },
  'seed-format': { type: 'string', description: 'cloud-init seed: nocloud (default, label cidata), configdrive (label config-2) or cernvm (the CernVM context layout, label config-2)', choices: ['nocloud', 'configdrive', 'cernvm'], placeholder: 'FORMAT' },
  driver: { type: 'string', description: 'backend: qemu (default; QEMU run by kumo) or libvirt (a libvirt domain); the registered drivers are accepted', placeholder: 'NAME' },
  connect: { type: 'string', description: 'libvirt only: connection URI (default $LIBVIRT_DEFAULT_URI, else qemu:///system for root, qemu:///session otherwise)', placeholder: 'URI' },
  pool: { type: 'string', description: 'libvirt only: storage pool for the disk and seed volumes (needed for a remote URI)', placeholder: 'NAME' },
  network: {
    type: 'string',
    multiple: true,
    description: "join kumo's private network NAME (kumo network create; repeatable): a second NIC with an address there, members reach each other by name. libvirt only: user (default, ports forwarded), network:NAME (a libvirt network, address from DHCP) or bridge:NAME",
    placeholder: 'NAME',
    complete: 'network',
  },
  user: { type: 'string', description: 'login user made in the guest (default kumo)', placeholder: 'USER' },
  mount: { type: 'string', multiple: true, description: 'share a host folder with the guest (GUEST_DIR default: the same path; :ro read-only)', placeholder: 'HOST_DIR[:GUEST_DIR][:ro]' },
  'mount-type': { type: 'string', description: 'how shared folders reach the guest: auto (default: virtiofs where virtiofsd runs, else 9p), virtiofs or 9p', choices: ['auto', 'virtiofs', '9p'], placeholder: 'TYPE' },
};

/** `--wait` / `--no-wait`: wait until ssh and cloud-init are ready (the default). */
export function waitOption(description: string): OptionSpec {
  return { type: 'boolean', default: true, description };
}

/** `--timeout SEC`: how long to wait for readiness. */
export function timeoutOption(description: string): OptionSpec {
  return { type: 'string', description, placeholder: 'SEC' };
}

/** The NAME argument of a command that acts on one instance. */
export const INSTANCE_ARG: ArgSpec = { name: 'name', required: true, description: 'instance name' };

/** The IMAGE argument of `launch` and `create`. */
export const IMAGE_ARG: ArgSpec = { name: 'image', description: 'image alias, id, URL or file (default: debian-12)' };

/** Flag name -> instance spec field. */
const SPEC_FIELDS: readonly (readonly [flag: string, field: string])[] = [
  ['name', 'name'],
  ['cpus', 'cpus'],
  ['memory', 'memory'],
  ['disk', 'disk'],
  ['user-data', 'userData'],
  ['ssh-key', 'sshKey'],
  ['accel', 'accel'],
  ['firmware', 'firmware'],
  ['seed-format', 'seedFormat'],
  ['driver', 'driver'],
  ['connect', 'connect'],
  ['pool', 'pool'],
  ['user', 'user'],
  ['timeout', 'timeout'],
  ['mount-type', 'mountType'],
];

/** The instance spec input from the IMAGE argument and the INSTANCE_OPTIONS flags, over `base` (a --spec file). */
export function specInput(args: ParsedArgs, base: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = { ...base };
  const image = argString(args, 'image');
  if (image !== undefined) o.image = image;
  const explicit: string[] = [];
  for (const [flag, field] of SPEC_FIELDS) {
    const v = optString(args, flag);
    if (v !== undefined) {
      o[field] = v;
      explicit.push(field);
    }
  }
  // --network: `user`, `network:X`, `bridge:X` are the libvirt driver's setting; a plain name is a kumo private network
  const nets = optList(args, 'network');
  const libvirtNet = nets.filter((v) => v === 'user' || v.includes(':'));
  const kumoNets = nets.filter((v) => !libvirtNet.includes(v));
  if (libvirtNet.length) {
    o.network = libvirtNet[libvirtNet.length - 1];
    explicit.push('network');
  }
  if (kumoNets.length) o.networks = [...(Array.isArray(base.networks) ? (base.networks as unknown[]) : []), ...kumoNets];
  // which fields the user typed on the command line, as opposed to the --spec file (config/spec.ts EXPLICIT_FIELDS)
  (o as Record<symbol, unknown>)[Symbol.for('kumo.spec.explicitFields')] = explicit;
  const ports = optList(args, 'port');
  if (ports.length) o.ports = [...((base.ports as unknown[]) ?? []), ...ports];
  const mounts = optList(args, 'mount');
  if (mounts.length) o.mounts = [...(Array.isArray(base.mounts) ? (base.mounts as unknown[]) : []), ...mounts];
  return o;
}

/** The spec input of `launch` / `create`: the user's config.yaml defaults under the --spec file (if any) under the flags. */
export async function loadSpecInput(args: ParsedArgs): Promise<Record<string, unknown>> {
  const file = optString(args, 'spec');
  const base = file ? await (await import('../config/spec.js')).loadSpecFile(file) : {};
  const { userDefaults } = await import('./user-defaults.js');
  return specInput(args, { ...(await userDefaults()), ...base });
}

/** `--label KEY=VALUE` (repeatable) and `--ttl DURATION` of `launch` and `create`. */
export const LIFETIME_OPTIONS: Record<string, OptionSpec> = {
  label: { type: 'string', short: 'l', multiple: true, description: 'a label kept with the instance (kumo list/delete --label select by it)', placeholder: 'KEY=VALUE' },
  ttl: { type: 'string', description: 'time to live (90s, 10m, 1h30m): then the instance is powered off and deleted, with no further kumo call', placeholder: 'DURATION' },
};

/** Put --label and --ttl into the spec input (labels over the --spec file's); a bad label is a BAD_LABEL error naming it. */
export async function applyLifetimeFlags(args: ParsedArgs, input: Record<string, unknown>): Promise<void> {
  const labels = optList(args, 'label');
  if (labels.length) {
    const { parseLabels } = await import('../config/labels.js');
    const base = input.labels && typeof input.labels === 'object' && !Array.isArray(input.labels) ? (input.labels as Record<string, unknown>) : {};
    input.labels = { ...base, ...parseLabels(labels) };
  }
  const ttl = optString(args, 'ttl');
  if (ttl !== undefined) input.ttl = ttl;
}

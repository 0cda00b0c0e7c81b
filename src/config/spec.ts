/**
 * The instance spec: what the user asks for (flags, a YAML file, or a library call), loaded
 * first and validated second. Validation reports every problem at once with its field path and a
 * hint (ValidationError), and returns a normalised spec with defaults filled in.
 *
 *   name: web-1           # lower-case letters, digits, '-'; 1-63 (it becomes the hostname)
 *   image: debian-12      # an alias, URL, image id or local file (resolved by the image store)
 *   cpus: 2
 *   memory: 1G            # or 1024 (MiB)
 *   disk: 10G             # optional: grow the overlay (never smaller than the base)
 *   userData: ./init.yaml # a cloud-init user-data file (#cloud-config, a script, multipart, ...)
 *   sshKey: ~/.ssh/id_ed25519
 *   ports: ["8080:80", "127.0.0.1:5353:53/udp"]
 *   accel: auto           # auto | kvm | tcg
 *   driver: qemu          # qemu | libvirt (the registered drivers)
 *   connect: qemu:///system   # libvirt only: the connection URI
 *   pool: default         # libvirt only: a storage pool for the instance's volumes
 *   network: user         # libvirt only: user | network:NAME | bridge:NAME
 *   timeout: 600          # seconds to wait for readiness
 *
 * Driver-specific fields (each driver declares its own; config/driver-options.ts keeps the table)
 * are accepted only with their driver and are carried in `InstanceSpec.driverOptions`, which
 * instance.json keeps for the driver.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fsError, InvalidInputError, ValidationError, type ValidationIssue } from '../core/errors.js';
import { expandHome } from '../core/fs.js';
import { INSTANCE_NAME_MAX, NAME_HINT, nameIssues, USER_NAME_RE } from '../core/names.js';
import { closest } from '../core/text.js';
import { parseDurationSec, parseSize } from '../core/units.js';
import { isUserDataContent, USER_DATA_HINT, userDataProblem } from '../core/user-data-format.js';
import type { PortForward } from './port-forward.js';
import { driverOptionTable, type DriverOptionTable } from './driver-options.js';
import { labelsIssues, LABEL_RULE, parseDuration, ttlProblem, TTL_HINT, type Labels } from './labels.js';
import { mountsFrom, mountTypeFrom, rebaseMounts, type MountInput, type MountSpec, type MountTypeChoice } from './mounts.js';

export const DEFAULTS = {
  image: 'debian-12',
  cpus: 2,
  memoryMiB: 1024,
  accel: 'auto' as const,
  driver: 'qemu',
  user: 'kumo',
  timeoutSec: 600,
  seedFormat: 'nocloud' as const,
};

export const LIMITS = {
  nameMax: INSTANCE_NAME_MAX,
  cpusMin: 1,
  cpusMax: 64,
  memoryMinMiB: 128,
  memoryMaxMiB: 1024 * 1024,
  diskMaxBytes: 64 * 1024 ** 4,
  timeoutMaxSec: 24 * 3600,
};

/** Size units `parseSize` reads (any case at run time; these spellings in the type). */
export type SizeUnit = 'B' | 'K' | 'M' | 'G' | 'T' | 'k' | 'm' | 'g' | 't' | 'KB' | 'MB' | 'GB' | 'TB' | 'KiB' | 'MiB' | 'GiB' | 'TiB';
/** A size: a number (in the field's bare unit), or text such as "512M", "2G", "1.5GiB". */
export type SizeInput = number | `${number}` | `${number}${SizeUnit}`;
/** A duration: seconds, or text such as "90", "90s", "10m", "1h". */
export type DurationInput = number | `${number}` | `${number}${'ms' | 's' | 'm' | 'h'}`;

/** A port forward as an object (the form of "127.0.0.1:8080:80/udp"; a PortForward is one too). */
export interface PortForwardInput {
  /** Host port; left out or 0: a free one is picked on 127.0.0.1 at start (see `Instance.mappedPort`). */
  host?: number | string;
  hostPort?: number | string;
  guest?: number | string;
  guestPort?: number | string;
  /** Host address (default 127.0.0.1). */
  addr?: string;
  hostAddr?: string;
  proto?: 'tcp' | 'udp';
  /** The host port is picked at start (what a stored dynamic forward says; same as host 0). */
  dynamic?: boolean;
}

/**
 * What a library caller gives (`launch`, `createInstance`, `validateSpec`): every field optional,
 * each with its type, so a misspelt field or a wrong type fails to compile. `validateSpec` checks
 * the values at run time too (and untyped input from flags and files: `UntypedSpecInput`).
 */
export interface InstanceSpecInput {
  /** 1-63 lower-case letters, digits and '-' (it becomes the hostname). */
  name?: string;
  /** An alias (debian-12), an image id or name, a URL or a local file. */
  image?: string;
  /** Virtual CPUs, 1-64. */
  cpus?: number | `${number}`;
  /** Memory; a bare number is MiB ("2G", 2048). */
  memory?: SizeInput;
  /** Grow the overlay to this size; a bare number is GiB ("20G", 20). */
  disk?: SizeInput;
  /** A user-data file path, or user-data content (a string with a newline or a cloud-init first line). */
  userData?: string;
  /** User-data content given inline, instead of a file. */
  userDataText?: string;
  /** Path of the user's ssh private key (its .pub beside it). */
  sshKey?: string;
  /** Port forwards: "8080:80", "127.0.0.1:5353:53/udp", or objects. */
  ports?: readonly (string | PortForwardInput)[];
  accel?: 'auto' | 'kvm' | 'tcg';
  /** A registered driver: qemu (default), libvirt. */
  driver?: string;
  /** Readiness timeout: seconds, or "90s", "10m". */
  timeout?: DurationInput;
  /** The guest account kumo creates (default kumo). */
  user?: string;
  seedFormat?: 'nocloud' | 'configdrive' | 'cernvm';
  firmware?: 'bios' | 'uefi';
  /** libvirt: connection URI. */
  connect?: string;
  /** libvirt: storage pool. */
  pool?: string;
  /** libvirt: user | network:NAME | bridge:NAME. */
  network?: string;
  /** Labels kept with the instance (`kumo list --label`, `kumo delete --label`): KEY: VALUE strings. */
  labels?: Readonly<Record<string, string>>;
  /** Time to live from its creation: seconds, or "90s", "10m", "1h30m"; then it is powered off and deleted. */
  ttl?: number | string;
  /** Shared host folders: "HOST_DIR[:GUEST_DIR][:ro]" or objects (the guest path defaults to the host path). */
  mounts?: readonly (string | MountInput)[];
  /** How the shared folders reach the guest: auto (virtiofs where it runs, else 9p), virtiofs or 9p. */
  mountType?: MountTypeChoice;
  /** Private networks to join (`kumo network create NAME`): a NIC and an address on each. */
  networks?: readonly string[];
}

/** The libvirt driver's options as the spec carries them (fields connect, pool, network; docs/libvirt.md). */
export interface LibvirtDriverOptions {
  /** The connection URI (qemu:///system, qemu:///session, qemu+ssh://user@host/system). */
  connect?: string;
  /** The storage pool for the instance's volumes. */
  pool?: string;
  /** user | network:NAME | bridge:NAME. */
  network?: string | null;
}

/**
 * Driver-specific options, as `InstanceSpec.driverOptions` carries them and instance.json keeps
 * them: only the fields of the instance's driver, each checked by that driver and a JSON value.
 * The built-in drivers: qemu has none; libvirt's are `LibvirtDriverOptions`.
 */
export type DriverOptions = LibvirtDriverOptions & { readonly [field: string]: string | number | boolean | null | undefined };

/** Input whose fields are not typed (flags, a spec file): `validateSpec` checks every one at run time. */
export type UntypedSpecInput = { readonly [field: string]: unknown };

export interface InstanceSpec {
  name: string;
  image: string;
  cpus: number;
  memoryMiB: number;
  /** Overlay size in bytes; undefined = the base image's size. */
  diskBytes?: number;
  /** Absolute path of the user-data file, when given as a file. */
  userDataPath?: string;
  /** User-data content given inline. */
  userDataText?: string;
  /** Absolute path of the user's ssh private key (its .pub must sit beside it). */
  sshKey?: string;
  ports: PortForward[];
  accel: 'auto' | 'kvm' | 'tcg';
  driver: string;
  user: string;
  timeoutSec: number;
  seedFormat: 'nocloud' | 'configdrive' | 'cernvm';
  firmware: 'bios' | 'uefi';
  /** Driver-specific settings (only the fields of `driver`), stored in instance.json for the driver. */
  driverOptions?: DriverOptions;
  /** Labels (validated keys and values). */
  labels?: Labels;
  /** Time to live in seconds, from creation. */
  ttlSec?: number;
  /** Shared host folders (validated; the host folders are checked at create). */
  mounts?: MountSpec[];
  /** The transport for mounts without their own `type` (default auto). */
  mountType?: MountTypeChoice;
  /** Private networks to join (names checked; that they exist is checked by create). */
  networks?: string[];
}

/** The driver whose option field this is (for messages): field -> driver. */
function fieldDriver(field: string, fields: DriverOptionTable): string | undefined {
  for (const [driver, f] of Object.entries(fields)) if (field in f) return driver;
  return undefined;
}

export const CORE_FIELDS = ['name', 'image', 'cpus', 'memory', 'disk', 'userData', 'userDataText', 'sshKey', 'ports', 'accel', 'driver', 'timeout', 'user', 'seedFormat', 'firmware', 'labels', 'ttl', 'mounts', 'mountType', 'networks'];

/** The key by which a spec file names its JSON Schema (for editors); validation ignores its value. */
export const SCHEMA_KEY = '$schema';

/** The spec's fields: its own, and those the drivers declare (config/driver-options.ts). */
export function knownFields(fields: DriverOptionTable): Set<string> {
  return new Set([...CORE_FIELDS, ...Object.values(fields).flatMap((f) => Object.keys(f))]);
}

/**
 * Check the driver-specific fields of `input` against `driver`: a field of another driver is an
 * issue (with the flag to add), a bad value is an issue with the driver's own message and hint.
 * Returns the options to store (undefined when none was given).
 */
/**
 * The key under which the CLI lists the spec fields the user gave on the command line (flags),
 * as opposed to a spec file: a symbol, so no YAML or JSON document can claim it. A driver may
 * accept more from an explicit value (libvirt: a URI that runs a program) than from a file.
 */
export const EXPLICIT_FIELDS = Symbol.for('kumo.spec.explicitFields');

function explicitFields(input: Record<string | symbol, unknown>): Set<string> {
  const v = input[EXPLICIT_FIELDS];
  return new Set(Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
}

export function driverOptionsFrom(input: Record<string, unknown>, driver: string, issues: ValidationIssue[], fields: DriverOptionTable = driverOptionTable()): DriverOptions | undefined {
  const out: Record<string, unknown> = {};
  const explicit = explicitFields(input);
  for (const [field, value] of Object.entries(input)) {
    const owner = fieldDriver(field, fields);
    if (!owner || value === undefined) continue;
    if (owner !== driver) {
      issues.push({
        path: field,
        message: `applies only to the ${owner} driver (${driver ? `the driver is ${driver}` : 'no driver was given'})`,
        hint: `add --driver ${owner} (driver: ${owner} in a spec file), or leave ${fields[owner]![field]!.flag} out`,
      });
      continue;
    }
    try {
      out[field] = fields[owner]![field]!.check(value, { explicit: explicit.has(field) });
    } catch (e) {
      const err = e as Error & { hint?: string };
      issues.push({ path: field, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
  }
  return Object.keys(out).length ? (out as DriverOptions) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Ports

/** Parse one port forward: "8080:80", "0.0.0.0:8080:80", "5353:53/udp"; "0:80" picks a free host port at start. */
export function parsePortForward(s: string): PortForward | string {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|localhost):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(s.trim());
  if (!m) return `'${s}' is not HOST:GUEST (e.g. 8080:80, 127.0.0.1:8080:80, 5353:53/udp)`;
  const hostPort = Number(m[2]);
  const guestPort = Number(m[3]);
  if (hostPort > 65535) return `host port ${hostPort} is out of range (1-65535, or 0 to pick a free one)`;
  if (guestPort < 1 || guestPort > 65535) return `guest port ${guestPort} is out of range (1-65535)`;
  const hostAddr = !m[1] || m[1] === 'localhost' ? '127.0.0.1' : m[1];
  if (hostAddr.split('.').some((x) => Number(x) > 255)) return `'${hostAddr}' is not an IPv4 address`;
  // host port 0: dynamic, a free port is picked at start (config/port-forward.ts)
  return { proto: (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostAddr, hostPort, guestPort, ...(hostPort === 0 ? { dynamic: true } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Load, then validate

/** Load a spec file (YAML or JSON). Only parses; `validateSpec` checks it. Relative paths are kept relative to the file. */
export async function loadSpecFile(path: string): Promise<UntypedSpecInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, path, 'read spec');
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new InvalidInputError('SPEC_PARSE', `${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { hint: 'fix the syntax of the spec file' });
  }
  if (containsItself(doc)) {
    throw new InvalidInputError('SPEC_PARSE', `${path} holds a YAML alias inside the node it names (a structure that contains itself)`, { hint: 'an alias (*name) may only repeat a node defined elsewhere; write the value out' });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InvalidInputError('SPEC_PARSE', `${path} must hold a mapping of fields (name, image, cpus, ...)`, { hint: 'see docs/instances.md for the spec format' });
  }
  const o: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  const base = resolve(path, '..');
  for (const k of ['userData', 'sshKey'] as const) if (typeof o[k] === 'string' && !(o[k] as string).startsWith('/') && !(o[k] as string).startsWith('~')) o[k] = resolve(base, o[k] as string);
  if (o.mounts !== undefined) o.mounts = rebaseMounts(o.mounts, base);
  return o;
}

/** Whether a parsed YAML value contains itself (a self-referencing alias), which no validator can walk. */
function containsItself(v: unknown, path: Set<object> = new Set()): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (path.has(v)) return true;
  path.add(v);
  try {
    return (v instanceof Map ? [...v.keys(), ...v.values()] : Object.values(v)).some((x) => containsItself(x, path));
  } finally {
    path.delete(v);
  }
}

export interface ValidateOptions {
  /** Base folder for relative paths (default: the current directory). */
  cwd?: string;
  /** Whether a name is required (create needs one; the library may generate it). */
  requireName?: boolean;
  /** The registered driver names (`driverNames()`); a driver not among them is an issue. */
  drivers?: readonly string[];
  /** The drivers' option fields (default: the table the driver registry filled, config/driver-options.ts). */
  driverOptionFields?: DriverOptionTable;
}

/** Check every field, report every problem, fill in defaults. */
export function validateSpec(given: InstanceSpecInput | UntypedSpecInput, opts: ValidateOptions = {}): InstanceSpec {
  let input = given as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  const cwd = opts.cwd ?? process.cwd();
  const optionFields = opts.driverOptionFields ?? driverOptionTable();
  const known = knownFields(optionFields);
  for (const k of Object.keys(input)) {
    if (known.has(k) || input[k] === undefined) continue;
    // a spec file names its JSON Schema for editors ($schema: ...; kumo schema instance-spec)
    if (k === SCHEMA_KEY) {
      if (typeof input[k] !== 'string') issues.push({ path: k, message: 'must be a string (the URL or path of the JSON Schema)', hint: 'see `kumo schema instance-spec`' });
      continue;
    }
    const near = closest(k, [...known]);
    issues.push({ path: k, message: `is not a known field${near.length ? `; did you mean '${near[0]}'?` : ''}`, hint: `known fields: ${[...known].join(', ')}` });
  }

  let name = '';
  if (input.name === undefined) {
    if (opts.requireName !== false) issues.push({ path: 'name', message: 'is missing', hint: NAME_HINT });
  } else {
    issues.push(...nameIssues(input.name));
    if (typeof input.name === 'string') name = input.name;
  }

  let image = DEFAULTS.image;
  if (input.image !== undefined) {
    if (typeof input.image !== 'string' || !input.image.trim()) issues.push({ path: 'image', message: 'must be a non-empty string', hint: 'an alias (debian-12), an image id, a URL or a local file' });
    else image = input.image.trim();
  }

  let cpus = DEFAULTS.cpus;
  if (input.cpus !== undefined) {
    const n = typeof input.cpus === 'string' && /^\d+$/.test(input.cpus) ? Number(input.cpus) : input.cpus;
    if (typeof n !== 'number' || !Number.isInteger(n)) issues.push({ path: 'cpus', message: `must be a whole number (got ${JSON.stringify(input.cpus)})`, hint: `${LIMITS.cpusMin}-${LIMITS.cpusMax}` });
    else if (n < LIMITS.cpusMin || n > LIMITS.cpusMax) issues.push({ path: 'cpus', message: `${n} is out of range`, hint: `give ${LIMITS.cpusMin}-${LIMITS.cpusMax}` });
    else cpus = n;
  }

  let memoryMiB = DEFAULTS.memoryMiB;
  if (input.memory !== undefined) {
    const b = parseSize(input.memory, 1024 ** 2);
    if (b === undefined) issues.push({ path: 'memory', message: `cannot read ${JSON.stringify(input.memory)} as a size`, hint: 'e.g. 512M, 2G or 2048 (MiB)' });
    else {
      const mib = Math.floor(b / 1024 ** 2);
      if (mib < LIMITS.memoryMinMiB || mib > LIMITS.memoryMaxMiB)
        issues.push({ path: 'memory', message: `${mib} MiB is out of range`, hint: `give ${LIMITS.memoryMinMiB} MiB to ${LIMITS.memoryMaxMiB / 1024} GiB` });
      else memoryMiB = mib;
    }
  }

  let diskBytes: number | undefined;
  if (input.disk !== undefined) {
    const b = parseSize(input.disk, 1024 ** 3);
    if (b === undefined) issues.push({ path: 'disk', message: `cannot read ${JSON.stringify(input.disk)} as a size`, hint: 'e.g. 10G (a bare number is GiB)' });
    else if (b < 1024 ** 2 || b > LIMITS.diskMaxBytes) issues.push({ path: 'disk', message: `${input.disk} is out of range`, hint: 'give 1M to 64T' });
    else diskBytes = b;
  }

  let userDataPath: string | undefined;
  let userDataText: string | undefined;
  let inlineText = input.userDataText;
  if (input.userData !== undefined) {
    if (typeof input.userData !== 'string' || !input.userData) issues.push({ path: 'userData', message: 'must be a file path or user-data content', hint: 'a cloud-init user-data file' });
    // Content given directly (the library's `userData: '#cloud-config\n...'`): it has a newline or starts like user-data.
    else if (isUserDataContent(input.userData)) {
      if (inlineText !== undefined) issues.push({ path: 'userData', message: 'user-data content given twice (userData and userDataText)', hint: 'give one' });
      else inlineText = input.userData;
    } else userDataPath = resolve(cwd, expandHome(input.userData));
  }
  if (inlineText !== undefined) input = { ...input, userDataText: inlineText };
  if (input.userDataText !== undefined) {
    if (typeof input.userDataText !== 'string') issues.push({ path: 'userDataText', message: 'must be a string', hint: 'cloud-init user-data content' });
    else if (userDataPath) issues.push({ path: 'userDataText', message: 'cannot be given together with userData', hint: 'give a file or the content, not both' });
    else {
      userDataText = input.userDataText;
      const why = userDataProblem(Buffer.from(userDataText));
      if (why) issues.push({ path: 'userDataText', message: why, hint: USER_DATA_HINT });
    }
  }

  let sshKey: string | undefined;
  if (input.sshKey !== undefined) {
    if (typeof input.sshKey !== 'string' || !input.sshKey) issues.push({ path: 'sshKey', message: 'must be a path to a private key', hint: 'e.g. ~/.ssh/id_ed25519 (with id_ed25519.pub beside it)' });
    else sshKey = resolve(cwd, expandHome(input.sshKey));
  }

  const ports: PortForward[] = [];
  if (input.ports !== undefined) {
    if (!Array.isArray(input.ports)) issues.push({ path: 'ports', message: 'must be a list', hint: 'e.g. ["8080:80"]' });
    else
      input.ports.forEach((p, i) => {
        const r = parsePortForwardInput(p);
        if (typeof r === 'string') issues.push({ path: `ports[${i}]`, message: r, hint: 'HOST:GUEST, e.g. 8080:80, or 0:80 to get a free host port' });
        else if (!r.dynamic && ports.some((q) => q.hostPort === r.hostPort && q.proto === r.proto && q.hostAddr === r.hostAddr))
          issues.push({ path: `ports[${i}]`, message: `host port ${r.hostPort}/${r.proto} is given twice`, hint: 'each host port can forward to one guest port' });
        else if (r.dynamic && ports.some((q) => q.dynamic && q.guestPort === r.guestPort && q.proto === r.proto && q.hostAddr === r.hostAddr))
          issues.push({ path: `ports[${i}]`, message: `a dynamic forward to guest port ${r.guestPort}/${r.proto} is given twice`, hint: `one is enough; its host port is read with mappedPort(${r.guestPort})` });
        else ports.push(r);
      });
  }

  const accel = input.accel === undefined ? DEFAULTS.accel : input.accel;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') issues.push({ path: 'accel', message: `must be auto, kvm or tcg (got ${JSON.stringify(input.accel)})`, hint: 'auto probes KVM and falls back to TCG' });

  let driver = DEFAULTS.driver;
  if (input.driver !== undefined) {
    const known = opts.drivers?.length ? opts.drivers.join(', ') : 'qemu, libvirt, ...';
    if (typeof input.driver !== 'string' || !/^[a-z][a-z0-9-]*$/.test(input.driver)) issues.push({ path: 'driver', message: `${JSON.stringify(input.driver)} is not a driver name`, hint: `one of: ${known}` });
    else if (opts.drivers?.length && !opts.drivers.includes(input.driver)) issues.push({ path: 'driver', message: `there is no driver named '${input.driver}'`, hint: `one of: ${known}` });
    else driver = input.driver;
  }
  // With a driver name that is not valid, which driver's fields these are cannot be judged.
  const driverOptions = input.driver === undefined || input.driver === driver ? driverOptionsFrom(input, driver, issues, optionFields) : undefined;

  let timeoutSec = DEFAULTS.timeoutSec;
  if (input.timeout !== undefined) {
    const t = typeof input.timeout === 'string' ? parseDurationSec(input.timeout) : input.timeout;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > LIMITS.timeoutMaxSec) issues.push({ path: 'timeout', message: `${JSON.stringify(input.timeout)} is not a valid timeout`, hint: 'seconds, or e.g. 90s, 10m' });
    else timeoutSec = t;
  }

  let user = DEFAULTS.user;
  if (input.user !== undefined) {
    if (typeof input.user !== 'string' || !USER_NAME_RE.test(input.user)) issues.push({ path: 'user', message: `${JSON.stringify(input.user)} is not a valid user name`, hint: 'lower-case letters, digits, _ and -, up to 32' });
    else user = input.user;
  }

  const seedFormat = input.seedFormat === undefined ? DEFAULTS.seedFormat : input.seedFormat;
  if (seedFormat !== 'nocloud' && seedFormat !== 'configdrive' && seedFormat !== 'cernvm') issues.push({ path: 'seedFormat', message: 'must be nocloud, configdrive or cernvm', hint: 'nocloud (cidata) suits most images; cernvm is the CernVM context layout' });
  const firmware = input.firmware === undefined ? 'bios' : input.firmware;
  if (firmware !== 'bios' && firmware !== 'uefi') issues.push({ path: 'firmware', message: 'must be bios or uefi', hint: 'bios unless the image only boots with UEFI' });

  let labels: Labels | undefined;
  if (input.labels !== undefined) {
    const bad = labelsIssues(input.labels);
    if (bad.length) issues.push(...bad.map((b) => ({ ...b, hint: LABEL_RULE })));
    else if (Object.keys(input.labels as object).length) labels = { ...(input.labels as Labels) };
  }
  let ttlSec: number | undefined;
  if (input.ttl !== undefined) {
    const why = ttlProblem(input.ttl);
    if (why) issues.push({ path: 'ttl', message: why, hint: TTL_HINT });
    else ttlSec = parseDuration(input.ttl)!;
  }

  const mounts = mountsFrom(input.mounts, cwd, issues, user);
  const mountType = mountTypeFrom(input.mountType, issues);
  if (input.mountType !== undefined && !mounts.length && input.mounts === undefined) issues.push({ path: 'mountType', message: 'is given without mounts', hint: 'add --mount HOST_DIR[:GUEST_DIR], or leave --mount-type out' });
  let networks: string[] | undefined;
  if (input.networks !== undefined) {
    if (!Array.isArray(input.networks)) issues.push({ path: 'networks', message: 'must be a list of network names', hint: 'e.g. [backend]; make one with: kumo network create NAME' });
    else {
      const seen = new Set<string>();
      (input.networks as unknown[]).forEach((n, i) => {
        const bad = nameIssues(n, `networks[${i}]`);
        if (bad.length) issues.push(...bad);
        else if (seen.has(n as string)) issues.push({ path: `networks[${i}]`, message: `network '${String(n)}' is given twice`, hint: 'an instance joins a network once' });
        else seen.add(n as string);
      });
      if (seen.size) networks = [...seen];
    }
  }

  if (issues.length) throw new ValidationError('invalid instance spec', issues);
  return {
    name,
    image,
    cpus,
    memoryMiB,
    ...(diskBytes !== undefined ? { diskBytes } : {}),
    ...(userDataPath !== undefined ? { userDataPath } : {}),
    ...(userDataText !== undefined ? { userDataText } : {}),
    ...(sshKey !== undefined ? { sshKey } : {}),
    ports,
    accel: accel as InstanceSpec['accel'],
    driver,
    user,
    timeoutSec,
    seedFormat: seedFormat as InstanceSpec['seedFormat'],
    firmware: firmware as InstanceSpec['firmware'],
    ...(driverOptions ? { driverOptions } : {}),
    ...(labels ? { labels } : {}),
    ...(ttlSec !== undefined ? { ttlSec } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(mounts.length && mountType !== 'auto' ? { mountType } : {}),
    ...(networks ? { networks } : {}),
  };
}

/**
 * The one port parser for every entry point (spec files, flags, the library's ports and
 * addPort): a "HOST:GUEST" string, or an object { host|hostPort, guest|guestPort, addr|hostAddr,
 * proto }, whose fields are put into the string form and parsed by `parsePortForward`, so that
 * nothing but digits, an IPv4 address and tcp/udp ever reaches a driver (QEMU's -netdev syntax
 * would take a `,guestfwd=...` smuggled in a field). An error message when it is none.
 */
export function parsePortForwardInput(p: unknown): PortForward | string {
  if (typeof p === 'string') return parsePortForward(p);
  if (typeof p === 'number') return `${p} is not HOST:GUEST`;
  if (!p || typeof p !== 'object') return `${JSON.stringify(p)} is not a port forward`;
  const o = p as Record<string, unknown>;
  // no host port (or 0): dynamic; a stored dynamic forward keeps the port it got last
  const host = o.dynamic === true ? 0 : o.host ?? o.hostPort ?? 0;
  const guest = o.guest ?? o.guestPort;
  if (guest === undefined) return `${JSON.stringify(p)} has no guest port (e.g. { guest: 80 })`;
  const addr = o.addr ?? o.hostAddr ?? '127.0.0.1';
  const proto = o.proto ?? 'tcp';
  for (const [k, v] of [['host port', host], ['guest port', guest], ['host address', addr], ['protocol', proto]] as const)
    if (typeof v !== 'string' && typeof v !== 'number') return `the ${k} of a port forward must be a number or a string (got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v})`;
  return parsePortForward(`${addr}:${host}:${guest}/${proto}`);
}

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
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { fsError, InvalidInputError, ValidationError, type ValidationIssue } from '../core/errors.js';
import type { PortForward } from './port-forward.js';
import { driverOptionTable, type DriverOptionTable } from './driver-options.js';

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
  nameMax: 63,
  cpusMin: 1,
  cpusMax: 64,
  memoryMinMiB: 128,
  memoryMaxMiB: 1024 * 1024,
  diskMaxBytes: 64 * 1024 ** 4,
  timeoutMaxSec: 24 * 3600,
};

/** What the user gave: every field optional and loosely typed (strings from flags, numbers from YAML). */
export interface InstanceSpecInput {
  name?: unknown;
  image?: unknown;
  cpus?: unknown;
  memory?: unknown;
  disk?: unknown;
  /** Path of a user-data file. */
  userData?: unknown;
  /** User-data content given inline (library), instead of a file. */
  userDataText?: unknown;
  sshKey?: unknown;
  ports?: unknown;
  accel?: unknown;
  driver?: unknown;
  timeout?: unknown;
  user?: unknown;
  seedFormat?: unknown;
  firmware?: unknown;
  /** libvirt: connection URI. */
  connect?: unknown;
  /** libvirt: storage pool. */
  pool?: unknown;
  /** libvirt: user | network:NAME | bridge:NAME. */
  network?: unknown;
  [k: string]: unknown;
}

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
  seedFormat: 'nocloud' | 'configdrive';
  firmware: 'bios' | 'uefi';
  /** Driver-specific settings (only the fields of `driver`), stored in instance.json for the driver. */
  driverOptions?: Record<string, unknown>;
}

/** The driver whose option field this is (for messages): field -> driver. */
function fieldDriver(field: string, fields: DriverOptionTable): string | undefined {
  for (const [driver, f] of Object.entries(fields)) if (field in f) return driver;
  return undefined;
}

const CORE_FIELDS = ['name', 'image', 'cpus', 'memory', 'disk', 'userData', 'userDataText', 'sshKey', 'ports', 'accel', 'driver', 'timeout', 'user', 'seedFormat', 'firmware'];

/** The spec's fields: its own, and those the drivers declare (config/driver-options.ts). */
function knownFields(fields: DriverOptionTable): Set<string> {
  return new Set([...CORE_FIELDS, ...Object.values(fields).flatMap((f) => Object.keys(f))]);
}

/**
 * Check the driver-specific fields of `input` against `driver`: a field of another driver is an
 * issue (with the flag to add), a bad value is an issue with the driver's own message and hint.
 * Returns the options to store (undefined when none was given).
 */
export function driverOptionsFrom(input: Record<string, unknown>, driver: string, issues: ValidationIssue[], fields: DriverOptionTable = driverOptionTable()): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
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
      out[field] = fields[owner]![field]!.check(value);
    } catch (e) {
      const err = e as Error & { hint?: string };
      issues.push({ path: field, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
  }
  return Object.keys(out).length ? out : undefined;
}

// ---------------------------------------------------------------------------------------------
// Names

export const NAME_HINT = "use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit (it becomes the hostname)";

/** Problems with an instance name, or [] when it is valid. */
export function nameIssues(name: unknown, path = 'name'): ValidationIssue[] {
  if (typeof name !== 'string') return [{ path, message: 'must be a string', hint: NAME_HINT }];
  if (name === '') return [{ path, message: 'is empty', hint: NAME_HINT }];
  if (name.length > LIMITS.nameMax) return [{ path, message: `is ${name.length} characters long (at most ${LIMITS.nameMax})`, hint: NAME_HINT }];
  if (name.includes('/') || name === '.' || name === '..') return [{ path, message: `'${name}' is not a valid name: it would name another folder`, hint: NAME_HINT }];
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) {
    const bad = [...name].find((c) => !/[a-z0-9-]/.test(c));
    const why = bad !== undefined ? `contains '${bad === '\n' ? '\\n' : bad}'` : 'starts or ends with \'-\'';
    return [{ path, message: `'${name}' is not a valid name: it ${why}`, hint: NAME_HINT }];
  }
  return [];
}

/** Throw a ValidationError when the name is invalid. */
export function assertValidName(name: unknown): asserts name is string {
  const issues = nameIssues(name);
  if (issues.length) throw new ValidationError('instance name', issues);
}

// ---------------------------------------------------------------------------------------------
// Sizes and ports

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** Parse "512M", "2G", "1.5GiB", "10240" (in `bareUnit`) into bytes; undefined when unparsable. */
export function parseSize(v: unknown, bareUnit = 1): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * bareUnit) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  if (!(unit in UNITS)) return undefined;
  const mult = unit === '' ? bareUnit : UNITS[unit]!;
  return Math.round(Number(m[1]) * mult);
}

/** Parse one port forward: "8080:80", "0.0.0.0:8080:80", "5353:53/udp". */
export function parsePortForward(s: string): PortForward | string {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|localhost):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(s.trim());
  if (!m) return `'${s}' is not HOST:GUEST (e.g. 8080:80, 127.0.0.1:8080:80, 5353:53/udp)`;
  const hostPort = Number(m[2]);
  const guestPort = Number(m[3]);
  if (hostPort < 1 || hostPort > 65535) return `host port ${hostPort} is out of range (1-65535)`;
  if (guestPort < 1 || guestPort > 65535) return `guest port ${guestPort} is out of range (1-65535)`;
  const hostAddr = !m[1] || m[1] === 'localhost' ? '127.0.0.1' : m[1];
  if (hostAddr.split('.').some((x) => Number(x) > 255)) return `'${hostAddr}' is not an IPv4 address`;
  return { proto: (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostAddr, hostPort, guestPort };
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

// ---------------------------------------------------------------------------------------------
// Load, then validate

/** Load a spec file (YAML or JSON). Only parses; `validateSpec` checks it. Relative paths are kept relative to the file. */
export async function loadSpecFile(path: string): Promise<InstanceSpecInput> {
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
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InvalidInputError('SPEC_PARSE', `${path} must hold a mapping of fields (name, image, cpus, ...)`, { hint: 'see docs/instances.md for the spec format' });
  }
  const o = { ...(doc as InstanceSpecInput) };
  const base = resolve(path, '..');
  for (const k of ['userData', 'sshKey'] as const) if (typeof o[k] === 'string' && !(o[k] as string).startsWith('/') && !(o[k] as string).startsWith('~')) o[k] = resolve(base, o[k] as string);
  return o;
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
export function validateSpec(input: InstanceSpecInput, opts: ValidateOptions = {}): InstanceSpec {
  const issues: ValidationIssue[] = [];
  const cwd = opts.cwd ?? process.cwd();
  const optionFields = opts.driverOptionFields ?? driverOptionTable();
  const known = knownFields(optionFields);
  for (const k of Object.keys(input)) {
    if (!known.has(k) && input[k] !== undefined) issues.push({ path: k, message: 'is not a known field', hint: `known fields: ${[...known].join(', ')}` });
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
    else if (looksLikeUserData(input.userData)) {
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
        const r = typeof p === 'string' ? parsePortForward(p) : typeof p === 'number' ? `${p} is not HOST:GUEST` : portFromObject(p);
        if (typeof r === 'string') issues.push({ path: `ports[${i}]`, message: r, hint: 'HOST:GUEST, e.g. 8080:80' });
        else if (ports.some((q) => q.hostPort === r.hostPort && q.proto === r.proto && q.hostAddr === r.hostAddr))
          issues.push({ path: `ports[${i}]`, message: `host port ${r.hostPort}/${r.proto} is given twice`, hint: 'each host port can forward to one guest port' });
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
    if (typeof input.user !== 'string' || !/^[a-z_][a-z0-9_-]{0,31}$/.test(input.user)) issues.push({ path: 'user', message: `${JSON.stringify(input.user)} is not a valid user name`, hint: 'lower-case letters, digits, _ and -, up to 32' });
    else user = input.user;
  }

  const seedFormat = input.seedFormat === undefined ? DEFAULTS.seedFormat : input.seedFormat;
  if (seedFormat !== 'nocloud' && seedFormat !== 'configdrive') issues.push({ path: 'seedFormat', message: 'must be nocloud or configdrive', hint: 'nocloud (cidata) suits most images' });
  const firmware = input.firmware === undefined ? 'bios' : input.firmware;
  if (firmware !== 'bios' && firmware !== 'uefi') issues.push({ path: 'firmware', message: 'must be bios or uefi', hint: 'bios unless the image only boots with UEFI' });

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
  };
}

function looksLikeUserData(s: string): boolean {
  return s.includes('\n') || /^(#cloud-config|#!|#include|#cloud-boothook|## template|Content-Type:|MIME-Version:)/i.test(s);
}

function portFromObject(p: unknown): PortForward | string {
  if (!p || typeof p !== 'object') return `${JSON.stringify(p)} is not a port forward`;
  const o = p as Record<string, unknown>;
  const host = o.host ?? o.hostPort;
  const guest = o.guest ?? o.guestPort;
  const addr = o.addr ?? o.hostAddr ?? '127.0.0.1';
  const proto = o.proto ?? 'tcp';
  return parsePortForward(`${addr}:${host}:${guest}/${proto}`);
}

export function parseDurationSec(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}

// ---------------------------------------------------------------------------------------------
// User-data

export const USER_DATA_HINT = "cloud-init user-data starts with '#cloud-config' (YAML), '#!' (a script), '#include', '#cloud-boothook', '## template: jinja' or a MIME multipart header";

/** Why cloud-init would not accept this user-data, or undefined when it looks valid. */
export function userDataProblem(data: Buffer): string | undefined {
  let buf = data;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      return 'is gzip data that does not decompress';
    }
  }
  const text = buf.toString('utf8');
  const first = text.split('\n', 1)[0]!.replace(/\r$/, '').trimEnd();
  if (/^#cloud-config\b/.test(first)) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      return `is #cloud-config but not valid YAML: ${(e as Error).message.split('\n')[0]}`;
    }
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) return 'is #cloud-config but its YAML is not a mapping';
    return undefined;
  }
  if (/^(#!|#include\b|#include-once\b|#cloud-boothook\b|#part-handler\b|#cloud-config-archive\b|## template: jinja\b|#upstart-job\b)/.test(first)) return undefined;
  if (/^(Content-Type|MIME-Version):/i.test(first)) return undefined;
  if (!text.trim()) return 'is empty';
  return `starts with '${first.slice(0, 40)}', which cloud-init does not recognise`;
}

/** Read and check the user-data of a validated spec (undefined when none was given). */
export async function loadUserData(spec: Pick<InstanceSpec, 'userDataPath' | 'userDataText'>): Promise<string | undefined> {
  if (spec.userDataText !== undefined) return spec.userDataText;
  if (!spec.userDataPath) return undefined;
  let data: Buffer;
  try {
    data = await readFile(spec.userDataPath);
  } catch (e) {
    const err = fsError(e, spec.userDataPath, 'read user-data file');
    throw new InvalidInputError('USER_DATA_UNREADABLE', err.message, { hint: 'give an existing cloud-init user-data file with --user-data', cause: e });
  }
  const why = userDataProblem(data);
  if (why) throw new ValidationError('invalid user-data', [{ path: `userData (${spec.userDataPath})`, message: why, hint: USER_DATA_HINT }]);
  // gzip'd user-data (which cloud-init accepts) is unpacked here: kumo merges its own part into
  // the content, and the seed carries the result as text.
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
  return data.toString('utf8');
}

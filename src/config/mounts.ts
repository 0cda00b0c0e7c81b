/**
 * Shared folders (`kumo launch --mount HOST_DIR[:GUEST_DIR][:ro]`, the spec's `mounts`): parsing
 * and checking what the user asked for. Three steps, as for the rest of the spec:
 *
 *   parseMountInput   one entry (a "HOST[:GUEST][:ro]" string or an object) -> MountSpec | problem
 *   mountsIssues      the whole list: every problem with its field path (guest path twice, ...)
 *   checkMountSources the host side (I/O): each host folder exists and is a folder; its real path
 *
 * The guest path defaults to the host path, as Lima does. The guest mounts each folder at boot
 * from the seed's cloud-config `mounts:` (seed/seed.ts), by its tag (kumo0, kumo1, ...). Which
 * transport carries it (virtiofs or 9p) is the driver's choice at create (`mountType` auto), or
 * the user's (`mountType`, or `type` on one mount); the record keeps the choice.
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, normalize, resolve } from 'node:path';
import { InvalidInputError, ValidationError, type ValidationIssue } from '../core/errors.js';
import { expandHome } from '../core/fs.js';

/** How a folder reaches the guest: virtiofs (virtiofsd, shared memory) or 9p (QEMU's own -fsdev local). */
export type MountType = 'virtiofs' | '9p';
/** The spec's choice: auto lets the driver pick (virtiofs where it can run, else 9p). */
export type MountTypeChoice = 'auto' | MountType;
export const MOUNT_TYPES: readonly MountTypeChoice[] = ['auto', 'virtiofs', '9p'];

/** One shared folder as the user asked for it (validated; paths absolute and normalised). */
export interface MountSpec {
  /** The host folder (absolute, as given; `checkMountSources` resolves symlinks). */
  host: string;
  /** Where the guest mounts it (absolute). */
  guest: string;
  readOnly: boolean;
  /** The transport asked for this mount; undefined: the spec's `mountType`. */
  type?: MountType;
}

/** A shared folder as instance.json keeps it and the driver runs it: the transport decided, a tag given. */
export interface ResolvedMount {
  /** The device tag the guest mounts (kumo0, kumo1, ...). */
  tag: string;
  /** The host folder's real path (symlinks resolved at create). */
  host: string;
  guest: string;
  readOnly: boolean;
  type: MountType;
}

/** A mount as an object in a spec file or a library call. */
export interface MountInput {
  host: string;
  guest?: string;
  readOnly?: boolean;
  /** Alias of readOnly. */
  ro?: boolean;
  type?: MountType;
}

export const MOUNT_HINT = 'HOST_DIR[:GUEST_DIR][:ro], e.g. ~/src, ~/src:/src or /data:/data:ro (GUEST_DIR absolute; default: the host path)';
export const MOUNT_TYPE_HINT = 'auto (virtiofs where virtiofsd runs, else 9p), virtiofs or 9p';

/** Guest folders a shared folder may not cover: the guest would not boot or would hide the system. */
const GUEST_SYSTEM_DIRS = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin', '/sys', '/usr', '/var', '/home', '/root'];
/** Guest paths go into /etc/fstab (whitespace separates its fields) and into QEMU options: printable, no blanks. */
const GUEST_PATH_RE = /^\/[A-Za-z0-9._@+=,:~\/-]*$/;
/** At most this many shared folders (a PCI slot each). */
export const MOUNTS_MAX = 16;

/** What is wrong with a guest path, if anything. */
export function guestPathProblem(g: string): string | undefined {
  if (!g.startsWith('/')) return `the guest path '${g}' is not absolute`;
  if (!GUEST_PATH_RE.test(g)) return `the guest path '${g}' holds a blank or a character kumo cannot write into the guest's /etc/fstab`;
  const n = normalize(g).replace(/\/+$/, '') || '/';
  if (GUEST_SYSTEM_DIRS.includes(n) || /^\/(proc|sys|dev)(\/|$)/.test(n)) return `the guest path '${g}' is a system folder of the guest`;
  return undefined;
}

/**
 * One mount: "HOST", "HOST:GUEST", "HOST:ro", "HOST:GUEST:ro" (":rw" too), or an object. Relative
 * host paths (and ~) are resolved against `cwd`. A problem is returned as a message.
 */
export function parseMountInput(v: unknown, cwd: string = process.cwd()): MountSpec | string {
  let host: unknown;
  let guest: unknown;
  let readOnly: unknown = false;
  let type: unknown;
  if (typeof v === 'string') {
    const parts = v.split(':');
    const last = parts[parts.length - 1];
    if (parts.length > 1 && (last === 'ro' || last === 'rw')) {
      readOnly = last === 'ro';
      parts.pop();
    }
    if (parts.length > 2) return `'${v}' has too many ':' (a path with ':' needs the object form { host, guest } in a spec file)`;
    [host, guest] = parts;
    if (guest === '') return `'${v}' has an empty GUEST_DIR`;
  } else if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const unknownKeys = Object.keys(o).filter((k) => !['host', 'guest', 'readOnly', 'ro', 'type'].includes(k));
    if (unknownKeys.length) return `unknown field(s) ${unknownKeys.join(', ')} (a mount has host, guest, readOnly, type)`;
    host = o.host;
    guest = o.guest;
    if (o.readOnly !== undefined && o.ro !== undefined) return 'give readOnly or ro, not both';
    readOnly = o.readOnly ?? o.ro ?? false;
    type = o.type;
  } else return `${JSON.stringify(v)} is not a mount`;
  if (typeof host !== 'string' || !host) return 'the host folder is missing';
  if (guest !== undefined && typeof guest !== 'string') return 'the guest path must be a string';
  if (typeof readOnly !== 'boolean') return 'readOnly must be true or false';
  if (type !== undefined && type !== 'virtiofs' && type !== '9p') return `type must be virtiofs or 9p (got ${JSON.stringify(type)})`;
  if (host.includes('\0') || (typeof guest === 'string' && guest.includes('\0'))) return 'a path holds a NUL byte';
  const hostAbs = resolve(cwd, expandHome(host));
  const g = guest ?? hostAbs;
  const why = guestPathProblem(g);
  if (why) return guest === undefined ? `${why} (it defaults to the host path; give a GUEST_DIR)` : why;
  return { host: hostAbs, guest: normalize(g).replace(/(.)\/+$/, '$1'), readOnly, ...(type ? { type: type as MountType } : {}) };
}

/** Check the spec's `mounts` list; issues carry their field path. Returns the mounts (possibly empty). */
export function mountsFrom(input: unknown, cwd: string, issues: ValidationIssue[], user?: string): MountSpec[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) {
    issues.push({ path: 'mounts', message: 'must be a list', hint: MOUNT_HINT });
    return [];
  }
  const out: MountSpec[] = [];
  if (input.length > MOUNTS_MAX) issues.push({ path: 'mounts', message: `${input.length} mounts are more than ${MOUNTS_MAX}`, hint: 'share a common parent folder instead' });
  input.forEach((m, i) => {
    const r = parseMountInput(m, cwd);
    if (typeof r === 'string') return issues.push({ path: `mounts[${i}]`, message: r, hint: MOUNT_HINT });
    const twin = out.findIndex((o) => o.guest === r.guest);
    if (twin >= 0) return issues.push({ path: `mounts[${i}]`, message: `the guest path ${r.guest} is given twice`, hint: 'give each mount its own GUEST_DIR' });
    if (user !== undefined && r.guest === `/home/${user}`)
      return issues.push({ path: `mounts[${i}]`, message: `the guest path ${r.guest} is the home of the guest user '${user}' (its ssh keys live there)`, hint: `mount it elsewhere, e.g. HOST_DIR:/home/${user}/share` });
    out.push(r);
  });
  return out;
}

/** Check the spec's `mountType`. */
export function mountTypeFrom(input: unknown, issues: ValidationIssue[]): MountTypeChoice {
  if (input === undefined) return 'auto';
  if (typeof input !== 'string' || !(MOUNT_TYPES as readonly string[]).includes(input)) {
    issues.push({ path: 'mountType', message: `must be auto, virtiofs or 9p (got ${JSON.stringify(input)})`, hint: MOUNT_TYPE_HINT });
    return 'auto';
  }
  return input as MountTypeChoice;
}

/**
 * The host side of the mounts (before anything is made): every host folder exists and is a
 * folder; returns the mounts with their real host paths. Reports every problem at once.
 */
export async function checkMountSources(mounts: readonly MountSpec[]): Promise<MountSpec[]> {
  const issues: ValidationIssue[] = [];
  const out: MountSpec[] = [];
  for (const [i, m] of mounts.entries()) {
    try {
      const st = await stat(m.host);
      if (!st.isDirectory()) {
        issues.push({ path: `mounts[${i}]`, message: `the host path ${m.host} is not a folder`, hint: 'share a folder (its parent, or a folder holding the file)' });
        continue;
      }
      out.push({ ...m, host: await realpath(m.host) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      issues.push({
        path: `mounts[${i}]`,
        message: code === 'ENOENT' || code === 'ENOTDIR' ? `the host folder ${m.host} does not exist` : `the host folder ${m.host} cannot be read (${code ?? (e as Error).message})`,
        hint: code === 'ENOENT' || code === 'ENOTDIR' ? `create it first (mkdir -p ${m.host}), or fix the path` : 'check its permissions',
      });
    }
  }
  if (issues.length) throw new ValidationError('invalid mounts', issues);
  return out;
}

/** The tag of the i-th mount (the guest names the device by it; 9p allows 31 characters, virtiofs 36). */
export function mountTag(i: number): string {
  return `kumo${i}`;
}

/** Tags given, and transports decided by `pick` (the driver: the mount's own `type` checked, the others chosen). */
export function resolveMounts(mounts: readonly MountSpec[], pick: (m: MountSpec, i: number) => MountType): ResolvedMount[] {
  return mounts.map((m, i) => ({ tag: mountTag(i), host: m.host, guest: m.guest, readOnly: m.readOnly, type: pick(m, i) }));
}

/** A stored mount as read back from instance.json: checked again (a damaged or hand-edited record must not reach an argv). */
export function storedMountProblem(m: unknown): string | undefined {
  if (!m || typeof m !== 'object') return 'is not an object';
  const o = m as Record<string, unknown>;
  if (typeof o.tag !== 'string' || !/^kumo\d{1,2}$/.test(o.tag)) return 'has no valid tag';
  if (typeof o.host !== 'string' || !isAbsolute(o.host) || o.host.includes('\0')) return 'has no absolute host path';
  if (typeof o.guest !== 'string' || guestPathProblem(o.guest)) return 'has no valid guest path';
  if (typeof o.readOnly !== 'boolean') return 'has no readOnly flag';
  if (o.type !== 'virtiofs' && o.type !== '9p') return 'has no type (virtiofs or 9p)';
  return undefined;
}

/** An error for a host folder that vanished between create and start. */
export class MountSourceMissingError extends InvalidInputError {
  constructor(instance: string, host: string) {
    super('MOUNT_SOURCE_MISSING', `the shared folder ${host} of instance '${instance}' is gone`, {
      hint: `create it again (mkdir -p ${host}), or delete the instance and launch it without that --mount`,
      details: { instance, host },
    });
  }
}

/** A spec file's mounts with relative host folders made relative to the file's folder (as its other paths). */
export function rebaseMounts(list: unknown, base: string): unknown {
  if (!Array.isArray(list)) return list;
  const rel = (h: unknown) => (typeof h === 'string' && h && !h.startsWith('/') && !h.startsWith('~') ? resolve(base, h) : h);
  return list.map((m) => {
    if (typeof m === 'string') {
      const i = m.indexOf(':');
      return i < 0 ? rel(m) : `${rel(m.slice(0, i)) as string}${m.slice(i)}`;
    }
    if (m && typeof m === 'object' && !Array.isArray(m)) return { ...(m as object), host: rel((m as Record<string, unknown>).host) };
    return m;
  });
}

/**
 * The instance directory is the source of truth:
 *
 *   KUMO_HOME/instances/NAME/
 *     instance.json        the record (spec, driver, image, ports, ssh); written LAST by create,
 *                          so a folder without it is a create that did not finish
 *     disk.qcow2           overlay on the read-only base (backing format recorded)
 *     seed.iso             cloud-init seed with this instance's own instance-id
 *     ssh_host_ed25519_key(.pub)  the guest's host key, made by kumo
 *     known_hosts          that key under the alias kumo-NAME, so the first ssh is verified
 *     qemu.pid qmp.sock serial.log   while/after running (driver files)
 *     lock                 held by the command working on the instance
 */
import type { DriverOptions } from '../config/spec.js';
import { storedMountProblem, type ResolvedMount } from '../config/mounts.js';
import { readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pidAlive } from '../core/exec.js';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { instanceFilesIn, type InstanceFiles } from '../config/instance-files.js';
import { assertValidName, INSTANCE_NAME_RE } from '../core/names.js';
import { ConflictError, InvalidInputError, NotFoundError, type KumoError } from '../core/errors.js';
import { exists, readJson, writeJsonAtomic } from '../core/fs.js';
import { acquireLock, lockHolder, type Lock } from '../core/lock.js';
import type { PortForward, InstanceRuntime } from '../driver/driver.js';
import { vmgenidFor } from '../driver/index.js';
import type { EventSink } from '../events/events.js';
import { networkFiles, type NetworkAttachment } from '../network/store.js';

export const RECORD_VERSION = 1;

/** What every instance use case takes: where its progress goes, and how to interrupt it (also the lock wait). */
export interface OpOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface InstanceRecord {
  version: number;
  name: string;
  driver: string;
  created: string;
  /** cloud-init instance-id in the seed (unique per instance). */
  instanceId: string;
  image: { ref: string; id?: string; path: string; format: string; virtualSize?: number };
  cpus: number;
  memoryMiB: number;
  /** Overlay size in bytes (the base's when not grown). */
  diskBytes?: number;
  accel: 'auto' | 'kvm' | 'tcg';
  firmware: 'bios' | 'uefi';
  seedFormat: 'nocloud' | 'configdrive' | 'cernvm';
  mac: string;
  ssh: {
    user: string;
    /** Host port forwarded to the guest's 22; 0 until first started. */
    port: number;
    /** Private key used to log in. */
    key: string;
  };
  ports: PortForward[];
  /** Seconds to wait for readiness (from the spec). */
  timeoutSec: number;
  /** Where the user-data came from, for `info`. */
  userDataSource?: string;
  /** The driver's options (libvirt: connect, pool, network; config/spec.ts DriverOptions). */
  driverOptions?: DriverOptions;
  lastStart?: { at: string; accel: string; pid?: number };
  /**
   * The warm template this instance was cloned from (its disk is an overlay on the template's),
   * and the instance-id its guest's cloud-init ran with there (the clone's own is cloud-init's
   * only once the clone boots from its seed).
   */
  template?: { id: string; dir: string; instanceId?: string };
  /**
   * A saved state the next start restores instead of booting: a clone's first start (from its
   * template), or a suspended instance. Cleared once restored, or when the restore failed and the
   * machine booted instead.
   */
  restore?: {
    kind: 'template' | 'suspend' | 'snapshot';
    /** The state file ('' for a snapshot: the disk holds the state). */
    stateFile: string;
    /** kind snapshot: the internal snapshot (with memory) the next start resumes. */
    snapshot?: string;
    ignoreShared: boolean;
    machine: string;
    /** Guest RAM mapped from this file (private): a clone's template RAM. */
    memoryFile?: string;
    at: string;
  };
  /** How the current run was started when it differs from a boot (a restored clone's RAM file, a pinned machine type). */
  run?: { memoryFile?: string; machine?: string; memoryShared?: boolean };
  /** Labels given at creation (`kumo list --label`, `kumo delete --label`). */
  labels?: Record<string, string>;
  /** When its time to live is up (ISO time): then it is powered off and deleted (instance/reaper.ts). */
  expiresAt?: string;
  /** sha256 of the user-data it was made with (launch's reuse compares it). */
  userDataDigest?: string;
  /** Shared host folders, with the transport chosen at create (config/mounts.ts). */
  mounts?: ResolvedMount[];
  /** Private networks it is on: its address and NIC MAC on each (leases of src/network/store.ts). */
  networks?: NetworkAttachment[];
}

export type { InstanceFiles };

export function instanceDir(paths: KumoPaths, name: string): string {
  assertValidName(name);
  return join(paths.instances, name);
}

export function instanceFiles(paths: KumoPaths, name: string): InstanceFiles {
  return instanceFilesIn(instanceDir(paths, name));
}

export class InstanceNotFoundError extends NotFoundError {
  constructor(name: string) {
    super('INSTANCE_NOT_FOUND', `no instance named '${name}'`, { hint: "see 'kumo list' for the instances there are" });
  }
}

export class IncompleteInstanceError extends ConflictError {
  constructor(name: string, busy: boolean) {
    super(
      'INSTANCE_INCOMPLETE',
      busy ? `instance '${name}' is being created right now` : `instance '${name}' was never fully created (kumo stopped in the middle)`,
      { hint: busy ? 'wait for the other kumo command to finish' : `remove what is left with: kumo delete ${name}` },
    );
  }
}

export async function readRecord(paths: KumoPaths, name: string): Promise<InstanceRecord> {
  const f = instanceFiles(paths, name);
  if (!(await exists(f.dir))) throw new InstanceNotFoundError(name);
  if (!(await exists(f.record))) {
    const holder = await lockHolder(f.lock);
    throw new IncompleteInstanceError(name, !!holder && holder.pid !== process.pid);
  }
  let rec: unknown;
  try {
    rec = await readJson<unknown>(f.record);
  } catch (e) {
    if ((e as KumoError).code !== 'CORRUPT_STATE') throw e;
    throw new InvalidInputError('CORRUPT_STATE', `instance '${name}': ${(e as Error).message}`, { hint: corruptHint(name) });
  }
  const problems = recordProblems(rec, name);
  if (problems.length)
    throw new InvalidInputError('CORRUPT_STATE', `instance '${name}': ${f.record} is damaged: ${problems.join('; ')}`, { hint: corruptHint(name), details: { problems } });
  return rec as InstanceRecord;
}

const corruptHint = (name: string) => `restore the file from a backup, or remove the instance (its disk goes too): kumo delete ${name}`;

/** What is wrong with a parsed instance.json (wrong or missing fields the use cases rely on). */
function recordProblems(r: unknown, name: string): string[] {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return ['it is not a JSON object'];
  const o = r as Record<string, unknown>;
  const out: string[] = [];
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const want = (path: string, v: unknown, type: 'string' | 'number') => {
    if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) out.push(`${path} is ${v === undefined ? 'missing' : `${JSON.stringify(v)}, not a ${type}`}`);
  };
  want('name', o.name, 'string');
  if (typeof o.name === 'string' && o.name !== name) out.push(`name is '${o.name}' but the folder is '${name}'`);
  for (const k of ['driver', 'instanceId', 'mac', 'accel', 'firmware', 'seedFormat'] as const) want(k, o[k], 'string');
  for (const k of ['cpus', 'memoryMiB', 'timeoutSec'] as const) want(k, o[k], 'number');
  if (!obj(o.image)) out.push('image is missing or not an object');
  else for (const k of ['path', 'format'] as const) want(`image.${k}`, o.image[k], 'string');
  if (!obj(o.ssh)) out.push('ssh is missing or not an object');
  else {
    want('ssh.user', o.ssh.user, 'string');
    want('ssh.port', o.ssh.port, 'number');
    want('ssh.key', o.ssh.key, 'string');
  }
  if (!Array.isArray(o.ports)) out.push('ports is missing or not a list');
  else o.ports.forEach((p, i) => {
    if (!obj(p)) out.push(`ports[${i}] is not an object`);
    else {
      want(`ports[${i}].hostPort`, p.hostPort, 'number');
      want(`ports[${i}].guestPort`, p.guestPort, 'number');
    }
  });
  if (o.mounts !== undefined) {
    if (!Array.isArray(o.mounts)) out.push('mounts is not a list');
    else o.mounts.forEach((m, i) => {
      const why = storedMountProblem(m);
      if (why) out.push(`mounts[${i}] ${why}`);
    });
  }
  return out;
}

export async function writeRecord(paths: KumoPaths, rec: InstanceRecord): Promise<void> {
  await writeJsonAtomic(instanceFiles(paths, rec.name).record, rec, 0o600);
}

/** Names of every folder in instances/ (valid names only; hidden files are skipped). */
export async function listNames(paths: KumoPaths): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(paths.instances, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && INSTANCE_NAME_RE.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** Folders of deletes in progress: `.deleting-NAME-PID-RANDOM` beside the instances (never listed). */
const DELETING_RE = /^\.deleting-.+-(\d+)-[0-9a-f]{8}$/;

/**
 * Remove an instance's folder, with its lock held by the caller. The folder is first renamed out
 * of the instance's name in one step, then removed: a command waiting for the instance's lock
 * meanwhile finds no instance (and not a half-removed one that it would call "never fully
 * created", while its own lock file made the removal fail). A folder left by a delete that died
 * half-way is removed by the next delete.
 */
export async function removeInstanceFolder(paths: KumoPaths, name: string): Promise<void> {
  const dir = instanceDir(paths, name);
  const trash = join(paths.instances, `.deleting-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await rename(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return;
  }
  await rm(trash, { recursive: true, force: true });
  for (const n of await readdir(paths.instances).catch(() => [] as string[])) {
    const m = DELETING_RE.exec(n);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) await rm(join(paths.instances, n), { recursive: true, force: true }).catch(() => {});
  }
}

/** Take the instance's lock; a missing instance is an InstanceNotFoundError. */
export async function lockInstance(paths: KumoPaths, name: string, op: string, waitMs = 0, signal?: AbortSignal): Promise<Lock> {
  const f = instanceFiles(paths, name);
  if (!(await exists(f.dir))) throw new InstanceNotFoundError(name);
  try {
    return await acquireLock(f.lock, { op, what: `instance '${name}'`, waitMs, ...(signal ? { signal } : {}) });
  } catch (e) {
    if ((e as KumoError).code === 'FILE_NOT_FOUND') throw new InstanceNotFoundError(name);
    throw e;
  }
}

/** The driver's view of an instance, from its record. */
export function runtimeFor(paths: KumoPaths, rec: InstanceRecord): InstanceRuntime {
  const f = instanceFiles(paths, rec.name);
  return {
    name: rec.name,
    dir: f.dir,
    paths,
    cpus: rec.cpus,
    memoryMiB: rec.memoryMiB,
    disk: { path: f.disk, format: 'qcow2' },
    seed: { path: f.seed, format: rec.seedFormat },
    mac: rec.mac,
    sshPort: rec.ssh.port,
    ports: rec.ports,
    accel: rec.accel,
    firmware: rec.firmware,
    vmgenid: vmgenidFor(rec.instanceId),
    ...(rec.driverOptions ? { driverOptions: rec.driverOptions } : {}),
    ...(rec.mounts?.length ? { mounts: rec.mounts } : {}),
    ...(rec.networks?.length ? { networks: rec.networks.map((n) => ({ name: n.network, mac: n.mac, socket: networkFiles(paths, n.network).socket })) } : {}),
    ...runConfig(rec),
  };
}

/** The saved state to restore, and the memory/machine settings the restored (or running) QEMU needs. */
function runConfig(rec: InstanceRecord): Pick<InstanceRuntime, 'memoryFile' | 'machine' | 'restore'> {
  const r = rec.restore;
  const memoryFile = r ? r.memoryFile : rec.run?.memoryFile;
  const machine = r ? r.machine : rec.run?.machine;
  return {
    ...(memoryFile ? { memoryFile: { path: memoryFile, share: !r && !!rec.run?.memoryShared } } : {}),
    ...(machine ? { machine } : {}),
    ...(r ? { restore: { stateFile: r.stateFile, ignoreShared: r.ignoreShared, ...(r.snapshot ? { snapshot: r.snapshot } : {}) } } : {}),
  };
}

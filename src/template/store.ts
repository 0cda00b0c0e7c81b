/**
 * Warm templates: a guest booted once to ready and frozen, so that new instances start by
 * restoring it (about a second) instead of booting (a minute under emulation).
 *
 *   KUMO_HOME/templates/ID/        ID: the first 16 hex digits of sha256(the template's key)
 *     disk.qcow2      the frozen disk (an overlay on the stored base image); clones' overlays sit on it
 *     memory          the guest's RAM as it was when frozen (sparse); clones map it private
 *     state           the device state (a QEMU migration stream saved with x-ignore-shared)
 *     efivars.fd      UEFI's variables (UEFI templates), copied into each clone
 *     seed.iso, known_hosts, ssh_host_ed25519_key(.pub), instance.json   what booted it
 *     template.json   the record, written last: a folder without it is an unfinished warm
 *   KUMO_HOME/templates/.ID.lock   held while the template is made, refreshed, removed, or cloned from
 *   KUMO_HOME/templates/.warm-ID-PID/   a warm in progress (swept when its process is dead)
 *
 * The key is everything a clone must share with its template to be restored: the base image's
 * store id, the machine shape (cpus, memory, disk size, firmware, seed format), the login user and
 * key, and the host (QEMU's version, the machine type its q35 alias stands for, the accelerator).
 * A template for another host or image is never restored: the clone boots cold and says why.
 * The files are made read-only; the state's digest is checked before every restore.
 */
import { chmod, readdir, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { ensurePrivateDir, exists, readJson, writeJsonAtomic } from '../core/fs.js';
import { acquireLock, type Lock } from '../core/lock.js';
import type { TemplateHost } from '../driver/driver.js';
import { registerDiskSource } from '../image/index.js';

export const TEMPLATE_VERSION = 1;

/** What a clone must have in common with a template (hashed into the template's id). */
export interface TemplateKey {
  driver: string;
  imageId: string;
  cpus: number;
  memoryMiB: number;
  diskBytes: number;
  firmware: 'bios' | 'uefi';
  seedFormat: 'nocloud' | 'configdrive' | 'cernvm';
  user: string;
  /** The login public key (its `type base64` part). */
  loginKey: string;
  host: TemplateHost;
}

export interface TemplateRecord {
  version: number;
  id: string;
  key: TemplateKey;
  created: string;
  image: { id: string; ref: string; path: string; format: string };
  /** The MAC the frozen NIC has (a clone keeps it: it is in the restored device state). */
  mac: string;
  /** The template's own ssh host key (public line): the pinned key for identity steps over ssh. */
  hostKeyPublic: string;
  /** Whether the guest agent answered in the template (then identity goes through it). */
  agent: boolean;
  /**
   * The frozen guest's own hostname and machine-id (no clone may keep them), and the instance-id
   * its cloud-init ran with (a clone's cloud-init state says it until the clone boots; older
   * templates lack it).
   */
  guest?: { hostname: string; machineId: string; instanceId?: string };
  /** sha256 of the state file, checked before each restore. */
  stateSha256: string;
  sizes: { stateBytes: number; memoryBytes: number; memoryOnDiskBytes: number; diskOnDiskBytes: number };
  /** ms: the boot to ready, the save. */
  timings: { bootMs: number; saveMs: number };
}

export interface TemplateFiles {
  dir: string;
  record: string;
  disk: string;
  memory: string;
  state: string;
  efiVars: string;
  lock: string;
}

export function templateIdOf(key: TemplateKey): string {
  return createHash('sha256').update(JSON.stringify(canonical(key))).digest('hex').slice(0, 16);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

export const TEMPLATE_ID_RE = /^[0-9a-f]{16}$/;

export function templateFiles(paths: KumoPaths, id: string): TemplateFiles {
  if (!TEMPLATE_ID_RE.test(id)) throw new TemplateNotFoundError(id);
  const dir = join(paths.templates, id);
  return {
    dir,
    record: join(dir, 'template.json'),
    disk: join(dir, 'disk.qcow2'),
    memory: join(dir, 'memory'),
    state: join(dir, 'state'),
    efiVars: join(dir, 'efivars.fd'),
    // beside the folder, so that it can be held before the folder exists and after it is gone
    lock: join(paths.templates, `.${id}.lock`),
  };
}

export class TemplateNotFoundError extends NotFoundError {
  constructor(id: string) {
    super('TEMPLATE_NOT_FOUND', `no warm template '${id}'`, { hint: "see 'kumo image list' for the templates there are; 'kumo image warm IMAGE' makes one" });
  }
}

export async function readTemplate(paths: KumoPaths, id: string): Promise<TemplateRecord> {
  const f = templateFiles(paths, id);
  if (!(await exists(f.record))) throw new TemplateNotFoundError(id);
  return readJson<TemplateRecord>(f.record);
}

/** Every complete template (folders without template.json are unfinished warms, skipped). */
export async function listTemplates(paths: KumoPaths): Promise<TemplateRecord[]> {
  let names: string[];
  try {
    names = await readdir(paths.templates);
  } catch {
    return [];
  }
  const out: TemplateRecord[] = [];
  for (const n of names.sort()) {
    if (!TEMPLATE_ID_RE.test(n)) continue;
    try {
      out.push(await readJson<TemplateRecord>(join(paths.templates, n, 'template.json')));
    } catch {
      /* unfinished or damaged: not a template */
    }
  }
  return out;
}

/** Find a template by id or by a unique prefix of it (as `kumo image info` takes it). */
export async function findTemplate(paths: KumoPaths, idOrPrefix: string): Promise<TemplateRecord | undefined> {
  if (!/^[0-9a-f]{4,16}$/.test(idOrPrefix)) return undefined;
  const m = (await listTemplates(paths)).filter((t) => t.id.startsWith(idOrPrefix));
  if (m.length > 1) throw new ConflictError('AMBIGUOUS_TEMPLATE', `'${idOrPrefix}' names ${m.length} templates`, { hint: 'give more digits of the id' });
  return m[0];
}

export async function lockTemplate(paths: KumoPaths, id: string, op: string, signal?: AbortSignal): Promise<Lock> {
  await ensurePrivateDir(paths.templates);
  return acquireLock(templateFiles(paths, id).lock, { op, what: `template ${id}`, waitMs: 60_000, ...(signal ? { signal } : {}) });
}

/** Make the template's files read-only (the clones' shared base must never change). */
export async function freezeTemplateFiles(f: TemplateFiles): Promise<void> {
  for (const p of [f.disk, f.memory, f.state, f.efiVars]) await chmod(p, 0o400).catch(() => {});
}

export async function writeTemplateRecord(paths: KumoPaths, rec: TemplateRecord): Promise<void> {
  await writeJsonAtomic(templateFiles(paths, rec.id).record, rec);
}

/** Bytes a file really takes on disk (the RAM file is sparse). */
export async function onDiskBytes(p: string): Promise<number> {
  const st = await stat(p).catch(() => undefined);
  return st ? st.blocks * 512 : 0;
}

/** The template disks as users of stored images (a template keeps its base image in use). */
export async function templateDisks(paths: KumoPaths): Promise<{ owner: string; disk: string }[]> {
  return (await listTemplates(paths)).map((t) => ({ owner: `template:${t.id}`, disk: templateFiles(paths, t.id).disk }));
}

export function registerTemplateDiskSource(): void {
  registerDiskSource(templateDisks, 'templates');
}

/** Remove a template folder (the caller checked no clone uses it, under its lock). */
export async function removeTemplateFolder(paths: KumoPaths, id: string): Promise<void> {
  const f = templateFiles(paths, id);
  // template.json first: from then on the folder is not a template, whatever remains of it.
  await rm(f.record, { force: true });
  await rm(f.dir, { recursive: true, force: true });
}

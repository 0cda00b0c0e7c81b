/**
 * kumo's domains as libvirt sees them, and the two ways they fall out of step with the instance
 * directories (testcloud's "de-sync"): a domain whose instance directory is gone (an orphan), and
 * an instance directory whose domain is gone (it is defined again by the next start). Also the
 * disks libvirt's domains use, for the image store's in-use rule.
 *
 * Where to look: the URIs the home's libvirt instances use, the URIs given, and the URIs this
 * home has defined domains on (remembered by `start` in KUMO_HOME/drivers/libvirt/uris/, one
 * file per URI, so an orphan is found even when no instance on its URI is left; a URI is
 * forgotten once it holds no domain of this home and no instance uses it).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../../config/paths.js';
import { ConflictError } from '../../core/errors.js';
import { which } from '../../core/exec.js';
import { ensurePrivateDir, writeFileAtomic } from '../../core/fs.js';
import { debug } from '../../core/log.js';
import { LibvirtUnavailableError, VIRSH, Virsh, defaultUri, isLocalUri } from './virsh.js';
import { parseDomainFacts, type DomainFacts } from './xml.js';
import { removeVolumes } from './pool.js';
import { instanceFilesIn } from '../../config/instance-files.js';

export interface KumoDomain {
  uri: string;
  domain: string;
  state: string;
  facts: DomainFacts;
}

function urisDir(paths: Pick<KumoPaths, 'home'>): string {
  return join(paths.home, 'drivers', 'libvirt', 'uris');
}

function uriFile(paths: Pick<KumoPaths, 'home'>, uri: string): string {
  return join(urisDir(paths), `${createHash('sha256').update(uri).digest('hex').slice(0, 16)}.uri`);
}

/** Remember that this home has defined a domain at `uri` (idempotent, atomic). */
export async function rememberUri(paths: Pick<KumoPaths, 'home'>, uri: string): Promise<void> {
  await ensurePrivateDir(join(paths.home, 'drivers'));
  await ensurePrivateDir(join(paths.home, 'drivers', 'libvirt'));
  await ensurePrivateDir(urisDir(paths));
  await writeFileAtomic(uriFile(paths, uri), uri + '\n', 0o600);
}

/** The URIs this home has defined domains on. */
export async function rememberedUris(paths: Pick<KumoPaths, 'home'>): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(urisDir(paths))).filter((n) => n.endsWith('.uri'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const u = (await readFile(join(urisDir(paths), n), 'utf8').catch(() => '')).trim();
    if (u) out.push(u);
  }
  return out.sort();
}

async function forgetUri(paths: Pick<KumoPaths, 'home'>, uri: string): Promise<void> {
  await unlink(uriFile(paths, uri)).catch(() => {});
}

/** Every domain at `uri` that carries kumo metadata (of any kumo home). */
export async function listKumoDomains(uri: string, o: { timeoutMs?: number } = {}): Promise<KumoDomain[]> {
  const v = new Virsh(uri, o.timeoutMs ? { timeoutMs: o.timeoutMs } : {});
  const out: KumoDomain[] = [];
  for (const name of await v.listDomains()) {
    const xml = await v.dumpxml(name, true);
    if (!xml) continue;
    const facts = parseDomainFacts(xml);
    if (!facts.metadata) continue;
    const st = await v.domstate(name);
    out.push({ uri, domain: name, state: st?.state ?? 'unknown', facts });
  }
  return out;
}

/** What instance.json says about an instance's driver (read loosely: the instance layer owns the format). */
export interface LibvirtInstanceRef {
  name: string;
  dir: string;
  connect: string;
  domain: string;
}

/** The libvirt instances of a kumo home, from their instance.json files. */
export async function libvirtInstances(paths: Pick<KumoPaths, 'instances'>): Promise<LibvirtInstanceRef[]> {
  let names: string[];
  try {
    names = await readdir(paths.instances);
  } catch {
    return [];
  }
  const out: LibvirtInstanceRef[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // a delete in progress (instance/store.ts removeInstanceFolder)
    const dir = join(paths.instances, name);
    try {
      const j = JSON.parse(await readFile(instanceFilesIn(dir).record, 'utf8')) as Record<string, unknown>;
      const spec = (j.spec ?? j) as Record<string, unknown>;
      const driver = j.driver ?? spec.driver;
      if (driver !== 'libvirt') continue;
      const opts = (j.driverOptions ?? spec.driverOptions ?? {}) as Record<string, unknown>;
      out.push({
        name,
        dir,
        connect: typeof opts.connect === 'string' && opts.connect ? opts.connect : defaultUri(),
        domain: typeof opts.domain === 'string' && opts.domain ? opts.domain : name,
      });
    } catch {
      /* not an instance, or being created */
    }
  }
  return out;
}

export interface Desync {
  /** kumo domains of this home whose instance directory is gone. */
  orphanDomains: KumoDomain[];
  /** libvirt instances whose domain is not defined (the next start defines it again). */
  missingDomains: LibvirtInstanceRef[];
  /** URIs that could not be reached, with the reason. */
  unreachable: { uri: string; reason: string }[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether a kumo domain belongs to this home and its instance directory is gone. */
async function isOrphan(paths: Pick<KumoPaths, 'home'>, k: Pick<KumoDomain, 'facts'>): Promise<boolean> {
  const m = k.facts.metadata;
  return !!m && m.home === paths.home && !(await exists(join(m.dir, 'instance.json')));
}

/**
 * Compare libvirt's kumo domains with the instance directories of `paths`, on the given URIs,
 * those the instances use and those this home remembers. With `forget`, a reachable remembered
 * URI that holds no domain of this home and that no instance uses is forgotten.
 */
export async function findDesync(paths: KumoPaths, uris: string[] = [], o: { forget?: boolean; timeoutMs?: number } = {}): Promise<Desync> {
  const instances = await libvirtInstances(paths);
  const remembered = await rememberedUris(paths);
  const all = [...new Set([...uris, ...instances.map((i) => i.connect), ...remembered])];
  const d: Desync = { orphanDomains: [], missingDomains: [], unreachable: [] };
  for (const uri of all) {
    let doms: KumoDomain[];
    try {
      doms = await listKumoDomains(uri, o.timeoutMs ? { timeoutMs: o.timeoutMs } : {});
    } catch (e) {
      d.unreachable.push({ uri, reason: (e as Error).message });
      continue;
    }
    for (const k of doms) if (await isOrphan(paths, k)) d.orphanDomains.push(k);
    const mine = instances.filter((x) => x.connect === uri);
    for (const i of mine) {
      if (!doms.some((k) => k.domain === i.domain && k.facts.metadata?.dir === i.dir)) d.missingDomains.push(i);
    }
    if (o.forget && remembered.includes(uri) && !mine.length && !doms.some((k) => k.facts.metadata?.home === paths.home)) {
      debug(`libvirt: ${uri} holds no domain of ${paths.home} any more; forgetting it`);
      await forgetUri(paths, uri);
    }
  }
  return d;
}

/**
 * Remove one orphan domain (looked up again: it must still carry this home's metadata and its
 * instance directory must still be gone): destroy it when running (only with `force`), undefine
 * it (with its NVRAM) and remove the volumes kumo made for it, never a base.
 */
export async function removeOrphanDomain(paths: KumoPaths, uri: string, domain: string, o: { force?: boolean } = {}): Promise<KumoDomain | undefined> {
  const v = new Virsh(uri);
  const xml = await v.dumpxml(domain, true);
  if (!xml) return undefined;
  const facts = parseDomainFacts(xml);
  const k: KumoDomain = { uri, domain, state: (await v.domstate(domain))?.state ?? 'unknown', facts };
  if (!(await isOrphan(paths, k))) {
    throw new ConflictError('LIBVIRT_NOT_ORPHAN', `libvirt domain '${domain}' at ${uri} is not an orphan of ${paths.home}`, {
      hint: facts.metadata && facts.metadata.home === paths.home ? `its instance exists: use 'kumo delete ${facts.metadata.instance}'` : 'kumo removes only its own domains whose instance directory is gone',
    });
  }
  if (k.state !== 'shut off' && k.state !== 'crashed') {
    if (!o.force) {
      throw new ConflictError('LIBVIRT_ORPHAN_RUNNING', `the orphan domain '${domain}' at ${uri} is running (its instance directory ${facts.metadata!.dir} is gone)`, {
        hint: 'repair with --force to destroy it, or stop it yourself with virsh destroy',
      });
    }
    await v.raw(['destroy', '--', domain]);
  }
  await v.call(['undefine', '--managed-save', ...(facts.nvram ? ['--nvram'] : []), '--', domain]);
  if (facts.metadata!.volumes?.length) await removeVolumes(v, facts.metadata!.volumes, { ifExists: true });
  return k;
}

/**
 * Repair what findDesync found: undefine orphan domains and remove their volumes (a running
 * orphan only with `force`, after destroying it). Missing domains need nothing here: the next
 * `kumo start` defines them again. Returns the domains removed.
 */
export async function repairDesync(paths: KumoPaths, o: { uris?: string[]; force?: boolean } = {}): Promise<KumoDomain[]> {
  const d = await findDesync(paths, o.uris);
  const removed: KumoDomain[] = [];
  for (const k of d.orphanDomains) {
    const r = await removeOrphanDomain(paths, k.uri, k.domain, o);
    if (r) removed.push(r);
  }
  return removed;
}

/**
 * The disks of libvirt domains on this machine, for the image store's in-use rule: every disk
 * file (and the path of every pool volume) of every domain on the local URIs kumo's instances
 * use (plus the default one). Unreachable daemons are skipped: no daemon, no domain holds a disk.
 */
export async function libvirtDisks(paths: KumoPaths, uris: string[] = []): Promise<{ owner: string; disk: string }[]> {
  // No virsh, no libvirt domains to ask about.
  if (!(await which(VIRSH))) return [];
  const instances = await libvirtInstances(paths);
  const all = [...new Set([defaultUri(), ...uris, ...instances.map((i) => i.connect)])].filter((u) => {
    try {
      return isLocalUri(u);
    } catch {
      return false;
    }
  });
  const out: { owner: string; disk: string }[] = [];
  for (const uri of all) {
    const v = new Virsh(uri, { timeoutMs: 20_000 });
    let names: string[];
    try {
      names = await v.listDomains();
    } catch (e) {
      if (e instanceof LibvirtUnavailableError) continue;
      throw e;
    }
    for (const name of names) {
      const xml = await v.dumpxml(name, true).catch(() => undefined);
      if (!xml) continue;
      const facts = parseDomainFacts(xml);
      const owner = facts.metadata ? `libvirt domain '${name}' (kumo instance '${facts.metadata.instance}') at ${uri}` : `libvirt domain '${name}' at ${uri}`;
      for (const dk of facts.disks) {
        if (dk.file) out.push({ owner, disk: dk.file });
        else if (dk.pool && dk.volume) {
          const r = await v.raw(['vol-path', '--pool', dk.pool, '--', dk.volume]).catch(() => undefined);
          if (r && r.code === 0 && r.stdout.trim()) out.push({ owner, disk: r.stdout.trim() });
        }
      }
    }
  }
  return out;
}

/**
 * kumo's domains as libvirt sees them, and the two ways they fall out of step with the instance
 * directories (testcloud's "de-sync"): a domain whose instance directory is gone (an orphan), and
 * an instance directory whose domain is gone (it is defined again by the next start). Also the
 * disks libvirt's domains use, for the image store's in-use rule.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../../config/paths.js';
import { ConflictError } from '../../core/errors.js';
import { which } from '../../core/exec.js';
import { LibvirtUnavailableError, VIRSH, Virsh, defaultUri, isLocalUri } from './virsh.js';
import { parseDomainFacts, type DomainFacts } from './xml.js';
import { removeVolumes } from './pool.js';

export interface KumoDomain {
  uri: string;
  domain: string;
  state: string;
  facts: DomainFacts;
}

/** Every domain at `uri` that carries kumo metadata (of any kumo home). */
export async function listKumoDomains(uri: string): Promise<KumoDomain[]> {
  const v = new Virsh(uri);
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
    const dir = join(paths.instances, name);
    try {
      const j = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as Record<string, unknown>;
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

/** Compare libvirt's kumo domains with the instance directories of `paths` (on the given URIs, plus those instances use). */
export async function findDesync(paths: KumoPaths, uris: string[] = []): Promise<Desync> {
  const instances = await libvirtInstances(paths);
  const all = [...new Set([...uris, ...instances.map((i) => i.connect)])];
  const d: Desync = { orphanDomains: [], missingDomains: [], unreachable: [] };
  for (const uri of all) {
    let doms: KumoDomain[];
    try {
      doms = await listKumoDomains(uri);
    } catch (e) {
      d.unreachable.push({ uri, reason: (e as Error).message });
      continue;
    }
    for (const k of doms) {
      const m = k.facts.metadata!;
      if (m.home !== paths.home) continue;
      if (!(await exists(join(m.dir, 'instance.json')))) d.orphanDomains.push(k);
    }
    for (const i of instances.filter((x) => x.connect === uri)) {
      if (!doms.some((k) => k.domain === i.domain && k.facts.metadata?.dir === i.dir)) d.missingDomains.push(i);
    }
  }
  return d;
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
    const v = new Virsh(k.uri);
    if (k.state !== 'shut off' && k.state !== 'crashed') {
      if (!o.force) {
        throw new ConflictError('LIBVIRT_ORPHAN_RUNNING', `the orphan domain '${k.domain}' at ${k.uri} is running (its instance directory ${k.facts.metadata!.dir} is gone)`, {
          hint: 'repair with force to destroy it, or stop it yourself with virsh destroy',
        });
      }
      await v.raw(['destroy', '--', k.domain]);
    }
    await v.call(['undefine', ...(k.facts.nvram ? ['--nvram'] : []), '--', k.domain]);
    if (k.facts.metadata!.volumes?.length) await removeVolumes(v, k.facts.metadata!.volumes, { ifExists: true });
    removed.push(k);
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

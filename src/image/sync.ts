/** `image sync`: fetch newer versions of stored aliases; the old versions become superseded. */
import { InterruptedError, isKumoError, KumoError } from '../core/errors.js';
import { Emitter } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { findAlias, hostArch, loadCatalog, unknownAliasError } from './catalog.js';
import { formatChecksum } from './checksums.js';
import { pull } from './pull.js';
import type { ImageRecord } from './record.js';
import { planAlias } from './resolve.js';
import { listImages, type ImageOpOptions } from './store.js';

export interface SyncOptions extends ImageOpOptions {
  /** Only these aliases (default: every alias with a stored image). */
  refs?: string[];
  dryRun?: boolean;
}

export interface SyncResult {
  updated: { alias: string; arch: string; from?: string; to: string; version?: string }[];
  current: { alias: string; arch: string; id: string }[];
  failed: { alias: string; arch: string; error: KumoError }[];
  /** dry run: newer versions found but not fetched. */
  available?: { alias: string; arch: string; from?: string; url: string; version?: string }[];
}

/** Fetch newer versions of stored aliases; the old versions become superseded (image prune removes them when unused). */
export async function syncImages(paths: KumoPaths, opts: SyncOptions = {}): Promise<SyncResult> {
  const em = new Emitter(opts.onEvent);
  const catalog = await loadCatalog(paths);
  const records = await listImages(paths);
  const targets: { alias: string; arch: string; from?: ImageRecord }[] = [];
  if (opts.refs?.length) {
    for (const ref of opts.refs) {
      const a = findAlias(catalog, ref);
      if (!a) throw unknownAliasError(catalog, ref);
      const have = records.filter((r) => r.aliases.includes(a.name));
      if (have.length) for (const r of have) targets.push({ alias: a.name, arch: r.arch, from: r });
      else targets.push({ alias: a.name, arch: hostArch() });
    }
  } else {
    for (const r of records) for (const a of r.aliases) if (r.source.kind === 'alias' && findAlias(catalog, a)) targets.push({ alias: a, arch: r.arch, from: r });
  }
  const res: SyncResult = { updated: [], current: [], failed: [], ...(opts.dryRun ? { available: [] } : {}) };
  for (const t of targets) {
    try {
      const plan = await em.step('image.resolve', `Checking ${t.alias} (${t.arch})`, () => planAlias(catalog, t.alias, t.arch, opts.signal));
      if (t.from && t.from.source.url === plan.url && t.from.source.checksum === formatChecksum(plan.checksum)) {
        res.current.push({ alias: t.alias, arch: t.arch, id: t.from.id });
        continue;
      }
      if (opts.dryRun) {
        res.available!.push({ alias: t.alias, arch: t.arch, ...(t.from ? { from: t.from.id } : {}), url: plan.url, ...(plan.version ? { version: plan.version } : {}) });
        continue;
      }
      const rec = await pull(paths, plan, em, opts.signal);
      if (t.from?.id === rec.id) res.current.push({ alias: t.alias, arch: t.arch, id: rec.id });
      else res.updated.push({ alias: t.alias, arch: t.arch, ...(t.from ? { from: t.from.id } : {}), to: rec.id, ...(rec.version ? { version: rec.version } : {}) });
    } catch (e) {
      if (e instanceof InterruptedError || opts.signal?.aborted) throw e;
      if (!isKumoError(e)) throw e;
      em.warn(`${t.alias} (${t.arch}): ${e.message}`, 'image');
      res.failed.push({ alias: t.alias, arch: t.arch, error: e });
    }
  }
  return res;
}

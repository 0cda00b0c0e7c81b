/**
 * Resolution: a reference (stored name or id, alias, URL, local file) becomes a descriptor of
 * what to fetch (giget's idea): a stored record, a download plan (URL + checksum + where the
 * checksum came from + the alias or name it claims), or a local file to import. Resolution reads
 * only metadata (the store's records, the catalog, a vendor's index or checksum file, a file's
 * stat); it never downloads or reads an image. Fetching (pull.ts) takes the descriptor and never
 * looks at the reference again.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve as resolvePath } from 'node:path';
import { ConflictError, InvalidInputError, NotFoundError } from '../core/errors.js';
import { NotAnImageError } from '../disk/index.js';
import { debug } from '../core/log.js';
import { expandHome } from '../core/fs.js';
import type { Emitter } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { findAlias, findSumsBeside, hostArch, loadCatalog, normalizeArch, resolveRemote, unknownAliasError, type Catalog, type RemoteImage } from './catalog.js';
import { formatChecksum, parseChecksum, type Checksum } from './checksums.js';
import type { ImageRecord } from './record.js';
import { listImages, type Claim } from './store.js';

export function isUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

export function looksLikePath(ref: string): boolean {
  return ref.startsWith('/') || ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('~/') || ref.startsWith('file://') || ref.includes('/');
}

export function localPath(ref: string): string {
  if (ref.startsWith('file://')) return new URL(ref).pathname;
  return resolvePath(expandHome(ref));
}

export function matchRecords(records: ImageRecord[], ref: string, arch?: string): ImageRecord | undefined {
  const r = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  const byId = records.find((x) => x.id === r);
  if (byId) return byId;
  const byName = records.find((x) => x.name === ref);
  if (byName) return byName;
  const byAlias = records.filter((x) => x.aliases.includes(ref));
  if (byAlias.length) return byAlias.find((x) => x.arch === (arch ?? hostArch())) ?? (arch ? undefined : byAlias[0]);
  if (/^[0-9a-f]{8,63}$/.test(r)) {
    const pre = records.filter((x) => x.id.startsWith(r));
    if (pre.length === 1) return pre[0];
    if (pre.length > 1)
      throw new ConflictError('AMBIGUOUS_IMAGE', `'${ref}' matches ${pre.length} images`, { hint: 'give more digits of the id', details: { ids: pre.map((p) => p.id) } });
  }
  return undefined;
}

async function catalogOrUndefined(paths: KumoPaths): Promise<Catalog | undefined> {
  try {
    return await loadCatalog(paths);
  } catch (e) {
    debug(`catalog not usable for lookup: ${(e as Error).message}`);
    return undefined;
  }
}

async function findIn(paths: KumoPaths, records: ImageRecord[], ref: string, arch?: string, catalog?: Catalog): Promise<ImageRecord | undefined> {
  const direct = matchRecords(records, ref, arch);
  if (direct) return direct;
  if (isUrl(ref)) return records.find((x) => x.source.kind === 'url' && x.source.url === ref && (!arch || x.arch === arch));
  if (looksLikePath(ref)) {
    const p = localPath(ref);
    const st = await stat(p).catch(() => undefined);
    return records.find((x) => x.source.kind === 'file' && x.source.path === p && (!st || (x.source.size === st.size && x.source.mtimeMs === st.mtimeMs)));
  }
  const cat = catalog ?? (await catalogOrUndefined(paths));
  const alias = cat ? findAlias(cat, ref) : undefined;
  if (alias && alias.name !== ref) return matchRecords(records, alias.name, arch);
  return undefined;
}

/** Find a stored image by id (or unique id prefix), name, alias, URL or source file. */
export async function findImage(paths: KumoPaths, ref: string): Promise<ImageRecord | undefined> {
  return findIn(paths, await listImages(paths), ref);
}

/** Like findImage, but a missing image is a NotFoundError with suggestions. */
export async function getImage(paths: KumoPaths, ref: string): Promise<ImageRecord> {
  const records = await listImages(paths);
  const r = await findIn(paths, records, ref);
  if (r) return r;
  const { closest } = await import('../core/text.js');
  const names = records.flatMap((x) => [x.name, ...x.aliases].filter((n): n is string => !!n));
  const s = closest(ref, names);
  throw new NotFoundError('IMAGE_NOT_FOUND', `no stored image '${ref}'`, {
    hint: s.length ? `did you mean '${s[0]}'? ('kumo image list' shows the store)` : "see 'kumo image list'; 'kumo image pull REF' fetches one",
  });
}

export interface PullPlan {
  url: string;
  checksum: Checksum;
  checksumFrom: string;
  /** 'signature' when the checksum came from a checksum file whose signature was verified (`fingerprint`: the signer). */
  verifiedBy?: 'signature' | 'checksum';
  fingerprint?: string;
  arch: string;
  version?: string;
  size?: number;
  label: string;
  source: ImageRecord['source'];
  claim: Claim;
}

/** Resolve an alias to a pull plan (asks the vendor's server). */
export async function planAlias(catalog: Catalog, aliasRef: string, arch: string, signal?: AbortSignal): Promise<PullPlan> {
  const alias = findAlias(catalog, aliasRef)!;
  const remote: RemoteImage = await resolveRemote(catalog, alias, arch, { signal });
  return {
    url: remote.url,
    checksum: remote.checksum,
    checksumFrom: remote.checksumFrom,
    ...(remote.verifiedBy === 'signature' && remote.fingerprint ? { verifiedBy: 'signature' as const, fingerprint: remote.fingerprint } : {}),
    arch,
    ...(remote.version ? { version: remote.version } : {}),
    ...(remote.size ? { size: remote.size } : {}),
    label: `${alias.name} (${arch})`,
    source: { kind: 'alias', alias: alias.name, catalogSource: alias.source, ...(alias.os ? { os: alias.os } : {}), ...(alias.version ? { release: alias.version } : {}), filename: remote.filename },
    claim: { alias: alias.name },
  };
}

export interface ResolveOptions {
  /** sha256:<hex> or sha512:<hex>: required for a URL with no checksum file beside it. */
  checksum?: string;
  /** x86_64 or aarch64 (default: the host's). */
  arch?: string;
  /** Re-resolve an alias even when a copy is stored. */
  refresh?: boolean;
  signal?: AbortSignal;
}

/** What a reference resolved to: everything fetching needs, nothing it must look up again. */
export type ImageSource =
  | { kind: 'stored'; record: ImageRecord }
  | { kind: 'download'; plan: PullPlan }
  | { kind: 'file'; path: string; size: number; mtimeMs: number; arch: string; checksum?: Checksum; label: string };

/** Resolve `ref` to a stored image, a download plan or a local file (metadata only). */
export async function resolveImage(paths: KumoPaths, ref: string, opts: ResolveOptions, em: Emitter): Promise<ImageSource> {
  const arch = normalizeArch(opts.arch ?? hostArch());
  const checksum = opts.checksum ? parseChecksum(opts.checksum) : undefined;
  if (!ref.trim()) throw new InvalidInputError('BAD_IMAGE_REF', 'empty image reference', { hint: 'give an alias, a URL, a file or a stored image name' });
  const records = await listImages(paths);
  const stored = (record: ImageRecord): ImageSource => ({ kind: 'stored', record });

  if (isUrl(ref)) {
    const have = records.find((r) => r.source.kind === 'url' && r.source.url === ref && r.arch === arch && (!checksum || r.source.checksum === formatChecksum(checksum)));
    if (have) return stored(have);
    let cs = checksum;
    let from = 'user';
    if (!cs) {
      const found = await em.step('image.checksum', `Looking for a checksum file beside ${ref}`, () => findSumsBeside(ref, { signal: opts.signal }));
      if (!found)
        throw new InvalidInputError('CHECKSUM_REQUIRED', `no checksum for ${ref}: kumo verifies every image it downloads`, {
          hint: 'give one with --checksum sha256:<hex> (or sha512:<hex>); no SHA256SUMS/SHA512SUMS/CHECKSUM file beside the URL lists it',
        });
      cs = found.checksum;
      from = found.from;
    }
    return { kind: 'download', plan: { url: ref, checksum: cs, checksumFrom: from, arch, label: basename(new URL(ref).pathname) || ref, source: { kind: 'url' }, claim: {} } };
  }

  const match = matchRecords(records, ref, opts.arch ? arch : undefined);
  if (match && !(opts.refresh && match.source.kind === 'alias')) return stored(match);

  const catalog = looksLikePath(ref) ? undefined : await loadCatalog(paths);
  const alias = catalog ? findAlias(catalog, ref) : undefined;
  if (catalog && alias) {
    if (!opts.refresh) {
      const have = matchRecords(records, alias.name, arch);
      if (have) return stored(have);
    }
    const plan = await em.step('image.resolve', `Resolving ${alias.name} (${arch})`, () => planAlias(catalog, alias.name, arch, opts.signal));
    if (checksum && formatChecksum(checksum) !== formatChecksum(plan.checksum))
      throw new InvalidInputError('CHECKSUM_MISMATCH', `the catalog's checksum for ${alias.name} (${plan.checksum.algo}:${plan.checksum.hex.slice(0, 16)}…) differs from --checksum`, {
        hint: 'drop --checksum to trust the vendor index, or check the value',
      });
    return { kind: 'download', plan };
  }

  // A local file.
  const p = localPath(ref);
  const st = await stat(p).catch(() => undefined);
  if (st?.isFile()) {
    const have = records.find((r) => r.source.kind === 'file' && r.source.path === p && r.source.size === st.size && r.source.mtimeMs === st.mtimeMs && r.arch === arch);
    if (have) return stored(have);
    return { kind: 'file', path: p, size: st.size, mtimeMs: st.mtimeMs, arch, ...(checksum ? { checksum } : {}), label: basename(p) };
  }
  if (st) throw new NotAnImageError(p, 'it is not a file', { hint: 'give an image file, an alias or a URL' });
  if (looksLikePath(ref)) throw new NotFoundError('FILE_NOT_FOUND', `no such image file: ${p}`, { hint: 'check the path' });
  throw unknownAliasError(catalog ?? (await loadCatalog(paths)), ref);
}

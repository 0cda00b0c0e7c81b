/**
 * The image store's use cases: ensure (resolve + pull on demand), import, find, list, remove,
 * prune (with repair), sync, and "in use" detection through instances' backing chains.
 */
import { createHash } from 'node:crypto';
import { chmod, readdir, rename, stat, unlink, rm } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConflictError, fsError, InterruptedError, InvalidInputError, isKumoError, KumoError, NotFoundError } from '../core/errors.js';
import { ensurePrivateDir, fsyncDir, writeJsonAtomic, exists, hashFile } from '../core/fs.js';
import { pidAlive } from '../core/exec.js';
import { debug } from '../core/log.js';
import { Emitter, type EventSink } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { findAlias, findSumsBeside, hostArch, loadCatalog, normalizeArch, resolveRemote, unknownAliasError, type Catalog, type RemoteImage } from './catalog.js';
import { formatChecksum, parseChecksum, type Checksum, type HashAlgo } from './checksums.js';
import { compressionOf, decompressTo, readHead } from './decompress.js';
import { discardPart, download } from './download.js';
import { withLock } from './lock.js';
import { dataPathOf, ID_RE, metaPathOf, scanStore, type ImageRecord } from './record.js';
import { chainOf, convertToQcow2, formatOf, virtualSizeOf } from './diskops.js';
import { NotAnImageError } from '../disk/index.js';

export interface ImageOpOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface EnsureOptions extends ImageOpOptions {
  /** sha256:<hex> or sha512:<hex>: required for a URL with no checksum file beside it. */
  checksum?: string;
  /** x86_64 or aarch64 (default: the host's). */
  arch?: string;
  /** Re-resolve an alias even when a copy is stored (image pull --refresh, image sync). */
  refresh?: boolean;
}

export interface ImportOptions extends ImageOpOptions {
  name: string;
  move?: boolean;
  metadata?: Record<string, unknown>;
  source?: Record<string, unknown>;
  /** Verify the file against this checksum before importing it. */
  checksum?: string;
  arch?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$/;

/** Validate an image name (built, imported, captured). */
export function checkImageName(name: string): void {
  if (!NAME_RE.test(name) || ID_RE.test(name) || name.includes('..'))
    throw new InvalidInputError('BAD_IMAGE_NAME', `invalid image name '${name}'`, {
      hint: 'use letters, digits, dot, dash, underscore, colon or plus (up to 100), starting with a letter or digit; not a 64-hex id',
    });
}

// ---------------------------------------------------------------- disk sources (in use)

type DiskSource = (paths: KumoPaths) => Promise<{ owner: string; disk: string }[]>;
const diskSources: DiskSource[] = [];

/** Add disks kumo does not keep in instance folders (e.g. the libvirt driver's volumes). */
export function registerDiskSource(fn: DiskSource): void {
  diskSources.push(fn);
}

interface UsageScan {
  users: Map<string, string[]>;
  /** Disks whose chain could not be read: nothing may be removed while they are unknown. */
  unreadable: { owner: string; disk: string; error: string }[];
}

async function scanUsage(paths: KumoPaths, images: { id: string; path: string }[]): Promise<UsageScan> {
  const byIno = new Map<string, string>();
  const byPath = new Map<string, string>();
  for (const im of images) {
    byPath.set(resolvePath(im.path), im.id);
    const st = await stat(im.path).catch(() => undefined);
    if (st) byIno.set(`${st.dev}:${st.ino}`, im.id);
  }
  const disks: { owner: string; disk: string }[] = [];
  let insts: string[] = [];
  try {
    insts = await readdir(paths.instances);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, paths.instances, 'read');
  }
  for (const inst of insts.sort()) {
    if (inst.startsWith('.')) continue;
    const dir = join(paths.instances, inst);
    let files: string[];
    try {
      files = await readdir(dir);
    } catch {
      continue; // not a folder
    }
    for (const f of files.sort()) if (f.endsWith('.qcow2') && !f.startsWith('.')) disks.push({ owner: inst, disk: join(dir, f) });
  }
  for (const src of diskSources) {
    try {
      disks.push(...(await src(paths)));
    } catch (e) {
      disks.push({ owner: '(disk source)', disk: `(${(e as Error).message})` });
    }
  }
  const users = new Map<string, string[]>();
  const unreadable: UsageScan['unreadable'] = [];
  for (const d of disks) {
    let chain: string[];
    try {
      chain = await chainOf(d.disk);
    } catch (e) {
      if (!(await exists(d.disk))) continue; // deleted while we looked
      unreadable.push({ ...d, error: (e as Error).message });
      continue;
    }
    for (const link of chain) {
      let id = byPath.get(resolvePath(link));
      if (!id) {
        const st = await stat(link).catch(() => undefined);
        if (st) id = byIno.get(`${st.dev}:${st.ino}`);
      }
      if (!id) continue;
      const list = users.get(id) ?? [];
      if (!list.includes(d.owner)) list.push(d.owner);
      users.set(id, list);
    }
  }
  return { users, unreadable };
}

/** Which instances use which image: any disk whose backing chain (the whole chain) reaches it. */
export async function imageUsers(paths: KumoPaths): Promise<Map<string, string[]>> {
  const scan = await scanStore(paths.images);
  return (await scanUsage(paths, [...scan.records, ...scan.dataWithoutMeta])).users;
}

// ---------------------------------------------------------------- lookup

export async function listImages(paths: KumoPaths): Promise<ImageRecord[]> {
  return (await scanStore(paths.images)).records;
}

function isUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

function looksLikePath(ref: string): boolean {
  return ref.startsWith('/') || ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('~/') || ref.startsWith('file://') || ref.includes('/');
}

function localPath(ref: string): string {
  if (ref.startsWith('file://')) return new URL(ref).pathname;
  if (ref.startsWith('~/')) return join(process.env.HOME ?? '/', ref.slice(2));
  return resolvePath(ref);
}

function matchRecords(records: ImageRecord[], ref: string, arch?: string): ImageRecord | undefined {
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

// ---------------------------------------------------------------- commit into the store

interface Claim {
  alias?: string;
  name?: string;
}

interface NewImage {
  /** A file in KUMO_HOME (same file system as the store); renamed into the store. */
  file: string;
  id: string;
  format: 'qcow2' | 'raw';
  arch: string;
  version?: string;
  source: ImageRecord['source'];
  metadata?: Record<string, unknown>;
}

const storeLock = (paths: KumoPaths) => join(paths.images, '.store.lock');

/** Move a verified file into the store and write its metadata; move the alias/name to it. */
async function commit(paths: KumoPaths, img: NewImage, claim: Claim, signal?: AbortSignal): Promise<ImageRecord> {
  await ensurePrivateDir(paths.images);
  return withLock(
    storeLock(paths),
    async () => {
      const scan = await scanStore(paths.images);
      const existing = scan.records.find((r) => r.id === img.id);
      const dataPath = dataPathOf(paths.images, img.id, img.format);
      let rec: ImageRecord;
      if (existing) {
        await unlink(img.file).catch(() => {});
        rec = { ...existing };
        delete rec.supersededBy;
        if (img.metadata) rec.metadata = { ...(rec.metadata ?? {}), ...img.metadata };
      } else {
        const virtualSize = await virtualSizeOf(img.file, img.format);
        try {
          await chmod(img.file, 0o444);
          await rename(img.file, dataPath);
        } catch (e) {
          throw fsError(e, dataPath, 'store');
        }
        await fsyncDir(paths.images);
        const st = await stat(dataPath);
        rec = {
          id: img.id,
          aliases: [],
          path: dataPath,
          format: img.format,
          virtualSize,
          size: st.size,
          digest: `sha256:${img.id}`,
          arch: img.arch,
          ...(img.version ? { version: img.version } : {}),
          source: img.source,
          fetchedAt: new Date().toISOString(),
          ...(img.metadata ? { metadata: img.metadata } : {}),
        };
      }
      // An alias means one image per architecture; a name means one image.
      for (const other of scan.records) {
        if (other.id === img.id) continue;
        let changed = false;
        if (claim.alias && other.arch === rec.arch && other.aliases.includes(claim.alias)) {
          other.aliases = other.aliases.filter((a) => a !== claim.alias);
          changed = true;
        }
        if (claim.name && other.name === claim.name) {
          delete other.name;
          changed = true;
        }
        if (claim.name && other.aliases.includes(claim.name)) {
          other.aliases = other.aliases.filter((a) => a !== claim.name);
          changed = true;
        }
        if (changed) {
          if (!other.name && !other.aliases.length) other.supersededBy = img.id;
          await writeJsonAtomic(metaPathOf(paths.images, other.id), other);
        }
      }
      if (claim.alias && !rec.aliases.includes(claim.alias)) rec.aliases.push(claim.alias);
      if (claim.name) {
        if (!rec.name) rec.name = claim.name;
        else if (rec.name !== claim.name && !rec.aliases.includes(claim.name)) rec.aliases.push(claim.name);
      }
      await writeJsonAtomic(metaPathOf(paths.images, rec.id), rec);
      return rec;
    },
    { ...(signal ? { signal } : {}), what: 'the image store', op: 'store image' },
  );
}

// ---------------------------------------------------------------- preparing a file for the store

function tempIn(paths: KumoPaths, tag: string): string {
  return join(paths.cache, `.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function notAnImage(file: string, what: string): NotAnImageError {
  return new NotAnImageError(file, what, {
    hint: 'give a qcow2, raw, vmdk, vhd or vhdx disk image (optionally xz/gzip/zstd-compressed)',
  });
}

/**
 * Turn a file (downloaded or given) into a store-ready file: decompress by magic bytes, check it
 * is a disk image, convert foreign formats to qcow2. Returns a temp file in KUMO_HOME/cache (or
 * `input` itself when it can be used as is and `reuseInput`), its sha256 and format.
 */
async function prepare(
  paths: KumoPaths,
  input: string,
  opts: { knownSha256?: string; reuseInput: boolean; label: string; em: Emitter; signal?: AbortSignal; temps: string[] },
): Promise<{ file: string; id: string; format: 'qcow2' | 'raw' }> {
  const head = await readHead(input, 8);
  const comp = compressionOf(head);
  let file = input;
  let id = opts.knownSha256;
  if (comp || !opts.reuseInput) {
    const out = tempIn(paths, 'unpack');
    opts.temps.push(out);
    const r = await opts.em.step('image.unpack', comp ? `Decompressing ${opts.label} (${comp})` : `Copying ${opts.label}`, () =>
      decompressTo(input, out, comp, { signal: opts.signal, onProgress: (b) => opts.em.progress('image.unpack', comp ? 'Decompressing' : 'Copying', b, undefined, 'bytes') }),
    );
    file = out;
    id = r.sha256;
  }
  const fmt = await formatOf(file);
  if (fmt === 'qcow2' || fmt === 'raw') {
    id ??= await hashFile(file, { signal: opts.signal });
    return { file, id, format: fmt };
  }
  if (fmt === 'vmdk' || fmt === 'vhd' || fmt === 'vhdx') {
    const out = tempIn(paths, 'convert');
    opts.temps.push(out);
    await opts.em.step('image.convert', `Converting ${opts.label} from ${fmt} to qcow2`, () => convertToQcow2(file, out, fmt, opts.signal));
    return { file: out, id: await hashFile(out, { signal: opts.signal }), format: 'qcow2' };
  }
  if (fmt === 'iso') throw notAnImage(opts.label, 'it is an ISO 9660 CD image, not a disk to boot a cloud image from');
  if (fmt === 'xz' || fmt === 'gzip' || fmt === 'zstd') throw notAnImage(opts.label, `it is ${fmt}-compressed twice`);
  throw notAnImage(opts.label, 'no qcow2, vmdk, vhd(x) header and no partition table or file system signature');
}

async function cleanup(files: string[]): Promise<void> {
  for (const f of files) await unlink(f).catch(() => {});
}

// ---------------------------------------------------------------- pulling

interface PullPlan {
  url: string;
  checksum: Checksum;
  checksumFrom: string;
  arch: string;
  version?: string;
  size?: number;
  label: string;
  source: ImageRecord['source'];
  claim: Claim;
}

function sameSource(r: ImageRecord, p: PullPlan): boolean {
  return r.source.url === p.url && r.source.checksum === formatChecksum(p.checksum) && r.arch === p.arch;
}

async function pull(paths: KumoPaths, plan: PullPlan, em: Emitter, signal?: AbortSignal): Promise<ImageRecord> {
  const key = createHash('sha256').update(`${plan.url}\n${formatChecksum(plan.checksum)}`).digest('hex').slice(0, 32);
  const locks = join(paths.cache, 'locks');
  const downloads = join(paths.cache, 'downloads');
  await ensurePrivateDir(locks);
  await ensurePrivateDir(downloads);
  return withLock(
    join(locks, `${key}.lock`),
    async () => {
      // Someone (another launch, another process) may have fetched it while we waited.
      const have = (await listImages(paths)).find((r) => sameSource(r, plan));
      if (have) {
        debug(`${plan.url} is already stored as ${have.id}`);
        return commit(paths, { file: '', id: have.id, format: have.format, arch: have.arch, source: have.source }, plan.claim, signal);
      }
      const part = join(downloads, `${key}.part`);
      const algos: HashAlgo[] = plan.checksum.algo === 'sha256' ? ['sha256'] : [plan.checksum.algo, 'sha256'];
      const label = `Downloading ${plan.label}`;
      em.emit({ type: 'step', id: 'image.download', label, state: 'start', detail: plan.url });
      let dl;
      try {
        dl = await download({
          url: plan.url,
          part,
          algos,
          signal,
          onProgress: (cur, total) => em.progress('image.download', plan.label, cur, total ?? plan.size, 'bytes'),
          onRetry: (n, e, d) => em.warn(`${(e as Error).message}; retrying (${n}) in ${(d / 1000).toFixed(1)} s`, 'image'),
        });
      } catch (e) {
        em.emit({ type: 'step', id: 'image.download', label, state: 'fail', detail: (e as Error).message });
        // Keep the partial file after a cut or Ctrl-C (the next pull resumes it); drop it otherwise.
        if (isKumoError(e) && (e.code === 'DISK_FULL' || e.code === 'HTTP_ERROR')) await discardPart(part);
        throw e;
      }
      em.emit({ type: 'step', id: 'image.download', label, state: 'done' });
      const got = dl.digests[plan.checksum.algo]!;
      if (got !== plan.checksum.hex) {
        await discardPart(part);
        em.emit({ type: 'step', id: 'image.verify', label: `Verifying ${plan.label}`, state: 'fail' });
        throw new InvalidInputError('CHECKSUM_MISMATCH', `${plan.url} does not match its checksum: expected ${plan.checksum.algo}:${plan.checksum.hex}, got ${plan.checksum.algo}:${got}`, {
          hint: 'the download was corrupted or the file was replaced on the server; nothing was stored. Try again; if it persists, check the checksum (or run `kumo image sync`)',
          details: { url: plan.url, expected: formatChecksum(plan.checksum), actual: `${plan.checksum.algo}:${got}`, checksumFrom: plan.checksumFrom },
        });
      }
      em.emit({ type: 'step', id: 'image.verify', label: `Verified ${plan.label} (${plan.checksum.algo})`, state: 'done' });
      const temps: string[] = [];
      try {
        const ready = await prepare(paths, part, { knownSha256: dl.digests.sha256, reuseInput: true, label: plan.label, em, signal, temps });
        const rec = await commit(
          paths,
          {
            file: ready.file,
            id: ready.id,
            format: ready.format,
            arch: plan.arch,
            ...(plan.version ? { version: plan.version } : {}),
            source: { ...plan.source, url: plan.url, checksum: formatChecksum(plan.checksum), checksumFrom: plan.checksumFrom, bytes: dl.bytes },
          },
          plan.claim,
          signal,
        );
        return rec;
      } finally {
        await cleanup(temps);
        await discardPart(part);
      }
    },
    { ...(signal ? { signal } : {}), what: `the download of ${plan.label}`, op: 'download', onWait: (pid) => em.info(`waiting for process ${pid}, which is downloading ${plan.label}`, 'image') },
  );
}

/** Resolve an alias to a pull plan (asks the vendor's server). */
async function planAlias(catalog: Catalog, aliasRef: string, arch: string, signal?: AbortSignal): Promise<PullPlan> {
  const alias = findAlias(catalog, aliasRef)!;
  const remote: RemoteImage = await resolveRemote(catalog, alias, arch, { signal });
  return {
    url: remote.url,
    checksum: remote.checksum,
    checksumFrom: remote.checksumFrom,
    arch,
    ...(remote.version ? { version: remote.version } : {}),
    ...(remote.size ? { size: remote.size } : {}),
    label: `${alias.name} (${arch})`,
    source: { kind: 'alias', alias: alias.name, catalogSource: alias.source, ...(alias.os ? { os: alias.os } : {}), ...(alias.version ? { release: alias.version } : {}), filename: remote.filename },
    claim: { alias: alias.name },
  };
}

// ---------------------------------------------------------------- public use cases

const inflight = new Map<string, Promise<ImageRecord>>();

/** Resolve `ref` (stored name or id, alias, URL, local file) and pull it if it is not stored yet. */
export async function ensureImage(paths: KumoPaths, ref: string, opts: EnsureOptions = {}): Promise<ImageRecord> {
  const key = JSON.stringify([paths.images, ref, opts.arch ?? '', opts.checksum ?? '', !!opts.refresh]);
  const cur = inflight.get(key);
  if (cur) return cur; // two launches in one process: one download
  const p = ensureImageOnce(paths, ref, opts).finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

async function ensureImageOnce(paths: KumoPaths, ref: string, opts: EnsureOptions): Promise<ImageRecord> {
  const em = new Emitter(opts.onEvent);
  const arch = normalizeArch(opts.arch ?? hostArch());
  const checksum = opts.checksum ? parseChecksum(opts.checksum) : undefined;
  if (!ref.trim()) throw new InvalidInputError('BAD_IMAGE_REF', 'empty image reference', { hint: 'give an alias, a URL, a file or a stored image name' });
  const records = await listImages(paths);

  if (isUrl(ref)) {
    const have = records.find((r) => r.source.kind === 'url' && r.source.url === ref && r.arch === arch && (!checksum || r.source.checksum === formatChecksum(checksum)));
    if (have) return have;
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
    return pull(
      paths,
      { url: ref, checksum: cs, checksumFrom: from, arch, label: basename(new URL(ref).pathname) || ref, source: { kind: 'url' }, claim: {} },
      em,
      opts.signal,
    );
  }

  const stored = matchRecords(records, ref, opts.arch ? arch : undefined);
  if (stored && !(opts.refresh && stored.source.kind === 'alias')) return stored;

  const catalog = looksLikePath(ref) ? undefined : await loadCatalog(paths);
  const alias = catalog ? findAlias(catalog, ref) : undefined;
  if (catalog && alias) {
    if (!opts.refresh) {
      const have = matchRecords(records, alias.name, arch);
      if (have) return have;
    }
    const plan = await em.step('image.resolve', `Resolving ${alias.name} (${arch})`, () => planAlias(catalog, alias.name, arch, opts.signal));
    if (checksum && formatChecksum(checksum) !== formatChecksum(plan.checksum))
      throw new InvalidInputError('CHECKSUM_MISMATCH', `the catalog's checksum for ${alias.name} (${plan.checksum.algo}:${plan.checksum.hex.slice(0, 16)}…) differs from --checksum`, {
        hint: 'drop --checksum to trust the vendor index, or check the value',
      });
    return pull(paths, plan, em, opts.signal);
  }

  // A local file.
  const p = localPath(ref);
  const st = await stat(p).catch(() => undefined);
  if (st?.isFile()) {
    const have = records.find((r) => r.source.kind === 'file' && r.source.path === p && r.source.size === st.size && r.source.mtimeMs === st.mtimeMs && r.arch === arch);
    if (have) return have;
    return importFile(paths, p, { arch, checksum, claim: {}, source: { kind: 'file', path: p, size: st.size, mtimeMs: st.mtimeMs }, move: false, em, signal: opts.signal, label: basename(p) });
  }
  if (st) throw new NotAnImageError(p, 'it is not a file', { hint: 'give an image file, an alias or a URL' });
  if (looksLikePath(ref)) throw new NotFoundError('FILE_NOT_FOUND', `no such image file: ${p}`, { hint: 'check the path' });
  throw unknownAliasError(catalog ?? (await loadCatalog(paths)), ref);
}

async function importFile(
  paths: KumoPaths,
  file: string,
  o: { arch: string; checksum?: Checksum; claim: Claim; source: ImageRecord['source']; move: boolean; em: Emitter; signal?: AbortSignal; label: string; metadata?: Record<string, unknown> },
): Promise<ImageRecord> {
  await ensurePrivateDir(paths.cache);
  const temps: string[] = [];
  try {
    let input = file;
    let reuse = false;
    let knownSha: string | undefined;
    if (o.checksum) {
      const algo = o.checksum.algo;
      const got = await o.em.step('image.verify', `Verifying ${o.label}`, () => hashFile(file, { algo, signal: o.signal }));
      if (got !== o.checksum.hex)
        throw new InvalidInputError('CHECKSUM_MISMATCH', `${file} does not match its checksum: expected ${formatChecksum(o.checksum)}, got ${o.checksum.algo}:${got}`, { hint: 'check the file and the checksum; nothing was stored' });
      if (o.checksum.algo === 'sha256') knownSha = got;
    }
    if (o.move) {
      // Same file system: move it into KUMO_HOME first (cheap), then work on our own copy.
      const tmp = tempIn(paths, 'import');
      try {
        await rename(file, tmp);
        temps.push(tmp);
        input = tmp;
        reuse = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw fsError(e, file, 'move');
      }
    }
    let ready;
    try {
      ready = await prepare(paths, input, { ...(knownSha ? { knownSha256: knownSha } : {}), reuseInput: reuse, label: o.label, em: o.em, signal: o.signal, temps });
    } catch (e) {
      // A refused move must leave the user's file where it was.
      if (input !== file) await rename(input, file).catch(() => {});
      throw e;
    }
    const rec = await commit(paths, { file: ready.file, id: ready.id, format: ready.format, arch: o.arch, source: o.source, ...(o.metadata ? { metadata: o.metadata } : {}) }, o.claim, o.signal);
    if (o.move && input === file) await unlink(file).catch(() => {});
    return rec;
  } finally {
    await cleanup(temps);
  }
}

/** Register a local image file under a name (the image builder and `kumo capture` use this). */
export async function importImage(paths: KumoPaths, file: string, opts: ImportOptions): Promise<ImageRecord> {
  checkImageName(opts.name);
  const em = new Emitter(opts.onEvent);
  const p = resolvePath(file);
  const st = await stat(p).catch((e) => {
    throw fsError(e, p, 'import');
  });
  if (!st.isFile()) throw new NotAnImageError(p, 'it is not a file', { hint: 'give a disk image file' });
  const kind = typeof opts.source?.kind === 'string' && ['built', 'captured', 'import', 'file'].includes(opts.source.kind) ? (opts.source.kind as ImageRecord['source']['kind']) : 'import';
  return importFile(paths, p, {
    arch: normalizeArch(opts.arch ?? hostArch()),
    ...(opts.checksum ? { checksum: parseChecksum(opts.checksum) } : {}),
    claim: { name: opts.name },
    source: { ...(opts.source ?? {}), kind, file: p },
    move: !!opts.move,
    em,
    ...(opts.signal ? { signal: opts.signal } : {}),
    label: opts.name,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}

function inUseError(rec: ImageRecord, users: string[]): ConflictError {
  const label = rec.name ?? rec.aliases[0] ?? rec.id.slice(0, 12);
  return new ConflictError('IMAGE_IN_USE', `image ${label} is in use by ${users.length === 1 ? 'instance' : 'instances'} ${users.join(', ')}`, {
    hint: `delete ${users.length === 1 ? 'that instance' : 'those instances'} first (kumo delete ${users.join(' ')}), or consolidate them`,
    details: { id: rec.id, instances: users },
  });
}

async function deleteRecord(paths: KumoPaths, rec: { id: string; path: string }): Promise<void> {
  // Metadata first: a crash in between leaves data without metadata, which prune repairs.
  await unlink(metaPathOf(paths.images, rec.id)).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, metaPathOf(paths.images, rec.id), 'remove');
  });
  await rm(rec.path, { force: true });
  await fsyncDir(paths.images);
}

/** Remove one image; refuses (naming the instances) while any instance's chain reaches it. */
export async function removeImage(paths: KumoPaths, ref: string): Promise<void> {
  const rec = await getImage(paths, ref);
  await withLock(storeLock(paths), async () => {
    const scan = await scanStore(paths.images);
    const usage = await scanUsage(paths, scan.records);
    const users = usage.users.get(rec.id);
    if (users?.length) throw inUseError(rec, users);
    if (usage.unreadable.length)
      throw new ConflictError('USAGE_UNKNOWN', `cannot tell whether image ${rec.name ?? rec.aliases[0] ?? rec.id.slice(0, 12)} is in use: ${usage.unreadable.map((u) => `${u.disk} (${u.owner}): ${u.error}`).join('; ')}`, {
        hint: 'repair or delete the instance whose disk cannot be read, then try again',
      });
    await deleteRecord(paths, rec);
  }, { what: 'the image store', op: 'remove image' });
}

export interface PruneOptions {
  dryRun?: boolean;
  /** Also remove unused built/imported/captured images (by default only re-downloadable and superseded ones go). */
  all?: boolean;
}

export interface PruneResult {
  removed: ImageRecord[];
  /** What was repaired, one line each. */
  repaired: string[];
  /** Unused images kept (named images without --all). */
  kept?: ImageRecord[];
  /** Disks whose chain could not be read (nothing was removed while they are unknown). */
  unreadable?: { owner: string; disk: string; error: string }[];
}

/** A record is prunable when unused and re-fetchable, superseded or dangling. */
function prunable(r: ImageRecord, all: boolean): boolean {
  if (all) return true;
  if (r.supersededBy) return true;
  if (!r.name && !r.aliases.length) return true;
  return r.source.kind === 'alias' || r.source.kind === 'url' || r.source.kind === 'file';
}

/** Remove unused images and repair the store (metadata without data, data without metadata, debris). */
export async function pruneImages(paths: KumoPaths, opts: PruneOptions = {}): Promise<PruneResult> {
  return withLock(storeLock(paths), async () => {
    const scan = await scanStore(paths.images);
    const usage = await scanUsage(paths, [...scan.records, ...scan.dataWithoutMeta]);
    const repaired: string[] = [];
    const dry = !!opts.dryRun;
    for (const m of [...scan.metaWithoutData, ...scan.corruptMeta]) {
      repaired.push(`${scan.corruptMeta.includes(m) ? 'removed unreadable metadata' : 'removed metadata without data'}: ${m}`);
      if (!dry) await unlink(m).catch(() => {});
    }
    for (const d of scan.dataWithoutMeta) {
      const users = usage.users.get(d.id);
      if (users?.length) {
        // In use: never delete it; describe it again so that it shows (and stays protected).
        repaired.push(`restored metadata of ${d.path} (used by ${users.join(', ')})`);
        if (!dry) {
          const st = await stat(d.path);
          const rec: ImageRecord = {
            id: d.id,
            aliases: [],
            path: d.path,
            format: d.format,
            virtualSize: await virtualSizeOf(d.path, d.format).catch(() => 0),
            size: st.size,
            digest: `sha256:${d.id}`,
            arch: hostArch(),
            source: { kind: 'import', repaired: true },
            fetchedAt: new Date(st.mtimeMs).toISOString(),
          };
          await writeJsonAtomic(metaPathOf(paths.images, d.id), rec);
        }
      } else {
        repaired.push(`removed data without metadata: ${d.path}`);
        if (!dry) await rm(d.path, { force: true });
      }
    }
    for (const t of scan.temps) {
      repaired.push(`removed leftover temp file: ${t}`);
      if (!dry) await rm(t, { force: true });
    }
    repaired.push(...(await cleanCache(paths, dry)));
    const removed: ImageRecord[] = [];
    const kept: ImageRecord[] = [];
    if (!usage.unreadable.length) {
      for (const r of scan.records) {
        if (usage.users.get(r.id)?.length) continue;
        if (!prunable(r, !!opts.all)) {
          kept.push(r);
          continue;
        }
        if (!dry) await deleteRecord(paths, r);
        removed.push(r);
      }
    }
    return { removed, repaired, ...(kept.length ? { kept } : {}), ...(usage.unreadable.length ? { unreadable: usage.unreadable } : {}) };
  }, { what: 'the image store', op: 'prune' });
}

/** Remove partial downloads and temp files nobody is working on (no live lock holder). */
async function cleanCache(paths: KumoPaths, dry: boolean): Promise<string[]> {
  const out: string[] = [];
  const downloads = join(paths.cache, 'downloads');
  const locks = join(paths.cache, 'locks');
  const lockAlive = async (key: string) => {
    try {
      const { readFile } = await import('node:fs/promises');
      const body = JSON.parse(await readFile(join(locks, `${key}.lock`), 'utf8')) as { pid: number };
      return pidAlive(body.pid);
    } catch {
      return false;
    }
  };
  for (const f of await readdir(downloads).catch(() => [] as string[])) {
    const m = /^([0-9a-f]{32})\.part(\.json)?$/.exec(f);
    if (!m || (await lockAlive(m[1]!))) continue;
    if (!m[2]) out.push(`removed partial download: ${join(downloads, f)}`);
    if (!dry) await rm(join(downloads, f), { force: true });
  }
  for (const f of await readdir(paths.cache).catch(() => [] as string[])) {
    const m = /^\.(unpack|convert|import)-(\d+)-[0-9a-f]{8}$/.exec(f);
    if (!m || pidAlive(Number(m[2]))) continue;
    out.push(`removed leftover temp file: ${join(paths.cache, f)}`);
    if (!dry) await rm(join(paths.cache, f), { force: true });
  }
  return out;
}

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

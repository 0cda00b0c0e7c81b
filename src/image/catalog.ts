/**
 * The image catalog: data (catalog/catalog.yaml in the package, extended and overridden by
 * KUMO_HOME/catalog.yaml) mapping aliases to the vendors' official cloud images, and the resolvers
 * that turn an alias + architecture into a URL with the checksum that verifies it.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { fsError, InvalidInputError, NotFoundError, UnsupportedError, ValidationError, type ValidationIssue } from '../core/errors.js';
import { closest } from '../core/text.js';
import type { KumoPaths } from '../config/paths.js';
import { parseSumsFile, type Checksum, type HashAlgo } from './checksums.js';
import { fetchText, type RetryOptions } from './http.js';
import { verifySignature, type SignatureKind, type VerifiedBy } from './verify.js';

export type SourceKind = 'sums' | 'simplestreams' | 'fedora-releases';
const SOURCE_KINDS: readonly SourceKind[] = ['sums', 'simplestreams', 'fedora-releases'];

export interface CatalogSource {
  name: string;
  kind: SourceKind;
  /** Base URL; every path of the source's aliases is relative to it. */
  base: string;
  /** simplestreams: path of the index (default streams/v1/index.json). */
  index?: string;
  /** fedora-releases: path of the release metadata (default releases.json). */
  releases?: string;
  /** kumo arch (x86_64, aarch64) → the vendor's name for it (amd64, arm64). */
  archNames?: Record<string, string>;
  /** URL prefix rewrites applied to final download URLs (mirrors for absolute links). */
  rewrite?: Record<string, string>;
  /** sums: the keyring (a file gpgv reads) that verifies signed checksum files, and its package. */
  keyring?: string;
  keyringPackage?: string;
}

export interface CatalogAlias {
  name: string;
  /** Other names that mean the same alias. */
  names: string[];
  source: string;
  os?: string;
  version?: string;
  description?: string;
  arches: string[];
  /** sums: image path and checksum file path, relative to the source base. */
  path?: string;
  sums?: string;
  /** simplestreams: product name and item ftype. */
  product?: string;
  ftype?: string;
  /** fedora-releases: variant, subvariant and a regex the link must match. */
  variant?: string;
  subvariant?: string;
  match?: string;
  /** sums: how the checksum file is signed (absent or 'none': not checked). */
  signature?: SignatureKind | 'none';
  /** sums, detached: the signature file's path, relative to the source base (default: sums + '.sign'). */
  signatureFile?: string;
  /** Overrides the source's keyring. */
  keyring?: string;
}

export interface Catalog {
  sources: Record<string, CatalogSource>;
  aliases: Record<string, CatalogAlias>;
  /** The files it was read from, in order. */
  files: string[];
}

/** What an alias resolves to right now on the vendor's servers. */
export interface RemoteImage {
  alias: string;
  arch: string;
  url: string;
  checksum: Checksum;
  filename: string;
  sourceName: string;
  version?: string;
  size?: number;
  /** Where the checksum came from (a sums file URL, a simplestreams products file, ...). */
  checksumFrom: string;
  /** 'signature' when the checksum file's signature was verified (then `fingerprint` is the signer's key). */
  verifiedBy?: VerifiedBy;
  fingerprint?: string;
}

export const ARCHES = ['x86_64', 'aarch64'] as const;
const ARCH_SYNONYMS: Record<string, string> = { x86_64: 'x86_64', amd64: 'x86_64', x64: 'x86_64', aarch64: 'aarch64', arm64: 'aarch64' };

/** kumo's name for an architecture (x86_64, aarch64) from any common spelling. */
export function normalizeArch(a: string): string {
  const n = ARCH_SYNONYMS[a.toLowerCase()];
  if (!n) throw new InvalidInputError('BAD_ARCH', `unknown architecture '${a}'`, { hint: `use one of ${ARCHES.join(', ')}` });
  return n;
}

export function hostArch(): string {
  return ARCH_SYNONYMS[process.arch] ?? process.arch;
}

/** The package's own catalog: <package root>/catalog/catalog.yaml (dist/src/image/x.js is three levels below the root). */
export function builtinCatalogPath(): string {
  return fileURLToPath(new URL('../../../catalog/catalog.yaml', import.meta.url));
}

type RawDoc = { version?: unknown; sources?: Record<string, unknown>; aliases?: Record<string, unknown> };

async function readDoc(file: string, optional: boolean): Promise<RawDoc | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read catalog');
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new InvalidInputError('CATALOG_INVALID', `${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { hint: 'fix the YAML syntax' });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ValidationError(file, [{ path: '(top)', message: 'must be a mapping with sources: and aliases:' }]);
  return doc as RawDoc;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Load the built-in catalog, then the user's KUMO_HOME/catalog.yaml over it; validate the result. */
export async function loadCatalog(paths: Pick<KumoPaths, 'catalog'>, opts: { builtin?: string } = {}): Promise<Catalog> {
  const files = [opts.builtin ?? builtinCatalogPath(), paths.catalog];
  const rawSources: Record<string, Record<string, unknown>> = {};
  const rawAliases: Record<string, Record<string, unknown>> = {};
  const issues: ValidationIssue[] = [];
  const used: string[] = [];
  for (const [i, f] of files.entries()) {
    const doc = await readDoc(f, i > 0);
    if (!doc) continue;
    used.push(f);
    for (const key of Object.keys(doc)) if (!['version', 'sources', 'aliases'].includes(key)) issues.push({ path: `${f}: ${key}`, message: 'unknown key', hint: 'a catalog has version, sources and aliases' });
    if (doc.sources !== undefined && !isObj(doc.sources)) issues.push({ path: `${f}: sources`, message: 'must be a mapping of source name to source' });
    if (doc.aliases !== undefined && !isObj(doc.aliases)) issues.push({ path: `${f}: aliases`, message: 'must be a mapping of alias to image' });
    for (const [name, v] of Object.entries(isObj(doc.sources) ? doc.sources : {})) {
      if (!isObj(v)) {
        issues.push({ path: `${f}: sources.${name}`, message: 'must be a mapping' });
        continue;
      }
      rawSources[name] = { ...(rawSources[name] ?? {}), ...v }; // field by field: a mirror needs only base
    }
    for (const [name, v] of Object.entries(isObj(doc.aliases) ? doc.aliases : {})) {
      if (!isObj(v)) {
        issues.push({ path: `${f}: aliases.${name}`, message: 'must be a mapping' });
        continue;
      }
      rawAliases[name] = i > 0 && rawAliases[name] && v.source === undefined ? { ...rawAliases[name], ...v } : v;
    }
  }
  const sources: Record<string, CatalogSource> = {};
  for (const [name, s] of Object.entries(rawSources)) {
    const p = `sources.${name}`;
    const kind = s.kind as SourceKind;
    if (!SOURCE_KINDS.includes(kind)) issues.push({ path: `${p}.kind`, message: `must be one of ${SOURCE_KINDS.join(', ')} (got ${JSON.stringify(s.kind)})` });
    if (typeof s.base !== 'string' || !/^https?:\/\//.test(s.base)) issues.push({ path: `${p}.base`, message: 'must be an http(s) URL', hint: 'e.g. base: https://mirror.example.org/debian-cloud' });
    for (const k of ['archNames', 'rewrite'] as const) if (s[k] !== undefined && !isObj(s[k])) issues.push({ path: `${p}.${k}`, message: 'must be a mapping' });
    sources[name] = {
      name,
      kind,
      base: String(s.base ?? '').replace(/\/+$/, ''),
      ...(typeof s.index === 'string' ? { index: s.index } : {}),
      ...(typeof s.releases === 'string' ? { releases: s.releases } : {}),
      ...(isObj(s.archNames) ? { archNames: s.archNames as Record<string, string> } : {}),
      ...(isObj(s.rewrite) ? { rewrite: s.rewrite as Record<string, string> } : {}),
      ...(typeof s.keyring === 'string' ? { keyring: s.keyring } : {}),
      ...(typeof s.keyringPackage === 'string' ? { keyringPackage: s.keyringPackage } : {}),
    };
    for (const k of ['keyring', 'keyringPackage'] as const) if (s[k] !== undefined && typeof s[k] !== 'string') issues.push({ path: `${p}.${k}`, message: 'must be a string' });
  }
  const aliases: Record<string, CatalogAlias> = {};
  for (const [name, a] of Object.entries(rawAliases)) {
    const p = `aliases.${name}`;
    const str = (k: string): string | undefined => {
      const v = a[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' && typeof v !== 'number') {
        issues.push({ path: `${p}.${k}`, message: 'must be a string' });
        return undefined;
      }
      return String(v);
    };
    const source = str('source');
    const src = source ? sources[source] : undefined;
    if (!source) issues.push({ path: `${p}.source`, message: 'is required', hint: `one of ${Object.keys(sources).join(', ')}` });
    else if (!src) issues.push({ path: `${p}.source`, message: `no source named '${source}'`, hint: `define it under sources: or use one of ${Object.keys(sources).join(', ')}` });
    const names = Array.isArray(a.names) ? a.names.map(String) : [];
    let arches: string[] = [...ARCHES];
    if (a.arches !== undefined) {
      if (!Array.isArray(a.arches)) issues.push({ path: `${p}.arches`, message: 'must be a list' });
      else {
        arches = [];
        for (const x of a.arches) {
          const n = ARCH_SYNONYMS[String(x).toLowerCase()];
          if (!n) issues.push({ path: `${p}.arches`, message: `unknown architecture '${String(x)}'`, hint: `use ${ARCHES.join(', ')}` });
          else arches.push(n);
        }
      }
    }
    const alias: CatalogAlias = { name, names, source: source ?? '', arches };
    for (const k of ['os', 'version', 'description', 'path', 'sums', 'product', 'ftype', 'variant', 'subvariant', 'match', 'signatureFile', 'keyring'] as const) {
      const v = str(k);
      if (v !== undefined) alias[k] = v;
    }
    const sig = str('signature');
    if (sig !== undefined) {
      if (sig !== 'detached' && sig !== 'clearsigned' && sig !== 'none') issues.push({ path: `${p}.signature`, message: `must be detached, clearsigned or none (got '${sig}')` });
      else {
        alias.signature = sig;
        if (sig !== 'none' && src && src.kind !== 'sums') issues.push({ path: `${p}.signature`, message: `applies only to a sums source (${source} is ${src.kind})` });
        if (sig !== 'none' && !alias.keyring && !src?.keyring) issues.push({ path: `${p}.keyring`, message: 'a signed checksum file needs a keyring (here or in its source)', hint: 'keyring: /usr/share/keyrings/NAME.gpg' });
      }
    }
    if (src?.kind === 'sums' && (!alias.path || !alias.sums)) issues.push({ path: p, message: 'a sums source needs path: and sums:' });
    if (src?.kind === 'simplestreams' && !alias.product) issues.push({ path: `${p}.product`, message: 'is required for a simplestreams source', hint: "e.g. 'com.ubuntu.cloud:server:24.04:{arch}'" });
    if (src?.kind === 'fedora-releases' && !alias.version) issues.push({ path: `${p}.version`, message: 'is required for a fedora-releases source' });
    if (alias.match !== undefined) {
      try {
        new RegExp(alias.match);
      } catch {
        issues.push({ path: `${p}.match`, message: 'is not a valid regular expression' });
      }
    }
    aliases[name] = alias;
  }
  if (issues.length) throw new ValidationError(`image catalog (${used.join(', ')})`, issues, { hint: 'fix KUMO_HOME/catalog.yaml' });
  return { sources, aliases, files: used };
}

/** The alias a ref names (its key or one of its other names, case-insensitive). */
export function findAlias(catalog: Catalog, ref: string): CatalogAlias | undefined {
  const r = ref.toLowerCase();
  for (const a of Object.values(catalog.aliases)) if (a.name.toLowerCase() === r || a.names.some((n) => n.toLowerCase() === r)) return a;
  return undefined;
}

/** Close alias names for a "did you mean" hint. */
export function suggestAliases(catalog: Catalog, ref: string): string[] {
  const all = Object.values(catalog.aliases).flatMap((a) => [a.name, ...a.names]);
  const r = ref.toLowerCase();
  const byPrefix = Object.keys(catalog.aliases).filter((n) => {
    const os = r.split(/[:\-_]/)[0]!;
    return os.length >= 3 && n.toLowerCase().startsWith(os);
  });
  const near = closest(r, all, 4)
    .map((n) => findAlias(catalog, n)!.name)
    .filter((n, i, xs) => xs.indexOf(n) === i);
  return [...new Set([...near, ...byPrefix])].slice(0, 5);
}

export function unknownAliasError(catalog: Catalog, ref: string): NotFoundError {
  const s = suggestAliases(catalog, ref);
  return new NotFoundError('UNKNOWN_IMAGE', `unknown image '${ref}': not a stored image, an alias, a URL or a file`, {
    hint: s.length
      ? `did you mean ${s.map((x) => `'${x}'`).join(', ')}? ('kumo image list --catalog' lists every alias)`
      : "see 'kumo image list --catalog' for the aliases, or give a URL with --checksum, or a file",
    details: { ref, suggestions: s },
  });
}

function expand(template: string, src: CatalogSource, alias: CatalogAlias, arch: string): string {
  const varch = src.archNames?.[arch] ?? arch;
  return template.replaceAll('{arch}', varch).replaceAll('{karch}', arch).replaceAll('{version}', alias.version ?? '');
}

function join(base: string, path: string): string {
  if (/^https?:\/\//.test(path)) return path;
  return `${base}/${path.replace(/^\/+/, '')}`;
}

function rewrite(src: CatalogSource, url: string): string {
  for (const [from, to] of Object.entries(src.rewrite ?? {})) if (url.startsWith(from)) return to + url.slice(from.length);
  return url;
}

function lastSegment(url: string): string {
  const p = new URL(url).pathname;
  return decodeURIComponent(p.slice(p.lastIndexOf('/') + 1));
}

/** Ask the vendor what the alias means now: the URL of the image and the checksum to verify it. */
export async function resolveRemote(catalog: Catalog, alias: CatalogAlias, arch: string, opts: RetryOptions = {}): Promise<RemoteImage> {
  const src = catalog.sources[alias.source]!;
  if (!alias.arches.includes(arch))
    throw new UnsupportedError('ARCH_UNSUPPORTED', `image '${alias.name}' is not published for ${arch}`, {
      hint: `available: ${alias.arches.join(', ')} (choose with --arch)`,
    });
  switch (src.kind) {
    case 'sums':
      return resolveSums(src, alias, arch, opts);
    case 'simplestreams':
      return resolveSimplestreams(src, alias, arch, opts);
    case 'fedora-releases':
      return resolveFedora(src, alias, arch, opts);
  }
}

async function resolveSums(src: CatalogSource, alias: CatalogAlias, arch: string, opts: RetryOptions): Promise<RemoteImage> {
  const url = rewrite(src, join(src.base, expand(alias.path!, src, alias, arch)));
  const sumsUrl = rewrite(src, join(src.base, expand(alias.sums!, src, alias, arch)));
  const fetched = await fetchText(sumsUrl, opts);
  const headers = fetched.headers;
  let text = fetched.text;
  let signed: { fingerprint: string } | undefined;
  if (alias.signature && alias.signature !== 'none') {
    const keyring = alias.keyring ?? src.keyring!;
    const check = { kind: alias.signature, keyring, ...(src.keyringPackage ? { keyringPackage: src.keyringPackage } : {}) };
    let sig: Buffer | undefined;
    if (alias.signature === 'detached') {
      const sigUrl = rewrite(src, join(src.base, expand(alias.signatureFile ?? `${alias.sums!}.sign`, src, alias, arch)));
      // Vendors publish ASCII-armored signatures (SHA512SUMS.sign, SHA256SUMS.gpg); a missing one is no signature.
      sig = await fetchText(sigUrl, { ...opts, maxBytes: 1024 * 1024 }).then(
        (r) => Buffer.from(r.text, 'utf8'),
        (e) => {
          const status = (e as { status?: unknown }).status;
          if (status === 404 || status === 410) return undefined;
          throw e;
        },
      );
    }
    const v = await verifySignature(sumsUrl, alias.signature === 'detached' ? Buffer.from(text, 'utf8') : text, check, sig, opts.signal ? { signal: opts.signal } : {});
    text = v.text;
    signed = { fingerprint: v.fingerprint };
  }
  const filename = lastSegment(url);
  const algoHint: HashAlgo | undefined = /sha512/i.test(sumsUrl) ? 'sha512' : /sha256/i.test(sumsUrl) ? 'sha256' : undefined;
  const sums = parseSumsFile(text, algoHint);
  const checksum = sums.get(filename);
  if (!checksum)
    throw new NotFoundError('CHECKSUM_NOT_LISTED', `${sumsUrl} does not list ${filename}`, {
      hint: 'the vendor may have renamed the image; update the alias in KUMO_HOME/catalog.yaml',
      details: { sumsUrl, filename },
    });
  const lm = headers['last-modified'] ? new Date(headers['last-modified']) : undefined;
  const version = lm && !Number.isNaN(lm.getTime()) ? lm.toISOString().slice(0, 10).replaceAll('-', '') : undefined;
  return { alias: alias.name, arch, url, checksum, filename, sourceName: src.name, checksumFrom: sumsUrl, ...(version ? { version } : {}), ...(signed ? { verifiedBy: 'signature' as const, fingerprint: signed.fingerprint } : {}) };
}

interface SsItem {
  ftype?: string;
  path?: string;
  sha256?: string;
  size?: number | string;
}
interface SsProduct {
  arch?: string;
  versions?: Record<string, { items?: Record<string, SsItem> }>;
}

function badDoc(url: string, what: string): InvalidInputError {
  return new InvalidInputError('BAD_INDEX', `${url}: ${what}`, { hint: 'the source is not a valid index; check its base URL in the catalog' });
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badDoc(url, 'not valid JSON');
  }
}

async function resolveSimplestreams(src: CatalogSource, alias: CatalogAlias, arch: string, opts: RetryOptions): Promise<RemoteImage> {
  const product = expand(alias.product!, src, alias, arch);
  const indexUrl = rewrite(src, join(src.base, src.index ?? 'streams/v1/index.json'));
  const index = parseJson((await fetchText(indexUrl, opts)).text, indexUrl) as {
    format?: string;
    index?: Record<string, { path?: string; products?: string[]; datatype?: string }>;
    products?: Record<string, SsProduct>;
  };
  let productsUrl = indexUrl;
  let doc = index as { products?: Record<string, SsProduct> };
  if (index.format !== 'products:1.0') {
    if (!isObj(index.index)) throw badDoc(indexUrl, 'no "index" in a simplestreams index');
    const entry = Object.values(index.index).find((e) => Array.isArray(e.products) && e.products.includes(product) && (!e.datatype || e.datatype === 'image-downloads'));
    if (!entry?.path)
      throw new NotFoundError('PRODUCT_NOT_FOUND', `${indexUrl} has no product ${product}`, {
        hint: `the release may not be published for ${arch}; check the alias '${alias.name}'`,
      });
    productsUrl = rewrite(src, join(src.base, entry.path));
    doc = parseJson((await fetchText(productsUrl, opts)).text, productsUrl) as typeof doc;
  }
  const prod = doc.products?.[product];
  if (!prod?.versions) throw new NotFoundError('PRODUCT_NOT_FOUND', `${productsUrl} has no product ${product}`, { hint: `check the alias '${alias.name}'` });
  const ftype = alias.ftype ?? 'disk1.img';
  const versions = Object.keys(prod.versions).sort().reverse();
  for (const v of versions) {
    const items = prod.versions[v]!.items ?? {};
    const item = Object.entries(items).find(([k, it]) => (it.ftype ?? k) === ftype)?.[1];
    if (!item?.path) continue;
    if (!item.sha256 || !/^[0-9a-f]{64}$/i.test(item.sha256)) throw badDoc(productsUrl, `item ${product} ${v} ${ftype} has no sha256`);
    const url = rewrite(src, join(src.base, item.path));
    const size = item.size !== undefined ? Number(item.size) : undefined;
    return {
      alias: alias.name,
      arch,
      url,
      checksum: { algo: 'sha256', hex: item.sha256.toLowerCase() },
      filename: lastSegment(url),
      sourceName: src.name,
      version: v,
      checksumFrom: productsUrl,
      ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
    };
  }
  throw new NotFoundError('PRODUCT_NOT_FOUND', `${productsUrl}: product ${product} has no ${ftype} item`, { hint: `check ftype of alias '${alias.name}'` });
}

interface FedoraRelease {
  version?: string;
  arch?: string;
  link?: string;
  variant?: string;
  subvariant?: string;
  sha256?: string;
  size?: string | number;
}

async function resolveFedora(src: CatalogSource, alias: CatalogAlias, arch: string, opts: RetryOptions): Promise<RemoteImage> {
  const relUrl = rewrite(src, join(src.base, src.releases ?? 'releases.json'));
  const list = parseJson((await fetchText(relUrl, opts)).text, relUrl);
  if (!Array.isArray(list)) throw badDoc(relUrl, 'release metadata must be a list');
  const re = alias.match ? new RegExp(alias.match) : /\.qcow2$/;
  const varch = src.archNames?.[arch] ?? arch;
  const hit = (list as FedoraRelease[]).find(
    (r) =>
      String(r.version) === alias.version &&
      r.arch === varch &&
      (!alias.variant || r.variant === alias.variant) &&
      (!alias.subvariant || r.subvariant === alias.subvariant) &&
      typeof r.link === 'string' &&
      re.test(r.link),
  );
  if (!hit) throw new NotFoundError('RELEASE_NOT_FOUND', `${relUrl} lists no ${alias.variant ?? ''} image of version ${alias.version} for ${arch}`, { hint: `check the alias '${alias.name}'` });
  if (!hit.sha256 || !/^[0-9a-f]{64}$/i.test(hit.sha256)) throw badDoc(relUrl, `entry ${hit.link} has no sha256`);
  const url = rewrite(src, hit.link!);
  const filename = lastSegment(url);
  const m = /-(\d+-[\d.]+)\.[^.]+\.qcow2$/.exec(filename);
  const size = hit.size !== undefined ? Number(hit.size) : undefined;
  return {
    alias: alias.name,
    arch,
    url,
    checksum: { algo: 'sha256', hex: hit.sha256.toLowerCase() },
    filename,
    sourceName: src.name,
    checksumFrom: relUrl,
    ...(m ? { version: m[1] } : alias.version ? { version: alias.version } : {}),
    ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
  };
}

/** For a bare URL without --checksum: look for a checksum file beside it that lists the file. */
export async function findSumsBeside(url: string, opts: RetryOptions = {}): Promise<{ checksum: Checksum; from: string } | undefined> {
  const filename = lastSegment(url);
  const dir = url.slice(0, url.lastIndexOf('/') + 1);
  const candidates = [`${url}.sha256`, `${url}.SHA256SUM`, `${url}.CHECKSUM`, `${dir}SHA256SUMS`, `${dir}SHA512SUMS`, `${dir}CHECKSUM`];
  for (const c of candidates) {
    try {
      const { text } = await fetchText(c, { ...opts, retries: 0, maxBytes: 4 * 1024 * 1024 });
      const hit = parseSumsFile(text).get(filename);
      if (hit) return { checksum: hit, from: c };
      // `<file>.sha256` may hold the bare digest.
      const bare = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})\s*$/.exec(text.trim());
      if (bare && c.startsWith(url)) return { checksum: { algo: bare[1]!.length === 64 ? 'sha256' : 'sha512', hex: bare[1]!.toLowerCase() }, from: c };
    } catch {
      /* not there; try the next */
    }
  }
  return undefined;
}

/**
 * Fetching: a download plan (from resolve.ts) is downloaded into KUMO_HOME/cache/downloads (one
 * download per plan across processes, resumable), verified against its checksum, prepared
 * (prepare.ts: decompressed, checked self-contained, converted) and committed into the store.
 * `ensureImage` is the whole path: resolve, then fetch what the descriptor says.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InvalidInputError, isKumoError } from '../core/errors.js';
import { ensurePrivateDir } from '../core/fs.js';
import { debug } from '../core/log.js';
import { Emitter } from '../events/events.js';
import type { KumoPaths } from '../config/paths.js';
import { formatChecksum, type HashAlgo } from './checksums.js';
import { discardPart, download } from './download.js';
import { withLock } from './lock.js';
import { cleanup, prepare } from './prepare.js';
import type { ImageRecord } from './record.js';
import { resolveImage, type PullPlan } from './resolve.js';
import { commit, importFile, listImages, type ImageOpOptions } from './store.js';

export interface EnsureOptions extends ImageOpOptions {
  /** sha256:<hex> or sha512:<hex>: required for a URL with no checksum file beside it. */
  checksum?: string;
  /** x86_64 or aarch64 (default: the host's). */
  arch?: string;
  /** Re-resolve an alias even when a copy is stored (image pull --refresh, image sync). */
  refresh?: boolean;
}

function sameSource(r: ImageRecord, p: PullPlan): boolean {
  return r.source.url === p.url && r.source.checksum === formatChecksum(p.checksum) && r.arch === p.arch;
}

export async function pull(paths: KumoPaths, plan: PullPlan, em: Emitter, signal?: AbortSignal): Promise<ImageRecord> {
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
            source: { ...plan.source, url: plan.url, checksum: formatChecksum(plan.checksum), checksumFrom: plan.checksumFrom, bytes: dl.bytes, verifiedBy: plan.verifiedBy ?? 'checksum', ...(plan.fingerprint ? { signedBy: plan.fingerprint } : {}) },
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
  const src = await resolveImage(paths, ref, opts, em);
  switch (src.kind) {
    case 'stored':
      return src.record;
    case 'download':
      return pull(paths, src.plan, em, opts.signal);
    case 'file':
      return importFile(paths, src.path, {
        arch: src.arch,
        checksum: src.checksum,
        claim: {},
        source: { kind: 'file', path: src.path, size: src.size, mtimeMs: src.mtimeMs, verifiedBy: src.checksum ? 'checksum' : 'none' },
        move: false,
        em,
        signal: opts.signal,
        label: src.label,
      });
  }
}

/**
 * Downloading a file to a partial file in the cache: the digest is computed while streaming,
 * a cut connection is resumed with Range (If-Range guards against a file that changed on the
 * server), transient failures are retried with backoff, and a partial file left by an earlier
 * run (Ctrl-C) is resumed after re-hashing what it holds. Nothing here touches the store.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readFile, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError, InterruptedError, KumoError } from '../core/errors.js';
import { debug } from '../core/log.js';
import { writeJsonAtomic } from '../core/fs.js';
import type { HashAlgo } from './checksums.js';
import { backoffDelay, defaultBackoffMs, HttpError, httpGet, isTransient, NetworkError, sleep } from './http.js';

export interface DownloadOptions {
  url: string;
  /** The partial file (in KUMO_HOME/cache); a sidecar `<part>.json` remembers what it holds. */
  part: string;
  /** Digests to compute while streaming. */
  algos: HashAlgo[];
  onProgress?: (current: number, total: number | undefined) => void;
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  signal?: AbortSignal;
  /** Attempts without progress before giving up (default 5). */
  retries?: number;
  backoffMs?: number;
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  bytes: number;
  digests: Partial<Record<HashAlgo, string>>;
  /** Bytes that came from an earlier partial file rather than this run. */
  resumedFrom: number;
  etag?: string;
  lastModified?: string;
}

interface PartState {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

class Hasher {
  hashes: Map<HashAlgo, Hash>;
  bytes = 0;
  constructor(private readonly algos: HashAlgo[]) {
    this.hashes = new Map(algos.map((a) => [a, createHash(a)]));
  }
  reset(): void {
    this.hashes = new Map(this.algos.map((a) => [a, createHash(a)]));
    this.bytes = 0;
  }
  update(b: Buffer): void {
    for (const h of this.hashes.values()) h.update(b);
    this.bytes += b.length;
  }
  digests(): Partial<Record<HashAlgo, string>> {
    const d: Partial<Record<HashAlgo, string>> = {};
    for (const [a, h] of this.hashes) d[a] = h.digest('hex');
    return d;
  }
}

/** A file writer that hashes every byte it is given, in order, before writing it. */
class HashingWriter extends Writable {
  pending: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly fh: FileHandle,
    private readonly hasher: Hasher,
    private readonly onBytes: () => void,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    for (const b of bufs) this.hasher.update(b);
    this.pending = this.fh.writev(bufs).then(
      () => {
        this.onBytes();
        cb();
      },
      (e) => cb(e),
    );
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }
}

async function readState(path: string): Promise<PartState | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as PartState;
  } catch {
    return undefined;
  }
}

async function hashExisting(file: string, hasher: Hasher, signal?: AbortSignal): Promise<void> {
  hasher.reset();
  await pipeline(
    createReadStream(file, { highWaterMark: 1024 * 1024 }),
    new Writable({
      write(c: Buffer, _e, cb) {
        hasher.update(c);
        cb();
      },
    }),
    { signal },
  );
}

function premature(url: string): NetworkError {
  return new NetworkError(url, Object.assign(new Error('connection cut before the end of the file'), { code: 'KUMO_PREMATURE' }));
}

/** Download `url` into `part`, resuming what is there when it belongs to the same URL. */
export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const statePath = `${opts.part}.json`;
  const hasher = new Hasher(opts.algos);
  let state = await readState(statePath);
  let size = await stat(opts.part).then((s) => s.size, () => -1);
  if (size > 0 && state?.url === opts.url) {
    debug(`resuming ${opts.url} from ${size} bytes in ${opts.part}`);
    await hashExisting(opts.part, hasher, opts.signal);
  } else {
    state = { url: opts.url };
    if (size !== -1) await truncate(opts.part, 0).catch(() => {});
    size = 0;
  }
  const resumedFrom = hasher.bytes;
  let fh: FileHandle;
  try {
    fh = await open(opts.part, size >= 0 ? 'a' : 'w', 0o600);
  } catch (e) {
    throw fsError(e, opts.part, 'create');
  }
  await writeJsonAtomic(statePath, state, 0o600);
  let total: number | undefined = state.total;
  let lastEmit = 0;
  const emit = (force = false) => {
    const now = Date.now();
    if (!force && now - lastEmit < 100) return;
    lastEmit = now;
    opts.onProgress?.(hasher.bytes, total);
  };
  const retries = opts.retries ?? 5;
  let failures = 0;
  try {
    for (;;) {
      const offset = hasher.bytes;
      const headers: Record<string, string> = {};
      if (offset > 0) {
        headers.Range = `bytes=${offset}-`;
        const validator = state.etag ?? state.lastModified;
        if (validator) headers['If-Range'] = validator;
      }
      try {
        const { res } = await httpGet(opts.url, { headers, signal: opts.signal, idleTimeoutMs: opts.idleTimeoutMs });
        const status = res.statusCode ?? 0;
        if (status === 416 && offset > 0) {
          // Our partial file is as long as (or longer than) the remote one: start over.
          res.resume();
          debug(`416 for ${opts.url} at ${offset}: restarting`);
          await fh.truncate(0);
          hasher.reset();
          throw premature(opts.url);
        }
        if (status !== 200 && status !== 206) {
          res.resume();
          throw new HttpError(opts.url, status, res.statusMessage);
        }
        const len = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
        if (status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== offset) {
            res.resume();
            debug(`bad Content-Range ${res.headers['content-range']} for offset ${offset}: restarting`);
            await fh.truncate(0);
            hasher.reset();
            throw premature(opts.url);
          }
          if (m[3] !== '*') total = Number(m[3]);
        } else {
          if (offset > 0) {
            debug(`server ignored Range (or the file changed): restarting ${opts.url} from 0`);
            await fh.truncate(0);
            hasher.reset();
          }
          total = len;
        }
        const etag = res.headers.etag;
        const lastModified = res.headers['last-modified'];
        if (status === 200 || state.etag !== etag || state.lastModified !== lastModified || state.total !== total) {
          state = { url: opts.url, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}), ...(total !== undefined ? { total } : {}) };
          await writeJsonAtomic(statePath, state, 0o600);
        }
        const before = hasher.bytes;
        emit(true);
        const writer = new HashingWriter(fh, hasher, () => emit());
        try {
          await pipeline(res, writer);
        } catch (e) {
          await writer.pending.catch(() => {});
          if (opts.signal?.aborted) throw e;
          const code = (e as NodeJS.ErrnoException).code;
          if (code && /^E(NOSPC|DQUOT|ROFS|ACCES|PERM|IO)$/.test(code)) throw fsError(e, opts.part, 'write');
          // The bytes on disk are the truth: make the digest match them.
          const onDisk = (await fh.stat()).size;
          if (onDisk !== hasher.bytes) await hashExisting(opts.part, hasher, opts.signal);
          if (hasher.bytes > before) failures = 0;
          throw e instanceof KumoError ? e : new NetworkError(opts.url, e);
        }
        if (!res.complete || (total !== undefined && hasher.bytes < total)) {
          if (hasher.bytes > before) failures = 0;
          throw premature(opts.url);
        }
        if (total !== undefined && hasher.bytes > total) {
          await fh.truncate(0);
          hasher.reset();
          throw premature(opts.url);
        }
        emit(true);
        await fh.sync();
        return {
          bytes: hasher.bytes,
          digests: hasher.digests(),
          resumedFrom,
          ...(state.etag ? { etag: state.etag } : {}),
          ...(state.lastModified ? { lastModified: state.lastModified } : {}),
        };
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason instanceof KumoError ? opts.signal.reason : new InterruptedError('download interrupted');
        if (!isTransient(e)) throw e;
        failures++;
        if (failures > retries) {
          const err = e as KumoError;
          throw new KumoError(err.code, err.kind, `${err.message} (gave up after ${retries + 1} attempts)`, { hint: err.hint, cause: e, details: err.details });
        }
        const d = backoffDelay(failures, opts.backoffMs ?? defaultBackoffMs());
        debug(`download ${opts.url}: ${(e as Error).message}; retry ${failures}/${retries} in ${d} ms from byte ${hasher.bytes}`);
        opts.onRetry?.(failures, e, d);
        await sleep(d, opts.signal);
      }
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Forget a partial download (the file and its sidecar). */
export async function discardPart(part: string): Promise<void> {
  await unlink(part).catch(() => {});
  await unlink(`${part}.json`).catch(() => {});
}

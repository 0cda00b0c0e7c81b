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

/**
 * Stream a response body into the file: every chunk is hashed as it arrives, chunks are batched
 * (1 MiB) into one write at a time that overlaps with receiving the next batch, and written data is
 * flushed to disk in the background every 256 MiB so that the final fsync is short.
 */
async function pump(body: AsyncIterable<Buffer>, fh: FileHandle, hasher: Hasher, onWritten: () => void): Promise<void> {
  const MIN_BATCH = 1024 * 1024;
  const MAX_BATCH = 8 * 1024 * 1024;
  let lastStart = Date.now();
  const SYNC_EVERY = 256 * 1024 * 1024;
  let pending: Promise<void> = Promise.resolve();
  let writing = false;
  let syncing: Promise<void> | undefined;
  let sinceSync = 0;
  let batch: Buffer[] = [];
  let batchLen = 0;
  const start = () => {
    const bufs = batch;
    const len = batchLen;
    batch = [];
    batchLen = 0;
    writing = true;
    lastStart = Date.now();
    pending = writeAll(fh, bufs, len).then(() => {
      writing = false;
      onWritten();
      sinceSync += len;
      if (sinceSync >= SYNC_EVERY && !syncing) {
        sinceSync = 0;
        syncing = fh.datasync().finally(() => (syncing = undefined));
      }
      // What arrived meanwhile goes out at once when it is worth a write.
      if (batchLen >= MIN_BATCH) start();
    });
    pending.catch(() => {});
  };
  let failed: unknown;
  try {
    for await (const c of body) {
      hasher.update(c);
      batch.push(c);
      batchLen += c.length;
      // Few large writes are faster; but a slow download still reaches the disk every 200 ms.
      if (!writing && (batchLen >= MIN_BATCH || Date.now() - lastStart > 200)) start();
      else if (batchLen >= MAX_BATCH) {
        await pending; // back-pressure: the disk is slower than the network
        while (writing) await pending;
        if (batchLen) start();
      }
    }
  } catch (e) {
    failed = e;
  }
  // Let every received byte land (also after a cut: resume continues from there).
  for (;;) {
    await pending;
    if (!batchLen && !writing) break;
    if (!writing) start();
  }
  await syncing?.catch(() => {});
  if (failed) throw failed;
}

async function writeAll(fh: FileHandle, bufs: Buffer[], len: number): Promise<void> {
  let { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten === len) return;
  // Short write: finish the rest one buffer at a time.
  const rest = Buffer.concat(bufs).subarray(bytesWritten);
  while (bytesWritten < len) {
    const r = await fh.write(rest, bytesWritten - (len - rest.length));
    bytesWritten += r.bytesWritten;
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
  // At most one report per 100 ms, and the last bytes of a burst are reported too (after the
  // rest of the interval): a connection that stalls shows how far it got, not where it was.
  let trailing: NodeJS.Timeout | undefined;
  const emit = (force = false) => {
    const now = Date.now();
    if (!force && now - lastEmit < 100) {
      trailing ??= setTimeout(() => ((trailing = undefined), emit(true)), 100 - (now - lastEmit)).unref();
      return;
    }
    if (trailing) clearTimeout(trailing);
    trailing = undefined;
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
      // Set when this attempt got bytes before it failed: such an attempt does not count against the retries.
      let progressed = false;
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
        try {
          await pump(res as AsyncIterable<Buffer>, fh, hasher, () => emit());
        } catch (e) {
          if (opts.signal?.aborted) throw e;
          const code = (e as NodeJS.ErrnoException).code;
          if (code && /^E(NOSPC|DQUOT|ROFS|ACCES|PERM|IO)$/.test(code)) throw fsError(e, opts.part, 'write');
          // The bytes on disk are the truth: make the digest match them.
          const onDisk = (await fh.stat()).size;
          if (onDisk !== hasher.bytes) await hashExisting(opts.part, hasher, opts.signal);
          if (hasher.bytes > before) progressed = true;
          throw e instanceof KumoError ? e : new NetworkError(opts.url, e);
        }
        if (!res.complete || (total !== undefined && hasher.bytes < total)) {
          if (hasher.bytes > before) progressed = true;
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
        failures = progressed ? 0 : failures + 1;
        if (failures > retries) {
          const err = e as KumoError;
          throw new KumoError(err.code, err.kind, `${err.message} (gave up after ${retries + 1} attempts)`, { hint: err.hint, cause: e, details: err.details });
        }
        const d = backoffDelay(Math.max(1, failures), opts.backoffMs ?? defaultBackoffMs());
        debug(`download ${opts.url}: ${(e as Error).message}; retry ${failures}/${retries} in ${d} ms from byte ${hasher.bytes}`);
        opts.onRetry?.(Math.max(1, failures), e, d);
        await sleep(d, opts.signal);
      }
    }
  } finally {
    if (trailing) clearTimeout(trailing);
    await fh.close().catch(() => {});
  }
}

/** Forget a partial download (the file and its sidecar). */
export async function discardPart(part: string): Promise<void> {
  await unlink(part).catch(() => {});
  await unlink(`${part}.json`).catch(() => {});
}

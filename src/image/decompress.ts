/**
 * Compression by magic bytes (xz, gzip, zstd) and streaming copies that hash what they write and
 * keep zero blocks as holes (raw images are mostly zeros). gzip goes through node's zlib; xz and
 * zstd through the `xz` / `zstd` programs, streaming (Node 20 has no zstd in zlib).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, statfs, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DiskFullError, fsError, InvalidInputError, KumoError, ToolMissingError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { TOOL_PACKAGES } from '../core/exec.js';
import { debug } from '../core/log.js';

export type Compression = 'xz' | 'gzip' | 'zstd' | 'bzip2';

export async function readHead(file: string, n = 512): Promise<Buffer> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'r');
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw fsError(e, file, 'read');
  } finally {
    await fh?.close();
  }
}

export function compressionOf(head: Buffer): Compression | undefined {
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return undefined;
}

const BLOCK = 64 * 1024;
const ZERO = Buffer.alloc(BLOCK);

/** Bounds on what a decompression may write (see `decompressTo`). */
export interface OutputLimits {
  /** At most this many bytes of output in all (holes included). */
  maxBytes: number;
  /** At most this many bytes actually written (zero blocks become holes and do not count). */
  maxWritten: number;
  /** What the input is called in messages. */
  label: string;
}

/** Refusal of a compressed file that unpacks to more than it plausibly should (a "bomb"). */
export class DecompressedTooLargeError extends InvalidInputError {
  constructor(label: string, limit: number, why: string) {
    super('DECOMPRESSED_TOO_LARGE', `${label} unpacks to more than ${limit} bytes (${why}); stopped, nothing was stored`, {
      hint: 'the compressed file is damaged or not a disk image; if it really is that large, raise the limit with KUMO_DECOMPRESS_MAX (e.g. 200G)',
      details: { label, limit },
    });
  }
}

/** The most a qcow2 file of `virtualSize` bytes plausibly takes: its data, L1/L2 and refcount tables, a margin. */
export function qcow2FileBound(virtualSize: number, clusterSize: number): number {
  const clusters = Math.ceil(virtualSize / clusterSize);
  const tables = clusters * 8 * 2 + clusters * 2; // L2 entries (extended L2: 16 bytes) + 16-bit refcounts
  return virtualSize + tables + Math.ceil(virtualSize / 16) + 64 * 1024 * 1024;
}

/**
 * Writes a stream to a file, hashing every byte (sha256) and skipping all-zero 64 KiB blocks
 * (the file gets holes there; its length is set at the end). With limits, it fails (and stops the
 * pipeline) once the output passes them, and when the output starts with a qcow2 header, once it
 * passes what a qcow2 of that virtual size can take.
 */
export class SparseHashWriter extends Writable {
  readonly hash = createHash('sha256');
  bytes = 0;
  /** Bytes really written (not holes). */
  written = 0;
  private carry: Buffer[] = [];
  private carryLen = 0;
  private sniffed = false;
  private constructor(
    private readonly fh: FileHandle,
    private limits?: OutputLimits,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }
  static async create(path: string, limits?: OutputLimits): Promise<SparseHashWriter> {
    try {
      return new SparseHashWriter(await open(path, 'wx', 0o600), limits);
    } catch (e) {
      throw fsError(e, path, 'create');
    }
  }
  /** Once the first bytes are there: a qcow2 header bounds the output by its virtual size. */
  private sniff(first: Buffer): void {
    if (this.sniffed || !this.limits || first.length < 32) return;
    this.sniffed = true;
    if (first.readUInt32BE(0) !== 0x514649fb) return;
    const bits = first.readUInt32BE(20);
    const vs = first.readBigUInt64BE(24);
    if (bits < 9 || bits > 21 || vs > BigInt(Number.MAX_SAFE_INTEGER)) return; // the header reader refuses it later
    const bound = qcow2FileBound(Number(vs), 2 ** bits);
    if (bound < this.limits.maxBytes) this.limits = { ...this.limits, maxBytes: bound, label: `${this.limits.label} (a qcow2 image of virtual size ${vs})` };
  }
  private check(incoming: number): void {
    const l = this.limits;
    if (!l) return;
    if (this.bytes + this.carryLen + incoming > l.maxBytes) throw new DecompressedTooLargeError(l.label, l.maxBytes, 'more than the image can hold');
    if (this.written > l.maxWritten)
      throw new DiskFullError(`${l.label} unpacks to more data than the store's file system has room for (${l.maxWritten} bytes); stopped, nothing was stored`, {
        hint: 'free some space (kumo image prune) or move KUMO_HOME to a larger disk',
      });
  }
  private async flushBlocks(bufs: Buffer[], final: boolean): Promise<void> {
    for (const b of bufs) {
      this.carry.push(b);
      this.carryLen += b.length;
    }
    if (this.carryLen < BLOCK && !final) return;
    const all = this.carry.length === 1 ? this.carry[0]! : Buffer.concat(this.carry, this.carryLen);
    const usable = final ? all.length : all.length - (all.length % BLOCK);
    const rest = all.subarray(usable);
    this.carry = rest.length ? [Buffer.from(rest)] : [];
    this.carryLen = rest.length;
    // Write runs of non-zero blocks in one call.
    let runStart = -1;
    const writeRun = async (from: number, to: number) => {
      const chunk = all.subarray(from, to);
      this.hash.update(chunk);
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.bytes + from + off);
        off += bytesWritten;
      }
      this.written += chunk.length;
    };
    for (let p = 0; p < usable; p += BLOCK) {
      const end = Math.min(p + BLOCK, usable);
      const blk = all.subarray(p, end);
      const zero = blk.length === BLOCK ? blk.equals(ZERO) : blk.equals(ZERO.subarray(0, blk.length));
      if (zero) {
        if (runStart >= 0) await writeRun(runStart, p);
        runStart = -1;
        this.hash.update(blk);
      } else if (runStart < 0) runStart = p;
    }
    if (runStart >= 0) await writeRun(runStart, usable);
    this.bytes += usable;
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    try {
      if (!this.sniffed && chunks.length) this.sniff(this.bytes + this.carryLen === 0 ? Buffer.concat(chunks.map((c) => c.chunk).slice(0, 4)) : Buffer.alloc(0));
      this.check(chunks.reduce((n, c) => n + c.chunk.length, 0));
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.flushBlocks(
      chunks.map((c) => c.chunk),
      false,
    ).then(() => cb(), cb);
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.flushBlocks([], true)
      .then(() => this.fh.truncate(this.bytes))
      .then(() => this.fh.sync())
      .then(() => this.fh.close())
      .then(() => cb(), cb);
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.fh.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** A child process as a transform stream: file → program stdin, program stdout → returned stream. */
function programStream(cmd: string, args: string[], input: string, signal?: AbortSignal): { out: Readable; done: Promise<void>; kill: () => void } {
  debug(`$ ${cmd} ${args.join(' ')} < ${input}`);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  const src = createReadStream(input, { highWaterMark: 1024 * 1024 });
  src.on('error', () => child.kill('SIGTERM'));
  child.stdin.on('error', () => {
    /* the program may exit first; its status tells */
  });
  src.pipe(child.stdin);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ToolMissingError(cmd, TOOL_PACKAGES[cmd]) : e));
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) resolve();
      else
        reject(
          new InvalidInputError('CORRUPT_ARCHIVE', `${input} could not be decompressed: ${cmd} ${code !== null ? `exited with ${code}` : `killed by ${sig}`}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`, {
            hint: 'the compressed file is damaged; download it again',
          }),
        );
    });
  });
  return { out: child.stdout, done, kill: () => child.kill('SIGTERM') };
}

/** Room left for unpacking, beside `output`: what the file system has free, less a reserve. */
async function outputLimits(output: string, label: string, maxBytes?: number): Promise<OutputLimits> {
  const env = process.env.KUMO_DECOMPRESS_MAX;
  const fromEnv = env ? parseSize(env, 1) : undefined;
  if (env && fromEnv === undefined) throw new InvalidInputError('BAD_SIZE', `KUMO_DECOMPRESS_MAX is '${env}', not a size`, { hint: 'e.g. KUMO_DECOMPRESS_MAX=200G' });
  let free = Number.MAX_SAFE_INTEGER;
  try {
    const st = await statfs(dirname(output));
    free = Math.max(0, st.bavail * st.bsize - Math.min(1024 ** 3, (st.blocks * st.bsize) / 50)); // keep 2% (at most 1 GiB) free
  } catch {
    /* unknown: no bound by space */
  }
  return { maxBytes: Math.min(maxBytes ?? Number.MAX_SAFE_INTEGER, fromEnv ?? 64 * 1024 ** 4), maxWritten: free, label };
}

/**
 * Decompress (or, with compression undefined, copy) `input` into a new file `output`, returning
 * the sha256 and length of what was written. The output is bounded (DecompressedTooLargeError,
 * DiskFullError, before the disk fills): by `maxBytes` / KUMO_DECOMPRESS_MAX (default 64 TiB, the
 * largest disk kumo makes), by what a qcow2 of the virtual size its header claims can take, and
 * by the free space of the output's file system (zero blocks, written as holes, do not count).
 */
export async function decompressTo(input: string, output: string, compression: Compression | undefined, opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void; maxBytes?: number; label?: string } = {}): Promise<{ sha256: string; bytes: number }> {
  const writer = await SparseHashWriter.create(output, await outputLimits(output, opts.label ?? input, opts.maxBytes));
  let last = 0;
  const tick = setInterval(() => {
    if (writer.bytes !== last) opts.onProgress?.((last = writer.bytes));
  }, 200);
  tick.unref();
  try {
    if (compression === 'xz' || compression === 'zstd') {
      const { out, done, kill } = programStream(compression, ['-d', '-c', '-q', '-T0'].filter((a) => compression === 'xz' || a !== '-T0'), input, opts.signal);
      const [r, d] = await Promise.allSettled([pipeline(out, writer, { signal: opts.signal }).catch((e) => (kill(), Promise.reject(e))), done]);
      // The writer's refusal (a limit) comes first: the program then dies of the closed pipe.
      if (r.status === 'rejected' && r.reason instanceof KumoError) throw r.reason;
      if (d.status === 'rejected') throw d.reason;
      if (r.status === 'rejected') throw r.reason;
    } else if (compression === 'gzip') {
      await pipeline(createReadStream(input, { highWaterMark: 1024 * 1024 }), createGunzip({ chunkSize: 256 * 1024 }), writer, { signal: opts.signal }).catch((e) => {
        if ((e as NodeJS.ErrnoException).code?.startsWith('Z_'))
          throw new InvalidInputError('CORRUPT_ARCHIVE', `${input} could not be decompressed: ${(e as Error).message}`, { hint: 'the compressed file is damaged; download it again' });
        throw e;
      });
    } else if (compression === 'bzip2') {
      throw new InvalidInputError('UNSUPPORTED_COMPRESSION', `${input} is bzip2-compressed, which kumo does not unpack`, { hint: 'unpack it with bunzip2 and import the result' });
    } else {
      await pipeline(createReadStream(input, { highWaterMark: 1024 * 1024 }), writer, { signal: opts.signal });
    }
  } catch (e) {
    if (e instanceof KumoError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code && code.startsWith('E')) throw fsError(e, output, 'write');
    throw e;
  } finally {
    clearInterval(tick);
  }
  return { sha256: writer.digest(), bytes: writer.bytes };
}

/**
 * Compression by magic bytes (xz, gzip, zstd) and streaming copies that hash what they write and
 * keep zero blocks as holes (raw images are mostly zeros). gzip goes through node's zlib; xz and
 * zstd through the `xz` / `zstd` programs, streaming (Node 20 has no zstd in zlib).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { fsError, InvalidInputError, KumoError, ToolMissingError } from '../core/errors.js';
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

/**
 * Writes a stream to a file, hashing every byte (sha256) and skipping all-zero 64 KiB blocks
 * (the file gets holes there; its length is set at the end).
 */
export class SparseHashWriter extends Writable {
  readonly hash = createHash('sha256');
  bytes = 0;
  private carry: Buffer[] = [];
  private carryLen = 0;
  private constructor(private readonly fh: FileHandle) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }
  static async create(path: string): Promise<SparseHashWriter> {
    try {
      return new SparseHashWriter(await open(path, 'wx', 0o600));
    } catch (e) {
      throw fsError(e, path, 'create');
    }
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
function programStream(cmd: string, args: string[], input: string, signal?: AbortSignal): { out: Readable; done: Promise<void> } {
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
  return { out: child.stdout, done };
}

/**
 * Decompress (or, with compression undefined, copy) `input` into a new file `output`, returning
 * the sha256 and length of what was written.
 */
export async function decompressTo(input: string, output: string, compression: Compression | undefined, opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {}): Promise<{ sha256: string; bytes: number }> {
  const writer = await SparseHashWriter.create(output);
  let last = 0;
  const tick = setInterval(() => {
    if (writer.bytes !== last) opts.onProgress?.((last = writer.bytes));
  }, 200);
  tick.unref();
  try {
    if (compression === 'xz' || compression === 'zstd') {
      const { out, done } = programStream(compression, ['-d', '-c', '-q', '-T0'].filter((a) => compression === 'xz' || a !== '-T0'), input, opts.signal);
      const [r] = await Promise.allSettled([pipeline(out, writer, { signal: opts.signal }), done]);
      await done;
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

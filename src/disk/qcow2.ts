/**
 * Disk images without qemu-img: format sniffing by magic bytes, the qcow2 header (QEMU's
 * docs/interop/qcow2.txt), and backing chains resolved as QEMU resolves them.
 *
 * qcow2 header (all big endian):
 *    0  magic 'QFI\xfb'          4  version (2 or 3)
 *    8  backing_file_offset     16  backing_file_size (at most 1023)
 *   20  cluster_bits (9..21)    24  size (virtual, bytes)
 *   32  crypt_method            36  l1_size
 *   40  l1_table_offset         48  refcount_table_offset
 *   56  refcount_table_clusters 60  nb_snapshots
 *   64  snapshots_offset        -- v2 header ends at 72 --
 *   72  incompatible_features   80  compatible_features
 *   88  autoclear_features      96  refcount_order
 *  100  header_length          104  compression_type (when header_length > 104)
 * Header extensions follow the header (v2: at 72; v3: at header_length), 8-byte aligned, each
 * `u32 type, u32 length, data`, ending with type 0. Types: 0xE2792ACA backing file format name,
 * 0x6803f857 feature name table, 0x23852875 bitmaps, 0x0537be77 full disk encryption,
 * 0x44415441 external data file name.
 *
 * Relative backing names are resolved against the folder of the image that names them (not the
 * current directory, and without resolving symlinks of that image), as QEMU's
 * bdrv_get_full_backing_filename does; names with a protocol prefix (`nbd:`, `json:`) are
 * refused as unsupported.
 */
import { open, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fsError, InvalidInputError, NotFoundError, UnsupportedError } from '../core/errors.js';

export type DiskFormat =
  | 'qcow2'
  | 'qcow'
  | 'qed'
  | 'raw'
  | 'vmdk'
  | 'vhd'
  | 'vhdx'
  | 'vdi'
  | 'iso'
  | 'luks'
  | 'xz'
  | 'gzip'
  | 'zstd'
  | 'bzip2'
  | 'unknown';

/** A file is not a disk image (NOT_A_DISK_IMAGE): the one class for every place that finds so. */
export class NotAnImageError extends InvalidInputError {
  constructor(path: string, why: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('NOT_A_DISK_IMAGE', `${path} is not a disk image: ${why}`, {
      hint: opts.hint ?? 'give a qcow2, raw, vmdk, vhd(x) or vdi image',
      ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
      details: { path },
    });
  }
}

export class CorruptImageError extends InvalidInputError {
  constructor(path: string, problem: string) {
    super('CORRUPT_IMAGE', `${path} is a damaged qcow2 image: ${problem}`, {
      hint: "the file may be truncated or overwritten; check it with 'qemu-img check' or fetch it again",
      details: { path },
    });
  }
}

export class BackingLoopError extends InvalidInputError {
  constructor(path: string, chain: string[]) {
    super('BACKING_LOOP', `the backing chain of ${chain[0]} loops: ${path} is its own ancestor`, {
      hint: `the chain is ${[...chain, path].join(' -> ')}; rebase one link with 'qemu-img rebase -u'`,
      details: { path, chain },
    });
  }
}

export class BackingMissingError extends NotFoundError {
  constructor(image: string, backingName: string, resolved: string) {
    super('BACKING_MISSING', `the backing file of ${image} is missing: ${resolved}${backingName !== resolved ? ` (named '${backingName}')` : ''}`, {
      hint: 'restore the base image, or rebase the overlay onto another one',
      details: { image, backingName, resolved },
    });
  }
}

const MAGIC_QCOW = 0x514649fb;
export const QCOW2_EXT_BACKING_FORMAT = 0xe2792aca;
export const QCOW2_EXT_FEATURE_TABLE = 0x6803f857;
export const QCOW2_EXT_BITMAPS = 0x23852875;
export const QCOW2_EXT_ENCRYPTION = 0x0537be77;
export const QCOW2_EXT_DATA_FILE = 0x44415441;

export interface Qcow2Extension {
  type: number;
  length: number;
}

export interface Qcow2Header {
  version: 2 | 3;
  virtualSize: number;
  clusterBits: number;
  clusterSize: number;
  backingFile?: string;
  backingFormat?: string;
  /** 0 none, 1 AES, 2 LUKS */
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: 'zlib' | 'zstd';
  /** The image's data lives in another file (extension 0x44415441). */
  dataFile?: string;
  /** incompatible feature bit 0: the image was not closed cleanly. */
  dirty: boolean;
  /** incompatible feature bit 1: metadata is known to be corrupt. */
  corrupt: boolean;
  extensions: Qcow2Extension[];
}

/**
 * Up to `length` bytes at `offset`, bounded by the file's size: a size read from a header (which
 * a crafted file makes anything) never allocates or reads more than the file holds.
 */
async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
    const size = (await fh.stat()).size;
    const n = Number.isFinite(offset) && Number.isFinite(length) && offset >= 0 ? Math.max(0, Math.min(length, size - offset)) : 0;
    const buf = Buffer.alloc(n);
    if (!n) return buf;
    const { bytesRead } = await fh.read(buf, 0, n, offset);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw fsError(e, path, 'read');
  } finally {
    await fh?.close().catch(() => {});
  }
}

function looksLikeText(b: Buffer): boolean {
  if (b.length === 0) return false;
  let printable = 0;
  for (const c of b) if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 0xc2) printable++;
  return printable / b.length > 0.97 && !b.includes(0);
}

/**
 * The format of a file, by its magic bytes (and, for fixed VHD, its footer). A file with no magic
 * is 'raw' when its size is a whole number of 512-byte sectors and its start is not text;
 * otherwise 'unknown'.
 */
export async function sniffFormat(path: string): Promise<DiskFormat> {
  return (await probe(path)).format;
}

interface Probe {
  size: number;
  blocks: number;
  dev: number;
  ino: number;
  format: DiskFormat;
  /** The first 64 KiB, or the whole first cluster of a qcow2 image. */
  head: Buffer;
}

/** One open: stat, the first bytes, and what else sniffing needs. */
async function probe(path: string): Promise<Probe> {
  let fh;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) throw new NotAnImageError(path, 'it is a directory');
    const size = st.size;
    const read = async (off: number, len: number) => {
      const b = Buffer.alloc(Math.max(0, Math.min(len, size - off)));
      if (!b.length) return b;
      const { bytesRead } = await fh!.read(b, 0, b.length, off);
      return b.subarray(0, bytesRead);
    };
    let head = await read(0, 65536);
    let format = sniffBytes(head, size);
    if (format === 'raw' || format === 'unknown') format = sniffBytes(head, size, size >= 512 ? await read(size - 512, 512) : undefined, size >= 0x8006 ? await read(0x8001, 5) : undefined);
    if (format === 'qcow2' && head.length >= 24) {
      const bits = head.readUInt32BE(20);
      if (bits > 16 && bits <= 21 && head.length < size) head = await read(0, 2 ** bits);
    }
    return { size, blocks: st.blocks, dev: st.dev, ino: st.ino, format, head };
  } catch (e) {
    throw fsError(e, path, 'read');
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** The pure part of sniffFormat: the first bytes, the size, the last 512 bytes, bytes 0x8001-0x8005. */
export function sniffBytes(head: Buffer, size: number, tail?: Buffer, isoMagic?: Buffer): DiskFormat {
  const s = (off: number, str: string) => head.length >= off + str.length && head.toString('latin1', off, off + str.length) === str;
  if (head.length >= 4 && head.readUInt32BE(0) === MAGIC_QCOW) {
    const v = head.length >= 8 ? head.readUInt32BE(4) : 0;
    return v === 1 ? 'qcow' : 'qcow2';
  }
  if (s(0, 'QED\0')) return 'qed';
  if (s(0, 'KDMV') || s(0, '# Disk DescriptorFile')) return 'vmdk';
  if (s(0, 'vhdxfile')) return 'vhdx';
  if (s(0, 'conectix')) return 'vhd';
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return 'vdi';
  if (s(0, 'LUKS\xba\xbe')) return 'luks';
  if (s(0, '\xfd7zXZ\0')) return 'xz';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (s(0, 'BZh') && head.length >= 4 && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  if (tail && tail.length === 512 && tail.toString('latin1', 0, 8) === 'conectix') return 'vhd';
  if (isoMagic && isoMagic.toString('latin1') === 'CD001') return 'iso';
  if (size === 0 || size % 512 !== 0) return 'unknown';
  if (looksLikeText(head)) return 'unknown';
  return 'raw';
}

const u64 = (b: Buffer, off: number): number => {
  const v = b.readBigUInt64BE(off);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
};

/** Parse a qcow2 header from its first bytes (at least the header and its extensions). Pure. */
export function parseQcow2Header(buf: Buffer, path: string, fileLength = Number.POSITIVE_INFINITY): Qcow2Header {
  if (buf.length < 4 || buf.readUInt32BE(0) !== MAGIC_QCOW) throw new NotAnImageError(path, 'no qcow2 magic (QFI\\xfb) at the start');
  if (buf.length < 72) throw new CorruptImageError(path, `the header is truncated (${buf.length} bytes, at least 72 needed)`);
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    if (version === 1) throw new UnsupportedError('QCOW1_UNSUPPORTED', `${path} is a qcow version 1 image`, { hint: "convert it: qemu-img convert -O qcow2 (or 'kumo disk convert')" });
    throw new CorruptImageError(path, `unknown qcow2 version ${version}`);
  }
  const backingOffset = u64(buf, 8);
  const backingSize = buf.readUInt32BE(16);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw new CorruptImageError(path, `cluster_bits is ${clusterBits} (valid: 9 to 21)`);
  const clusterSize = 2 ** clusterBits;
  const virtualSize = u64(buf, 24);
  if (!Number.isFinite(virtualSize)) throw new CorruptImageError(path, 'the virtual size is beyond 2^53 bytes');
  const h: Qcow2Header = {
    version,
    virtualSize,
    clusterBits,
    clusterSize,
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: u64(buf, 40),
    refcountTableOffset: u64(buf, 48),
    refcountTableClusters: buf.readUInt32BE(56),
    nbSnapshots: buf.readUInt32BE(60),
    snapshotsOffset: u64(buf, 64),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 'zlib',
    dirty: false,
    corrupt: false,
    extensions: [],
  };
  if (h.cryptMethod > 2) throw new CorruptImageError(path, `unknown crypt_method ${h.cryptMethod}`);
  if (version === 3) {
    if (buf.length < 104) throw new CorruptImageError(path, `the version 3 header is truncated (${buf.length} bytes, at least 104 needed)`);
    h.incompatibleFeatures = buf.readBigUInt64BE(72);
    h.compatibleFeatures = buf.readBigUInt64BE(80);
    h.autoclearFeatures = buf.readBigUInt64BE(88);
    h.refcountOrder = buf.readUInt32BE(96);
    h.headerLength = buf.readUInt32BE(100);
    if (h.refcountOrder > 6) throw new CorruptImageError(path, `refcount_order is ${h.refcountOrder} (at most 6)`);
    if (h.headerLength < 104 || h.headerLength % 8 !== 0 || h.headerLength > clusterSize)
      throw new CorruptImageError(path, `header_length is ${h.headerLength} (a multiple of 8, from 104 to the cluster size)`);
    if (h.headerLength > 104) {
      if (buf.length < 105) throw new CorruptImageError(path, 'the header is truncated before compression_type');
      const ct = buf[104]!;
      if (ct > 1) throw new CorruptImageError(path, `unknown compression_type ${ct}`);
      h.compressionType = ct === 1 ? 'zstd' : 'zlib';
    }
    h.dirty = (h.incompatibleFeatures & 1n) !== 0n;
    h.corrupt = (h.incompatibleFeatures & 2n) !== 0n;
  }
  if (h.l1TableOffset % clusterSize !== 0) throw new CorruptImageError(path, `the L1 table offset ${h.l1TableOffset} is not cluster aligned`);
  if (h.refcountTableOffset % clusterSize !== 0) throw new CorruptImageError(path, `the refcount table offset ${h.refcountTableOffset} is not cluster aligned`);

  // header extensions: from the end of the header to the end of the first cluster
  let off = h.headerLength;
  const end = Math.min(buf.length, clusterSize);
  for (;;) {
    if (off + 8 > end) {
      if (end < clusterSize && end === buf.length && buf.length < fileLength) break; // caller gave fewer bytes; stop quietly
      throw new CorruptImageError(path, 'the header extensions run past the first cluster (no end marker)');
    }
    const type = buf.readUInt32BE(off);
    const len = buf.readUInt32BE(off + 4);
    if (type === 0) break;
    if (off + 8 + len > end) throw new CorruptImageError(path, `header extension 0x${type.toString(16)} of ${len} bytes runs past the first cluster`);
    const data = buf.subarray(off + 8, off + 8 + len);
    h.extensions.push({ type, length: len });
    if (type === QCOW2_EXT_BACKING_FORMAT) h.backingFormat = data.toString('utf8').replace(/\0+$/, '');
    else if (type === QCOW2_EXT_DATA_FILE) h.dataFile = data.toString('utf8').replace(/\0+$/, '');
    off += 8 + Math.ceil(len / 8) * 8;
  }

  if (backingOffset !== 0) {
    if (backingSize === 0 || backingSize > 1023) throw new CorruptImageError(path, `the backing file name is ${backingSize} bytes long (1 to 1023)`);
    if (backingOffset + backingSize > clusterSize) throw new CorruptImageError(path, 'the backing file name lies outside the first cluster');
    if (backingOffset + backingSize > buf.length) throw new CorruptImageError(path, 'the file ends before the backing file name');
    h.backingFile = buf.toString('utf8', backingOffset, backingOffset + backingSize);
    if (h.backingFile.includes('\0')) throw new CorruptImageError(path, 'the backing file name contains a NUL byte');
  }
  return h;
}

/** Read and parse a qcow2 header (reads the first cluster at most). */
export async function readQcow2Header(path: string): Promise<Qcow2Header> {
  return headerFromProbe(path, await probe(path));
}

function headerFromProbe(path: string, p: Probe): Qcow2Header {
  if (p.format !== 'qcow2') {
    if (p.size < 4) throw new NotAnImageError(path, p.size === 0 ? 'it is empty' : `it is only ${p.size} bytes long`);
    throw new NotAnImageError(path, p.format === 'unknown' ? 'no qcow2 magic at the start' : `it is ${p.format}, not qcow2`);
  }
  const h = parseQcow2Header(p.head, path, p.size);
  if (h.l1Size > 0 && h.l1TableOffset + h.l1Size * 8 > p.size)
    throw new CorruptImageError(path, `the file is truncated: the L1 table ends at byte ${h.l1TableOffset + h.l1Size * 8} but the file has ${p.size}`);
  if (h.refcountTableOffset + h.refcountTableClusters * h.clusterSize > p.size)
    throw new CorruptImageError(path, `the file is truncated: the refcount table ends beyond its ${p.size} bytes`);
  return h;
}

export interface ChainLink {
  /** Absolute, resolved like QEMU does. */
  path: string;
  format: DiskFormat;
  virtualSize: number;
  backingFile?: string;
  backingFormat?: string;
  /** qcow2 only */
  version?: 2 | 3;
  clusterSize?: number;
}

/** Resolve a backing name as QEMU does: relative to the folder of the image that names it. */
export function resolveBackingPath(imagePath: string, backingName: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(backingName) && !backingName.startsWith('file:')) {
    throw new UnsupportedError('BACKING_PROTOCOL', `the backing file of ${imagePath} is '${backingName}', a protocol kumo cannot follow`, {
      hint: 'only local files are supported as backing files',
    });
  }
  const name = backingName.startsWith('file:') ? backingName.slice(5) : backingName;
  if (isAbsolute(name)) return name;
  // QEMU's path_combine: the folder of the image, then the name, with no lexical '..' folding
  // (a '..' after a symlinked folder means what the kernel says it means).
  const dir = dirname(isAbsolute(imagePath) ? imagePath : resolve(imagePath));
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

async function virtualSizeOf(path: string, format: DiskFormat, size: number): Promise<number> {
  switch (format) {
    case 'raw':
    case 'iso':
      return size;
    case 'vmdk': {
      const h = await readAt(path, 0, 64);
      if (h.toString('latin1', 0, 4) === 'KDMV' && h.length >= 20) return Number(h.readBigUInt64LE(12)) * 512;
      return 0;
    }
    case 'vhd': {
      const f = await readAt(path, size - 512, 512);
      if (f.length !== 512 || f.toString('latin1', 0, 8) !== 'conectix') return 0;
      // fixed disks (type 2): the data before the footer, as QEMU reports; dynamic: current_size
      return f.readUInt32BE(60) === 2 ? size - 512 : Number(f.readBigUInt64BE(48));
    }
    case 'vdi': {
      const h = await readAt(path, 0, 0x200);
      return h.length >= 0x178 ? Number(h.readBigUInt64LE(0x170)) : 0;
    }
    default:
      return 0;
  }
}

/**
 * The backing chain: [the file itself, its backing file, ...]. Stops at the first link without a
 * backing file (or one that is not qcow2). Throws BackingMissingError for a missing link and
 * BackingLoopError for a loop (detected by device and inode, so symlinks cannot hide one).
 */
export async function backingChain(path: string): Promise<ChainLink[]> {
  const chain: ChainLink[] = [];
  const seen = new Map<string, string>();
  let current = resolve(path);
  let formatHint: string | undefined;
  let namedBy: { image: string; name: string } | undefined;
  for (let depth = 0; ; depth++) {
    let p: Probe;
    try {
      p = await probe(current);
    } catch (e) {
      const cause = (e as { cause?: NodeJS.ErrnoException }).cause;
      if (cause?.code === 'ENOENT' && namedBy) throw new BackingMissingError(namedBy.image, namedBy.name, current);
      throw e;
    }
    const key = `${p.dev}:${p.ino}`;
    if (seen.has(key)) throw new BackingLoopError(current, chain.map((l) => l.path));
    seen.set(key, current);
    if (depth > 1000) throw new CorruptImageError(chain[0]!.path, 'the backing chain is more than 1000 links long');
    const sniffed = p.format;
    // QEMU opens a backing file in the format its overlay records; a recorded 'raw' wins over the probe.
    const format: DiskFormat = formatHint === 'raw' ? 'raw' : sniffed;
    if (format === 'unknown') {
      if (depth === 0) throw new NotAnImageError(current, p.size === 0 ? 'it is empty' : 'no known disk image signature, and not a whole number of 512-byte sectors of binary data');
      // QEMU would read it as raw; keep going like it does
    }
    if (formatHint && formatHint !== 'raw' && formatHint !== format) {
      throw new InvalidInputError('BACKING_FORMAT_MISMATCH', `${namedBy!.image} says its backing file ${current} is ${formatHint}, but it is ${format}`, {
        hint: `fix the recorded format: qemu-img rebase -u -b ${current} -F ${format} ${namedBy!.image}`,
        details: { image: namedBy!.image, backing: current, recorded: formatHint, actual: format },
      });
    }
    if (format === 'qcow2') {
      const h = headerFromProbe(current, p);
      const link: ChainLink = { path: current, format, virtualSize: h.virtualSize, version: h.version, clusterSize: h.clusterSize };
      if (h.backingFile !== undefined) link.backingFile = h.backingFile;
      if (h.backingFormat !== undefined) link.backingFormat = h.backingFormat;
      chain.push(link);
      if (h.backingFile === undefined) return chain;
      namedBy = { image: current, name: h.backingFile };
      formatHint = h.backingFormat;
      current = resolveBackingPath(current, h.backingFile);
      continue;
    }
    chain.push({ path: current, format: format === 'unknown' ? 'raw' : format, virtualSize: await virtualSizeOf(current, format === 'unknown' ? 'raw' : format, p.size) });
    return chain;
  }
}

export interface DiskInfo {
  path: string;
  format: DiskFormat;
  virtualSize: number;
  /** Bytes used on disk (allocated blocks), not the apparent length. */
  actualSize: number;
  /** The apparent length of the file. */
  fileSize: number;
  chain: ChainLink[];
  /** qcow2 only */
  qcow2?: Pick<Qcow2Header, 'version' | 'clusterSize' | 'compressionType' | 'dirty' | 'corrupt' | 'nbSnapshots' | 'refcountOrder'> & { dataFile?: string; encrypted: boolean };
}

/** Format, virtual size, bytes used and the backing chain of an image. */
export async function diskInfo(path: string): Promise<DiskInfo> {
  const abs = resolve(path);
  const p = await probe(abs);
  const format = p.format;
  if (format === 'unknown') throw new NotAnImageError(abs, p.size === 0 ? 'it is empty' : 'no known disk image signature, and it is not a whole number of 512-byte sectors of binary data');
  if (format === 'qcow') throw new UnsupportedError('QCOW1_UNSUPPORTED', `${abs} is a qcow version 1 image`, { hint: 'convert it: qemu-img convert -O qcow2' });
  const info: DiskInfo = { path: abs, format, virtualSize: 0, actualSize: p.blocks * 512, fileSize: p.size, chain: [] };
  if (format === 'qcow2') {
    const h = headerFromProbe(abs, p);
    info.virtualSize = h.virtualSize;
    info.qcow2 = {
      version: h.version,
      clusterSize: h.clusterSize,
      compressionType: h.compressionType,
      dirty: h.dirty,
      corrupt: h.corrupt,
      nbSnapshots: h.nbSnapshots,
      refcountOrder: h.refcountOrder,
      encrypted: h.cryptMethod !== 0,
      ...(h.dataFile ? { dataFile: h.dataFile } : {}),
    };
    info.chain = await backingChain(abs);
  } else if (format === 'xz' || format === 'gzip' || format === 'zstd' || format === 'bzip2') {
    info.virtualSize = await uncompressedSize(abs, format, p.size);
    info.chain = [{ path: abs, format, virtualSize: info.virtualSize }];
  } else {
    info.chain = await backingChain(abs);
    info.virtualSize = info.chain[0]!.virtualSize;
  }
  return info;
}

/** The uncompressed size when the container records it (xz index, zstd frame header, gzip ISIZE); 0 when unknown. */
async function uncompressedSize(path: string, format: DiskFormat, size: number): Promise<number> {
  try {
    if (format === 'gzip' && size >= 18) {
      // ISIZE is the length mod 2^32: only trustworthy for small files
      const t = await readAt(path, size - 4, 4);
      const n = t.readUInt32LE(0);
      return size < 0x40000000 && n >= size / 1100 ? n : 0;
    }
    if (format === 'zstd') {
      const h = await readAt(path, 0, 18);
      const fhd = h[4]!;
      const fcsFlag = fhd >> 6;
      const single = (fhd >> 5) & 1;
      const didFlag = fhd & 3;
      let off = 5 + (single ? 0 : 1) + [0, 1, 2, 4][didFlag]!;
      // the frame content size field must lie inside the file (a short file records none)
      if (h.length < off + [single ? 1 : 0, 2, 4, 8][fcsFlag]!) return 0;
      if (fcsFlag === 0) return single ? h[off]! : 0;
      if (fcsFlag === 1) return h.readUInt16LE(off) + 256;
      if (fcsFlag === 2) return h.readUInt32LE(off);
      return Number(h.readBigUInt64LE(off));
    }
    if (format === 'xz') {
      // stream header (12) ... index ... stream footer: CRC32(4) backward_size(4) flags(2) 'YZ'
      if (size < 24) return 0;
      const foot = await readAt(path, size - 12, 12);
      if (foot.toString('latin1', 10, 12) !== 'YZ') return 0;
      const indexSize = (foot.readUInt32LE(4) + 1) * 4;
      // the index lies between the stream header and the footer: a larger claim is a lie
      if (indexSize > size - 24) return 0;
      const idx = await readAt(path, size - 12 - indexSize, indexSize);
      if (idx.length !== indexSize || idx[0] !== 0) return 0;
      let p = 1;
      const varint = () => {
        let v = 0;
        let mul = 1;
        for (let i = 0; i < 9; i++) {
          if (p >= idx.length) throw new Error('xz index ends inside a number');
          const b = idx[p++]!;
          v += (b & 0x7f) * mul;
          mul *= 128;
          if (!(b & 0x80)) break;
        }
        return v;
      };
      const records = varint();
      // each record takes at least two bytes of the index: more records than that is a lie
      if (records > (idx.length - p) / 2) return 0;
      let total = 0;
      for (let i = 0; i < records; i++) {
        varint(); // unpadded size
        total += varint();
      }
      return total; // single-stream files; concatenated streams report the last one
    }
  } catch {
    return 0;
  }
  return 0;
}

/** Resolve symlinks too (for callers that compare images, e.g. "is this base in use"). */
export async function canonicalPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (e) {
    throw fsError(e, path, 'read');
  }
}

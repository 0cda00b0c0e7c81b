/**
 * Is a disk image self-contained? A base image kumo stores must not make QEMU open any other
 * file: a qcow2 backing file or external data file, a VMDK descriptor's extents or parent, would
 * let an image read any host file QEMU can read (kumo's own private keys, /etc/...), into the
 * instance's disk or into a converted copy. This is checked with kumo's own readers, before any
 * qemu tool sees the file. The rule (docs/images.md, "Self-contained images"):
 *
 * - raw: always (kumo opens it with format raw, nothing is probed);
 * - qcow2: no backing file, no external data file (header extension 0x44415441 or incompatible
 *   feature bit 2);
 * - VMDK: only a hosted sparse extent (magic KDMV: monolithicSparse, streamOptimized) with a
 *   non-zero capacity (QEMU reads a zero-capacity one's embedded descriptor as a descriptor file),
 *   no `parentFileNameHint` (a backing file), and an embedded descriptor, if any, whose extents
 *   are all SPARSE. A text descriptor file ("# Disk DescriptorFile": extents in other files) is
 *   always refused;
 * - VHD: not a differencing disk (footer disk type 4: its data lives in a parent file);
 * - VHDX: not a differencing disk (file parameters "HasParent").
 * Any other format is not accepted by the store at all.
 */
import { open } from 'node:fs/promises';
import { fsError, InvalidInputError } from '../core/errors.js';
import { readQcow2Header, sniffFormat, type DiskFormat } from './qcow2.js';

export class ImageNotSelfContainedError extends InvalidInputError {
  constructor(label: string, what: string, refs: string[]) {
    super('IMAGE_NOT_SELF_CONTAINED', `${label} is not a self-contained disk image: it references ${what}`, {
      hint: 'kumo stores only images that reference no other file (no backing file, no external data file, no VMDK descriptor extents); nothing was stored. Flatten it where you trust what it references (qemu-img convert -O qcow2 IN OUT) and import the result',
      details: { image: label, references: refs },
    });
  }
}

const VMDK_DESC_AT = 0x200;
/** QEMU's DESC_SIZE: how much of a VMDK's descriptor it reads. */
const VMDK_DESC_SIZE = 20 * 512;
const MAX_DESCRIPTOR = 1024 * 1024;

async function withFile<T>(path: string, fn: (read: (off: number, len: number) => Promise<Buffer>, size: number) => Promise<T>): Promise<T> {
  let fh;
  try {
    fh = await open(path, 'r');
    const size = (await fh.stat()).size;
    const read = async (off: number, len: number) => {
      const n = Math.max(0, Math.min(len, size - off));
      const b = Buffer.alloc(n);
      if (!n) return b;
      const { bytesRead } = await fh!.read(b, 0, n, off);
      return b.subarray(0, bytesRead);
    };
    return await fn(read, size);
  } catch (e) {
    throw fsError(e, path, 'read');
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** The extent lines of a VMDK descriptor: access, size, type and file name. Pure. */
export function vmdkExtents(text: string): { access: string; type: string; file?: string }[] {
  const out: { access: string; type: string; file?: string }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\0.*$/, '').trim();
    const m = /^(RW|RDONLY|NOACCESS)\s+\d+\s+([A-Za-z]+)(?:\s+"([^"]*)")?/.exec(line);
    if (m) out.push({ access: m[1]!, type: m[2]!.toUpperCase(), ...(m[3] !== undefined ? { file: m[3] } : {}) });
  }
  return out;
}

/** The parent a VMDK descriptor names (`parentFileNameHint="..."`), if any. Pure. */
export function vmdkParent(text: string): string | undefined {
  const i = text.indexOf('parentFileNameHint');
  if (i < 0) return undefined;
  const m = /parentFileNameHint\s*=\s*"([^"]*)"/.exec(text.slice(i));
  return m ? m[1]! : text.slice(i, i + 80).split(/\r?\n/)[0]!;
}

async function checkVmdk(path: string, label: string): Promise<void> {
  await withFile(path, async (read, size) => {
    const head = await read(0, 512);
    if (head.toString('latin1', 0, 4) !== 'KDMV') {
      const text = (await read(0, Math.min(size, MAX_DESCRIPTOR))).toString('latin1');
      const files = vmdkExtents(text).map((e) => e.file ?? `(${e.type} extent)`);
      const parent = vmdkParent(text);
      const refs = [...files, ...(parent !== undefined ? [parent] : [])];
      throw new ImageNotSelfContainedError(label, `other files through a VMDK descriptor${refs.length ? `: ${refs.map((r) => `'${r}'`).join(', ')}` : ''}`, refs);
    }
    if (head.length < 44) throw new ImageNotSelfContainedError(label, 'an unreadable VMDK sparse header (the file is truncated)', []);
    const capacity = head.readBigUInt64LE(12);
    const descOffset = head.readBigUInt64LE(28);
    const descSize = head.readBigUInt64LE(36);
    const texts: string[] = [];
    // What QEMU reads looking for a parent: DESC_SIZE bytes at 0x200, as a C string.
    texts.push((await read(VMDK_DESC_AT, VMDK_DESC_SIZE)).toString('latin1').replace(/\0[\s\S]*$/, ''));
    if (descOffset > 0n && descSize > 0n) {
      const off = descOffset * 512n;
      const len = descSize * 512n;
      if (off < BigInt(size)) texts.push((await read(Number(off), Number(len < BigInt(MAX_DESCRIPTOR) ? len : BigInt(MAX_DESCRIPTOR)))).toString('latin1').replace(/\0[\s\S]*$/, ''));
    }
    const extents = texts.flatMap((t) => vmdkExtents(t));
    if (capacity === 0n && descOffset > 0n) {
      const refs = extents.map((e) => e.file ?? `(${e.type} extent)`);
      throw new ImageNotSelfContainedError(label, `other files through the VMDK descriptor embedded in it (its capacity is 0)${refs.length ? `: ${refs.map((r) => `'${r}'`).join(', ')}` : ''}`, refs);
    }
    for (const t of texts) {
      const parent = vmdkParent(t);
      if (parent !== undefined) throw new ImageNotSelfContainedError(label, `a parent (backing) file: '${parent}'`, [parent]);
    }
    const foreign = extents.filter((e) => e.type !== 'SPARSE');
    if (foreign.length || new Set(extents.map((e) => e.file)).size > 1) {
      const refs = extents.map((e) => e.file ?? `(${e.type} extent)`);
      throw new ImageNotSelfContainedError(label, `other files through its VMDK descriptor's extents: ${refs.map((r) => `'${r}'`).join(', ')}`, refs);
    }
  });
}

async function checkVhd(path: string, label: string): Promise<void> {
  await withFile(path, async (read, size) => {
    const foot = size >= 512 ? await read(size - 512, 512) : Buffer.alloc(0);
    const footer = foot.toString('latin1', 0, 8) === 'conectix' ? foot : await read(0, 512);
    if (footer.length >= 64 && footer.toString('latin1', 0, 8) === 'conectix' && footer.readUInt32BE(60) === 4)
      throw new ImageNotSelfContainedError(label, 'a parent file (it is a VHD differencing disk)', []);
  });
}

const GUID_METADATA_REGION = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
const GUID_FILE_PARAMETERS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';

/** A GUID as VHDX stores it (first three fields little endian). Pure. */
function guidAt(b: Buffer, off: number): string {
  const h = (s: number, e: number) => b.subarray(off + s, off + e).toString('hex');
  const le = (s: number, e: number) => Buffer.from(b.subarray(off + s, off + e)).reverse().toString('hex');
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${h(8, 10)}-${h(10, 16)}`;
}

async function checkVhdx(path: string, label: string): Promise<void> {
  await withFile(path, async (read, size) => {
    // Region table at 192 KiB (a copy at 256 KiB): entries of GUID(16) offset(8) length(4) required(4).
    const rt = await read(192 * 1024, 64 * 1024);
    if (rt.length < 16 || rt.toString('latin1', 0, 4) !== 'regi') return; // QEMU refuses such a file itself
    const count = Math.min(rt.readUInt32LE(8), 2047);
    for (let i = 0; i < count && 16 + i * 32 + 32 <= rt.length; i++) {
      const e = 16 + i * 32;
      if (guidAt(rt, e) !== GUID_METADATA_REGION) continue;
      const mOff = Number(rt.readBigUInt64LE(e + 16));
      if (mOff >= size) return;
      const md = await read(mOff, 64 * 1024);
      if (md.length < 32 || md.toString('latin1', 0, 8) !== 'metadata') return;
      const n = Math.min(md.readUInt16LE(10), 2047);
      for (let j = 0; j < n && 32 + j * 32 + 32 <= md.length; j++) {
        const me = 32 + j * 32;
        if (guidAt(md, me) !== GUID_FILE_PARAMETERS) continue;
        const itemOff = md.readUInt32LE(me + 16);
        const item = await read(mOff + itemOff, 8);
        if (item.length === 8 && (item.readUInt32LE(4) & 2) !== 0) throw new ImageNotSelfContainedError(label, 'a parent file (it is a VHDX differencing disk)', []);
      }
    }
  });
}

/**
 * Refuse (ImageNotSelfContainedError, code IMAGE_NOT_SELF_CONTAINED) an image that references any
 * other file. `label` names the image in the message (a file name, an alias). Reads headers only.
 */
export async function assertSelfContained(path: string, format?: DiskFormat, label = path): Promise<void> {
  const fmt = format ?? (await sniffFormat(path));
  switch (fmt) {
    case 'raw':
      return;
    case 'qcow2': {
      const h = await readQcow2Header(path);
      if (h.backingFile !== undefined) throw new ImageNotSelfContainedError(label, `a backing file: '${h.backingFile}'${h.backingFormat ? ` (format ${h.backingFormat})` : ''}`, [h.backingFile]);
      if (h.dataFile !== undefined || (h.incompatibleFeatures & 4n) !== 0n)
        throw new ImageNotSelfContainedError(label, `an external data file${h.dataFile !== undefined ? `: '${h.dataFile}'` : ''}`, h.dataFile !== undefined ? [h.dataFile] : []);
      return;
    }
    case 'vmdk':
      return checkVmdk(path, label);
    case 'vhd':
      return checkVhd(path, label);
    case 'vhdx':
      return checkVhdx(path, label);
    default:
      throw new ImageNotSelfContainedError(label, `whatever a ${fmt} image may reference (kumo cannot check that format)`, []);
  }
}

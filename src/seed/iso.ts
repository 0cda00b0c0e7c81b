/**
 * A native ISO 9660 writer: ECMA-119 (level 1 names in the primary tree), Joliet (UCS-2 names in a
 * supplementary tree) and Rock Ridge (SUSP 1.12 / RRIP 1.10: SP, CE, ER, PX, NM) on the primary tree.
 *
 * Layout (2048-byte logical blocks):
 *   0-15   system area (zeros)
 *   16     primary volume descriptor
 *   17     Joliet supplementary volume descriptor (when joliet)
 *   next   volume descriptor set terminator
 *   then   path tables (L and M) of the primary tree, then of the Joliet tree
 *   then   directory extents of the primary tree (breadth first), each followed by its Rock Ridge
 *          continuation areas (ER of the root, long names), then the Joliet directories
 *   then   file data, one extent per file (files share their extent between both trees)
 *
 * Output is a pure function of (files, options): same input and mtime, same bytes.
 *
 * Names: Rock Ridge holds the exact name (up to 255 bytes of UTF-8); Joliet holds it when it fits
 * (64 UCS-2 units, no `* / : ; ? \`), otherwise a shortened, de-duplicated form; the primary tree
 * holds a level-1 8.3 name made unique per folder. A name the most faithful enabled tree cannot hold
 * exactly is refused with IsoNameError.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidInputError, fsError } from '../core/errors.js';
import { fsyncDir, tempPathFor } from '../core/fs.js';

export interface IsoFile {
  /** Path inside the image with '/' separators, e.g. 'openstack/latest/meta_data.json'. */
  path: string;
  data: Uint8Array | string;
  /** Permission bits recorded by Rock Ridge (default 0o644). */
  mode?: number;
}

export interface IsoOptions {
  /** Volume label, e.g. 'cidata' or 'config-2' (at most 32 characters; 16 with Joliet). */
  volumeId: string;
  /** Timestamp for every record and the volume descriptors; fix it for deterministic output. */
  mtime?: Date;
  /** Write a Joliet tree (default true). */
  joliet?: boolean;
  /** Write Rock Ridge entries in the primary tree (default true). */
  rockRidge?: boolean;
  /** writeIso only: permission bits of the output file (default 0o644; seeds use 0o600). */
  outputMode?: number;
}

export class IsoNameError extends InvalidInputError {
  constructor(path: string, problem: string, hint?: string) {
    super('ISO_BAD_NAME', `cannot put '${path}' in the ISO image: ${problem}`, {
      hint: hint ?? 'rename the file; names are 1-255 bytes of UTF-8 without NUL, and not . or ..',
      details: { path },
    });
  }
}

export class IsoTooLargeError extends InvalidInputError {
  constructor(path: string, size: number) {
    super('ISO_FILE_TOO_LARGE', `cannot put '${path}' in the ISO image: ${size} bytes is more than one extent can hold (4 GiB - 1)`, {
      hint: 'seeds never need files this large; put large data on a disk image instead',
      details: { path, size },
    });
  }
}

const BLOCK = 2048;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

interface FileNode {
  kind: 'file';
  name: string;
  path: string;
  data: Uint8Array;
  mode: number;
  isoId: Buffer;
  jolietId: Buffer;
  extent: number;
}

interface DirNode {
  kind: 'dir';
  name: string;
  path: string;
  parent: DirNode | null;
  children: Map<string, FileNode | DirNode>;
  mode: number;
  isoId: Buffer;
  jolietId: Buffer;
  // layout, per tree
  pNum: number;
  jNum: number;
  pExtent: number;
  pSize: number;
  jExtent: number;
  jSize: number;
  pRecords: RecordPlan[];
  jRecords: RecordPlan[];
}

type Node = FileNode | DirNode;

/** One directory record to emit; SUSP entries beyond the record go to a continuation area. */
interface RecordPlan {
  target: Node;
  id: Buffer;
  /** Entries inside the record (without CE). */
  su: Buffer[];
  /** Entries in the continuation area (a CE entry is added to the record when non-empty). */
  cont: Buffer[];
  contBlock: number;
  contOffset: number;
  length: number;
}

// ---------------------------------------------------------------------------------------------
// little helpers

function both32(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32BE(v >>> 0, off + 4);
}
function both16(buf: Buffer, off: number, v: number): void {
  buf.writeUInt16LE(v, off);
  buf.writeUInt16BE(v, off + 2);
}
function both32Buf(v: number): Buffer {
  const b = Buffer.alloc(8);
  both32(b, 0, v);
  return b;
}

/** 7-byte recording date (ECMA-119 9.1.5), UTC. */
function recDate(d: Date): Buffer {
  const b = Buffer.alloc(7);
  b[0] = Math.min(255, Math.max(0, d.getUTCFullYear() - 1900));
  b[1] = d.getUTCMonth() + 1;
  b[2] = d.getUTCDate();
  b[3] = d.getUTCHours();
  b[4] = d.getUTCMinutes();
  b[5] = d.getUTCSeconds();
  b[6] = 0;
  return b;
}

/** 17-byte volume date (ECMA-119 8.4.26.1), UTC. */
function volDate(d: Date | null): Buffer {
  const b = Buffer.alloc(17, 0x30);
  if (!d) {
    b[16] = 0;
    return b;
  }
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  const s =
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1, 2) +
    p(d.getUTCDate(), 2) +
    p(d.getUTCHours(), 2) +
    p(d.getUTCMinutes(), 2) +
    p(d.getUTCSeconds(), 2) +
    p(Math.floor(d.getUTCMilliseconds() / 10), 2);
  b.write(s, 0, 'ascii');
  b[16] = 0;
  return b;
}

function padAscii(s: string, len: number): Buffer {
  const b = Buffer.alloc(len, 0x20);
  b.write(s.slice(0, len), 0, 'latin1');
  return b;
}

function ucs2be(s: string): Buffer {
  const b = Buffer.alloc(s.length * 2);
  for (let i = 0; i < s.length; i++) b.writeUInt16BE(s.charCodeAt(i), i * 2);
  return b;
}

function padUcs2(s: string, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i + 1 < len; i += 2) b.writeUInt16BE(0x0020, i);
  const u = ucs2be(s.slice(0, Math.floor(len / 2)));
  u.copy(b, 0);
  return b;
}

/** Compare identifiers as ECMA-119 9.3 asks: name then extension, each padded with spaces. */
function splitId(id: string): [string, string] {
  const semi = id.indexOf(';');
  const noVer = semi >= 0 ? id.slice(0, semi) : id;
  const dot = noVer.lastIndexOf('.');
  return dot >= 0 ? [noVer.slice(0, dot), noVer.slice(dot + 1)] : [noVer, ''];
}
function cmpPadded(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = i < a.length ? a.charCodeAt(i) : 0x20;
    const y = i < b.length ? b.charCodeAt(i) : 0x20;
    if (x !== y) return x - y;
  }
  return 0;
}
function cmpIds(a: string, b: string): number {
  const [an, ae] = splitId(a);
  const [bn, be] = splitId(b);
  return cmpPadded(an, bn) || cmpPadded(ae, be) || (a < b ? -1 : a > b ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// names

const JOLIET_BAD = /[\u0000-\u001f*/:;?\\]/g;
const JOLIET_MAX = 64;

function validateComponent(path: string, name: string): void {
  if (name === '') throw new IsoNameError(path, 'it has an empty path component', "remove doubled or trailing '/'");
  if (name === '.' || name === '..') throw new IsoNameError(path, `'${name}' is not allowed as a path component`);
  if (name.includes('\0')) throw new IsoNameError(path, 'it contains a NUL character');
  if (Buffer.byteLength(name, 'utf8') > 255) throw new IsoNameError(path, `the name '${name.slice(0, 40)}…' is longer than 255 bytes`);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(name))
    throw new IsoNameError(path, 'it contains an unpaired UTF-16 surrogate (not valid Unicode)');
}

/** Level-1 identifier base: d-characters only. */
function dchars(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

function isoCandidate(name: string, isDir: boolean): { base: string; ext: string } {
  if (isDir) return { base: dchars(name).slice(0, 8) || '_', ext: '' };
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  return { base: dchars(base).slice(0, 8) || '_', ext: dchars(ext).slice(0, 3) };
}

function isoIdString(base: string, ext: string, isDir: boolean): string {
  return isDir ? base : `${base}.${ext};1`;
}

/** Whether `name` is already a valid level-1 name (so no Rock Ridge is needed to keep it). */
function isLevel1(name: string, isDir: boolean): boolean {
  return isDir ? /^[A-Z0-9_]{1,8}$/.test(name) : /^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3})?$/.test(name);
}

function jolietExact(name: string): boolean {
  JOLIET_BAD.lastIndex = 0;
  return name.length <= JOLIET_MAX && !JOLIET_BAD.test(name);
}

function assignNames(dir: DirNode, joliet: boolean): void {
  const kids = [...dir.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const usedIso = new Set<string>();
  const usedJ = new Set<string>();
  for (const k of kids) {
    const isDir = k.kind === 'dir';
    // primary
    const { base, ext } = isoCandidate(k.name, isDir);
    let id = isoIdString(base, ext, isDir);
    for (let n = 1; usedIso.has(id); n++) {
      const suf = String(n);
      id = isoIdString(base.slice(0, Math.max(1, 8 - suf.length)) + suf, ext, isDir);
    }
    usedIso.add(id);
    k.isoId = Buffer.from(id, 'ascii');
    // joliet
    if (joliet) {
      let j = k.name.replace(JOLIET_BAD, '_');
      if (j.length > JOLIET_MAX) j = j.slice(0, JOLIET_MAX);
      if (/[\ud800-\udbff]$/.test(j)) j = j.slice(0, -1);
      let cand = j;
      for (let n = 1; usedJ.has(cand); n++) {
        const suf = `~${n}`;
        cand = j.slice(0, JOLIET_MAX - suf.length) + suf;
      }
      usedJ.add(cand);
      k.jolietId = ucs2be(cand);
    }
    if (k.kind === 'dir') assignNames(k, joliet);
  }
}

// ---------------------------------------------------------------------------------------------
// tree

function buildTree(files: IsoFile[], opts: { joliet: boolean; rockRidge: boolean }): { root: DirNode; fileList: FileNode[] } {
  const mkDir = (name: string, path: string, parent: DirNode | null): DirNode => ({
    kind: 'dir',
    name,
    path,
    parent,
    children: new Map(),
    mode: 0o755,
    isoId: Buffer.from([0]),
    jolietId: Buffer.from([0]),
    pNum: 0,
    jNum: 0,
    pExtent: 0,
    pSize: 0,
    jExtent: 0,
    jSize: 0,
    pRecords: [],
    jRecords: [],
  });
  const root = mkDir('', '', null);
  const fileList: FileNode[] = [];
  for (const f of files) {
    if (typeof f.path !== 'string') throw new IsoNameError(String(f.path), 'the path is not a string');
    const path = f.path.replace(/^\/+/, '');
    const parts = path.split('/');
    for (const p of parts) validateComponent(f.path, p);
    for (const p of parts) {
      if (!opts.rockRidge && !opts.joliet && !isLevel1(p, false))
        throw new IsoNameError(f.path, `'${p}' is not a level-1 ISO 9660 name and neither Rock Ridge nor Joliet is enabled`, 'enable rockRidge or joliet');
      if (!opts.rockRidge && opts.joliet && !jolietExact(p))
        throw new IsoNameError(f.path, `'${p}' cannot be a Joliet name (at most 64 characters, none of * / : ; ? \\)`, 'enable rockRidge, or rename the file');
    }
    let dir = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i]!;
      const existing = dir.children.get(name);
      if (existing && existing.kind === 'file') throw new IsoNameError(f.path, `'${parts.slice(0, i + 1).join('/')}' is both a file and a folder`);
      if (existing) dir = existing;
      else {
        const d = mkDir(name, parts.slice(0, i + 1).join('/'), dir);
        dir.children.set(name, d);
        dir = d;
      }
    }
    const name = parts[parts.length - 1]!;
    if (dir.children.has(name)) {
      const ex = dir.children.get(name)!;
      throw new IsoNameError(f.path, ex.kind === 'dir' ? 'it is both a file and a folder' : 'the path is given twice');
    }
    const data = typeof f.data === 'string' ? Buffer.from(f.data, 'utf8') : f.data;
    if (!(data instanceof Uint8Array)) throw new IsoNameError(f.path, 'its data is neither a string nor bytes', 'pass a string or a Uint8Array');
    if (data.length > 0xffffffff) throw new IsoTooLargeError(f.path, data.length);
    const mode = f.mode ?? 0o644;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
      throw new InvalidInputError('ISO_BAD_MODE', `cannot put '${f.path}' in the ISO image: mode ${String(f.mode)} is not a permission mask`, {
        hint: 'give permission bits such as 0o644',
      });
    const node: FileNode = { kind: 'file', name, path, data, mode, isoId: Buffer.alloc(0), jolietId: Buffer.alloc(0), extent: 0 };
    dir.children.set(name, node);
    fileList.push(node);
  }
  return { root, fileList };
}

/** Directories breadth first with sorted children: the path table order (ECMA-119 9.4). */
function pathTableOrder(root: DirNode, tree: 'p' | 'j'): DirNode[] {
  const out: DirNode[] = [root];
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    const subs = [...d.children.values()].filter((c): c is DirNode => c.kind === 'dir');
    subs.sort((a, b) => (tree === 'p' ? cmpIds(a.isoId.toString('latin1'), b.isoId.toString('latin1')) : cmpIds(ucs2String(a.jolietId), ucs2String(b.jolietId))));
    out.push(...subs);
  }
  return out;
}

function ucs2String(b: Buffer): string {
  return Buffer.from(b).swap16().toString('utf16le');
}

function sortedChildren(d: DirNode, tree: 'p' | 'j'): Node[] {
  const kids = [...d.children.values()];
  if (tree === 'p') kids.sort((a, b) => cmpIds(a.isoId.toString('latin1'), b.isoId.toString('latin1')));
  else kids.sort((a, b) => cmpIds(ucs2String(a.jolietId), ucs2String(b.jolietId)));
  return kids;
}

// ---------------------------------------------------------------------------------------------
// SUSP / RRIP entries

function suspEntry(sig: string, version: number, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.write(sig, 0, 'ascii');
  b[2] = 4 + body.length;
  b[3] = version;
  body.copy(b, 4);
  return b;
}
function spEntry(): Buffer {
  return suspEntry('SP', 1, Buffer.from([0xbe, 0xef, 0]));
}
function pxEntry(mode: number, nlink: number): Buffer {
  return suspEntry('PX', 1, Buffer.concat([both32Buf(mode), both32Buf(nlink), both32Buf(0), both32Buf(0)]));
}
/** NM entries for name bytes, each at most `first` bytes for the first entry and 250 after; CONTINUE set on all but the last. */
function nmChunks(bytes: Buffer, first = 250): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  let max = first;
  while (off < bytes.length || out.length === 0) {
    let end = Math.min(bytes.length, off + max);
    // never split a UTF-8 sequence between two entries
    while (end < bytes.length && end > off + 1 && (bytes[end]! & 0xc0) === 0x80) end--;
    const more = end < bytes.length;
    out.push(suspEntry('NM', 1, Buffer.concat([Buffer.from([more ? 1 : 0]), bytes.subarray(off, end)])));
    off = end;
    max = 250;
  }
  return out;
}

const ER_ID = 'RRIP_1991A';
const ER_DES = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const ER_SRC = 'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';
function erEntry(): Buffer {
  const head = Buffer.from([ER_ID.length, ER_DES.length, ER_SRC.length, 1]);
  return suspEntry('ER', 1, Buffer.concat([head, Buffer.from(ER_ID + ER_DES + ER_SRC, 'ascii')]));
}
const CE_LEN = 28;
function ceEntry(block: number, offset: number, length: number): Buffer {
  return suspEntry('CE', 1, Buffer.concat([both32Buf(block), both32Buf(offset), both32Buf(length)]));
}

function dirNlink(d: DirNode): number {
  let n = 2;
  for (const c of d.children.values()) if (c.kind === 'dir') n++;
  return n;
}

function planRecord(target: Node, id: Buffer, entries: Buffer[], forcedCont: Buffer[], name?: string): RecordPlan {
  const base = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const budget = 254 - base;
  const nameBytes = name !== undefined ? Buffer.from(name, 'utf8') : undefined;
  const all = nameBytes ? [...entries, ...nmChunks(nameBytes)] : entries;
  const total = all.reduce((s, e) => s + e.length, 0);
  let su: Buffer[] = all;
  let cont: Buffer[] = [];
  if (forcedCont.length || total > budget) {
    // Fixed entries first, then as much of the name as fits (NM with CONTINUE), the rest in a
    // continuation area, as xorriso does: readers that look for NM in the record itself see it.
    su = [];
    let used = 0;
    let i = 0;
    for (; i < entries.length; i++) {
      if (used + entries[i]!.length + CE_LEN > budget) break;
      su.push(entries[i]!);
      used += entries[i]!.length;
    }
    cont = entries.slice(i);
    if (nameBytes) {
      const room = budget - used - CE_LEN - 5;
      if (i === entries.length && room >= 8) {
        const chunks = nmChunks(nameBytes, room);
        su.push(chunks[0]!);
        const rest = chunks.length > 1 ? nameBytes.subarray(chunks[0]!.length - 5) : Buffer.alloc(0);
        if (rest.length) cont.push(...nmChunks(rest));
      } else cont.push(...nmChunks(nameBytes));
    }
    cont.push(...forcedCont);
  }
  let length = base + su.reduce((s, e) => s + e.length, 0) + (cont.length ? CE_LEN : 0);
  if (length % 2) length++;
  return { target, id, su, cont, contBlock: 0, contOffset: 0, length };
}

function planDirectory(d: DirNode, tree: 'p' | 'j', rr: boolean): RecordPlan[] {
  const plans: RecordPlan[] = [];
  const parent = d.parent ?? d;
  const isRoot = d.parent === null;
  if (tree === 'p' && rr) {
    plans.push(planRecord(d, Buffer.from([0]), [...(isRoot ? [spEntry()] : []), pxEntry(S_IFDIR | d.mode, dirNlink(d))], isRoot ? [erEntry()] : []));
    plans.push(planRecord(parent, Buffer.from([1]), [pxEntry(S_IFDIR | parent.mode, dirNlink(parent))], []));
  } else {
    plans.push(planRecord(d, Buffer.from([0]), [], []));
    plans.push(planRecord(parent, Buffer.from([1]), [], []));
  }
  for (const c of sortedChildren(d, tree)) {
    const id = tree === 'p' ? c.isoId : c.jolietId;
    const entries =
      tree === 'p' && rr
        ? [c.kind === 'dir' ? pxEntry(S_IFDIR | c.mode, dirNlink(c)) : pxEntry(S_IFREG | c.mode, 1)]
        : [];
    plans.push(planRecord(c, id, entries, [], tree === 'p' && rr ? c.name : undefined));
  }
  return plans;
}

/** Bytes a directory extent needs: records never cross a block boundary. */
function directorySize(plans: RecordPlan[]): number {
  let off = 0;
  for (const p of plans) {
    const inBlock = off % BLOCK;
    if (inBlock + p.length > BLOCK) off += BLOCK - inBlock;
    off += p.length;
  }
  return Math.ceil(off / BLOCK) * BLOCK;
}

function pathTableSize(dirs: DirNode[], tree: 'p' | 'j'): number {
  let n = 0;
  for (const d of dirs) {
    const id = d.parent === null ? 1 : (tree === 'p' ? d.isoId : d.jolietId).length;
    n += 8 + id + (id % 2);
  }
  return n;
}

function writePathTable(dirs: DirNode[], tree: 'p' | 'j', bigEndian: boolean): Buffer {
  const b = Buffer.alloc(pathTableSize(dirs, tree));
  let off = 0;
  for (const d of dirs) {
    const id = d.parent === null ? Buffer.from([0]) : tree === 'p' ? d.isoId : d.jolietId;
    const extent = tree === 'p' ? d.pExtent : d.jExtent;
    const parentNum = d.parent === null ? 1 : tree === 'p' ? d.parent.pNum : d.parent.jNum;
    b[off] = id.length;
    b[off + 1] = 0;
    if (bigEndian) {
      b.writeUInt32BE(extent, off + 2);
      b.writeUInt16BE(parentNum, off + 6);
    } else {
      b.writeUInt32LE(extent, off + 2);
      b.writeUInt16LE(parentNum, off + 6);
    }
    id.copy(b, off + 8);
    off += 8 + id.length + (id.length % 2);
  }
  return b;
}

function writeRecord(buf: Buffer, off: number, p: RecordPlan, tree: 'p' | 'j', date: Buffer): void {
  const t = p.target;
  const extent = t.kind === 'file' ? t.extent : tree === 'p' ? t.pExtent : t.jExtent;
  const size = t.kind === 'file' ? t.data.length : tree === 'p' ? t.pSize : t.jSize;
  buf[off] = p.length;
  buf[off + 1] = 0;
  both32(buf, off + 2, extent);
  both32(buf, off + 10, size);
  date.copy(buf, off + 18);
  buf[off + 25] = t.kind === 'dir' ? 0x02 : 0x00;
  buf[off + 26] = 0;
  buf[off + 27] = 0;
  both16(buf, off + 28, 1);
  buf[off + 32] = p.id.length;
  p.id.copy(buf, off + 33);
  let o = off + 33 + p.id.length + (p.id.length % 2 === 0 ? 1 : 0);
  for (const e of p.su) {
    e.copy(buf, o);
    o += e.length;
  }
  if (p.cont.length) {
    const len = p.cont.reduce((s, e) => s + e.length, 0);
    ceEntry(p.contBlock, p.contOffset, len).copy(buf, o);
  }
}

function writeDirectory(buf: Buffer, base: number, plans: RecordPlan[], tree: 'p' | 'j', date: Buffer): void {
  let off = 0;
  for (const p of plans) {
    const inBlock = off % BLOCK;
    if (inBlock + p.length > BLOCK) off += BLOCK - inBlock;
    writeRecord(buf, base + off, p, tree, date);
    off += p.length;
  }
}

function volumeDescriptor(
  type: 1 | 2,
  opts: { volumeId: string; totalBlocks: number; ptSize: number; ptL: number; ptM: number; root: DirNode; date: Date; joliet: boolean },
): Buffer {
  const b = Buffer.alloc(BLOCK);
  const ucs = type === 2;
  b[0] = type;
  b.write('CD001', 1, 'ascii');
  b[6] = 1;
  (ucs ? padUcs2('LINUX', 32) : padAscii('LINUX', 32)).copy(b, 8);
  (ucs ? padUcs2(opts.volumeId, 32) : padAscii(opts.volumeId, 32)).copy(b, 40);
  both32(b, 80, opts.totalBlocks);
  if (ucs) b.write('%/E', 88, 'ascii'); // UCS-2 level 3
  both16(b, 120, 1);
  both16(b, 124, 1);
  both16(b, 128, BLOCK);
  both32(b, 132, opts.ptSize);
  b.writeUInt32LE(opts.ptL, 140);
  b.writeUInt32BE(opts.ptM, 148);
  // root directory record (34 bytes, no system use)
  const r = opts.root;
  b[156] = 34;
  both32(b, 158, ucs ? r.jExtent : r.pExtent);
  both32(b, 166, ucs ? r.jSize : r.pSize);
  recDate(opts.date).copy(b, 174);
  b[181] = 0x02;
  both16(b, 184, 1);
  b[188] = 1;
  b[189] = 0;
  const text = (s: string, len: number) => (ucs ? padUcs2(s, len) : padAscii(s, len));
  text('', 128).copy(b, 190); // volume set
  text('', 128).copy(b, 318); // publisher
  text('', 128).copy(b, 446); // data preparer
  text('KUMO', 128).copy(b, 574); // application
  text('', 37).copy(b, 702);
  text('', 37).copy(b, 739);
  text('', 37).copy(b, 776);
  volDate(opts.date).copy(b, 813);
  volDate(opts.date).copy(b, 830);
  volDate(null).copy(b, 847);
  volDate(opts.date).copy(b, 864);
  b[881] = 1;
  return b;
}

function terminator(): Buffer {
  const b = Buffer.alloc(BLOCK);
  b[0] = 255;
  b.write('CD001', 1, 'ascii');
  b[6] = 1;
  return b;
}

export interface IsoLayout {
  /** Total image size in bytes. */
  size: number;
  /** Everything before the first file extent. */
  meta: Buffer;
  /** Each file's bytes and where they go (sorted by offset). */
  extents: { offset: number; data: Uint8Array }[];
}

function checkVolumeId(v: string, joliet: boolean): void {
  if (typeof v !== 'string' || v.length === 0)
    throw new InvalidInputError('ISO_BAD_LABEL', 'the ISO volume label is empty', { hint: "give a label such as 'cidata'" });
  if (v.length > 32 || (joliet && v.length > 16) || !/^[\x20-\x7e]+$/.test(v))
    throw new InvalidInputError('ISO_BAD_LABEL', `the ISO volume label '${v}' cannot be represented`, {
      hint: `use printable ASCII, at most ${joliet ? 16 : 32} characters`,
    });
}

/** Plan the image: every byte before the file data, and where each file goes. */
export function layoutIso(files: IsoFile[], options: IsoOptions): IsoLayout {
  const opts = { volumeId: options.volumeId, joliet: options.joliet ?? true, rockRidge: options.rockRidge ?? true };
  checkVolumeId(opts.volumeId, opts.joliet);
  const date = options.mtime ?? new Date();
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    throw new InvalidInputError('ISO_BAD_DATE', 'the ISO mtime is not a valid date', { hint: 'pass a valid Date' });
  const { root, fileList } = buildTree(files, opts);
  assignNames(root, opts.joliet);

  const pDirs = pathTableOrder(root, 'p');
  pDirs.forEach((d, i) => (d.pNum = i + 1));
  const jDirs = opts.joliet ? pathTableOrder(root, 'j') : [];
  jDirs.forEach((d, i) => (d.jNum = i + 1));
  if (pDirs.length > 0xffff) throw new InvalidInputError('ISO_TOO_MANY_DIRS', `too many folders for an ISO 9660 path table (${pDirs.length})`);

  for (const d of pDirs) {
    d.pRecords = planDirectory(d, 'p', opts.rockRidge);
    d.pSize = directorySize(d.pRecords);
  }
  for (const d of jDirs) {
    d.jRecords = planDirectory(d, 'j', false);
    d.jSize = directorySize(d.jRecords);
  }

  // allocate blocks
  let next = 16;
  const pvdAt = next++;
  const svdAt = opts.joliet ? next++ : 0;
  const termAt = next++;
  const ptBlocks = (n: number) => Math.ceil(n / BLOCK);
  const pPtSize = pathTableSize(pDirs, 'p');
  const pPtL = next;
  next += ptBlocks(pPtSize);
  const pPtM = next;
  next += ptBlocks(pPtSize);
  const jPtSize = opts.joliet ? pathTableSize(jDirs, 'j') : 0;
  const jPtL = opts.joliet ? next : 0;
  next += ptBlocks(jPtSize);
  const jPtM = opts.joliet ? next : 0;
  next += ptBlocks(jPtSize);
  // Each primary directory is followed by its own continuation areas (as xorriso lays them out):
  // sequential readers such as libarchive read a CE area only right after its directory.
  for (const d of pDirs) {
    d.pExtent = next;
    next += d.pSize / BLOCK;
    let contOff = 0;
    const contStart = next;
    for (const p of d.pRecords) {
      if (!p.cont.length) continue;
      const len = p.cont.reduce((s, e) => s + e.length, 0);
      if ((contOff % BLOCK) + len > BLOCK) contOff += BLOCK - (contOff % BLOCK);
      p.contBlock = contStart + Math.floor(contOff / BLOCK);
      p.contOffset = contOff % BLOCK;
      contOff += len;
    }
    next += Math.ceil(contOff / BLOCK);
  }
  for (const d of jDirs) {
    d.jExtent = next;
    next += d.jSize / BLOCK;
  }
  const metaBlocks = next;
  // files in path order, so the layout does not depend on argument order
  const ordered = [...fileList].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of ordered) {
    if (f.data.length === 0) {
      f.extent = 0;
      continue;
    }
    f.extent = next;
    next += Math.ceil(f.data.length / BLOCK);
  }
  const totalBlocks = next;
  if (totalBlocks > 0xffffffff) throw new IsoTooLargeError('(the image)', totalBlocks * BLOCK);

  const meta = Buffer.alloc(metaBlocks * BLOCK);
  volumeDescriptor(1, { volumeId: opts.volumeId, totalBlocks, ptSize: pPtSize, ptL: pPtL, ptM: pPtM, root, date, joliet: false }).copy(meta, pvdAt * BLOCK);
  if (opts.joliet)
    volumeDescriptor(2, { volumeId: opts.volumeId, totalBlocks, ptSize: jPtSize, ptL: jPtL, ptM: jPtM, root, date, joliet: true }).copy(meta, svdAt * BLOCK);
  terminator().copy(meta, termAt * BLOCK);
  writePathTable(pDirs, 'p', false).copy(meta, pPtL * BLOCK);
  writePathTable(pDirs, 'p', true).copy(meta, pPtM * BLOCK);
  if (opts.joliet) {
    writePathTable(jDirs, 'j', false).copy(meta, jPtL * BLOCK);
    writePathTable(jDirs, 'j', true).copy(meta, jPtM * BLOCK);
  }
  const rdate = recDate(date);
  for (const d of pDirs) writeDirectory(meta, d.pExtent * BLOCK, d.pRecords, 'p', rdate);
  for (const d of jDirs) writeDirectory(meta, d.jExtent * BLOCK, d.jRecords, 'j', rdate);
  for (const d of pDirs)
    for (const p of d.pRecords) {
      let o = p.contBlock * BLOCK + p.contOffset;
      for (const e of p.cont) {
        e.copy(meta, o);
        o += e.length;
      }
    }
  return {
    size: totalBlocks * BLOCK,
    meta,
    extents: ordered.filter((f) => f.data.length > 0).map((f) => ({ offset: f.extent * BLOCK, data: f.data })),
  };
}

/** Build the whole image in memory. Pure: the same files and options give the same bytes. */
export function buildIso(files: IsoFile[], opts: IsoOptions): Buffer {
  const l = layoutIso(files, opts);
  const out = Buffer.alloc(l.size);
  l.meta.copy(out, 0);
  for (const e of l.extents) out.set(e.data, e.offset);
  return out;
}

/**
 * Write the image to `outputPath` atomically: into a temp file beside it, fsync, rename. A failure
 * (bad name, full disk) leaves no partial output and no temp file behind. Files are written from
 * their own buffers, so the image is never held twice in memory.
 */
export async function writeIso(files: IsoFile[], outputPath: string, opts: IsoOptions): Promise<void> {
  const l = layoutIso(files, opts); // throws on bad input before anything touches the disk
  const tmp = tempPathFor(outputPath);
  let fh;
  try {
    fh = await open(tmp, 'wx', opts.outputMode ?? 0o644);
    await fh.write(l.meta, 0, l.meta.length, 0);
    for (const e of l.extents) await fh.write(e.data, 0, e.data.length, e.offset);
    await fh.truncate(l.size);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, outputPath);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw fsError(e, outputPath, 'write');
  }
  await fsyncDir(dirname(outputPath));
}

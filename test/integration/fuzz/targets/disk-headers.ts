/**
 * Fuzz target: kumo's own disk header readers (src/disk/qcow2.ts, src/disk/contained.ts) on
 * mutated qcow2 images (made by qemu-img: v2, v3, with a backing file, with extensions), and on
 * crafted xz / gzip / zstd / VMDK / VHD / VHDX / VDI headers. Each case writes one file and runs
 * parseQcow2Header, diskInfo, backingChain and assertSelfContained on it.
 * Properties: a qcow2 that assertSelfContained accepts has no backing file and no data file per
 * parseQcow2Header; sizes diskInfo reports are finite and not negative.
 */
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../../src/core/exec.js';
import { backingChain, diskInfo, parseQcow2Header } from '../../../../src/disk/qcow2.js';
import { assertSelfContained } from '../../../../src/disk/contained.js';
import { bytes, FuzzPropertyError, int, pick, wildNumber, type FuzzTarget, type Rng } from '../harness.js';

interface Ctx {
  dir: string;
  templates: Buffer[];
}

function setU32(b: Buffer, off: number, v: number): void {
  if (off + 4 <= b.length) b.writeUInt32BE(v >>> 0, off);
}
function setU64(b: Buffer, off: number, v: bigint): void {
  if (off + 8 <= b.length) b.writeBigUInt64BE(BigInt.asUintN(64, v), off);
}
const wild64 = (r: Rng): bigint => pick(r, [0n, 1n, 512n, 65536n, 0x10000n * BigInt(int(r, 64)), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(int(r, 2 ** 31))]);

function mutateQcow2(r: Rng, t: Buffer): Buffer {
  let b = Buffer.from(t);
  const rounds = 1 + int(r, 6);
  for (let k = 0; k < rounds; k++) {
    switch (int(r, 9)) {
      case 0: // flip bytes in the header
        for (let j = int(r, 8); j >= 0; j--) b[int(r, Math.min(b.length, 512))] = int(r, 256);
        break;
      case 1: // a 32-bit field set to a wild value
        setU32(b, pick(r, [4, 16, 20, 32, 36, 56, 60, 96, 100]), wildNumber(r));
        break;
      case 2: // a 64-bit field set to a wild value
        setU64(b, pick(r, [8, 24, 40, 48, 64, 72, 80, 88]), wild64(r));
        break;
      case 3: // truncate
        b = b.subarray(0, int(r, b.length + 1));
        break;
      case 4: { // a header extension of a random type and length after the header
        const off = b.length >= 104 ? b.readUInt32BE(100) % 4096 : 104;
        setU32(b, off, pick(r, [0, 0xe2792aca, 0x6803f857, 0x23852875, 0x0537be77, 0x44415441, int(r, 2 ** 32)]));
        setU32(b, off + 4, pick(r, [0, 1, 8, 100, 65536, 2 ** 32 - 1, int(r, 5000)]));
        for (let j = 0; j < int(r, 64) && off + 8 + j < b.length; j++) b[off + 8 + j] = int(r, 256);
        break;
      }
      case 5: // a backing file name somewhere
        setU64(b, 8, BigInt(pick(r, [0, 104, 200, 512, 4000, 65530, int(r, 70000)])));
        setU32(b, 16, pick(r, [0, 1, 10, 1023, 1024, 65536, int(r, 3000)]));
        break;
      case 6: // cluster bits at the edges
        setU32(b, 20, pick(r, [0, 8, 9, 12, 16, 21, 22, 31, 32, 2 ** 32 - 1]));
        break;
      case 7: // incompatible feature bits (dirty, corrupt, data file, compression, extended L2)
        setU64(b, 72, BigInt(int(r, 32)) | (r() < 0.1 ? 1n << BigInt(int(r, 64)) : 0n));
        break;
      default: // random tail
        b = Buffer.concat([b, bytes(r, int(r, 2048))]);
    }
  }
  return b;
}

function xzLike(r: Rng): Buffer {
  // stream header, junk, an index, a footer whose backward size and flags are drawn at random
  const head = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0, 0, 0, 0]);
  const idx = Buffer.concat([Buffer.from([0]), bytes(r, int(r, 40))]);
  if (r() < 0.5) for (let i = 1; i < idx.length; i++) idx[i] = 0x80 | int(r, 128); // endless varints
  const foot = Buffer.alloc(12);
  foot.writeUInt32LE(pick(r, [0, 1, Math.max(0, idx.length / 4 - 1), 2 ** 32 - 1, int(r, 2 ** 32)]) >>> 0, 4);
  foot.write('YZ', 10, 'latin1');
  const parts = [head, bytes(r, int(r, 64)), idx, foot];
  return Buffer.concat(parts).subarray(0, r() < 0.2 ? int(r, 40) : undefined);
}

function otherFormat(r: Rng): Buffer {
  switch (int(r, 7)) {
    case 0:
      return xzLike(r);
    case 1: {
      const b = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), bytes(r, int(r, 64))]);
      return b;
    }
    case 2: {
      const b = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), bytes(r, int(r, 20))]);
      return b;
    }
    case 3: { // VMDK: a text descriptor, or a KDMV header with a random embedded descriptor
      const lines = ['# Disk DescriptorFile', 'version=1', `parentFileNameHint="${pick(r, ['', '../x', '/etc/passwd'])}"`, `RW ${int(r, 1e6)} ${pick(r, ['SPARSE', 'FLAT', 'ZERO', 'VMFS'])} "${pick(r, ['a.vmdk', '/etc/shadow', ''])}"`];
      const text = lines.filter(() => r() < 0.7).join(pick(r, ['\n', '\r\n', '\0']));
      if (r() < 0.4) return Buffer.from(text, 'latin1');
      const h = Buffer.alloc(512 + int(r, 12000));
      h.write('KDMV', 0, 'latin1');
      h.writeBigUInt64LE(wild64(r), 12);
      h.writeBigUInt64LE(BigInt(pick(r, [0, 1, 2, 20, int(r, 100)])), 28);
      h.writeBigUInt64LE(wild64(r) & 0xffffffffn, 36);
      h.write(text, 512, 'latin1');
      return h;
    }
    case 4: { // VHD footer
      const size = pick(r, [512, 1024, 4096, 512 * int(r, 20)]);
      const b = Buffer.alloc(size);
      const f = b.subarray(Math.max(0, size - 512));
      f.write('conectix', 0, 'latin1');
      if (f.length >= 64) f.writeUInt32BE(pick(r, [2, 3, 4, int(r, 10)]), 60);
      if (f.length >= 56) f.writeBigUInt64BE(wild64(r), 48);
      return b;
    }
    case 5: { // VHDX with a region table and a metadata region at random offsets
      const b = Buffer.alloc(256 * 1024 + int(r, 64 * 1024));
      b.write('vhdxfile', 0, 'latin1');
      const rt = 192 * 1024;
      b.write('regi', rt, 'latin1');
      b.writeUInt32LE(pick(r, [0, 1, 2, 2047, 2 ** 32 - 1]) >>> 0, rt + 8);
      Buffer.from('06a27c8b90479a4bb8fe575f050f886e', 'hex').copy(b, rt + 16);
      b.writeBigUInt64LE(BigInt(pick(r, [0, 1024, 200 * 1024, b.length - 8, b.length + 10, int(r, 2 ** 31)])), rt + 32);
      const m = 200 * 1024;
      b.write('metadata', m, 'latin1');
      b.writeUInt16LE(pick(r, [0, 1, 2047, 65535]), m + 10);
      Buffer.from('3767a1caa3fa434db3b633f0aa44e76b', 'hex').copy(b, m + 32);
      b.writeUInt32LE(int(r, 2 ** 32) >>> 0, m + 48);
      return r() < 0.3 ? b.subarray(0, int(r, b.length)) : b;
    }
    default: { // VDI
      const b = Buffer.alloc(pick(r, [0x44, 0x180, 0x200, 1024]));
      b.writeUInt32LE(0xbeda107f, 0x40);
      if (b.length >= 0x178) b.writeBigUInt64LE(wild64(r), 0x170);
      return b;
    }
  }
}

const target: FuzzTarget<Ctx> = {
  cases: 2500,
  longCases: 20000,
  async setup() {
    const dir = await mkdtemp(join(tmpdir(), 'kumo-fuzz-disk-'));
    const templates: Buffer[] = [];
    const make = async (name: string, args: string[]) => {
      const p = join(dir, name);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, p, '64M']);
      templates.push((await readFile(p)).subarray(0, 4096));
    };
    await make('v3.qcow2', []);
    await make('v2.qcow2', ['-o', 'compat=0.10']);
    await make('small.qcow2', ['-o', 'cluster_size=512']);
    await writeFile(join(dir, 'base.raw'), Buffer.alloc(1024 * 1024));
    await make('backed.qcow2', ['-b', 'base.raw', '-F', 'raw']);
    await make('zstd.qcow2', ['-o', 'compression_type=zstd']);
    return { dir, templates };
  },
  async teardown(ctx) {
    await rm(ctx.dir, { recursive: true, force: true });
  },
  async run(r, ctx, i) {
    const qcow = r() < 0.7;
    const data = qcow ? mutateQcow2(r, pick(r, ctx.templates)) : otherFormat(r);
    const path = join(ctx.dir, `case-${i % 8}.img`);
    await writeFile(path, data);
    let parsed: ReturnType<typeof parseQcow2Header> | undefined;
    try {
      parsed = parseQcow2Header(data, path, data.length);
    } catch (e) {
      parsed = undefined;
      if (!(e instanceof Error) || !('code' in e)) throw e;
    }
    let accepted = false;
    try {
      await assertSelfContained(path);
      accepted = true;
    } catch (e) {
      if (!(e instanceof Error) || !('code' in e) || typeof (e as { kind?: unknown }).kind !== 'string') throw e;
    }
    if (accepted && parsed && (parsed.backingFile !== undefined || parsed.dataFile !== undefined))
      throw new FuzzPropertyError(`assertSelfContained accepted a qcow2 whose header names ${parsed.backingFile ?? parsed.dataFile}`);
    await backingChain(path).catch((e) => {
      if (!(e instanceof Error) || typeof (e as { kind?: unknown }).kind !== 'string') throw e;
    });
    const info = await diskInfo(path);
    for (const k of ['virtualSize', 'actualSize', 'fileSize'] as const)
      if (!Number.isFinite(info[k]) || info[k] < 0) throw new FuzzPropertyError(`diskInfo's ${k} is ${info[k]}`);
    return accepted ? 'self-contained' : 'refused';
  },
};
export default target;

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQcow2Header, sniffBytes, resolveBackingPath, qemuImgArgv, QCOW2_EXT_BACKING_FORMAT } from '../../../src/disk/index.js';
import { KumoError } from '../../../src/core/errors.js';

/** A qcow2 header as qemu-img writes it (v2 or v3), with a backing file and its format extension. */
function header(o: { version: 2 | 3; backing?: string; backingFormat?: string; size?: bigint; clusterBits?: number }): Buffer {
  const cluster = 2 ** (o.clusterBits ?? 16);
  const b = Buffer.alloc(cluster);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(o.version, 4);
  b.writeUInt32BE(o.clusterBits ?? 16, 20);
  b.writeBigUInt64BE(o.size ?? 10n * 1024n ** 3n, 24);
  b.writeUInt32BE(1, 36); // l1_size
  b.writeBigUInt64BE(BigInt(3 * cluster), 40); // l1 offset
  b.writeBigUInt64BE(BigInt(cluster), 48); // refcount table
  b.writeUInt32BE(1, 56);
  let off = 72;
  if (o.version === 3) {
    b.writeUInt32BE(4, 96);
    b.writeUInt32BE(112, 100);
    b[104] = 0;
    off = 112;
  }
  if (o.backingFormat) {
    const f = Buffer.from(o.backingFormat);
    b.writeUInt32BE(QCOW2_EXT_BACKING_FORMAT, off);
    b.writeUInt32BE(f.length, off + 4);
    f.copy(b, off + 8);
    off += 8 + Math.ceil(f.length / 8) * 8;
  }
  // feature name table, to exercise skipping an unknown-to-us extension
  b.writeUInt32BE(0x6803f857, off);
  b.writeUInt32BE(48, off + 4);
  off += 8 + 48;
  b.writeUInt32BE(0, off); // end
  off += 8;
  if (o.backing) {
    const n = Buffer.from(o.backing);
    b.writeBigUInt64BE(BigInt(off), 8);
    b.writeUInt32BE(n.length, 16);
    n.copy(b, off);
  }
  return b;
}

test('parses v2 and v3 headers with backing file and backing format', () => {
  const v3 = parseQcow2Header(header({ version: 3, backing: '../base.qcow2', backingFormat: 'qcow2' }), 'x');
  assert.equal(v3.version, 3);
  assert.equal(v3.virtualSize, 10 * 1024 ** 3);
  assert.equal(v3.clusterSize, 65536);
  assert.equal(v3.backingFile, '../base.qcow2');
  assert.equal(v3.backingFormat, 'qcow2');
  assert.equal(v3.headerLength, 112);
  assert.deepEqual(v3.extensions.map((e) => e.type), [QCOW2_EXT_BACKING_FORMAT, 0x6803f857]);
  const v2 = parseQcow2Header(header({ version: 2, backing: '/abs/base.img', backingFormat: 'raw', clusterBits: 12 }), 'x');
  assert.equal(v2.version, 2);
  assert.equal(v2.clusterSize, 4096);
  assert.equal(v2.backingFile, '/abs/base.img');
  assert.equal(v2.backingFormat, 'raw');
  const none = parseQcow2Header(header({ version: 3 }), 'x');
  assert.equal(none.backingFile, undefined);
});

test('sniffs formats by magic bytes', () => {
  const pad = (s: Buffer | string, n = 4096) => {
    const b = Buffer.alloc(n);
    Buffer.from(s as string, typeof s === 'string' ? 'latin1' : undefined).copy(b);
    return b;
  };
  assert.equal(sniffBytes(header({ version: 3 }), 1 << 20), 'qcow2');
  assert.equal(sniffBytes(pad('KDMV'), 1 << 20), 'vmdk');
  assert.equal(sniffBytes(pad('# Disk DescriptorFile\n'), 1 << 20), 'vmdk');
  assert.equal(sniffBytes(pad('vhdxfile'), 1 << 20), 'vhdx');
  assert.equal(sniffBytes(pad('conectix'), 1 << 20), 'vhd');
  assert.equal(sniffBytes(pad('\xfd7zXZ\0'), 1000), 'xz');
  assert.equal(sniffBytes(pad('\x1f\x8b\x08'), 1000), 'gzip');
  assert.equal(sniffBytes(pad('\x28\xb5\x2f\xfd'), 1000), 'zstd');
  assert.equal(sniffBytes(pad('QED\0'), 1 << 20), 'qed');
  const fixedVhd = pad('');
  assert.equal(sniffBytes(pad(''), 1 << 20, Buffer.concat([Buffer.from('conectix'), Buffer.alloc(504)])), 'vhd');
  assert.equal(sniffBytes(fixedVhd, 1 << 20, Buffer.alloc(512), Buffer.from('CD001')), 'iso');
  assert.equal(sniffBytes(Buffer.alloc(4096), 1 << 20), 'raw');
  assert.equal(sniffBytes(Buffer.from('hello, this is a text file\n'.repeat(200)).subarray(0, 4096), 4096), 'unknown', 'text');
  assert.equal(sniffBytes(Buffer.alloc(100), 100), 'unknown', 'not a whole number of sectors');
  assert.equal(sniffBytes(Buffer.alloc(0), 0), 'unknown');
});

test('relative backing names resolve against the folder of the image that names them', () => {
  assert.equal(resolveBackingPath('/srv/vms/a/overlay.qcow2', '../base/b.qcow2'), '/srv/vms/a/../base/b.qcow2', 'no lexical folding, like QEMU');
  assert.equal(resolveBackingPath('/srv/vms/a/overlay.qcow2', 'b.qcow2'), '/srv/vms/a/b.qcow2');
  assert.equal(resolveBackingPath('/srv/vms/a/overlay.qcow2', '/abs/b.qcow2'), '/abs/b.qcow2');
  assert.equal(resolveBackingPath('/srv/o.qcow2', 'file:/abs/b.qcow2'), '/abs/b.qcow2');
  assert.throws(() => resolveBackingPath('/srv/o.qcow2', 'nbd://host/export'), (e: unknown) => e instanceof KumoError && e.code === 'BACKING_PROTOCOL');
});

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

test('fuzz: random, truncated and mutated headers yield typed errors only', () => {
  const r = prng(42);
  const good = [header({ version: 3, backing: 'base.qcow2', backingFormat: 'qcow2' }), header({ version: 2, backing: '/b', clusterBits: 12 })];
  let typed = 0;
  let parsed = 0;
  const tryParse = (b: Buffer) => {
    try {
      parseQcow2Header(b, 'fuzz.qcow2', b.length);
      parsed++;
    } catch (e) {
      assert.ok(e instanceof KumoError, `untyped error: ${(e as Error)?.stack}`);
      assert.match(e.message, /fuzz\.qcow2/);
      typed++;
    }
  };
  for (let i = 0; i < 3000; i++) {
    const g = good[i % 2]!;
    // truncation
    tryParse(g.subarray(0, Math.floor(r() * 400)));
    // mutation of header bytes (keep the magic half the time)
    const m = Buffer.from(g.subarray(0, 512 + Math.floor(r() * (g.length - 512))));
    const flips = 1 + Math.floor(r() * 8);
    for (let k = 0; k < flips; k++) m[(r() < 0.5 ? 4 : 0) + Math.floor(r() * 200)] = Math.floor(r() * 256);
    tryParse(m);
    // random bytes, with the magic
    const rnd = Buffer.alloc(Math.floor(r() * 2000));
    for (let k = 0; k < rnd.length; k++) rnd[k] = Math.floor(r() * 256);
    if (rnd.length >= 4 && r() < 0.7) rnd.writeUInt32BE(0x514649fb, 0);
    if (rnd.length >= 8 && r() < 0.5) rnd.writeUInt32BE(2 + Math.floor(r() * 2), 4);
    tryParse(rnd);
  }
  assert.ok(typed > 1000 && parsed > 0, `typed ${typed}, parsed ${parsed}`);
});

test('qemu-img argv: overlays always record the backing format', () => {
  assert.deepEqual(qemuImgArgv.createOverlay('/o.qcow2', { backing: 'b.qcow2', backingFormat: 'qcow2', size: 1024 }), ['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', '/o.qcow2', '1024']);
  assert.deepEqual(qemuImgArgv.rebase('/o', { backing: null }), ['rebase', '-q', '-b', '', '/o']);
  assert.deepEqual(qemuImgArgv.rebase('/o', { backing: '/n', backingFormat: 'raw', unsafe: true }), ['rebase', '-q', '-u', '-b', '/n', '-F', 'raw', '/o']);
  assert.deepEqual(qemuImgArgv.convert('a', 'b', { outFormat: 'qcow2', inFormat: 'raw', compress: true, progress: true }), ['convert', '-p', '-f', 'raw', '-O', 'qcow2', '-c', 'a', 'b']);
});

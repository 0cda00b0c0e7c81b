import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildIso, IsoNameError, type IsoFile } from '../../../src/seed/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { randomTree } from './random-tree.js';

const B = 2048;
const MTIME = new Date('2024-05-06T07:08:09Z');

/** A tiny independent ISO reader for structural checks: walks the primary tree using Rock Ridge NM names, or the Joliet tree. */
function readTree(iso: Buffer, tree: 'rr' | 'joliet'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let vd = -1;
  for (let s = 16; s < 32; s++) {
    const t = iso[s * B]!;
    if (t === 255) break;
    if ((tree === 'rr' && t === 1) || (tree === 'joliet' && t === 2)) vd = s * B;
  }
  assert.ok(vd > 0, `no ${tree} volume descriptor`);
  assert.equal(iso.toString('latin1', vd + 1, vd + 6), 'CD001');
  const rootExt = iso.readUInt32LE(vd + 156 + 2);
  const rootLen = iso.readUInt32LE(vd + 156 + 10);
  const walk = (ext: number, len: number, prefix: string) => {
    let off = ext * B;
    const end = off + len;
    while (off < end) {
      const rl = iso[off]!;
      if (rl === 0) {
        off = (Math.floor(off / B) + 1) * B;
        continue;
      }
      assert.ok(Math.floor(off / B) === Math.floor((off + rl - 1) / B), 'a directory record crosses a block boundary');
      assert.equal(rl % 2, 0, 'odd record length');
      // both-endian fields agree
      assert.equal(iso.readUInt32LE(off + 2), iso.readUInt32BE(off + 6));
      assert.equal(iso.readUInt32LE(off + 10), iso.readUInt32BE(off + 14));
      assert.equal(iso.readUInt16LE(off + 28), iso.readUInt16BE(off + 30));
      const idLen = iso[off + 32]!;
      const id = iso.subarray(off + 33, off + 33 + idLen);
      const isDir = (iso[off + 25]! & 2) !== 0;
      const e = iso.readUInt32LE(off + 2);
      const l = iso.readUInt32LE(off + 10);
      if (!(idLen === 1 && (id[0] === 0 || id[0] === 1))) {
        let name: string;
        if (tree === 'joliet') name = Buffer.from(id).swap16().toString('utf16le');
        else {
          // SUSP: NM entries, possibly continued through CE
          let su = iso.subarray(off + 33 + idLen + (idLen % 2 === 0 ? 1 : 0), off + rl);
          const nm: Buffer[] = [];
          for (let guard = 0; guard < 8 && su.length >= 4; guard++) {
            let next: Buffer | undefined;
            let p = 0;
            while (p + 4 <= su.length) {
              const sig = su.toString('latin1', p, p + 2);
              const elen = su[p + 2]!;
              if (elen < 4) break;
              if (sig === 'NM') nm.push(su.subarray(p + 5, p + elen));
              if (sig === 'CE') next = iso.subarray(su.readUInt32LE(p + 4) * B + su.readUInt32LE(p + 12), su.readUInt32LE(p + 4) * B + su.readUInt32LE(p + 12) + su.readUInt32LE(p + 20));
              p += elen;
            }
            if (!next) break;
            su = next;
          }
          name = Buffer.concat(nm).toString('utf8');
        }
        const path = prefix + name;
        if (isDir) walk(e, l, path + '/');
        else out.set(path, iso.subarray(e * B, e * B + l));
      }
      off += rl;
    }
  };
  walk(rootExt, rootLen, '');
  return out;
}

function bytesOf(f: IsoFile): Buffer {
  return typeof f.data === 'string' ? Buffer.from(f.data) : Buffer.from(f.data);
}

test('the same input gives the same bytes, whatever the order of the files', () => {
  const files: IsoFile[] = [
    { path: 'user-data', data: '#cloud-config\n' },
    { path: 'meta-data', data: 'instance-id: a\n' },
    { path: 'x/y/z.txt', data: 'z' },
  ];
  const a = buildIso(files, { volumeId: 'cidata', mtime: MTIME });
  const b = buildIso([...files].reverse(), { volumeId: 'cidata', mtime: MTIME });
  assert.ok(a.equals(b));
  assert.equal(a.length % B, 0);
});

test('volume descriptors: label, sizes and both-endian fields', () => {
  const iso = buildIso([{ path: 'a', data: 'x' }], { volumeId: 'config-2', mtime: MTIME });
  const pvd = 16 * B;
  assert.equal(iso[pvd], 1);
  assert.equal(iso.toString('latin1', pvd + 40, pvd + 72).trimEnd(), 'config-2');
  assert.equal(iso.readUInt32LE(pvd + 80), iso.length / B);
  assert.equal(iso.readUInt32BE(pvd + 84), iso.length / B);
  assert.equal(iso.readUInt16LE(pvd + 128), 2048);
  assert.equal(iso.toString('latin1', pvd + 813, pvd + 829), '2024050607080900');
  const svd = 17 * B;
  assert.equal(iso[svd], 2);
  assert.equal(iso.toString('latin1', svd + 88, svd + 91), '%/E');
  assert.equal(Buffer.from(iso.subarray(svd + 40, svd + 56)).swap16().toString('utf16le'), 'config-2');
  assert.equal(iso[18 * B], 255);
  // path table size both-endian, L and M tables agree
  const ptSize = iso.readUInt32LE(pvd + 132);
  assert.equal(ptSize, iso.readUInt32BE(pvd + 136));
  const l = iso.readUInt32LE(pvd + 140);
  const m = iso.readUInt32BE(pvd + 148);
  assert.equal(iso.readUInt32LE(l * B + 2), iso.readUInt32BE(m * B + 2));
  // the root '.' record starts with the SUSP SP entry, and an ER is reachable
  const root = iso.readUInt32LE(pvd + 158);
  assert.equal(iso.toString('latin1', root * B + 34, root * B + 36), 'SP');
  assert.ok(iso.includes(Buffer.from('RRIP_1991A')));
});

test('Rock Ridge and Joliet trees hold the exact names and the same contents', () => {
  const files: IsoFile[] = [
    { path: 'openstack/latest/meta_data.json', data: '{"uuid":"x"}' },
    { path: 'openstack/latest/user_data', data: '#cloud-config\n' },
    { path: 'ec2/latest/meta-data.json', data: '{}' },
    { path: 'Mixed Case ünïcødé name.txt', data: 'u' },
    { path: 'n'.repeat(255), data: 'long' },
    { path: 'same-prefix-1', data: '1' },
    { path: 'same-prefix-2', data: '2' },
    { path: 'empty', data: '' },
  ];
  const iso = buildIso(files, { volumeId: 'cidata', mtime: MTIME });
  const rr = readTree(iso, 'rr');
  for (const f of files) assert.deepEqual(rr.get(f.path), bytesOf(f), f.path);
  assert.equal(rr.size, files.length);
  const j = readTree(iso, 'joliet');
  for (const f of files) if (f.path.length <= 64) assert.deepEqual(j.get(f.path), bytesOf(f), f.path);
  // the 255-character name is shortened in Joliet, not lost
  assert.ok([...j.keys()].some((k) => k.startsWith('nnnn') && k.length === 64));
});

test('property: random trees read back exactly through Rock Ridge (200 seeds)', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const files = randomTree(seed);
    const iso = buildIso(files, { volumeId: 'cidata', mtime: MTIME });
    const rr = readTree(iso, 'rr');
    assert.equal(rr.size, files.length, `seed ${seed}`);
    for (const f of files) assert.deepEqual(rr.get(f.path), bytesOf(f), `seed ${seed}: ${f.path}`);
    assert.ok(buildIso([...files].reverse(), { volumeId: 'cidata', mtime: MTIME }).equals(iso), `seed ${seed}: not deterministic`);
  }
});

test('names that cannot be represented are refused with a typed error naming the path', () => {
  const bad: [string, RegExp][] = [
    ['a//b', /empty path component/],
    ['a/../b', /'\.\.' is not allowed/],
    ['./x', /'\.' is not allowed/],
    ['nul\0byte', /NUL/],
    ['x'.repeat(256), /longer than 255 bytes/],
    ['ok/', /empty path component/],
  ];
  for (const [p, re] of bad) {
    assert.throws(() => buildIso([{ path: p, data: 'x' }], { volumeId: 'cidata' }), (e: unknown) => e instanceof IsoNameError && re.test(e.message) && e.code === 'ISO_BAD_NAME', p);
  }
  assert.throws(() => buildIso([{ path: 'a', data: '1' }, { path: 'a', data: '2' }], { volumeId: 'v' }), /given twice/);
  assert.throws(() => buildIso([{ path: 'a', data: '1' }, { path: 'a/b', data: '2' }], { volumeId: 'v' }), /both a file and a folder/);
  assert.throws(() => buildIso([{ path: 'user-data', data: '1' }], { volumeId: 'v', rockRidge: false, joliet: false }), /not a level-1/);
  assert.throws(() => buildIso([{ path: 'a:b', data: '1' }], { volumeId: 'v', rockRidge: false }), /cannot be a Joliet name/);
  assert.throws(() => buildIso([], { volumeId: 'x'.repeat(17) }), (e: unknown) => e instanceof KumoError && e.code === 'ISO_BAD_LABEL');
  assert.throws(() => buildIso([], { volumeId: '' }), (e: unknown) => e instanceof KumoError && e.code === 'ISO_BAD_LABEL');
  // without Joliet, a 32-character label is fine; level-1 names need no extension
  assert.ok(buildIso([{ path: 'README.TXT', data: 'x' }], { volumeId: 'x'.repeat(32), joliet: false, rockRidge: false }).length > 0);
});

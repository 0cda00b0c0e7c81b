import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmdkExtents, vmdkParent } from '../../../src/disk/contained.js';
import { assertSelfContained } from '../../../src/disk/index.js';
import { KumoError } from '../../../src/core/errors.js';

test('VMDK descriptor extents and parent are read from the text', () => {
  const d = '# Disk DescriptorFile\nversion=1\ncreateType="twoGbMaxExtentFlat"\r\nRW 100 FLAT "/etc/hostname" 0\nRDONLY 8 SPARSE "a.vmdk"\n  NOACCESS 4 ZERO\n# RW 1 FLAT "commented"\n';
  assert.deepEqual(vmdkExtents(d), [
    { access: 'RW', type: 'FLAT', file: '/etc/hostname' },
    { access: 'RDONLY', type: 'SPARSE', file: 'a.vmdk' },
    { access: 'NOACCESS', type: 'ZERO' },
  ]);
  assert.equal(vmdkParent(d), undefined);
  assert.equal(vmdkParent('parentCID=1\nparentFileNameHint="../keys/id"\n'), '../keys/id');
  assert.ok(vmdkParent('parentFileNameHint=oops'), 'an unquoted hint still counts as a parent');
});

/** A minimal qcow2 v3 header (one 64 KiB cluster) with the given incompatible feature bits. */
function qcow2(incompatible: bigint): Buffer {
  const b = Buffer.alloc(65536 * 4);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20);
  b.writeBigUInt64BE(1n << 30n, 24);
  b.writeBigUInt64BE(65536n * 3n, 40);
  b.writeBigUInt64BE(65536n, 48);
  b.writeUInt32BE(1, 56);
  b.writeBigUInt64BE(incompatible, 72);
  b.writeUInt32BE(4, 96);
  b.writeUInt32BE(104, 100);
  return b;
}

test('qcow2: the external data file bit alone is refused; a plain header and raw pass', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-contained-'));
  try {
    await writeFile(join(dir, 'plain.qcow2'), qcow2(0n));
    await assertSelfContained(join(dir, 'plain.qcow2'));
    await writeFile(join(dir, 'ext.qcow2'), qcow2(4n));
    await assert.rejects(assertSelfContained(join(dir, 'ext.qcow2'), 'qcow2', 'ext.qcow2'), (e: unknown) => {
      assert.ok(e instanceof KumoError);
      assert.equal(e.code, 'IMAGE_NOT_SELF_CONTAINED');
      assert.match(e.message, /^ext\.qcow2 is not a self-contained disk image: it references an external data file$/);
      return true;
    });
    await writeFile(join(dir, 'disk.raw'), Buffer.alloc(4096, 1));
    await assertSelfContained(join(dir, 'disk.raw'));
    await writeFile(join(dir, 'old.qed'), Buffer.concat([Buffer.from('QED\0'), Buffer.alloc(4092)]));
    await assert.rejects(assertSelfContained(join(dir, 'old.qed')), { code: 'IMAGE_NOT_SELF_CONTAINED' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

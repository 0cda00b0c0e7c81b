/** Fuzz: kumo's disk header readers on mutated and crafted images (targets/disk-headers.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

test('fuzz: qcow2 / xz / VMDK / VHD(X) header readers only return or throw typed errors, never hang', async () => {
  const r = await runFuzz('disk-headers');
  console.log(`disk-headers: ${r.cases} cases, seed ${r.seed}: ${JSON.stringify(r.tally)}`);
  assert.ok(r.cases >= 1);
  // The cases reach past the readers' first checks: some images are read to the end.
  if (r.cases >= 1000) assert.ok(Object.keys(r.tally).length >= 4, JSON.stringify(r.tally));
});

test('found by the fuzzer: a 5-byte zstd file (frame header cut short) has virtual size 0, not undefined', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { diskInfo } = await import('../../../src/disk/qcow2.js');
  const d = await mkdtemp(join(tmpdir(), 'kumo-fuzz-zstd-'));
  try {
    await writeFile(join(d, 'x.zst'), Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x30]));
    const info = await diskInfo(join(d, 'x.zst'));
    assert.equal(info.format, 'zstd');
    assert.equal(info.virtualSize, 0);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUrl, looksLikePath, matchRecords } from '../../../src/image/resolve.js';
import { INSTANCE_DISK_SOURCE, registerDiskSource, scanUsage } from '../../../src/image/usage.js';
import { pathsFor } from '../../../src/config/paths.js';
import type { ImageRecord } from '../../../src/image/record.js';

const rec = (id: string, o: Partial<ImageRecord> = {}): ImageRecord => ({
  id: id.padEnd(64, '0'),
  aliases: [],
  path: `/x/${id}.qcow2`,
  format: 'qcow2',
  virtualSize: 1,
  size: 1,
  digest: `sha256:${id}`,
  arch: 'x86_64',
  source: { kind: 'import' },
  fetchedAt: '2026-01-01T00:00:00Z',
  ...o,
});

test('references are told apart without I/O: URL, path, stored id/name/alias', () => {
  assert.ok(isUrl('https://h/x.qcow2') && isUrl('HTTP://h/x'));
  assert.ok(!isUrl('debian-12'));
  for (const p of ['/a', './a', '../a', '~/a', 'file:///a', 'dir/a.qcow2']) assert.ok(looksLikePath(p), p);
  assert.ok(!looksLikePath('debian-12') && !looksLikePath('ubuntu:24.04'));
  const records = [rec('aaaaaaaa1', { name: 'golden' }), rec('aaaaaaaa2', { aliases: ['debian-12'], arch: 'aarch64' }), rec('bbbb', { aliases: ['debian-12'] })];
  assert.equal(matchRecords(records, 'golden')?.id, records[0]!.id);
  assert.equal(matchRecords(records, 'debian-12', 'aarch64')?.id, records[1]!.id);
  assert.equal(matchRecords(records, 'debian-12', 'x86_64')?.id, records[2]!.id);
  assert.equal(matchRecords(records, 'bbbb0000')?.id, records[2]!.id);
  assert.throws(() => matchRecords(records, 'aaaaaaaa'), { code: 'AMBIGUOUS_IMAGE' });
  assert.equal(matchRecords(records, 'nothing'), undefined);
});

test('with no disk source registered, usage is unknown (never "nothing is in use")', async () => {
  await assert.rejects(scanUsage(pathsFor('/nonexistent/kumo-home'), []), { code: 'USAGE_UNKNOWN' });
});

test("a driver's disk source alone does not make usage known: the instances' source is required", async () => {
  registerDiskSource(async () => [], 'some-driver');
  await assert.rejects(scanUsage(pathsFor('/nonexistent/kumo-home'), []), { code: 'USAGE_UNKNOWN' });
  registerDiskSource(async () => [], INSTANCE_DISK_SOURCE);
  assert.deepEqual((await scanUsage(pathsFor('/nonexistent/kumo-home'), [])).users.size, 0);
});

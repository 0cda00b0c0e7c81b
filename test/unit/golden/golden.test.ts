import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureMetadata, ImageExistsError, SEAL_OPERATIONS, sealFilesFunction, sealScript, SEAL_HOOK_PATH } from '../../../src/golden/index.js';
import { checkSnapshotName } from '../../../src/driver/qemu/snapshots.js';
import type { InstanceRecord } from '../../../src/instance/index.js';

const rec = {
  name: 'web',
  instanceId: 'i-web-123',
  image: { ref: 'debian-12', id: 'a'.repeat(64), path: '/x', format: 'qcow2' },
} as unknown as InstanceRecord;

test('captureMetadata names the parent image, the source instance and the time', () => {
  const at = new Date('2024-05-01T10:00:00Z');
  const m = captureMetadata(rec, true, at);
  assert.deepEqual(m.parentImage, { ref: 'debian-12', id: 'a'.repeat(64) });
  assert.deepEqual(m.capturedFrom, { instance: 'web', instanceId: 'i-web-123' });
  assert.equal(m.capturedAt, '2024-05-01T10:00:00.000Z');
  assert.equal(m.sealed, true);
  assert.deepEqual(m.sealOperations, SEAL_OPERATIONS.map((o) => o.id));
  assert.equal(captureMetadata(rec, false, at).sealOperations, undefined);
});

test('every sealing operation has a distinct id, and the script touches what each names', () => {
  const ids = SEAL_OPERATIONS.map((o) => o.id);
  assert.equal(new Set(ids).size, ids.length);
  const f = sealFilesFunction();
  for (const needle of ['/etc/machine-id', '/var/lib/dbus/machine-id', 'ssh_host_', '/var/lib/cloud', '/var/log/journal', '.bash_history', '/var/lib/dhcp', '70-persistent-net.rules', 'random-seed', '/var/tmp', '/var/cache/apt', '/etc/shadow-', '/var/mail', '/etc/hostname'])
    assert.ok(f.includes(needle), needle);
  const s = sealScript();
  assert.match(s, /cloud-init clean --logs --seed/);
  assert.match(s, /apt-get clean/);
  assert.ok(s.includes(SEAL_HOOK_PATH));
  assert.match(s, /systemctl --no-block poweroff/);
});

test('errors: an image name that exists; snapshot names', () => {
  const e = new ImageExistsError('golden');
  assert.equal(e.code, 'IMAGE_EXISTS');
  assert.equal(e.kind, 'conflict');
  assert.match(e.hint ?? '', /kumo image rm golden/);
  for (const ok of ['s1', 'before-upgrade', 'a.b_c']) checkSnapshotName(ok);
  for (const bad of ['', '12', 'has space', '-x', 'a;b', 'x'.repeat(200)]) assert.throws(() => checkSnapshotName(bad), { code: 'BAD_SNAPSHOT_NAME' });
});

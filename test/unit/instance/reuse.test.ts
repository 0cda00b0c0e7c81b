// launch({ reuse }): what differs between an instance's record and the spec asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSpec } from '../../../src/config/spec.js';
import { specDifferences, InstanceSpecDiffersError } from '../../../src/instance/reuse.js';
import type { InstanceRecord } from '../../../src/instance/store.js';

function record(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    version: 1,
    name: 'web',
    driver: 'qemu',
    created: '2026-01-01T00:00:00.000Z',
    instanceId: 'i-web-1',
    image: { ref: 'debian-12', path: '/x/base.qcow2', format: 'qcow2', virtualSize: 4 * 1024 ** 3 },
    cpus: 2,
    memoryMiB: 1024,
    diskBytes: 4 * 1024 ** 3,
    accel: 'auto',
    firmware: 'bios',
    seedFormat: 'nocloud',
    mac: '52:54:00:00:00:01',
    ssh: { user: 'kumo', port: 2222, key: '/k/id_ed25519' },
    ports: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 }],
    timeoutSec: 600,
    labels: { team: 'ci' },
    ...over,
  };
}

const spec = (o: Record<string, unknown> = {}) => validateSpec({ name: 'web', ports: ['8080:80'], labels: { team: 'ci' }, ...o });

test('the same spec has no differences (timeout and ttl are not compared; the disk only when asked)', () => {
  assert.deepEqual(specDifferences(record(), spec(), undefined), []);
  assert.deepEqual(specDifferences(record(), spec({ timeout: 30, ttl: '1h' }), undefined), []);
  assert.deepEqual(specDifferences(record(), spec({ disk: '4G' }), undefined), []);
  assert.deepEqual(specDifferences(record({ labels: { b: '2', a: '1' } }), spec({ labels: { a: '1', b: '2' } }), undefined), [], 'label order does not matter');
});

test('each differing field is named with what the instance has and what was asked', () => {
  const d = specDifferences(record(), spec({ cpus: 4, memory: '2G', image: 'blank', labels: { team: 'qa' }, disk: '10G', user: 'dev' }), undefined);
  assert.deepEqual(d.map((x) => x.field).sort(), ['cpus', 'disk', 'image', 'labels', 'memory', 'user']);
  assert.deepEqual(d.find((x) => x.field === 'cpus'), { field: 'cpus', have: '2', want: '4' });
  assert.deepEqual(d.find((x) => x.field === 'memory'), { field: 'memory', have: '1024 MiB', want: '2048 MiB' });
  const e = new InstanceSpecDiffersError('web', d);
  assert.equal(e.code, 'INSTANCE_SPEC_DIFFERS');
  assert.match(e.message, /instance 'web' exists with another spec: .*cpus is 2, asked 4/);
  assert.match(e.hint ?? '', /kumo delete --force web/);
});

test('ports: same forwards in any order; a missing, extra or changed one differs; host port 0 accepts any', () => {
  const two = record({ ports: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 }, { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 5353, guestPort: 53 }] });
  assert.deepEqual(specDifferences(two, spec({ ports: ['5353:53/udp', '8080:80'] }), undefined), []);
  assert.deepEqual(specDifferences(two, spec({ ports: ['8080:80'] }), undefined).map((x) => x.field), ['ports']);
  assert.deepEqual(specDifferences(record(), spec({ ports: ['8081:80'] }), undefined).map((x) => x.field), ['ports']);
  assert.deepEqual(specDifferences(record(), spec({ ports: [] }), undefined).map((x) => x.field), ['ports']);
  const anyPort = { ...spec(), ports: [{ proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80 }] };
  assert.deepEqual(specDifferences(record(), anyPort, undefined), []);
});

test('user-data by digest: same, other, none on either side; an older record without a digest by its source', () => {
  assert.deepEqual(specDifferences(record({ userDataDigest: 'ab'.repeat(32) }), spec(), 'ab'.repeat(32)), []);
  assert.deepEqual(specDifferences(record({ userDataDigest: 'ab'.repeat(32) }), spec(), 'cd'.repeat(32)).map((x) => x.field), ['userData']);
  assert.deepEqual(specDifferences(record({ userDataDigest: 'ab'.repeat(32) }), spec(), undefined).map((x) => x.field), ['userData']);
  assert.deepEqual(specDifferences(record(), spec(), 'cd'.repeat(32)).map((x) => x.field), ['userData'], 'no user-data before, some asked');
  const old = record({ userDataSource: '/src/init.yaml' });
  assert.deepEqual(specDifferences(old, spec({ userData: '/src/init.yaml' }), 'ee'.repeat(32)), []);
  assert.deepEqual(specDifferences(old, spec({ userData: '/src/other.yaml' }), 'ee'.repeat(32)).map((x) => x.field), ['userData']);
});

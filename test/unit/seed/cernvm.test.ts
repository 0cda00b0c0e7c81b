// The CernVM context layout (--seed-format cernvm): exactly its five files, identical user data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seedFiles, CERNVM_PATHS } from '../../../src/seed/index.js';
import { ValidationError } from '../../../src/core/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl kumo@test';

test('cernvm: exactly the ec2 and openstack pairs and a readme, label config-2', () => {
  const s = seedFiles({ format: 'cernvm', instanceId: 'i-cvm-1', hostname: 'cvm.example', sshAuthorizedKeys: [KEY], userData: '#!/bin/sh\necho hi\n', metaData: { role: 'worker', n: 3 } });
  assert.equal(s.volumeId, 'config-2');
  assert.deepEqual(s.files.map((f) => f.path), [...CERNVM_PATHS]);
  assert.deepEqual(
    s.files.map((f) => f.path).sort(),
    ['ec2/latest/meta-data.json', 'ec2/latest/user-data', 'openstack/latest/meta_data.json', 'openstack/latest/user_data', 'readme'],
  );
  const by = new Map(s.files.map((f) => [f.path, String(f.data)]));
  assert.equal(by.get('ec2/latest/user-data'), by.get('openstack/latest/user_data'));
  assert.match(by.get('ec2/latest/user-data')!, /echo hi/);
  const ec2 = JSON.parse(by.get('ec2/latest/meta-data.json')!);
  assert.equal(ec2['instance-id'], 'i-cvm-1');
  assert.equal(ec2['local-hostname'], 'cvm.example');
  assert.deepEqual(ec2['public-keys'], { '0': { 'openssh-key': KEY } });
  const os = JSON.parse(by.get('openstack/latest/meta_data.json')!);
  assert.equal(os.uuid, 'i-cvm-1');
  assert.equal(os.name, 'cvm');
  assert.deepEqual(os.public_keys, { kumo: KEY });
  assert.deepEqual(os.meta, { role: 'worker', n: '3' });
  assert.match(by.get('readme')!, /CernVM context/);
  assert.match(by.get('readme')!, /i-cvm-1/);
});

test('cernvm: network config and vendor data are refused with a hint, not dropped', () => {
  assert.throws(
    () => seedFiles({ format: 'cernvm', instanceId: 'i-2', networkConfig: '{}', vendorData: 'x' }),
    (e: unknown) => e instanceof ValidationError && e.issues.length === 2 && e.issues.every((i) => /CernVM context layout/.test(i.message) && !!i.hint),
  );
});

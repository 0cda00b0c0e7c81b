import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { composeUserData, kumoCloudConfig, seedFiles, seedMountEntry, validateSeedSpec, KUMO_MERGE_TYPE, type SeedMount } from '../../../src/seed/index.js';
import { ValidationError } from '../../../src/core/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hZGUgdXAga2V5IGZvciB0ZXN0cyBvbmx5IQ== me@host';
const mounts: SeedMount[] = [
  { tag: 'kumo0', guest: '/src', type: 'virtiofs', readOnly: false },
  { tag: 'kumo1', guest: '/data', type: '9p', readOnly: true },
];

test('seed mounts: one fstab entry each, nofail, ro for read-only, 9p over virtio', () => {
  assert.deepEqual(seedMountEntry(mounts[0]!), ['kumo0', '/src', 'virtiofs', 'defaults,nofail', '0', '0']);
  assert.deepEqual(seedMountEntry(mounts[1]!), ['kumo1', '/data', '9p', 'trans=virtio,version=9p2000.L,msize=262144,cache=mmap,nofail,ro', '0', '0']);
  const cc = kumoCloudConfig({ instanceId: 'i-1', sshAuthorizedKeys: [KEY], mounts, userUid: 1234 });
  assert.deepEqual(cc.mounts, mounts.map(seedMountEntry));
  assert.equal((cc.users as { uid?: number }[])[0]!.uid, 1234);
  assert.equal(kumoCloudConfig({ instanceId: 'i-1' }).mounts, undefined);
});

test("seed mounts merge: kumo's mounts first, then the user's own mounts entries (cloud-config and multipart)", () => {
  const user = '#cloud-config\nmounts:\n  - [/dev/vdc, /extra, ext4, "defaults", "0", "2"]\n';
  const out = parse(composeUserData(kumoCloudConfig({ instanceId: 'i-1', mounts }), user)) as { mounts: unknown[][] };
  assert.deepEqual(out.mounts, [...mounts.map(seedMountEntry), ['/dev/vdc', '/extra', 'ext4', 'defaults', '0', '2']]);
  // a script: kumo's part is a cloud-config part that appends its lists
  const mime = composeUserData(kumoCloudConfig({ instanceId: 'i-1', mounts }), '#!/bin/sh\necho hi\n');
  assert.ok(mime.includes(`Merge-Type: ${KUMO_MERGE_TYPE}`));
  assert.match(mime, /mounts:\n\s+- - kumo0\n\s+- \/src\n\s+- virtiofs/);
  // the seed's user-data carries them
  const files = seedFiles({ instanceId: 'i-1', mounts }).files;
  const ud = parse(files.find((f) => f.path === 'user-data')!.data.toString()) as { mounts: unknown[][] };
  assert.equal(ud.mounts.length, 2);
});

test('seed mounts: a bad tag, a relative guest path, an unknown type and a system uid are refused at once', () => {
  assert.throws(
    () => validateSeedSpec({ instanceId: 'i-1', mounts: [{ tag: 'a,b', guest: 'rel', type: 'nfs' as never, readOnly: false }], userUid: 0 }),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.issues.map((i) => i.path), ['mounts[0].tag', 'mounts[0].guest', 'mounts[0].type', 'userUid']);
      return true;
    },
  );
});

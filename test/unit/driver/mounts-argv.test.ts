import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuArgv } from '../../../src/driver/qemu/argv.js';
import { virtiofsdArgv } from '../../../src/driver/qemu/virtiofs.js';
import { virtiofsdFilesIn } from '../../../src/config/instance-files.js';
import type { InstanceRuntime } from '../../../src/driver/index.js';
import { pathsFor } from '../../../src/config/paths.js';

const dir = '/home/u/kumo/instances/web';
const rt: InstanceRuntime = {
  name: 'web',
  dir,
  paths: pathsFor('/home/u/kumo'),
  cpus: 2,
  memoryMiB: 1024,
  disk: { path: `${dir}/disk.qcow2`, format: 'qcow2' },
  mac: '52:54:00:12:34:56',
  sshPort: 40022,
  ports: [],
  accel: 'auto',
};

function optAfter(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

test('mounts argv: no mounts, no memory backend and no shared-folder devices', () => {
  const a = buildQemuArgv(rt, { accel: 'tcg' });
  assert.deepEqual(optAfter(a, '-machine'), ['q35']);
  assert.equal(optAfter(a, '-object').length, 0);
  assert.equal(optAfter(a, '-fsdev').length, 0);
  assert.ok(!optAfter(a, '-device').some((d) => /vhost-user-fs|virtio-9p/.test(d)));
});

test('mounts argv: virtiofs gets a shared memfd backend, its socket as a chardev and a vhost-user-fs device with the tag', () => {
  const a = buildQemuArgv({ ...rt, mounts: [{ tag: 'kumo0', host: '/src', guest: '/src', readOnly: false, type: 'virtiofs' }] }, { accel: 'tcg' });
  assert.deepEqual(optAfter(a, '-machine'), ['q35,memory-backend=mem0']);
  assert.deepEqual(optAfter(a, '-object'), ['memory-backend-memfd,id=mem0,size=1024M,share=on']);
  assert.ok(optAfter(a, '-chardev').includes(`socket,id=vfs0,path=${virtiofsdFilesIn(dir, 'kumo0').socket}`));
  assert.ok(optAfter(a, '-device').includes('vhost-user-fs-pci,chardev=vfs0,tag=kumo0,queue-size=1024'));
});

test('mounts argv: 9p is -fsdev local with security_model=none, readonly=on for :ro, and commas in paths doubled', () => {
  const a = buildQemuArgv(
    {
      ...rt,
      mounts: [
        { tag: 'kumo0', host: '/data,x', guest: '/data', readOnly: true, type: '9p' },
        { tag: 'kumo1', host: '/w', guest: '/w', readOnly: false, type: '9p' },
      ],
    },
    { accel: 'tcg' },
  );
  assert.deepEqual(optAfter(a, '-fsdev'), [
    'local,id=fs0,path=/data,,x,security_model=none,multidevs=remap,readonly=on',
    'local,id=fs1,path=/w,security_model=none,multidevs=remap',
  ]);
  assert.ok(optAfter(a, '-device').includes('virtio-9p-pci,fsdev=fs0,mount_tag=kumo0'));
  assert.ok(optAfter(a, '-device').includes('virtio-9p-pci,fsdev=fs1,mount_tag=kumo1'));
  // no shared memory needed for 9p
  assert.deepEqual(optAfter(a, '-machine'), ['q35']);
});

test('mounts argv: a template memory file (shared) stays the backend with virtiofs; a private one is refused', () => {
  const m = [{ tag: 'kumo0', host: '/src', guest: '/src', readOnly: false, type: 'virtiofs' as const }];
  const a = buildQemuArgv({ ...rt, mounts: m, memoryFile: { path: '/t/mem', share: true } }, { accel: 'tcg' });
  assert.deepEqual(optAfter(a, '-object'), ['memory-backend-file,id=mem0,size=1024M,mem-path=/t/mem,share=on']);
  assert.throws(() => buildQemuArgv({ ...rt, mounts: m, memoryFile: { path: '/t/mem', share: false } }, { accel: 'tcg' }), /shared guest RAM/);
});

test('virtiofsd argv: its socket, the folder as source, a namespace sandbox', () => {
  assert.deepEqual(virtiofsdArgv('/src', '/k/i/web/virtiofsd-kumo0.sock'), [
    '--socket-path=/k/i/web/virtiofsd-kumo0.sock',
    '-o', 'source=/src',
    '-o', 'sandbox=namespace',
    '-o', 'cache=auto',
    '-o', 'announce_submounts',
  ]);
});

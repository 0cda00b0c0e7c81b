/**
 * The test image boots under libvirt (qemu:///system, a transient domain with TCG): the serial
 * console shows cloud-init finishing with the NoCloud seed and the login prompt with the seed's
 * hostname. Needs the test image (node dist/test/fixtures/test-image.js) and a running libvirtd;
 * opt-in with KUMO_TEST_LIBVIRT=1 (libvirtd is not always running on the CI machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, readFile, rm, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec.js';
import { testImagePath } from '../helpers/test-image.js';

test('the test image boots under libvirt and cloud-init finishes', { timeout: 900_000 }, async (t) => {
  if (process.env.KUMO_TEST_LIBVIRT !== '1') return t.skip('set KUMO_TEST_LIBVIRT=1 to boot under libvirt');
  const probe = await run('virsh', ['-c', 'qemu:///system', 'version'], { allowFailure: true, timeoutMs: 30_000 }).catch(() => ({ code: 1 }));
  if (probe.code !== 0) return t.skip('libvirtd is not reachable (virsh -c qemu:///system)');
  const dir = await mkdtemp('/var/tmp/kumo-build-libvirt-');
  await chmod(dir, 0o755);
  const name = `kumo-build-e2e-${process.pid}`;
  const hostname = `kumo-lv${Math.floor(Math.random() * 1e5)}`;
  t.after(async () => {
    await run('virsh', ['-c', 'qemu:///system', 'destroy', name], { allowFailure: true });
    await rm(dir, { recursive: true, force: true });
  });
  const overlay = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', testImagePath(), overlay]);
  await writeFile(join(dir, 'user-data'), '#cloud-config\n{}\n');
  await writeFile(join(dir, 'meta-data'), `instance-id: iid-${hostname}\nlocal-hostname: ${hostname}\n`);
  await run('cloud-localds', [join(dir, 'seed.img'), join(dir, 'user-data'), join(dir, 'meta-data')]);
  const serial = join(dir, 'serial.log');
  const xml = `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${overlay}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${join(dir, 'seed.img')}'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='user'><model type='virtio'/></interface>
    <serial type='file'><source path='${serial}'/><target port='0'/></serial>
  </devices>
</domain>
`;
  await writeFile(join(dir, 'domain.xml'), xml);
  await run('virsh', ['-c', 'qemu:///system', 'create', join(dir, 'domain.xml')]);
  const t0 = Date.now();
  let log = '';
  while (Date.now() - t0 < 800_000) {
    log = await readFile(serial, 'utf8').catch(() => '');
    if (/Cloud-init v\. \S+ finished/.test(log) && log.includes(`${hostname} login:`)) break;
    await new Promise((r) => setTimeout(r, 3000));
  }
  t.diagnostic(`libvirt boot to cloud-init finished: ${Math.round((Date.now() - t0) / 1000)} s`);
  assert.match(log, /Cloud-init v\. \S+ finished .*DataSourceNoCloud/, log.split('\n').slice(-30).join('\n'));
  assert.ok(log.includes(`${hostname} login:`), 'login prompt on ttyS0 with the seed hostname');
});

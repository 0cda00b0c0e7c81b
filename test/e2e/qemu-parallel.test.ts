/**
 * Two instances from one base, launched at the same time: par-a through the library (BIOS, NoCloud,
 * the default user and disk), par-b through the CLI from a `--spec` file that asks for a ConfigDrive
 * seed, UEFI firmware, a user of its own and a disk 1 GiB bigger than the image (and a flag that
 * overrides the file's memory). Both become ready, with their own ssh ports, hostnames and
 * instance-ids, on overlays of the same read-only base, which is left untouched; each asked-for
 * fact is checked inside the guest. Boots: 2 (in parallel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { getInstance, launch, type Instance } from '../../src/instance/index.js';
import { testImagePath } from '../helpers/test-image.js';
import { kumo } from '../helpers/cli.js';

test('two instances of one base launched at once', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-par-'));
  const vms: Instance[] = [];
  try {
    const imageBytes = (JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', testImagePath()]).toString()) as { 'virtual-size': number })['virtual-size'];
    const diskBytes = imageBytes + 1024 ** 3;
    const spec = join(home, 'par-b.yaml');
    await writeFile(
      spec,
      [`name: par-b`, `image: ${JSON.stringify(testImagePath())}`, 'memory: 768M', `disk: ${diskBytes / 1024 ** 2}M`, 'user: tester', 'seedFormat: configdrive', 'firmware: uefi', ''].join('\n'),
    );
    const results = await Promise.allSettled([
      launch({ image: testImagePath(), home, name: 'par-a', memory: '768M' }),
      kumo(['launch', '--spec', spec, '--memory', '800M', '--json'], { home, timeoutMs: 1_800_000 }).then(async (r) => {
        if (r.code !== 0) throw new Error(`kumo launch --spec failed (exit ${r.code}):\n${r.stderr.split('\n').filter((l) => !l.startsWith('{"event"')).join('\n')}`);
        return getInstance('par-b', { home });
      }),
    ]);
    for (const r of results) if (r.status === 'fulfilled') vms.push(r.value);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    const [a, b] = vms as [Instance, Instance];
    const rb0 = await b.record();
    // The spec file's fields, with the flag over the file's memory.
    assert.deepEqual([rb0.seedFormat, rb0.firmware, rb0.ssh.user, rb0.diskBytes, rb0.memoryMiB], ['configdrive', 'uefi', 'tester', diskBytes, 800]);
    // In the guests: the firmware, the user, the seed's kind, the disk's size.
    const sh = async (vm: Instance, cmd: string) => (await vm.exec(cmd, { check: true })).stdout.trim();
    assert.equal(await sh(a, 'test -d /sys/firmware/efi && echo uefi || echo bios'), 'bios');
    assert.equal(await sh(b, 'test -d /sys/firmware/efi && echo uefi || echo bios'), 'uefi');
    assert.equal(await sh(b, 'id -un'), 'tester');
    assert.match(await sh(b, 'sudo cat /run/cloud-init/result.json'), /DataSourceConfigDrive/);
    assert.equal(await sh(b, 'sudo blkid -t LABEL=config-2 -o device | wc -l'), '1');
    assert.match(await sh(a, 'sudo cat /run/cloud-init/result.json'), /DataSourceNoCloud/);
    const rootDisk = 'lsblk -b -dn -o SIZE "/dev/$(lsblk -no PKNAME "$(findmnt -n -o SOURCE /)")"';
    assert.equal(Number(await sh(b, rootDisk)), diskBytes);
    assert.equal(Number(await sh(a, rootDisk)), imageBytes);
    // growroot gave the root file system the extra space.
    assert.ok(Number(await sh(b, 'df -B1 --output=size / | tail -1')) > imageBytes, 'the root file system of par-b did not grow');
    const ra = await a.record();
    const rb = await b.record();
    assert.notEqual(ra.ssh.port, rb.ssh.port);
    assert.notEqual(ra.instanceId, rb.instanceId);
    assert.notEqual(ra.mac, rb.mac);
    assert.equal(ra.image.path, rb.image.path);
    const base = ra.image.path;
    const before = await stat(base);
    assert.equal((await a.exec('hostname')).stdout.trim(), 'par-a');
    assert.equal((await b.exec('hostname')).stdout.trim(), 'par-b');
    // writes in one do not show in the other
    await a.exec('echo only-a | sudo tee /var/lib/who >/dev/null && sync', { check: true });
    assert.notEqual((await b.exec('cat /var/lib/who 2>/dev/null || echo none')).stdout.trim(), 'only-a');
    for (const [vm, name] of [[a, 'par-a'], [b, 'par-b']] as const) {
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(home, 'instances', name, 'disk.qcow2')]).toString());
      assert.equal(info['backing-filename'], base);
      assert.equal((await vm.status()).state, 'running');
    }
    const after = await stat(base);
    assert.equal(after.mtimeMs, before.mtimeMs, 'the base is never written');
    assert.equal(after.size, before.size);
  } finally {
    await Promise.all(vms.map((v) => v.delete().catch(() => {})));
    const left = await readdir(join(home, 'instances')).catch(() => []);
    await rm(home, { recursive: true, force: true });
    assert.deepEqual(left, []);
  }
});

/**
 * The built test image really boots: BIOS (SeaBIOS) and UEFI (OVMF) under QEMU q35 with TCG, a
 * NoCloud seed made by cloud-localds; ssh with the seed's key, cloud-init done, the root file
 * system labelled cloudimg-rootfs and grown to the disk, the seed's hostname, a fresh identity.
 * Needs the test image: node dist/test/fixtures/test-image.js
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testImagePath } from '../helpers/test-image.js';
import { bootImage } from '../fixtures/boot.js';

test('the test image boots with BIOS, runs cloud-init from a NoCloud seed and grows its root', { timeout: 600_000 }, async (t) => {
  const vm = await bootImage({ image: testImagePath(), overlaySize: '6G' });
  try {
    t.diagnostic(`boot to ssh (BIOS, TCG): ${vm.sshSeconds} s`);
    if (vm.stalledBefore) t.diagnostic(`booted a second time: the first boot stalled ${vm.stalledBefore}`);
    const st = await vm.ssh(['cloud-init', 'status', '--wait', '--long'], { allowFailure: true, timeoutMs: 300_000 });
    assert.match(st.stdout, /status: done/, st.stdout + st.stderr);
    assert.equal((await vm.ssh(['hostname'])).stdout.trim(), vm.hostname);
    const label = await vm.ssh(['findmnt', '-n', '-o', 'LABEL,FSTYPE', '/']);
    assert.match(label.stdout.trim(), /^cloudimg-rootfs\s+ext4$/);
    const size = Number((await vm.ssh(['findmnt', '-n', '-b', '-o', 'SIZE', '/'])).stdout.trim());
    assert.ok(size > 5 * 1024 ** 3, `root file system grown to the 6G disk (size ${size})`);
    const mid = (await vm.ssh(['cat', '/etc/machine-id'])).stdout.trim();
    assert.match(mid, /^[0-9a-f]{32}$/);
    const keys = (await vm.ssh(['ls', '/etc/ssh'])).stdout.split('\n').filter((n) => /^ssh_host_.*_key\.pub$/.test(n));
    assert.deepEqual(keys.sort(), ['ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key.pub'], 'per-instance host keys, ed25519 and ecdsa only');
    const cmdline = (await vm.ssh(['cat', '/proc/cmdline'])).stdout;
    assert.match(cmdline, /console=ttyS0,115200/);
    assert.match((await vm.ssh(['sudo', '-n', 'id', '-u'])).stdout.trim(), /^0$/);
    const blame = await vm.ssh(['systemd-analyze'], { allowFailure: true });
    t.diagnostic(`systemd-analyze: ${blame.stdout.trim()}`);
    const ci = await vm.ssh(['sudo', 'cloud-init', 'analyze', 'show'], { allowFailure: true });
    t.diagnostic(`cloud-init analyze show:\n${ci.stdout.split('\n').filter((l) => /Finished|Total|took/.test(l)).slice(-12).join('\n')}`);
    const crit = await vm.ssh(['systemd-analyze', 'critical-chain', '--no-pager'], { allowFailure: true });
    t.diagnostic(`critical chain:\n${crit.stdout}`);
  } finally {
    await vm.stop();
  }
});

test('the same image boots with UEFI (OVMF)', { timeout: 600_000 }, async (t) => {
  const vm = await bootImage({ image: testImagePath(), uefi: true });
  try {
    t.diagnostic(`boot to ssh (UEFI, TCG): ${vm.sshSeconds} s`);
    if (vm.stalledBefore) t.diagnostic(`booted a second time: the first boot stalled ${vm.stalledBefore}`);
    assert.equal((await vm.ssh(['test', '-d', '/sys/firmware/efi'], { allowFailure: true })).code, 0, 'booted through UEFI');
    assert.equal((await vm.ssh(['hostname'])).stdout.trim(), vm.hostname);
    const st = await vm.ssh(['cloud-init', 'status', '--wait'], { allowFailure: true, timeoutMs: 300_000 });
    assert.match(st.stdout, /status: done/);
  } finally {
    await vm.stop();
  }
});

test('with no seed at all the image boots to a login prompt without waiting for datasources', { timeout: 600_000 }, async (t) => {
  const { readFile } = await import('node:fs/promises');
  const t0 = Date.now();
  const vm = await bootImage({ image: testImagePath(), noSeed: true });
  try {
    let log = '';
    while (Date.now() - t0 < 400_000) {
      log = await readFile(vm.serialLog, 'utf8').catch(() => '');
      if (/ login: /.test(log) || / login:\s*$/m.test(log)) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const s = Math.round((Date.now() - t0) / 1000);
    t.diagnostic(`no seed: login prompt on ttyS0 after ${s} s`);
    assert.match(log, /login:/, log.split('\n').slice(-20).join('\n'));
    assert.doesNotMatch(log, /Cloud-init v\. \S+ running 'init'/, 'cloud-init stays off when no datasource is found');
  } finally {
    await vm.stop();
  }
});

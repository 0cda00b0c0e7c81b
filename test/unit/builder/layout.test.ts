import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLayout, sfdiskScript, grubEarlyConfig } from '../../../src/builder/disk.js';
import { requireSize as parseSize } from '../../../src/core/units.js';
import { resolveDistro, DISTROS, bootstrapArgv } from '../../../src/builder/distro.js';

const MiB = 1024 * 1024;

test('sizes parse with binary units', () => {
  assert.equal(parseSize('4G'), 4 * 1024 * MiB);
  assert.equal(parseSize('512M'), 512 * MiB);
  assert.equal(parseSize('1.5GiB'), 1536 * MiB);
  assert.equal(parseSize('1000'), 1000);
  assert.throws(() => parseSize('four'), /'four' is not a size/);
});

test('the root partition is the content plus headroom, MiB-aligned, after a 32 MiB ESP; the disk is at least the requested size', () => {
  const l = planLayout(600 * MiB, 4096 * MiB);
  assert.equal(l.espStart, MiB);
  assert.equal(l.rootStart, 33 * MiB);
  assert.equal(l.rootBytes % MiB, 0);
  assert.ok(l.rootBytes >= 600 * MiB * 1.25);
  assert.equal(l.diskBytes, 4096 * MiB);
  const big = planLayout(4000 * MiB, 1024 * MiB);
  assert.equal(big.diskBytes, big.rootStart + big.rootBytes);
});

test('the partition table puts the ESP (type ef) first and the bootable root last', () => {
  const s = sfdiskScript(planLayout(100 * MiB, 2048 * MiB), 'deadbeef');
  assert.match(s, /label: dos/);
  assert.match(s, /label-id: 0xdeadbeef/);
  assert.match(s, /start=2048, size=65536, type=ef\n/);
  assert.match(s, /start=67584, size=\d+, type=83, bootable\n/);
});

test('GRUB finds the root by its label', () => {
  assert.match(grubEarlyConfig(), /search --no-floppy --label cloudimg-rootfs --set=root/);
});

test('distributions are data: Debian and Ubuntu resolve, unknown names suggest', () => {
  const d = resolveDistro('debian', undefined);
  assert.equal(d.release, 'bookworm');
  assert.match(d.sourcesList, /^deb http:\/\/deb.debian.org\/debian bookworm main$/m);
  assert.match(d.sourcesList, /bookworm-security main/);
  assert.equal(resolveDistro('ubuntu', 'noble').distro.kernelPackage, 'linux-image-virtual');
  assert.throws(() => resolveDistro('debain', undefined), /did you mean 'debian'/);
  assert.throws(() => resolveDistro('debian', 'bookwrm'), /did you mean 'bookworm'/);
  const m = resolveDistro('debian', 'bookworm', 'http://127.0.0.1:9/debian');
  assert.match(m.sourcesList, /^deb http:\/\/127.0.0.1:9\/debian bookworm main$/m);
  assert.ok(Object.keys(DISTROS).length >= 2);
});

test('the bootstrap always checks signatures with the distribution keyring (never unverified)', () => {
  for (const name of Object.keys(DISTROS)) {
    const d = resolveDistro(name, undefined);
    const argv = bootstrapArgv(d, { arch: 'amd64', cacheDir: '/c', target: '/t' });
    assert.equal(argv[0], 'debootstrap');
    assert.ok(argv.includes('--force-check-gpg'), `${name}: ${argv.join(' ')}`);
    assert.ok(argv.includes(`--keyring=${d.distro.keyring}`), `${name}: ${argv.join(' ')}`);
    assert.deepEqual(argv.slice(-3), [d.info.suite, '/t', d.mirror]);
  }
  assert.equal(DISTROS.ubuntu!.keyringPackage, 'ubuntu-keyring');
  assert.equal(DISTROS.debian!.keyringPackage, 'debian-archive-keyring');
});

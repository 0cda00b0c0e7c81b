/**
 * The sealing script on a fake root tree (KUMO_SEAL_ROOT), run by the real /bin/sh: what a
 * machine's identity is made of is gone afterwards, and what the user installed is kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm, stat, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { sealScript, sealHookScript, SEAL_DONE_MARKER } from '../../../src/golden/seal.js';

async function put(root: string, rel: string, content = 'x\n'): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}

test('seal script: identity removed, user data kept, on a fake tree', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kumo-seal-'));
  try {
    const identity = [
      'etc/ssh/ssh_host_ed25519_key',
      'etc/ssh/ssh_host_ed25519_key.pub',
      'etc/ssh/ssh_host_rsa_key',
      'var/lib/dbus/machine-id',
      'var/lib/cloud/instance/boot-finished',
      'var/lib/cloud/data/instance-id',
      'var/lib/cloud/seed/nocloud/meta-data',
      'var/log/cloud-init.log',
      'var/log/cloud-init-output.log',
      'var/log/syslog.1',
      'var/log/syslog.2.gz',
      'var/log/journal/0123456789abcdef/system.journal',
      'root/.bash_history',
      'root/.ssh/authorized_keys',
      'home/kumo/.bash_history',
      'home/kumo/.lesshst',
      'home/kumo/.ssh/authorized_keys',
      'var/lib/dhcp/dhclient.eth0.leases',
      'var/lib/NetworkManager/internal-1234-eth0.lease',
      'etc/udev/rules.d/70-persistent-net.rules',
      'var/lib/systemd/random-seed',
      'tmp/build-junk/file',
      'tmp/.hidden',
      'var/tmp/systemd-private-xyz/tmp/a',
      'var/cache/apt/archives/hello_1.0_amd64.deb',
      'var/cache/apt/pkgcache.bin',
      'etc/shadow-',
      'var/mail/kumo',
    ];
    for (const f of identity) await put(root, f);
    await put(root, 'etc/machine-id', '0123456789abcdef0123456789abcdef\n');
    await put(root, 'etc/hostname', 'my-golden-source\n');
    await put(root, 'etc/hosts', '127.0.0.1 localhost\n127.0.1.1 my-golden-source\n::1 localhost\n');
    await put(root, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
    await put(root, 'var/log/syslog', 'lots of lines that name my-golden-source\n');
    await put(root, 'var/log/apt/history.log', 'Install: hello\n');
    // What the user made: must survive.
    const kept = ['etc/golden-marker', 'opt/app/bin/app', 'home/kumo/notes.txt', 'usr/share/doc/hello/copyright', 'var/lib/dpkg/status', 'etc/ssh/sshd_config', 'var/lib/cloud-not-cloud/keep'];
    for (const f of kept) await put(root, f, 'keep me\n');

    const r = spawnSync('/bin/sh', ['-s'], { input: sealScript(), env: { ...process.env, KUMO_SEAL_ROOT: root }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(SEAL_DONE_MARKER));

    for (const f of identity) assert.equal(existsSync(join(root, f)), false, `${f} should be gone`);
    assert.equal(existsSync(join(root, 'root/.ssh')), false);
    assert.equal(existsSync(join(root, 'home/kumo/.ssh')), false);
    assert.deepEqual(await readdir(join(root, 'var/lib/cloud')), []);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.deepEqual(await readdir(join(root, 'var/log/journal')), []);
    // machine-id: present and empty (systemd's "first boot" state)
    assert.equal((await stat(join(root, 'etc/machine-id'))).size, 0);
    // logs emptied, not removed
    assert.equal((await stat(join(root, 'var/log/syslog'))).size, 0);
    assert.equal((await stat(join(root, 'var/log/apt/history.log'))).size, 0);
    // a neutral host name from os-release
    assert.equal(await readFile(join(root, 'etc/hostname'), 'utf8'), 'debian\n');
    assert.match(await readFile(join(root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1 debian$/m);
    assert.doesNotMatch(await readFile(join(root, 'etc/hosts'), 'utf8'), /my-golden-source/);
    for (const f of kept) assert.equal(await readFile(join(root, f), 'utf8'), 'keep me\n', `${f} should be kept`);
    // no hook is installed into a fake tree
    assert.equal(existsSync(join(root, 'usr/lib/systemd/system-shutdown')), false);

    // idempotent: a second run (as the shutdown hook does) succeeds on the sealed tree
    const again = spawnSync('/bin/sh', ['-s'], { input: sealScript(), env: { ...process.env, KUMO_SEAL_ROOT: root }, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('seal script and hook are valid POSIX sh (sh -n), and the hook ignores reboots', () => {
  for (const [what, text] of [
    ['script', sealScript()],
    ['hook', sealHookScript()],
  ] as const) {
    const r = spawnSync('/bin/sh', ['-n'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  }
  const r = spawnSync('/bin/sh', ['-s', 'reboot'], { input: sealHookScript(), encoding: 'utf8' });
  assert.equal(r.status, 0);
  // the live script embeds the hook verbatim
  assert.ok(sealScript().includes(sealHookScript()));
});

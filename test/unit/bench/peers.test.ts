import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { boxMetadata, boxVagrantfile, BOX_IMAGE_RECIPE, boxPaths } from '../../../bench/peers/box.js';
import { cpuSecondsFromStat, findGuestPid, ratioText, testcloudSeed, userNicArgs, vagrantfile, virtInstallArgv, USER_NIC_PCI } from '../../../bench/peers/plan.js';
import { TEST_IMAGE_RECIPE } from '../../helpers/test-image.js';

const repo = process.env.KUMO_REPO ?? process.cwd();

test('box metadata: provider libvirt, qcow2, virtual size in whole GiB rounded up; a bad size is refused', () => {
  assert.deepEqual(boxMetadata(4 * 2 ** 30), { provider: 'libvirt', format: 'qcow2', virtual_size: 4 });
  assert.equal(boxMetadata(4 * 2 ** 30 + 1).virtual_size, 5);
  assert.throws(() => boxMetadata(0), /virtual size/);
  assert.throws(() => boxMetadata(NaN), /virtual size/);
  assert.match(boxVagrantfile(), /^Vagrant\.configure\("2"\) do \|config\|/);
});

test('the box recipe is the test image recipe plus vagrant, and the test image recipe has no vagrant', () => {
  assert.deepEqual(BOX_IMAGE_RECIPE.elements, [...TEST_IMAGE_RECIPE.elements, 'vagrant']);
  assert.equal(TEST_IMAGE_RECIPE.elements.includes('vagrant'), false);
  assert.equal(BOX_IMAGE_RECIPE.size, TEST_IMAGE_RECIPE.size);
  const p = boxPaths('/c');
  assert.match(p.image, /^\/c\/debian-12-kumo-vagrant-[0-9a-f]{16}\.qcow2$/);
  assert.equal(p.box, p.image.replace(/\.qcow2$/, '.box'));
});

test('the vagrant element installs Vagrant\'s insecure public key (hashicorp/vagrant keys/vagrant.pub) and passwordless sudo', () => {
  const script = readFileSync(join(repo, 'elements', 'vagrant', 'install.d', '60-vagrant-user'), 'utf8');
  const keyLine = script.split('\n').find((l) => l.startsWith('ssh-rsa '));
  assert.ok(keyLine, 'a key line');
  const [type, body] = keyLine.split(' ');
  assert.equal(type, 'ssh-rsa');
  // the key's fixed parts: the rsa type, exponent 35 (0x23) and the documented modulus' start and end
  const blob = Buffer.from(body!, 'base64');
  assert.equal(blob.readUInt32BE(0), 7);
  assert.equal(blob.subarray(4, 11).toString(), 'ssh-rsa');
  assert.equal(blob.length, 277);
  assert.ok(body!.startsWith('AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7Ptix'));
  assert.ok(body!.endsWith('tehUc9c9WhQ=='));
  assert.match(script, /vagrant ALL=\(ALL\) NOPASSWD: ALL/);
  assert.match(script, /Defaults:vagrant !requiretty/);
  assert.match(script, /chmod 0600 \/home\/vagrant\/\.ssh\/authorized_keys/);
  assert.equal(readFileSync(join(repo, 'elements', 'vagrant', 'package-installs.yaml'), 'utf8').trim(), 'sudo:');
});

test('the user-mode NIC has its own PCI address and the ssh forward on 127.0.0.1; bad ids and ports are refused', () => {
  assert.deepEqual(userNicArgs('n0', 2222), ['-netdev', 'user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22', '-device', `virtio-net-pci,netdev=n0,bus=${USER_NIC_PCI.bus},addr=${USER_NIC_PCI.addr}`]);
  assert.throws(() => userNicArgs('n 0', 22), /QEMU id/);
  assert.throws(() => userNicArgs('n0', 0), /port/);
  assert.throws(() => userNicArgs('n0', 70000), /port/);
});

test('virt-install argv: import, TCG, the shape, no libvirt network, the NIC on the QEMU command line', () => {
  const a = virtInstallArgv({ uri: 'qemu+unix:///system?socket=/s', name: 'tc-0', disk: '/d/disk.qcow2', seed: '/d/seed.iso', port: 40022 });
  assert.equal(a[0], 'virt-install');
  const val = (f: string) => a[a.indexOf(f) + 1];
  assert.equal(val('--connect'), 'qemu+unix:///system?socket=/s');
  assert.ok(a.includes('--import') && a.includes('--noautoconsole'));
  assert.equal(val('--virt-type'), 'qemu');
  assert.equal(val('--vcpus'), '2');
  assert.equal(val('--memory'), '1024');
  assert.equal(val('--network'), 'none');
  assert.deepEqual(a.filter((_, i) => a[i - 1] === '--disk'), ['path=/d/disk.qcow2,format=qcow2,bus=virtio', 'path=/d/seed.iso,format=raw,bus=virtio,readonly=on']);
  assert.equal(a.find((x) => x.startsWith('--qemu-commandline=')), `--qemu-commandline=-netdev user,id=peersnet0,hostfwd=tcp:127.0.0.1:40022-:22 -device virtio-net-pci,netdev=peersnet0,bus=pcie.0,addr=${USER_NIC_PCI.addr}`);
});

test('testcloud seed: the key in user-data, instance-id from the name; anything but one key line is refused', () => {
  const s = testcloudSeed('tc-1', 'ssh-ed25519 AAAAC3Nza k@h\n');
  assert.equal(s.userData, '#cloud-config\nssh_authorized_keys:\n  - "ssh-ed25519 AAAAC3Nza k@h"\n');
  assert.equal(s.metaData, 'instance-id: tc-1\nlocal-hostname: tc-1\n');
  assert.throws(() => testcloudSeed('x', 'not a key'), /public key/);
  assert.throws(() => testcloudSeed('x', 'ssh-rsa A b\nssh-rsa C d'), /public key/);
});

test('project Vagrantfile: the box, the shape, the URI, no management network, the NIC and the forward', () => {
  const v = vagrantfile({ box: 'kumo-peers', uri: 'qemu+unix:///system?socket=/s', pool: 'p1', poolPath: '/x/pool', port: 41000 });
  for (const line of [
    'config.vm.box = "kumo-peers"',
    'config.vm.synced_folder ".", "/vagrant", disabled: true',
    'config.ssh.host = "127.0.0.1"',
    'config.ssh.port = 41000',
    'config.vm.boot_timeout = 1800',
    'lv.uri = "qemu+unix:///system?socket=/s"',
    'lv.driver = "qemu"',
    'lv.cpus = 2',
    'lv.memory = 1024',
    'lv.mgmt_attach = false',
    'lv.storage_pool_path = "/x/pool"',
    'lv.qemuargs value: "user,id=peersnet0,hostfwd=tcp:127.0.0.1:41000-:22"',
    `lv.qemuargs value: "virtio-net-pci,netdev=peersnet0,bus=pcie.0,addr=${USER_NIC_PCI.addr}"`,
  ])
    assert.ok(v.includes(line), line);
  assert.match(v, /def get_ipaddress\(domain = nil\)\n\s+"127\.0\.0\.1"/);
});

test('/proc/PID/stat: utime+stime, and with children cutime+cstime; a process name with spaces and parens', () => {
  // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const stat = '4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 700 300 20 0 3 0';
  assert.equal(cpuSecondsFromStat(stat, 100), 3);
  assert.equal(cpuSecondsFromStat(stat, 100, { children: true }), 13);
  assert.throws(() => cpuSecondsFromStat('garbage', 100), /stat/);
});

test('findGuestPid: the QEMU process whose -name has guest=NAME, not one of another guest or another program', () => {
  const c = (pid: number, argv: string[]) => ({ pid, cmdline: argv.join('\0') + '\0' });
  const all = [
    c(1, ['/usr/bin/virsh', '-name', 'guest=a']),
    c(2, ['/usr/bin/qemu-system-x86_64', '-name', 'guest=ab,debug-threads=on']),
    c(3, ['/usr/bin/qemu-system-x86_64', '-name', 'guest=a,debug-threads=on']),
  ];
  assert.equal(findGuestPid(all, 'a'), 3);
  assert.equal(findGuestPid(all, 'ab'), 2);
  assert.equal(findGuestPid(all, 'c'), undefined);
});

test('ratioText: against kumo, n/a without a kumo figure', () => {
  assert.equal(ratioText(30, 10), '3.00x');
  assert.equal(ratioText(5, 0), 'n/a');
  assert.equal(ratioText(5, NaN), 'n/a');
});

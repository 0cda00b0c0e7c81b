import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { hostsBlock, hostsUpdateArgv, networkConfigV2, replaceHostsBlock } from '../../../src/network/guest-config.js';
import { seedFiles } from '../../../src/seed/seed.js';

const atts = [
  { network: 'backend', address: '10.99.0.2', prefix: 24, mac: '52:54:00:aa:00:02' },
  { network: 'lab', address: '192.168.77.9', prefix: 28, mac: '52:54:00:bb:00:09' },
];

test('network-config v2: the user-mode NIC on DHCP by its MAC, each private NIC static by its MAC, no gateway', () => {
  const text = networkConfigV2('52:54:00:12:34:56', atts);
  const v = parse(text) as { version: number; ethernets: Record<string, Record<string, unknown>> };
  assert.equal(v.version, 2);
  // each NIC named by set-name: the rendered config must not depend on the kernel's name for it at
  // the moment cloud-init looks (udev may rename it later)
  assert.deepEqual(v.ethernets.user0, { match: { macaddress: '52:54:00:12:34:56' }, 'set-name': 'user0', dhcp4: true });
  assert.deepEqual(v.ethernets.net1, { match: { macaddress: '52:54:00:aa:00:02' }, 'set-name': 'net1', dhcp4: false, dhcp6: false, addresses: ['10.99.0.2/24'] });
  assert.deepEqual(v.ethernets.net2, { match: { macaddress: '52:54:00:bb:00:09' }, 'set-name': 'net2', dhcp4: false, dhcp6: false, addresses: ['192.168.77.9/28'] });
  assert.deepEqual(Object.keys(v.ethernets), ['user0', 'net1', 'net2']);
  for (const n of Object.keys(v.ethernets)) assert.ok(n.length <= 15, `${n}: a Linux interface name has at most 15 bytes`);
  assert.ok(!/gateway|routes/.test(text), 'the default route stays on the user-mode NIC');
  // the seed writer takes it as the NoCloud network-config file, byte for byte
  const seed = seedFiles({ instanceId: 'i-web-1', networkConfig: text });
  assert.equal(seed.files.find((f) => f.path === 'network-config')?.data, text);
});

test('hosts block: one line per member between markers; replacing keeps every other line', () => {
  const block = hostsBlock('backend', [{ name: 'a', address: '10.99.0.1' }, { name: 'b', address: '10.99.0.2' }]);
  assert.equal(block, '# BEGIN kumo network backend\n10.99.0.1 a\n10.99.0.2 b\n# END kumo network backend\n');
  const base = '127.0.0.1 localhost\n::1 localhost\n';
  const once = replaceHostsBlock(base, 'backend', block);
  assert.equal(once, base + block);
  const other = hostsBlock('lab', [{ name: 'c', address: '10.99.1.1' }]);
  const two = replaceHostsBlock(once, 'lab', other);
  const next = hostsBlock('backend', [{ name: 'a', address: '10.99.0.1' }]);
  assert.equal(replaceHostsBlock(two, 'backend', next), base + other + next, 'the other network\u2019s block and the base stay');
  assert.equal(replaceHostsBlock('127.0.0.1 localhost', 'x', hostsBlock('x', [])), '127.0.0.1 localhost\n# BEGIN kumo network x\n# END kumo network x\n');
});

test('the guest command does what replaceHostsBlock does (run with sh on a copy, sudo and the path swapped)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kumo-hosts-'));
  try {
    const argv = hostsUpdateArgv('backend');
    assert.deepEqual(argv.slice(0, 3), ['sudo', '-n', 'sh']);
    const hosts = join(dir, 'hosts');
    const script = argv[4]!.replaceAll('/etc/hosts', hosts);
    const start = '127.0.0.1 localhost\n' + hostsBlock('lab', [{ name: 'c', address: '10.99.1.1' }]) + hostsBlock('backend', [{ name: 'old', address: '10.99.0.9' }]) + '10.1.1.1 mine\n';
    writeFileSync(hosts, start);
    const block = hostsBlock('backend', [{ name: 'a', address: '10.99.0.1' }, { name: 'b', address: '10.99.0.2' }]);
    execFileSync('sh', ['-c', script, 'kumo-hosts', 'backend'], { input: block });
    assert.equal(readFileSync(hosts, 'utf8'), replaceHostsBlock(start, 'backend', block));
    assert.ok(!readFileSync(hosts, 'utf8').includes('old'), 'the old block is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

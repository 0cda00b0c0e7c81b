import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuArgv, qemuFiles } from '../../../src/driver/qemu/argv.js';
import { hostfwdRule } from '../../../src/driver/shared/hostfwd.js';
import { macFor } from '../../../src/driver/shared/mac.js';
import { getDriver, registerDriver, requireCapability, hasCapability, DriverUnsupportedError, type InstanceRuntime } from '../../../src/driver/index.js';
import { pathsFor } from '../../../src/config/paths.js';

const rt: InstanceRuntime = {
  name: 'web',
  dir: '/home/u/kumo/instances/web',
  paths: pathsFor('/home/u/kumo'),
  cpus: 2,
  memoryMiB: 1024,
  disk: { path: '/home/u/kumo/instances/web/disk.qcow2', format: 'qcow2' },
  seed: { path: '/home/u/kumo/instances/web/seed.iso', format: 'nocloud' },
  mac: '52:54:00:12:34:56',
  sshPort: 40022,
  ports: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 }, { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 5353, guestPort: 53 }],
  accel: 'auto',
};

function optAfter(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

test('argv: q35, TCG with one thread per vCPU, sizes', () => {
  const a = buildQemuArgv(rt, { accel: 'tcg' });
  assert.deepEqual(optAfter(a, '-machine'), ['q35']);
  assert.deepEqual(optAfter(a, '-accel'), ['tcg,thread=multi']);
  assert.deepEqual(optAfter(a, '-smp'), ['2']);
  assert.deepEqual(optAfter(a, '-m'), ['1024M']);
  assert.ok(a.includes('-daemonize'));
  assert.ok(a.includes('-nodefaults'));
});

test('argv: UEFI adds OVMF code (read-only) and the instance variable store as pflash', () => {
  const a = buildQemuArgv({ ...rt, firmware: 'uefi' }, { accel: 'tcg', ovmf: { code: '/fw/CODE.fd', vars: '/i/efivars.fd' } });
  assert.deepEqual(optAfter(a, '-drive').filter((d) => d.startsWith('if=pflash')), [
    'if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd',
    'if=pflash,format=raw,unit=1,file=/i/efivars.fd',
  ]);
  assert.equal(buildQemuArgv(rt, { accel: 'tcg' }).some((x) => x.includes('pflash')), false, 'BIOS: no pflash');
});

test('argv: KVM uses the host CPU', () => {
  const a = buildQemuArgv(rt, { accel: 'kvm' });
  assert.deepEqual(optAfter(a, '-accel'), ['kvm']);
  assert.deepEqual(optAfter(a, '-cpu'), ['host']);
});

test('argv: virtio disk (overlay, writable) and read-only seed', () => {
  const a = buildQemuArgv(rt, { accel: 'tcg' });
  const drives = optAfter(a, '-drive');
  assert.equal(drives.length, 2);
  assert.match(drives[0]!, /^file=\/home\/u\/kumo\/instances\/web\/disk\.qcow2,if=none,id=disk0,format=qcow2/);
  assert.match(drives[1]!, /seed\.iso,if=none,id=seed0,format=raw,readonly=on/);
  const devs = optAfter(a, '-device');
  assert.ok(devs.includes('virtio-blk-pci,drive=disk0,bootindex=0'));
  assert.ok(devs.includes('virtio-blk-pci,drive=seed0'));
  assert.ok(devs.includes('virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56'));
});

test('argv: user networking forwards ssh from 127.0.0.1 and the user ports', () => {
  const a = buildQemuArgv(rt, { accel: 'tcg' });
  const [netdev] = optAfter(a, '-netdev');
  assert.equal(netdev, 'user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53');
  assert.equal(hostfwdRule(rt.ports[0]!), 'tcp:127.0.0.1:8080-:80');
});

test('argv: QMP socket, pid file and serial log live in the instance folder', () => {
  const a = buildQemuArgv(rt, { accel: 'tcg' });
  const f = qemuFiles(rt.dir);
  assert.deepEqual(optAfter(a, '-pidfile'), [f.pidFile]);
  assert.deepEqual(optAfter(a, '-qmp'), [`unix:${f.qmpSocket},server=on,wait=off`]);
  assert.deepEqual(optAfter(a, '-chardev'), [`socket,id=qga0,path=${f.agentSocket},server=on,wait=off`, `file,id=serial0,path=${f.serialLog},append=on`]);
  assert.deepEqual(optAfter(a, '-serial'), ['chardev:serial0']);
});

test('argv: commas in paths are escaped for QEMU option syntax', () => {
  const odd = { ...rt, dir: '/tmp/a,b/web', disk: { path: '/tmp/a,b/web/disk.qcow2', format: 'qcow2' as const } };
  const a = buildQemuArgv(odd, { accel: 'tcg', foreground: true });
  assert.match(optAfter(a, '-drive')[0]!, /^file=\/tmp\/a,,b\/web\/disk\.qcow2,if=none/);
  assert.ok(!a.includes('-daemonize'));
});

test('macFor: stable, unicast, locally administered, differs per seed', () => {
  const m = macFor('i-web-1');
  assert.equal(m, macFor('i-web-1'));
  assert.notEqual(m, macFor('i-web-2'));
  assert.match(m, /^52:54:00(:[0-9a-f]{2}){3}$/);
  const first = parseInt(m.slice(0, 2), 16);
  assert.equal(first & 1, 0);
  assert.equal(first & 2, 2);
});

test('registry: the qemu driver is registered; unknown names list the known ones', async () => {
  const q = await getDriver('qemu');
  assert.equal(q.name, 'qemu');
  assert.equal(q.capabilities.livePorts, true);
  assert.ok(hasCapability(q, 'ports'));
  assert.ok(hasCapability(q, 'consoleLog'));
  await assert.rejects(getDriver('vmware'), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, 'DRIVER_NOT_FOUND');
    assert.match(e.hint ?? '', /qemu/);
    return true;
  });
});

test('registry: a driver without a capability gives a typed unsupported error', async () => {
  registerDriver('bare-test', () => ({
    name: 'bare-test',
    capabilities: { livePorts: false, offlineSnapshots: false, liveSnapshots: false, consoleLog: false, acpiShutdown: false, remote: false },
    check: async () => {},
    start: async () => ({ accel: 'none', sshPort: 1 }),
    stop: async () => {},
    status: async () => ({ state: 'stopped' as const }),
    cleanup: async () => {},
  }));
  const d = await getDriver('bare-test');
  assert.throws(() => requireCapability(d, 'ports', 'change port forwards while running'), (e: Error & { code?: string; kind?: string }) => {
    assert.ok(e instanceof DriverUnsupportedError);
    assert.equal(e.code, 'DRIVER_UNSUPPORTED');
    assert.equal(e.kind, 'unsupported');
    assert.match(e.message, /bare-test driver cannot change port forwards while running/);
    return true;
  });
});

test('argv: the guest agent port, the VM generation id, and no restore by default', () => {
  const a = buildQemuArgv({ ...rt, vmgenid: '6b1e4b1c-2f0a-4c3e-9a1b-0123456789ab' }, { accel: 'tcg' });
  assert.deepEqual(optAfter(a, '-device').filter((d) => /virtserialport|virtio-serial|vmgenid/.test(d)), [
    'vmgenid,guid=6b1e4b1c-2f0a-4c3e-9a1b-0123456789ab',
    'virtio-serial-pci,id=vser0',
    'virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0',
  ]);
  assert.equal(a.includes('-incoming'), false);
  assert.deepEqual(optAfter(a, '-object'), []);
});

test('argv: a template (RAM in a shared file) and a clone (the file private, a pinned machine, -incoming defer)', () => {
  const t = buildQemuArgv({ ...rt, memoryFile: { path: '/t/memory', share: true }, machine: 'pc-q35-7.2' }, { accel: 'tcg' });
  assert.deepEqual(optAfter(t, '-machine'), ['pc-q35-7.2,memory-backend=mem0']);
  assert.deepEqual(optAfter(t, '-object'), ['memory-backend-file,id=mem0,size=1024M,mem-path=/t/memory,share=on']);
  assert.equal(t.includes('-incoming'), false);
  const c = buildQemuArgv({ ...rt, memoryFile: { path: '/t/mem,ory', share: false }, machine: 'pc-q35-7.2', restore: { stateFile: '/t/state', ignoreShared: true } }, { accel: 'kvm' });
  assert.deepEqual(optAfter(c, '-machine'), ['pc-q35-7.2,accel=kvm,memory-backend=mem0']);
  assert.deepEqual(optAfter(c, '-object'), ['memory-backend-file,id=mem0,size=1024M,mem-path=/t/mem,,ory,share=off']);
  assert.deepEqual(optAfter(c, '-incoming'), ['defer']);
});

test('argv: a private network adds a vde netdev on its switch and a virtio-net NIC with its own MAC, after the user-mode NIC', () => {
  const a = buildQemuArgv({ ...rt, networks: [{ name: 'backend', mac: '52:54:00:aa:00:02', socket: '/home/u/kumo/networks/backend/switch' }, { name: 'lab', mac: '52:54:00:bb:00:09', socket: '/k,x/networks/lab/switch' }] }, { accel: 'tcg' });
  const netdevs = optAfter(a, '-netdev');
  assert.equal(netdevs.length, 3);
  assert.match(netdevs[0]!, /^user,id=net0,/);
  assert.equal(netdevs[1], 'vde,id=vnet1,sock=/home/u/kumo/networks/backend/switch');
  assert.equal(netdevs[2], 'vde,id=vnet2,sock=/k,,x/networks/lab/switch', 'commas in the path are doubled');
  const nics = optAfter(a, '-device').filter((d) => d.startsWith('virtio-net-pci'));
  assert.deepEqual(nics, [`virtio-net-pci,netdev=net0,mac=${rt.mac}`, 'virtio-net-pci,netdev=vnet1,mac=52:54:00:aa:00:02', 'virtio-net-pci,netdev=vnet2,mac=52:54:00:bb:00:09']);
  assert.equal(optAfter(buildQemuArgv(rt, { accel: 'tcg' }), '-netdev').length, 1, 'no network: the user-mode NIC only');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filesReadableBy, qemuAccountFromCaps, KUMO_POOL } from '../../../src/driver/libvirt/pool.js';
import { connectionError, isLocalUri, parseUri, reachHost, parseNetworkOption, parseDomifaddr, libvirtOptions, firstError } from '../../../src/driver/libvirt/index.js';

test('libvirt URIs: parsed, local or remote, invalid ones refused', () => {
  assert.deepEqual(parseUri('qemu:///system'), { uri: 'qemu:///system', driver: 'qemu', path: '/system' });
  const r = parseUri('qemu+ssh://alice@host.example:2222/system?keyfile=/k');
  assert.equal(r.transport, 'ssh');
  assert.equal(r.host, 'host.example');
  assert.equal(r.port, 2222);
  assert.equal(r.user, 'alice');
  assert.equal(r.path, '/system');
  assert.equal(isLocalUri('qemu:///session'), true);
  assert.equal(isLocalUri('qemu+tcp://127.0.0.1/system'), true);
  assert.equal(isLocalUri('qemu+ssh://host.example/system'), false);
  assert.equal(reachHost('qemu+ssh://host.example/system'), 'host.example');
  assert.equal(reachHost('qemu+tcp://localhost/system'), '127.0.0.1');
  for (const bad of ['', 'system', '/var/run/libvirt', 'qemu:///system with space']) {
    assert.throws(() => parseUri(bad), (e: Error & { code?: string; hint?: string }) => e.code === 'LIBVIRT_URI_INVALID' && !!e.hint);
  }
});

test("libvirt's error text becomes a typed error with a hint", () => {
  const cases: [string, string][] = [
    ["error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory", 'LIBVIRT_UNREACHABLE'],
    ["error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied", 'LIBVIRT_PERMISSION_DENIED'],
    ['error: failed to connect to the hypervisor\nerror: no connection driver available for foo:///system', 'LIBVIRT_URI_UNKNOWN'],
    ["error: failed to connect to the hypervisor\nerror: internal error: unexpected qemu URI path '/bogus', try qemu:///system", 'LIBVIRT_URI_UNKNOWN'],
    ["error: failed to connect to the hypervisor\nerror: unable to connect to server at '127.0.0.1:16509': Connection refused", 'LIBVIRT_UNREACHABLE'],
    ['error: failed to connect to the hypervisor\nerror: Cannot recv data: ssh: connect to host 127.0.0.1 port 1: Connection refused: Connection reset by peer', 'LIBVIRT_UNREACHABLE'],
    // libvirtd answers, its log daemon does not: not "cannot reach libvirt"
    ["error: Failed to start domain 'b'\nerror: Failed to connect socket to '/run/libvirt/virtlogd-sock': No such file or directory", 'LIBVIRT_VIRTLOGD_DOWN'],
    ["error: Failed to start domain 'b'\nerror: Failed to connect socket to '/var/run/libvirt/virtlogd-sock': Connection refused", 'LIBVIRT_VIRTLOGD_DOWN'],
  ];
  for (const [stderr, code] of cases) {
    const e = connectionError('qemu:///system', stderr);
    assert.equal(e?.code, code, stderr);
    assert.ok(e?.hint, 'a hint');
    assert.match(e!.message, /qemu:\/\/\/system/);
    assert.doesNotMatch(e!.message, /failed to connect to the hypervisor/);
  }
  assert.equal(connectionError('qemu:///system', "error: failed to get domain 'x'"), undefined);
  assert.equal(firstError('error: a\nerror: b\n'), 'a: b');
});

test('network option, domifaddr parsing and driver options', () => {
  assert.deepEqual(parseNetworkOption(undefined), { kind: 'user' });
  assert.deepEqual(parseNetworkOption('network:default'), { kind: 'network', name: 'default' });
  assert.deepEqual(parseNetworkOption('default'), { kind: 'network', name: 'default' });
  assert.deepEqual(parseNetworkOption('bridge:br0'), { kind: 'bridge', name: 'br0' });
  assert.throws(() => parseNetworkOption('network:a b'), /not a libvirt network/);
  const out = ` vnet0      52:54:00:0c:9d:1a    ipv4         192.168.122.57/24\n vnet0      52:54:00:0c:9d:1a    ipv6         fe80::1/64\n`;
  assert.equal(parseDomifaddr(out, '52:54:00:0C:9D:1A'), '192.168.122.57');
  assert.equal(parseDomifaddr(out, '52:54:00:00:00:00'), undefined);
  const o = libvirtOptions({ name: 'a', driverOptions: { connect: 'qemu+tcp://127.0.0.1/system', pool: 'p' } });
  assert.deepEqual(o, { connect: 'qemu+tcp://127.0.0.1/system', domain: 'a', network: { kind: 'user' }, forwardAddr: '127.0.0.1', pool: 'p' });
  assert.throws(() => libvirtOptions({ name: 'a', driverOptions: { connect: 'nope' } }), /not a libvirt connection URI/);
});

test('resolveOptions pins the connect URI at create (LIBVIRT_DEFAULT_URI, else by user) and validates the rest; capabilities', async () => {
  const { LibvirtDriver, parsePoolOption } = await import('../../../src/driver/libvirt/index.js');
  const { QemuDriver } = await import('../../../src/driver/qemu/index.js');
  const { hasCapability } = await import('../../../src/driver/driver.js');
  const d = new LibvirtDriver();
  const saved = process.env.LIBVIRT_DEFAULT_URI;
  try {
    process.env.LIBVIRT_DEFAULT_URI = 'qemu+tcp://127.0.0.1:1/system';
    assert.deepEqual(d.resolveOptions(undefined), { connect: 'qemu+tcp://127.0.0.1:1/system' });
    assert.deepEqual(d.resolveOptions({ pool: 'p', network: 'network:default' }), { connect: 'qemu+tcp://127.0.0.1:1/system', pool: 'p', network: 'network:default' });
    delete process.env.LIBVIRT_DEFAULT_URI;
    assert.deepEqual(d.resolveOptions({}), { connect: process.getuid?.() === 0 ? 'qemu:///system' : 'qemu:///session' });
    assert.deepEqual(d.resolveOptions({ connect: 'qemu:///session' }), { connect: 'qemu:///session' });
  } finally {
    if (saved === undefined) delete process.env.LIBVIRT_DEFAULT_URI;
    else process.env.LIBVIRT_DEFAULT_URI = saved;
  }
  assert.throws(() => d.resolveOptions({ connect: 'qemu:///system', network: 'bad name' }), (e: Error & { code?: string }) => e.code === 'LIBVIRT_NETWORK_INVALID');
  assert.throws(() => parsePoolOption('-rf'), (e: Error & { code?: string; hint?: string }) => e.code === 'LIBVIRT_POOL_INVALID' && !!e.hint);
  assert.equal(parsePoolOption('default'), 'default');
  for (const cap of ['ports', 'consoleLog', 'sshEndpoint', 'desync'] as const) assert.equal(hasCapability(d, cap), true, cap);
  assert.equal(typeof d.purge, 'function');
  const q = new QemuDriver();
  assert.equal(hasCapability(q, 'sshEndpoint'), false, 'the QEMU driver: 127.0.0.1:sshPort');
  assert.equal(hasCapability(q, 'desync'), false);
});

test('livePorts is honest: the libvirt driver forwards ports live only with user networking', async () => {
  const { LibvirtDriver } = await import('../../../src/driver/libvirt/index.js');
  const { QemuDriver } = await import('../../../src/driver/qemu/index.js');
  const { capabilitiesOf, DriverUnsupportedError } = await import('../../../src/driver/driver.js');
  const d = new LibvirtDriver();
  // Not for every instance of the backend, so not in the backend-wide flags.
  assert.equal(d.capabilities.livePorts, false);
  const user = { name: 'u', driverOptions: { connect: 'qemu:///system' } };
  const onNet = { name: 'n', driverOptions: { connect: 'qemu:///system', network: 'network:default' } };
  assert.equal(capabilitiesOf(d, user).livePorts, true);
  assert.equal(capabilitiesOf(d, { name: 'u2', driverOptions: { connect: 'qemu:///system', network: 'user' } }).livePorts, true);
  assert.equal(capabilitiesOf(d, onNet).livePorts, false);
  assert.equal(capabilitiesOf(d, { name: 'b', driverOptions: { connect: 'qemu:///system', network: 'bridge:br0' } }).livePorts, false);
  // Where the flag says no, the methods say so with the typed error (before any virsh call).
  const rt = { ...onNet, dir: '/nonexistent', paths: {} as never, cpus: 1, memoryMiB: 128, disk: { path: '/x', format: 'qcow2' as const }, mac: '52:54:00:00:00:01', sshPort: 0, ports: [], accel: 'tcg' as const };
  const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 };
  for (const call of [() => d.addPort(rt, fwd), () => d.removePort(rt, fwd)]) {
    await assert.rejects(call(), (e: Error & { code?: string }) => {
      assert.ok(e instanceof DriverUnsupportedError);
      assert.equal(e.code, 'DRIVER_UNSUPPORTED');
      assert.match(e.message, /libvirt driver cannot forward ports on a libvirt network \(default\)/);
      return true;
    });
  }
  // The QEMU driver forwards ports for every instance.
  const q = new QemuDriver();
  assert.equal(q.capabilities.livePorts, true);
  assert.equal(capabilitiesOf(q, user).livePorts, true);
});

test('a libvirt URI from a spec file cannot run a program or weaken host verification; from --connect it may', async () => {
  const { checkUriSafety } = await import('../../../src/driver/libvirt/virsh.js');
  const { validateSpec, EXPLICIT_FIELDS } = await import('../../../src/config/spec.js');
  const { registerBuiltinDrivers } = await import('../../../src/driver/registry.js');
  registerBuiltinDrivers();
  const risky = [
    ['qemu+ext:///system?command=/tmp/evil.sh', /the 'ext' transport \(runs a program\) and 'command=' \(runs a program\)/],
    ['qemu+ssh://me@host/system?netcat=/tmp/x', /'netcat=' \(runs a program\)/],
    ['qemu+tls://host/system?no_verify=1', /'no_verify=' \(weakens the verification/],
    ['qemu+libssh2://me@host/system?known_hosts_verify=ignore', /'known_hosts_verify='/],
    ['qemu+ssh://me@host/system?known_hosts=/tmp/any', /'known_hosts='/],
    ['qemu+tls://host/system?pkipath=/tmp/ca', /'pkipath='/],
  ] as const;
  for (const [uri, re] of risky) {
    assert.throws(() => checkUriSafety(uri, false), (e: Error & { code?: string; hint?: string }) => e.code === 'LIBVIRT_URI_UNSAFE' && re.test(e.message) && /--connect on the command line/.test(e.hint ?? ''), uri);
    assert.doesNotThrow(() => checkUriSafety(uri, true), uri);
    // through the spec validator: refused from a file, accepted when the CLI marks the field explicit
    assert.throws(() => validateSpec({ name: 'x', driver: 'libvirt', connect: uri }), (e: Error & { issues?: { path: string; message: string }[] }) => !!e.issues?.some((i) => i.path === 'connect' && re.test(i.message)), uri);
    const fromFlag: Record<string | symbol, unknown> = { name: 'x', driver: 'libvirt', connect: uri, [EXPLICIT_FIELDS]: ['connect'] };
    assert.equal(validateSpec(fromFlag).driverOptions?.connect, uri);
  }
  // safe URIs, from anywhere: the unix socket of a private daemon, ssh, tls with a key file
  for (const uri of ['qemu:///system', 'qemu+unix:///system?socket=/run/x/sock', 'qemu+ssh://me@host/system?keyfile=/home/me/.ssh/id&mode=direct', 'qemu+tls://host/system'])
    assert.doesNotThrow(() => checkUriSafety(uri, false), uri);
  // a transport libvirt does not have is refused even from the command line
  assert.throws(() => checkUriSafety('qemu+foo://host/system', true), { code: 'LIBVIRT_URI_UNSAFE' });
});

test("the daemon's QEMU account from its capabilities, and whether kumo's files can be handed to it", () => {
  // as Debian's qemu:///system reports it: a none model and the DAC model with QEMU's uid:gid
  const stock = `<capabilities><host><secmodel>\n<model>none</model>\n<doi>0</doi>\n</secmodel>\n<secmodel>\n<model>dac</model>\n<doi>0</doi>\n<baselabel type='kvm'>+999:+994</baselabel>\n<baselabel type='qemu'>+999:+994</baselabel>\n</secmodel></host></capabilities>`;
  assert.deepEqual(qemuAccountFromCaps(stock), { uid: 999, gid: 994 });
  assert.equal(filesReadableBy(qemuAccountFromCaps(stock), 0), false, 'libvirt-qemu cannot enter a 0700 home of root');
  assert.equal(filesReadableBy(qemuAccountFromCaps(stock), 999), true, 'QEMU as this very user (a session daemon) reads its files');
  // QEMU as root (user = "root" in qemu.conf), or no DAC model at all (security_driver = "none"): files
  assert.equal(filesReadableBy(qemuAccountFromCaps(stock.replace(/\+999:\+994/g, '+0:+0')), 1000), true);
  assert.equal(qemuAccountFromCaps('<capabilities><host><secmodel><model>none</model><doi>0</doi></secmodel></host></capabilities>'), undefined);
  assert.equal(filesReadableBy(undefined, 1000), true, 'a daemon that does not say keeps the files');
  assert.equal(KUMO_POOL, 'kumo');
});

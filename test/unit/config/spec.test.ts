import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { validateSpec, parsePortForward, parsePortForwardInput, loadSpecFile, DEFAULTS } from '../../../src/config/spec.js';
import { nameIssues } from '../../../src/core/names.js';
import { parseSize } from '../../../src/core/units.js';
import { userDataProblem, loadUserData } from '../../../src/seed/userdata.js';
import { ValidationError } from '../../../src/core/errors.js';
import { registerBuiltinDrivers } from '../../../src/driver/index.js';

// The drivers declare their spec fields (libvirt: connect, pool, network); the registry hands them to the validator.
registerBuiltinDrivers();

function issuesOf(input: Record<string, unknown>): { path: string; message: string; hint?: string }[] {
  try {
    validateSpec(input);
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return e.issues;
  }
  assert.fail('expected a ValidationError');
}

test('names: valid ones pass', () => {
  for (const n of ['web', 'a', 'web-1', '0day', 'x'.repeat(63)]) assert.deepEqual(nameIssues(n), [], n);
});

test('names: empty, .., /, too long, odd characters, upper case are refused with a hint', () => {
  for (const n of ['', '..', '.', 'a/b', '../x', 'x'.repeat(64), 'web_1', 'Web', 'a b', '-a', 'a-', 'a;rm', 'é']) {
    const i = nameIssues(n);
    assert.equal(i.length, 1, n);
    assert.equal(i[0]!.path, 'name');
    assert.match(i[0]!.hint!, /lower-case letters, digits/);
  }
  assert.match(nameIssues('x'.repeat(64))[0]!.message, /64 characters long \(at most 63\)/);
  assert.match(nameIssues('a/b')[0]!.message, /another folder/);
  assert.match(nameIssues('web_1')[0]!.message, /contains '_'/);
});

test('defaults are filled in', () => {
  const s = validateSpec({ name: 'web' });
  assert.equal(s.image, DEFAULTS.image);
  assert.equal(s.cpus, 2);
  assert.equal(s.memoryMiB, 1024);
  assert.equal(s.accel, 'auto');
  assert.equal(s.driver, 'qemu');
  assert.equal(s.user, 'kumo');
  assert.deepEqual(s.ports, []);
});

test('flags as strings are normalised: sizes, cpus, ports, timeout', () => {
  const s = validateSpec({ name: 'db', cpus: '4', memory: '2G', disk: '20G', ports: ['8080:80', '0.0.0.0:5353:53/udp'], timeout: '5m' });
  assert.equal(s.cpus, 4);
  assert.equal(s.memoryMiB, 2048);
  assert.equal(s.diskBytes, 20 * 1024 ** 3);
  assert.deepEqual(s.ports, [
    { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 },
    { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 5353, guestPort: 53 },
  ]);
  assert.equal(s.timeoutSec, 300);
  assert.equal(validateSpec({ name: 'a', memory: 512 }).memoryMiB, 512);
});

test('every problem is reported at once, each with its field path', () => {
  const i = issuesOf({ name: '../etc', cpus: 0, memory: '64M', ports: ['80', '70000:22', '8080:80', '8080:81'], accel: 'xen', colour: 'blue' });
  const paths = i.map((x) => x.path).sort();
  assert.deepEqual(paths, ['accel', 'colour', 'cpus', 'memory', 'name', 'ports[0]', 'ports[1]', 'ports[3]']);
  for (const x of i) assert.ok(x.hint, `${x.path} has a hint`);
});

test('cpus and memory out of range', () => {
  assert.match(issuesOf({ name: 'a', cpus: 1000 })[0]!.message, /1000 is out of range/);
  assert.match(issuesOf({ name: 'a', cpus: '1.5' })[0]!.message, /whole number/);
  assert.match(issuesOf({ name: 'a', memory: '999999G' })[0]!.message, /out of range/);
  assert.match(issuesOf({ name: 'a', memory: 'lots' })[0]!.message, /cannot read/);
});

test('the ValidationError message lists every issue', () => {
  try {
    validateSpec({ name: '', cpus: -1 });
    assert.fail();
  } catch (e) {
    assert.match((e as Error).message, /2 problems/);
    assert.match((e as Error).message, /name: is empty/);
    assert.match((e as Error).message, /cpus: /);
  }
});

test('parsePortForward and parseSize', () => {
  assert.deepEqual(parsePortForward('localhost:2000:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2000, guestPort: 22 });
  // host port 0 is dynamic now (issue 22: picked at start); a guest port 0 stays out of range
  assert.deepEqual(parsePortForward('0:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 22, dynamic: true });
  assert.match(parsePortForward('2000:0') as string, /guest port 0 is out of range/);
  assert.match(parsePortForward('300.1.1.1:80:80') as string, /not an IPv4/);
  assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('512', 1024 ** 2), 512 * 1024 ** 2);
  assert.equal(parseSize('12 parsecs'), undefined);
});

test('user-data: formats cloud-init accepts, and what it would ignore', () => {
  assert.equal(userDataProblem(Buffer.from('#cloud-config\npackages: [curl]\n')), undefined);
  assert.equal(userDataProblem(Buffer.from('#!/bin/sh\necho hi\n')), undefined);
  assert.equal(userDataProblem(Buffer.from('Content-Type: multipart/mixed; boundary="x"\n')), undefined);
  assert.equal(userDataProblem(gzipSync('#cloud-config\n{}\n')), undefined);
  assert.match(userDataProblem(Buffer.from('#cloud-config\nusers: [\n'))!, /not valid YAML/);
  assert.match(userDataProblem(Buffer.from('#cloud-config\n- a\n- b\n'))!, /not a mapping/);
  assert.match(userDataProblem(Buffer.from('hello: world\n'))!, /does not recognise/);
  assert.match(userDataProblem(Buffer.from(''))!, /empty/);
});

test('loadSpecFile parses YAML (relative paths against the file) and validateSpec checks it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-spec-'));
  try {
    await writeFile(join(dir, 'web.yaml'), 'name: web\nmemory: 2G\nuserData: init.yaml\nports: ["8080:80"]\n');
    const raw = await loadSpecFile(join(dir, 'web.yaml'));
    const s = validateSpec(raw);
    assert.equal(s.userDataPath, join(dir, 'init.yaml'));
    assert.equal(s.memoryMiB, 2048);
    await assert.rejects(loadUserData(s), (e: Error & { code?: string }) => e.code === 'USER_DATA_UNREADABLE' && /init\.yaml/.test(e.message));
    await writeFile(join(dir, 'init.yaml'), 'runcmd: [true]\n');
    await assert.rejects(loadUserData(s), (e: Error) => e instanceof ValidationError && /does not recognise/.test(e.message));
    await writeFile(join(dir, 'init.yaml'), '#cloud-config\nruncmd: [true]\n');
    assert.match((await loadUserData(s))!, /runcmd/);
    // gzip'd user-data is unpacked to its text (kumo merges its part into it)
    await writeFile(join(dir, 'init.yaml'), gzipSync('#cloud-config\nruncmd: [echo gz]\n'));
    assert.equal(await loadUserData(s), '#cloud-config\nruncmd: [echo gz]\n');
    await writeFile(join(dir, 'bad.yaml'), 'name: [unclosed\n');
    await assert.rejects(loadSpecFile(join(dir, 'bad.yaml')), (e: Error & { code?: string }) => e.code === 'SPEC_PARSE');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unknown field is an issue with a did-you-mean, beside the other problems', () => {
  const issues = issuesOf({ name: 'a', memroy: '2G', cpu: 2, cpus: 'lots', zzzzzz: 1 });
  assert.match(issues.find((i) => i.path === 'memroy')!.message, /not a known field; did you mean 'memory'\?/);
  assert.match(issues.find((i) => i.path === 'cpu')!.message, /did you mean 'cpus'\?/);
  assert.equal(issues.find((i) => i.path === 'zzzzzz')!.message, 'is not a known field');
  assert.ok(issues.some((i) => i.path === 'cpus'));
});

test('userData: content given directly (library) is kept as content, a path as a path', () => {
  const a = validateSpec({ name: 'a', userData: '#cloud-config\npackages: [nginx]\n' });
  assert.equal(a.userDataText, '#cloud-config\npackages: [nginx]\n');
  assert.equal(a.userDataPath, undefined);
  const b = validateSpec({ name: 'a', userData: 'init.yaml' }, { cwd: '/srv' });
  assert.equal(b.userDataPath, '/srv/init.yaml');
  assert.match(issuesOf({ name: 'a', userData: '#cloud-config\nx: [\n' })[0]!.message, /not valid YAML/);
});

test('libvirt options: connect, pool and network are carried in driverOptions with driver libvirt', () => {
  const s = validateSpec({ name: 'lv', driver: 'libvirt', connect: 'qemu+ssh://me@host/system', pool: 'default', network: 'network:default' }, { drivers: ['libvirt', 'qemu'] });
  assert.equal(s.driver, 'libvirt');
  assert.deepEqual(s.driverOptions, { connect: 'qemu+ssh://me@host/system', pool: 'default', network: 'network:default' });
  assert.equal(validateSpec({ name: 'q' }).driverOptions, undefined, 'no options, no driverOptions');
});

test('libvirt options with another driver are refused with the field path and a hint; bad values too', () => {
  const withQemu = issuesOf({ name: 'q', driver: 'qemu', connect: 'qemu:///system', pool: 'default' });
  assert.deepEqual(withQemu.map((i) => i.path), ['connect', 'pool']);
  assert.match(withQemu[0]!.message, /applies only to the libvirt driver \(the driver is qemu\)/);
  assert.match(withQemu[0]!.hint!, /--driver libvirt/);
  // The default driver is qemu: --connect alone is refused the same way.
  assert.deepEqual(issuesOf({ name: 'q', network: 'user' }).map((i) => i.path), ['network']);
  const bad = issuesOf({ name: 'l', driver: 'libvirt', connect: 'not a uri', pool: '-x', network: 'network:a b' });
  assert.deepEqual(bad.map((i) => i.path), ['connect', 'pool', 'network']);
  for (const i of bad) assert.ok(i.hint, `${i.path} has a hint`);
  assert.match(bad[0]!.message, /not a libvirt connection URI/);
});

test('driver names are checked against the registered drivers when given', () => {
  let issues: { path: string; message: string; hint?: string }[] = [];
  try {
    validateSpec({ name: 'x', driver: 'virtualbx', connect: 'qemu:///system' }, { drivers: ['libvirt', 'qemu'] });
  } catch (e) {
    issues = (e as ValidationError).issues;
  }
  assert.deepEqual(issues.map((i) => i.path), ['driver'], 'no second-guessing of connect when the driver is unknown');
  assert.match(issues[0]!.hint!, /one of: libvirt, qemu/);
});

test('one port parser for strings and objects: nothing but ports, an IPv4 address and tcp/udp gets through', () => {
  assert.deepEqual(parsePortForwardInput({ hostPort: 8080, guestPort: 80, hostAddr: '127.0.0.1', proto: 'tcp' }), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 });
  assert.deepEqual(parsePortForwardInput({ host: 5353, guest: 53, proto: 'udp' }), { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 5353, guestPort: 53 });
  assert.deepEqual(parsePortForwardInput('8080:80'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 });
  // what QEMU's -netdev option syntax would take as more options or a command
  for (const bad of [
    { hostPort: 8080, guestPort: '80,guestfwd=tcp:10.0.2.100:1234-cmd:/tmp/script' },
    { hostPort: '8080,hostfwd=tcp::2222-:22', guestPort: 80 },
    { hostPort: 8080, guestPort: 80, hostAddr: '0.0.0.0,restrict=off' },
    { hostPort: 8080, guestPort: 80, proto: 'tcp,x=y' },
    { hostPort: 8080.5, guestPort: 80 },
    { hostPort: 8080 },
    '8080:80,guestfwd=tcp:10.0.2.100:1234-cmd:/bin/sh',
    null,
    42,
  ])
    assert.equal(typeof parsePortForwardInput(bad), 'string', JSON.stringify(bad));
});

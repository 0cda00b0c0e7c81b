/**
 * Private networks against the real pieces, without booting a guest OS (the base is a blank
 * qcow2: QEMU starts and sits in the firmware, which is all a switch port needs): the network
 * store and its one lock across processes (concurrent allocations never share an address), the
 * VDE switch started with the first member and stopped with the last, found again by a second
 * start, started again after kill -9, QEMU's NIC really plugged into it (the switch's port
 * sockets), leases released on delete, and the bad inputs (unknown network, removal in use,
 * exhausted pool) leaving nothing half-made.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHome, type KumoPaths } from '../../../src/config/paths.js';
import { registerBuiltins } from '../../../src/builtins.js';
import { importImage } from '../../../src/image/index.js';
import { cloneInstance, createInstance, deleteInstance, instanceFiles, listNames, readRecord, startInstance, stopInstance } from '../../../src/instance/index.js';
import { allocateAddresses, networkFiles, readNetwork, releaseAddresses } from '../../../src/network/store.js';
import { ensureSwitch, stopSwitch, switchState } from '../../../src/network/switch.js';
import { createNetwork, networkInfo, networkList, removeNetwork } from '../../../src/network/index.js';
import type { KumoError } from '../../../src/core/errors.js';

registerBuiltins();
process.env.KUMO_ACCEL = 'tcg';
const pexec = promisify(execFile);

let root = '';
let paths: KumoPaths;

before(async () => {
  // a short folder: the switch's sockets must fit a unix socket path
  root = await mkdtemp(join(tmpdir(), 'kn-'));
  paths = await ensureHome({ home: join(root, 'h') });
  const base = join(root, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
  await importImage(paths, base, { name: 'blank' });
});

after(async () => {
  for (const n of await listNames(paths)) await deleteInstance(paths, n, { force: true }).catch(() => {});
  for (const n of await networkList(paths).catch(() => [])) await stopSwitch(networkFiles(paths, n.name)).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

const shape = { image: 'blank', memory: 128, cpus: 1, accel: 'tcg', timeout: 2 } as const;

/** The switch's port sockets (NNN.M files vde_switch makes for each client plugged in). */
async function switchPorts(network: string): Promise<string[]> {
  return (await readdir(networkFiles(paths, network).socket).catch(() => [] as string[])).filter((f) => /^\d+\.\d+$/.test(f));
}

test('network create/list/rm: default subnets never overlap nor touch 10.0.2.0/24; overlaps and bad subnets are typed errors that make nothing', async () => {
  const a = await createNetwork(paths, 'na');
  const b = await createNetwork(paths, 'nb');
  assert.equal(a.subnet, '10.99.0.0/24');
  assert.equal(b.subnet, '10.99.1.0/24');
  await assert.rejects(createNetwork(paths, 'nc', { subnet: '10.99.1.128/25' }), (e: KumoError) => e.code === 'SUBNET_OVERLAP' && /network 'nb'/.test(e.message));
  await assert.rejects(createNetwork(paths, 'nc', { subnet: '10.0.0.0/22' }), (e: KumoError) => e.code === 'SUBNET_OVERLAP' && /10\.0\.2\.0\/24/.test(e.message));
  await assert.rejects(createNetwork(paths, 'nc', { subnet: '10.5.0.7/24' }), (e: KumoError) => e.code === 'BAD_SUBNET');
  await assert.rejects(createNetwork(paths, 'na'), (e: KumoError) => e.code === 'NETWORK_EXISTS');
  await assert.rejects(createNetwork(paths, 'user'), (e: KumoError) => e.code === 'INVALID');
  assert.equal(existsSync(networkFiles(paths, 'nc').dir), false, 'a refused create leaves no folder');
  assert.deepEqual((await networkList(paths)).map((n) => n.name), ['na', 'nb']);
  await removeNetwork(paths, 'nb');
  await assert.rejects(removeNetwork(paths, 'nb'), (e: KumoError) => e.code === 'NETWORK_NOT_FOUND');
  const c = await createNetwork(paths, 'nc');
  assert.equal(c.subnet, '10.99.1.0/24', 'a removed network\u2019s subnet is free again');
  await removeNetwork(paths, 'nc');
  await removeNetwork(paths, 'na');
});

test('allocation under the store lock: 12 processes allocating at once on one network all get distinct addresses', async () => {
  await createNetwork(paths, 'race');
  const storeJs = fileURLToPath(new URL('../../../src/network/store.js', import.meta.url));
  const pathsJs = fileURLToPath(new URL('../../../src/config/paths.js', import.meta.url));
  const N = 12;
  // the instances' folders exist (a lease belongs to an existing instance)
  for (let i = 0; i < N; i++) await mkdir(join(paths.instances, `r${i}`), { recursive: true });
  const script = `const s = await import(${JSON.stringify(storeJs)}); const p = await import(${JSON.stringify(pathsJs)});
    const a = await s.allocateAddresses(p.pathsFor(process.argv[1]), process.argv[2], ['race'], () => '52:54:00:00:00:01');
    process.stdout.write(a[0].address);`;
  const outs = await Promise.all(Array.from({ length: N }, (_, i) => pexec(process.execPath, ['--input-type=module', '-e', script, paths.home, `r${i}`]).then((r) => r.stdout)));
  assert.equal(new Set(outs).size, N, `addresses: ${outs.join(' ')}`);
  const rec = await readNetwork(paths, 'race');
  assert.equal(Object.keys(rec.leases).length, N);
  assert.deepEqual(Object.fromEntries(Object.entries(rec.leases).map(([k, l]) => [k, l.address])), Object.fromEntries(outs.map((a, i) => [`r${i}`, a])));
  // an instance removed behind kumo's back: its lease is dropped at the next allocation
  await rm(join(paths.instances, 'r0'), { recursive: true });
  await mkdir(join(paths.instances, 'late'), { recursive: true });
  const [late] = await allocateAddresses(paths, 'late', ['race'], () => '52:54:00:00:00:02');
  assert.equal(late!.address, outs[0], 'the lowest free address, the one r0 held');
  for (let i = 1; i < N; i++) await releaseAddresses(paths, `r${i}`, ['race']);
  await releaseAddresses(paths, 'late', ['race']);
  for (let i = 1; i < N; i++) await rm(join(paths.instances, `r${i}`), { recursive: true });
  await rm(join(paths.instances, 'late'), { recursive: true });
  await removeNetwork(paths, 'race');
});

test('switch: started once, found again, started again after kill -9 (stale pid file and sockets swept), stopped', async () => {
  await createNetwork(paths, 'sw');
  const f = networkFiles(paths, 'sw');
  const s1 = await ensureSwitch(f);
  assert.equal(s1.started, true);
  assert.ok(existsSync(join(f.socket, 'ctl')));
  const cmd = (await readFile(`/proc/${s1.pid}/cmdline`, 'utf8')).split('\0');
  assert.match(cmd[0]!, /vde_switch$/);
  const s2 = await ensureSwitch(f);
  assert.deepEqual([s2.started, s2.pid], [false, s1.pid], 'a running switch is found again, not doubled');
  process.kill(s1.pid!, 'SIGKILL');
  for (let i = 0; i < 200 && (await switchState(f)).running; i++) await new Promise((r) => setTimeout(r, 10));
  const dead = await switchState(f);
  assert.equal(dead.running, false);
  assert.match(dead.detail ?? '', /not running: the switch died/);
  const warned: string[] = [];
  const s3 = await ensureSwitch(f, { onWarn: (m) => warned.push(m) });
  assert.equal(s3.started, true);
  assert.notEqual(s3.pid, s1.pid);
  assert.match(warned.join('\n'), /the switch died; starting it again/);
  assert.equal(await stopSwitch(f), true);
  assert.equal((await switchState(f)).running, false);
  assert.equal(existsSync(f.socket), false, 'its sockets are gone');
  await removeNetwork(paths, 'sw');
});

test('instances on a network: addresses recorded, NIC plugged into the switch, switch up while a member runs, down after the last; rm refused naming them; delete gives the address back', { timeout: 240_000 }, async () => {
  await createNetwork(paths, 'lan', { subnet: '10.98.0.0/29' });
  const a = await createInstance(paths, { name: 'ia', ...shape, networks: ['lan'] });
  const b = await createInstance(paths, { name: 'ib', ...shape, networks: ['lan'] });
  assert.equal(a.networks?.[0]?.address, '10.98.0.1');
  assert.equal(b.networks?.[0]?.address, '10.98.0.2');
  assert.notEqual(a.networks?.[0]?.mac, a.mac, 'the private NIC has a MAC of its own');
  assert.notEqual(a.networks?.[0]?.mac, b.networks?.[0]?.mac);
  // the seed carries the network-config (read back with isoinfo, an independent reader)
  const nc = execFileSync('isoinfo', ['-R', '-i', instanceFiles(paths, 'ia').seed, '-x', '/network-config'], { encoding: 'utf8' });
  assert.match(nc, new RegExp(`macaddress: ${a.mac!.replace(/:/g, ':')}[\\s\\S]*dhcp4: true`));
  assert.match(nc, /addresses:\s*\n\s*- 10\.98\.0\.1\/29/);
  const lan = networkFiles(paths, 'lan');
  assert.equal((await switchState(lan)).running, false, 'no switch before a member runs');

  await startInstance(paths, 'ia', { wait: false });
  const sw1 = await switchState(lan);
  assert.equal(sw1.running, true, 'the first member started the switch');
  const pid = Number((await readFile(instanceFiles(paths, 'ia').qemuPid, 'utf8')).trim());
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  assert.ok(argv.includes(`vde,id=vnet1,sock=${lan.socket}`), 'QEMU joins the switch');
  assert.equal((await switchPorts('lan')).length, 1, 'one port of the switch is taken (QEMU plugged in)');
  await startInstance(paths, 'ib', { wait: false });
  assert.equal((await switchState(lan)).pid, sw1.pid, 'the second member uses the same switch');
  assert.equal((await switchPorts('lan')).length, 2);

  await assert.rejects(removeNetwork(paths, 'lan'), (e: KumoError) => e.code === 'NETWORK_IN_USE' && /'ia', 'ib'/.test(e.message) && /kumo delete ia ib/.test(e.hint ?? ''));

  await stopInstance(paths, 'ia', { force: true });
  assert.equal((await switchState(lan)).running, true, 'still up: ib runs');
  assert.equal((await switchPorts('lan')).length, 1);

  // kill -9 of the switch under a running member: the next start of a member starts it again
  process.kill(sw1.pid!, 'SIGKILL');
  for (let i = 0; i < 200 && (await switchState(lan)).running; i++) await new Promise((r) => setTimeout(r, 10));
  const events: string[] = [];
  await startInstance(paths, 'ia', { wait: false, onEvent: (e) => e.type === 'log' && events.push(e.message) });
  const sw2 = await switchState(lan);
  assert.equal(sw2.running, true);
  assert.notEqual(sw2.pid, sw1.pid);
  assert.match(events.join('\n'), /network 'lan': switch\.pid names pid \d+, which is not running: the switch died; starting it again/);
  assert.match(events.join('\n'), /network 'lan': ib ran on the switch that died and is cut off from it: kumo restart ib/);
  assert.equal((await switchPorts('lan')).length, 1, 'the restarted member is plugged into the new switch');

  await stopInstance(paths, 'ia', { force: true });
  await stopInstance(paths, 'ib', { force: true });
  assert.equal((await switchState(lan)).running, false, 'the last member stopped: the switch is stopped');

  // the pool (a /29: 6 addresses) runs out: a typed error, and that create leaves nothing
  for (const n of ['ic', 'id', 'ie', 'if']) await createInstance(paths, { name: n, ...shape, networks: ['lan'] });
  await assert.rejects(createInstance(paths, { name: 'ig', ...shape, networks: ['lan'] }), (e: KumoError) => e.code === 'ADDRESS_POOL_EXHAUSTED' && /all 6 of 10\.98\.0\.0\/29/.test(e.message));
  assert.equal(existsSync(instanceFiles(paths, 'ig').dir), false, 'no instance folder left');
  assert.equal((await readNetwork(paths, 'lan')).leases.ig, undefined, 'no lease left');

  await deleteInstance(paths, 'ia');
  assert.equal((await readNetwork(paths, 'lan')).leases.ia, undefined, 'delete gives the address back');
  const g = await createInstance(paths, { name: 'ig', ...shape, networks: ['lan'] });
  assert.equal(g.networks?.[0]?.address, '10.98.0.1', 'and the next instance gets it');
  assert.equal((await readRecord(paths, 'ig')).networks?.[0]?.network, 'lan');
  // a clone joins its source's networks with an address of its own: refused while the pool is full, leaving nothing
  await assert.rejects(cloneInstance(paths, 'ib', 'ih'), (e: KumoError) => e.code === 'ADDRESS_POOL_EXHAUSTED');
  assert.equal(existsSync(instanceFiles(paths, 'ih').dir), false);
  await deleteInstance(paths, 'ig');
  await cloneInstance(paths, 'ib', 'ih');
  const h = (await readRecord(paths, 'ih')).networks?.[0];
  assert.deepEqual([h?.network, h?.address], ['lan', '10.98.0.1']);
  assert.notEqual(h?.mac, (await readRecord(paths, 'ib')).networks?.[0]?.mac);
  const info = await networkInfo(paths, 'lan');
  assert.deepEqual(info.members.map((m) => m.instance), ['ib', 'ic', 'id', 'ie', 'if', 'ih']);
  for (const n of ['ib', 'ic', 'id', 'ie', 'if', 'ih']) await deleteInstance(paths, n);
  await removeNetwork(paths, 'lan');
  assert.equal(existsSync(lan.dir), false);
});

test('bad input: an unknown network is refused before anything is made; the libvirt driver refuses --network', async () => {
  await assert.rejects(createInstance(paths, { name: 'nn', ...shape, networks: ['nowhere'] }), (e: KumoError) => e.code === 'NETWORK_NOT_FOUND' && /kumo network create nowhere/.test(e.hint ?? ''));
  assert.equal(existsSync(instanceFiles(paths, 'nn').dir), false);
  await createNetwork(paths, 'lv');
  await assert.rejects(createInstance(paths, { name: 'nl', ...shape, driver: 'libvirt', networks: ['lv'] }), (e: KumoError) => e.code === 'DRIVER_UNSUPPORTED' && /libvirt driver cannot put instances on kumo's private networks/.test(e.message));
  assert.equal(existsSync(instanceFiles(paths, 'nl').dir), false);
  assert.deepEqual((await readNetwork(paths, 'lv')).leases, {});
  await removeNetwork(paths, 'lv');
});

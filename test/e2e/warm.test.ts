/**
 * Warm templates and suspend/resume on real guests (the test image, which has qemu-guest-agent).
 * Boots: 1 (the template). Everything else restores it:
 *   - `kumo image warm` makes the template (read-only files, listed, a second warm keeps it);
 *   - 3 clones launched at once are restored (not booted), ready, and differ from each other and
 *     from the template in hostname, machine-id, ssh host key and the first bytes read from
 *     /dev/urandom after ready; their clocks are within 2 s of the host's; a file one writes is
 *     seen by no other; the template's RAM file, state and disk are byte for byte unchanged;
 *   - the first exec verifies the clone's own host key strictly (kumo's known_hosts);
 *   - suspend/resume keeps a running process alive; a suspended instance shows as suspended;
 *   - the template cannot be removed while clones use it, nor its base image; afterwards it can.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, type Instance } from '../../src/index.js';
import { hashFile } from '../../src/core/fs.js';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';

let home = '';
let tplId = '';
let tplDir = '';
const sums: Record<string, string> = {};
const clones: Instance[] = [];
const tag = randomBytes(2).toString('hex');

function json<T>(r: { code: number | null; stdout: string; stderr: string }): T {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-e2e-warm-'));
  const r = await kumo(['image', 'warm', testImagePath(), '--cpus', '1', '--memory', '1G', '--timeout', '900', '--json'], { home, timeoutMs: 20 * 60_000 });
  const t = json<{ id: string; outcome: string; agent: boolean }>(r);
  assert.equal(t.outcome, 'made');
  assert.equal(t.agent, true, 'the test image has the guest agent');
  tplId = t.id;
  tplDir = join(home, 'templates', tplId);
  for (const f of ['memory', 'state', 'disk.qcow2']) sums[f] = await hashFile(join(tplDir, f));
});

after(async () => {
  for (const c of clones) await c.delete().catch(() => {});
  if (home) {
    await kumo(['delete', '--all'], { home }).catch(() => {});
    await rm(home, { recursive: true, force: true });
  }
});

test('warm: the template is listed, its files are read-only, a second warm keeps it', async () => {
  const list = json<{ id: string; key: { cpus: number; memoryMiB: number }; sizes: { stateBytes: number; memoryOnDiskBytes: number } }[]>(await kumo(['image', 'list', '--templates', '--json'], { home }));
  assert.deepEqual(
    list.map((t) => [t.id, t.key.cpus, t.key.memoryMiB]),
    [[tplId, 1, 1024]],
  );
  assert.ok(list[0]!.sizes.stateBytes < 4 * 1024 * 1024, `the device state is small (${list[0]!.sizes.stateBytes} bytes)`);
  for (const f of ['memory', 'state', 'disk.qcow2']) assert.equal((await stat(join(tplDir, f))).mode & 0o222, 0, `${f} is read-only`);
  const again = json<{ id: string; outcome: string }>(await kumo(['image', 'warm', testImagePath(), '--cpus', '1', '--memory', '1G', '--json'], { home }));
  assert.deepEqual([again.id, again.outcome], [tplId, 'current']);
});

test('3 clones at once: restored, ready, each with its own identity, clock and RNG', async () => {
  const names = [0, 1, 2].map((i) => `warm-${tag}-${i}`);
  const vms = await Promise.all(names.map((name) => launch({ image: testImagePath(), name, home, cpus: 1, memory: '1G', timeout: 300 })));
  clones.push(...vms);
  const seen: { hostname: string; machineId: string; hostKey: string; random: string }[] = [];
  for (const vm of vms) {
    assert.equal(vm.started?.restored?.kind, 'template', `${vm.name} was restored from the template`);
    // Debian's cloud kernel has no vmgenid driver: the identity script asks for the reseed itself
    assert.ok(['vmgenid', 'ioctl'].includes(vm.started?.restored?.rng ?? ''), `${vm.name}'s RNG was reseeded (${vm.started?.restored?.rng})`);
    assert.equal((await vm.record()).template?.id, tplId);
    // the very first exec: right after ready, verified against the clone's own pinned host key
    const r = await vm.exec('head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; hostname; cat /etc/machine-id; cat /etc/ssh/ssh_host_ed25519_key.pub; ls /etc/ssh/ | grep -c "^ssh_host_.*_key$"', { check: true });
    const [random, hostname, machineId, hostKey, keyCount] = r.stdout.trim().split('\n');
    assert.equal(hostname, vm.name);
    assert.equal(keyCount, '1', 'only the clone\u2019s own host key is left');
    const mine = (await readFile(join(home, 'instances', vm.name, 'ssh_host_ed25519_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    assert.equal(hostKey!.split(/\s+/).slice(0, 2).join(' '), mine, 'the guest serves the host key kumo made for this instance');
    seen.push({ hostname: hostname!, machineId: machineId!, hostKey: mine, random: random! });
    // its console has no boot of its own: kumo's line says what it is
    const logs = await kumo(['logs', vm.name], { home });
    assert.match(logs.stdout, new RegExp(`^kumo: ${vm.name} restored from a warm template, with its own identity\r?$`, 'm'), logs.stdout + logs.stderr);
  }
  const tpl = JSON.parse(await readFile(join(tplDir, 'template.json'), 'utf8')) as { hostKeyPublic: string; guest: { hostname: string; machineId: string } };
  const tplKey = tpl.hostKeyPublic.split(/\s+/).slice(0, 2).join(' ');
  for (const field of ['hostname', 'machineId', 'hostKey', 'random'] as const) {
    const values = seen.map((s) => s[field]);
    assert.equal(new Set(values).size, 3, `the clones' ${field}s differ: ${values.join(' ')}`);
  }
  for (const s of seen) {
    assert.notEqual(s.hostname, tpl.guest.hostname);
    assert.notEqual(s.machineId, tpl.guest.machineId);
    assert.notEqual(s.hostKey, tplKey);
    assert.match(s.machineId, /^[0-9a-f]{32}$/);
  }
  // clocks: stepped to the host's time
  for (const vm of vms) {
    const t0 = Date.now();
    const r = await vm.exec('date +%s.%N', { check: true });
    const t1 = Date.now();
    const guest = Number(r.stdout.trim()) * 1000;
    assert.ok(guest >= t0 - 2000 && guest <= t1 + 2000, `${vm.name}'s clock is ${Math.round(guest - t0)} ms off the host's`);
  }
});

test('a file one clone writes is seen by no other; the template files are unchanged', async () => {
  assert.equal(clones.length, 3);
  const [a, b, c] = clones as [Instance, Instance, Instance];
  await a.exec(`echo ${tag} | sudo tee /root/only-a >/dev/null; sync`, { check: true });
  assert.equal((await a.exec('sudo cat /root/only-a')).stdout.trim(), tag);
  for (const o of [b, c]) assert.equal((await o.exec('sudo test -e /root/only-a')).code, 1, `${o.name} does not see it`);
  for (const f of ['memory', 'state', 'disk.qcow2']) assert.equal(await hashFile(join(tplDir, f)), sums[f], `template ${f} unchanged`);
});

test('suspend and resume: a running process survives; the instance shows as suspended meanwhile', async () => {
  const vm = clones[0]!;
  const r = await vm.exec('nohup sleep 100000 >/dev/null 2>&1 & echo $!', { check: true });
  const pid = r.stdout.trim();
  const s = await kumo(['suspend', vm.name], { home });
  assert.equal(s.code, 0, s.stderr);
  const st = json<{ state: string }>(await kumo(['info', vm.name, '--json'], { home }));
  assert.equal(st.state, 'suspended');
  const again = await kumo(['suspend', vm.name], { home });
  assert.notEqual(again.code, 0, 'suspending a suspended instance is refused');
  assert.match(again.stderr, /suspended already/);
  const up = json<{ restored: { kind: string } | null }>(await kumo(['start', vm.name, '--json'], { home }));
  assert.equal(up.restored?.kind, 'suspend');
  assert.equal((await vm.exec(`kill -0 ${pid} && echo alive`)).stdout.trim(), 'alive', 'the process survived');
  await assert.rejects(stat(join(home, 'instances', vm.name, 'suspend.state')), 'the state file is removed after the resume');
});

test('the template and its base cannot be removed while clones use it; once they are gone, it can', async () => {
  const rm1 = await kumo(['image', 'rm', tplId], { home });
  assert.notEqual(rm1.code, 0);
  assert.match(rm1.stderr, /used by 3 instance/);
  const images = json<{ id: string }[]>(await kumo(['image', 'list', '--json'], { home }));
  const base = await kumo(['image', 'rm', images[0]!.id], { home });
  assert.notEqual(base.code, 0, 'the base image is in use (through the template)');
  for (const c of clones.splice(0)) await c.delete();
  const rm2 = await kumo(['image', 'rm', tplId], { home });
  assert.equal(rm2.code, 0, rm2.stderr);
  await assert.rejects(stat(tplDir));
  assert.deepEqual(json<unknown[]>(await kumo(['image', 'list', '--templates', '--json'], { home })), []);
});

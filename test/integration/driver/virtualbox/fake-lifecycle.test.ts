/**
 * THIS TEST RUNS AGAINST A MOCK. VirtualBox cannot be installed or run on this machine (Debian 12
 * has no VirtualBox, and its kernel modules cannot load here), so a FAKE `VBoxManage`
 * (./fake-vboxmanage.ts) is put first on PATH: it records every argv it gets and answers in
 * VBoxManage's documented output formats. What this proves: the real kumo command and the real
 * VirtualBox driver code, end to end (instance layer, image store, real qemu-img converting the
 * base to VDI, the seed, locks, records), call VBoxManage with exactly the command sequence below
 * for create, start, ports, stop, suspend/resume, snapshots, clone and delete, read its answers,
 * and leave no file behind on delete while keeping the shared base. What it does not prove: that
 * a real VirtualBox accepts these commands and boots the guest (test/e2e/virtualbox.test.ts does
 * that where VBoxManage exists; see docs/virtualbox.md).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kumo } from '../../../helpers/cli.js';

const FAKE = fileURLToPath(new URL('./fake-vboxmanage.js', import.meta.url));

let root: string;
let home: string;
let env: NodeJS.ProcessEnv;
let log: string;
let state: string;
let wrapper: string;

interface FakeState {
  vms: { name: string; uuid: string; folder: string; state: string; forwards: string[]; attach: Record<string, { medium: string; type: string }> }[];
  hdds: { uuid: string; location: string; parent?: string; type: string }[];
  dvds: string[];
}

async function calls(): Promise<string[][]> {
  const t = await readFile(log, 'utf8').catch(() => '');
  return t.split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
}
async function fake(): Promise<FakeState> {
  return JSON.parse(await readFile(state, 'utf8')) as FakeState;
}
/** The calls made by `fn`, each reduced to its sub-command words and options (values after a VM id kept). */
async function during(fn: () => Promise<void>): Promise<string[][]> {
  const n = (await calls()).length;
  await fn();
  return (await calls()).slice(n);
}
const verbs = (cs: string[][]) => cs.map((c) => (c[0] === 'controlvm' || c[0] === 'snapshot' ? `${c[0]} ${c[2]}` : c[0] === 'storageattach' ? `storageattach ${c[c.indexOf('--storagectl') + 1]} ${c[c.indexOf('--medium') + 1] === 'none' ? 'none' : c[c.indexOf('--type') + 1]}` : c[0] === 'modifyvm' && c.includes('--natpf1') && !c.includes('--cpus') ? `modifyvm natpf${c.includes('delete') ? ' delete' : ''}` : c[0] === 'list' ? `list ${c[1]}` : c[0]!));

async function k(args: string[], expectCode = 0): Promise<string> {
  const r = await kumo(args, { home, env, timeoutMs: 120_000 });
  assert.equal(r.code, expectCode, `kumo ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-vbox-fake-'));
  home = join(root, 'home');
  const bin = join(root, 'bin');
  await mkdir(bin);
  wrapper = join(bin, 'VBoxManage');
  await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${FAKE}" "$@"\n`);
  await chmod(wrapper, 0o755);
  log = join(root, 'vbox-calls.jsonl');
  state = join(root, 'vbox-state.json');
  env = { PATH: `${bin}:${process.env.PATH}`, FAKE_VBOX_LOG: log, FAKE_VBOX_STATE: state };
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(root, 'tiny.qcow2'), '64M']);
  await k(['image', 'import', join(root, 'tiny.qcow2'), '--name', 'tiny']);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('doctor names the VirtualBox backend, its version, and says it has not been exercised live', async () => {
  const r = await kumo(['doctor', '--json'], { home, env });
  const rep = JSON.parse(r.stdout) as { checks: { id: string; status: string; found: string; hint?: string }[] };
  const vb = rep.checks.find((c) => c.id === 'virtualbox')!;
  assert.equal(vb.status, 'ok');
  assert.match(vb.found, /VBoxManage \(7\.0\.14\)/);
  const live = rep.checks.find((c) => c.id === 'virtualbox-live')!;
  assert.equal(live.status, 'warn');
  assert.match(live.found, /not exercised against a real VirtualBox/);
  assert.ok(live.hint);
});

test('a VBoxManage error reaches the user as a typed error with a hint, and a failed first start leaves no VM behind', async () => {
  await k(['create', 'tiny', '--name', 'busy', '--driver', 'virtualbox']);
  const r = await kumo(['start', 'busy', '--no-wait', '--json'], { home, env: { ...env, FAKE_VBOX_FAIL: 'startvm' }, timeoutMs: 120_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /VBOX_SESSION_LOCKED/);
  assert.match(r.stdout + r.stderr, /locked by another VirtualBox session/);
  assert.match(r.stdout + r.stderr, /close it, or wait and try again/);
  const f = await fake();
  assert.ok(!f.vms.some((v) => v.name.startsWith('kumo-')), 'the VM made for the failed start was removed again');
  assert.ok(!existsSync(join(home, 'instances', 'busy', 'vbox.json')));
  assert.deepEqual(f.hdds.filter((h) => h.parent), [], 'and its differencing image');
  await k(['delete', 'busy']);
});

test('the whole lifecycle through the kumo command: the exact VBoxManage sequence, and delete leaves nothing but the base', async () => {
  const made = await during(() => k(['create', 'tiny', '--name', 'web', '--driver', 'virtualbox', '--seed-format', 'cernvm', '--cpus', '1', '--memory', '256M']).then(() => undefined));
  assert.ok(!made.some((c) => c[0] === 'createvm'), 'create makes no VM (the first start does)');
  const dir = join(home, 'instances', 'web');

  // First start: the VM is made, configured and started, in this order.
  const start1 = await during(() => k(['start', 'web', '--no-wait']).then(() => undefined));
  // (no showvminfo first: without INSTANCE/vbox.json there is no VM of this instance to ask about)
  assert.deepEqual(verbs(start1).filter((v) => v !== '--version'), [
    'list vms',
    'createvm',
    'storagectl',
    'storagectl',
    'modifyvm',
    'storageattach SATA hdd',
    'showvminfo',
    'storageattach IDE dvddrive',
    'modifyvm natpf',
    'startvm',
  ]);
  const rec = JSON.parse(await readFile(join(dir, 'vbox.json'), 'utf8')) as { name: string; uuid: string; base: { vdi: string; source: string } };
  const instanceId = (JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { instanceId: string }).instanceId;
  assert.equal(rec.name, `kumo-${instanceId}`);
  const create = start1.find((c) => c[0] === 'createvm')!;
  assert.deepEqual(create, ['createvm', '--name', rec.name, '--uuid', rec.uuid, '--ostype', 'Linux_64', '--basefolder', join(dir, 'vbox'), '--register']);
  const mod = start1.find((c) => c[0] === 'modifyvm' && c.includes('--cpus'))!;
  for (const [kk, v] of [['--cpus', '1'], ['--memory', '256'], ['--nic1', 'nat'], ['--nictype1', 'virtio'], ['--natdnshostresolver1', 'on'], ['--vrde', 'off'], ['--firmware', 'bios']]) assert.equal(mod[mod.indexOf(kk!) + 1], v, kk);
  assert.deepEqual(mod.slice(mod.indexOf('--uartmode1'), mod.indexOf('--uartmode1') + 3), ['--uartmode1', 'file', join(dir, 'serial.log')]);
  // registered as multiattach once per image: by the first instance that ran on it (the 'busy' test above), not again
  assert.deepEqual((await calls()).filter((c) => c[0] === 'modifymedium'), [['modifymedium', 'disk', rec.base.vdi, '--type', 'multiattach']]);
  assert.equal(start1.find((c) => c[0] === 'storageattach' && c.includes('dvddrive'))!.at(-1), join(dir, 'seed.iso'));
  const pf = start1.find((c) => c[0] === 'modifyvm' && c.includes('--natpf1'))!;
  assert.match(pf[3]!, /^kumo-ssh,tcp,127\.0\.0\.1,\d+,,22$/);
  assert.deepEqual(start1.at(-1), ['startvm', rec.uuid, '--type', 'headless']);
  // every call names the VM by its UUID, never by a name someone else could have
  for (const c of start1.filter((c) => !['list', 'modifymedium', 'createvm'].includes(c[0]!))) assert.equal(c[1], rec.uuid, c.join(' '));

  // The base: converted by the real qemu-img to a real VDI, registered once, outside the instance folder.
  assert.ok(rec.base.vdi.startsWith(join(home, 'drivers', 'virtualbox', 'media')));
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', rec.base.vdi], { encoding: 'utf8' })) as { format: string; 'virtual-size': number };
  assert.equal(info.format, 'vdi');
  assert.equal(info['virtual-size'], 64 * 1024 * 1024);
  let f = await fake();
  const vm = f.vms.find((v) => v.uuid === rec.uuid)!;
  assert.equal(vm.state, 'running');
  assert.ok(vm.folder.startsWith(join(dir, 'vbox')), 'the VM folder is under the instance folder');
  const diff = f.hdds.find((h) => h.parent);
  assert.ok(diff && diff.location.startsWith(dir), 'its own differencing image, in the instance folder');

  // Status from showvminfo; the base is in use while the VM exists.
  assert.match(await k(['info', 'web']), /running/);
  const rmImage = await kumo(['image', 'rm', 'tiny'], { home, env });
  assert.notEqual(rmImage.code, 0);
  assert.match(rmImage.stderr, /in use/);

  // Ports live: controlvm natpf1 add and delete.
  const add = await during(() => k(['port', 'add', 'web', '0:80']).then(() => undefined));
  const live = add.find((c) => c[0] === 'controlvm')!;
  assert.deepEqual(live.slice(0, 3), ['controlvm', rec.uuid, 'natpf1']);
  assert.match(live[3]!, /^kumo-tcp-\d+,tcp,127\.0\.0\.1,\d+,,80$/);
  const hostPort = live[3]!.split(',')[3]!;
  const del = await during(() => k(['port', 'rm', 'web', `${hostPort}:80`]).then(() => undefined));
  assert.deepEqual(del.find((c) => c[0] === 'controlvm'), ['controlvm', rec.uuid, 'natpf1', 'delete', `kumo-tcp-${hostPort}`]);

  // Stop: the ACPI power button first.
  const stop = await during(() => k(['stop', 'web']).then(() => undefined));
  assert.deepEqual(verbs(stop).filter((v) => v.startsWith('controlvm')), ['controlvm acpipowerbutton']);
  assert.equal((await fake()).vms.find((v) => v.uuid === rec.uuid)!.state, 'poweroff');

  // Second start: the same VM, settings applied again, old kumo rules replaced.
  const start2 = await during(() => k(['start', 'web', '--no-wait']).then(() => undefined));
  assert.deepEqual(verbs(start2), ['showvminfo', 'modifyvm', 'storageattach IDE dvddrive', 'modifyvm natpf delete', 'modifyvm natpf', 'startvm']);

  // Suspend: savestate; resume: startvm only (nothing modified on a saved machine).
  const susp = await during(() => k(['suspend', 'web']).then(() => undefined));
  assert.ok(verbs(susp).includes('controlvm savestate'));
  assert.equal((await fake()).vms.find((v) => v.uuid === rec.uuid)!.state, 'saved');
  const resume = await during(() => k(['start', 'web', '--no-wait']).then(() => undefined));
  assert.deepEqual(verbs(resume).filter((v) => v !== 'showvminfo'), ['startvm']);

  // Snapshots: take (live), restore of a running machine (poweroff, restore, startvm), delete.
  const snap = await during(() => k(['snapshot', 'create', 'web', 's1']).then(() => undefined));
  assert.deepEqual(snap.find((c) => c[0] === 'snapshot'), ['snapshot', rec.uuid, 'take', 's1', '--live']);
  assert.match(await k(['snapshot', 'list', 'web']), /s1/);
  const restore = await during(() => k(['snapshot', 'restore', 'web', 's1']).then(() => undefined));
  assert.deepEqual(verbs(restore).filter((v) => v !== 'showvminfo'), ['controlvm poweroff', 'snapshot restore', 'startvm']);
  const sdel = await during(() => k(['snapshot', 'delete', 'web', 's1']).then(() => undefined));
  assert.deepEqual(sdel.find((c) => c[0] === 'snapshot'), ['snapshot', rec.uuid, 'delete', 's1']);

  // Clone: clonevm of the stopped machine into the new instance's folder.
  await k(['stop', 'web']);
  const clone = await during(() => k(['clone', 'web', 'web2']).then(() => undefined));
  const cv = clone.find((c) => c[0] === 'clonevm')!;
  const dir2 = join(home, 'instances', 'web2');
  const rec2 = JSON.parse(await readFile(join(dir2, 'vbox.json'), 'utf8')) as { name: string; uuid: string };
  assert.deepEqual(cv, ['clonevm', rec.uuid, '--mode', 'machine', '--name', rec2.name, '--uuid', rec2.uuid, '--basefolder', join(dir2, 'vbox'), '--register']);
  assert.notEqual(rec2.uuid, rec.uuid);

  // De-sync: the clone's VM unregistered behind kumo's back shows in info, and the next start makes it again.
  execFileSync(wrapper, ['unregistervm', rec2.uuid, '--delete'], { env: { ...process.env, ...env } });
  assert.match(await k(['info', 'web2']), /not registered/);
  const remake = await during(() => k(['start', 'web2', '--no-wait']).then(() => undefined));
  assert.ok(verbs(remake).includes('createvm'));
  await k(['stop', 'web2']);

  // A foreign VM (not kumo's) is never touched.
  execFileSync(wrapper, ['createvm', '--name', 'my-own-vm', '--basefolder', join(root, 'elsewhere'), '--register'], { env: { ...process.env, ...env } });

  // Delete: detach the disk (its differencing image goes), the seed, unregistervm --delete; the base stays.
  const delAll = await during(() => k(['delete', 'web', 'web2']).then(() => undefined));
  const webCalls = delAll.filter((c) => c[1] === rec.uuid || (c[0] === 'closemedium' && c[2] === join(dir, 'seed.iso')));
  assert.equal(webCalls[0]![0], 'showvminfo', 'delete asks VirtualBox for the state first');
  assert.deepEqual(verbs(webCalls).filter((v) => v !== 'showvminfo'), ['storageattach SATA none', 'storageattach IDE none', 'closemedium', 'unregistervm']);
  assert.deepEqual(webCalls.at(-1), ['unregistervm', rec.uuid, '--delete']);
  assert.ok(!existsSync(dir) && !existsSync(dir2), 'both instance folders are gone');
  f = await fake();
  assert.deepEqual(f.vms.map((v) => v.name), ['my-own-vm'], 'no kumo VM is left; the foreign one is untouched');
  assert.deepEqual(f.hdds.map((h) => h.location), [rec.base.vdi], 'no medium is left but the shared base');
  assert.deepEqual(f.dvds, [], 'the seed is not left registered');
  assert.ok(existsSync(rec.base.vdi), 'the base VDI is still there');
  assert.deepEqual((await readdir(join(home, 'drivers', 'virtualbox', 'media'))).filter((n) => !n.endsWith('.lock')).sort(), [rec.base.vdi.split('/').at(-1)!.replace('.vdi', '.json'), rec.base.vdi.split('/').at(-1)!].sort());
  // and the image is free again
  await k(['image', 'rm', 'tiny']);
});

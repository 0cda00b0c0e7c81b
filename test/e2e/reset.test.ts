/**
 * Fast reset between tests, on ONE VM cloned from a warm template of the test image:
 * vm.snapshot / vm.restore (a live snapshot: a file written after it is gone after the restore,
 * and exec works right after, over a fresh ssh connection; the console says it was restored),
 * vm.snapshots / vm.deleteSnapshot, and launch({ reuse: true }) returning the running instance
 * without a new boot (its readiness accepts the template's instance-id, as a clone's must).
 * Boots: none of its own: a clone of the warm template the e2e files share
 * (test/helpers/warm-home.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { launch, type Instance, type LaunchOptions } from '../../src/index.js';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';
import { warmHome, WARM_SHAPE, type WarmHome } from '../helpers/warm-home.js';

let home = '';
let warm: WarmHome | undefined;
let vm: Instance | undefined;
const NAME = `reset-${randomBytes(2).toString('hex')}`;
let opts: LaunchOptions;

function theVm(): Instance {
  assert.ok(vm, 'the VM was launched');
  return vm;
}

before(async () => {
  warm = await warmHome();
  home = warm.home;
  opts = { image: testImagePath(), name: NAME, home, ...WARM_SHAPE, timeout: 900, labels: { suite: 'reset' } };
  vm = await launch(opts);
  assert.equal(vm.started?.restored?.kind, 'template', 'a clone of the shared warm template (restored, not booted)');
});

after(async () => {
  if (vm) await vm.delete().catch(() => {});
  await warm?.done();
});

test('snapshot, write a file, restore: the file is gone and exec works right after the restore', { timeout: 600_000 }, async () => {
  const v = theVm();
  assert.equal((await v.exec('echo before > ~/kept.txt')).code, 0);
  const snap = await v.snapshot('clean');
  assert.deepEqual(snap, { name: NAME, snapshot: 'clean', live: true });
  assert.deepEqual((await v.snapshots()).map((s) => s.name), ['clean']);
  assert.equal((await v.exec('echo after > ~/later.txt && sync')).code, 0);
  assert.equal((await v.exec('test -e ~/later.txt')).code, 0);
  const r = await v.restore('clean');
  assert.equal(r.live, true);
  // the guest went back in time: kumo stepped its clock and reseeded its RNG through the agent
  assert.deepEqual(r.guest, { rng: 'ioctl', via: 'agent' }, `after the restore: ${JSON.stringify(r)}`);
  const logs = await kumo(['logs', NAME], { home });
  assert.match(logs.stdout, /^kumo: restored from a saved state; clock stepped, RNG reseeded\r?$/m, 'the console says the guest was restored');
  // right after the restore: a fresh connection (the old master's TCP state was rolled back)
  const gone = await v.exec('test -e ~/later.txt; echo $?; cat ~/kept.txt');
  assert.equal(gone.code, 0, gone.stderr);
  assert.deepEqual(gone.stdout.trim().split('\n'), ['1', 'before']);
  // its clock is the host's (not the snapshot's time), and two restores of one snapshot read
  // different random bytes
  const t0 = Date.now();
  const clock = Number((await v.exec('date +%s.%N', { check: true })).stdout.trim()) * 1000;
  assert.ok(Math.abs(clock - t0) < 3000, `the guest clock is ${Math.round(clock - t0)} ms off the host's after the restore`);
  const random1 = (await v.exec('head -c 16 /dev/urandom | od -An -tx1', { check: true })).stdout.trim();
  // and the handle keeps working: a second round, then the snapshot is removed
  assert.equal((await v.exec('touch ~/again')).code, 0);
  await v.restore('clean');
  assert.equal((await v.exec('test -e ~/again')).code, 1);
  const random2 = (await v.exec('head -c 16 /dev/urandom | od -An -tx1', { check: true })).stdout.trim();
  assert.notEqual(random2, random1, 'the RNG was reseeded after each restore');
  await v.deleteSnapshot('clean');
  assert.deepEqual(await v.snapshots(), []);
});

test('launch with reuse returns the running instance (same boot, same QEMU) and is ready at once', { timeout: 300_000 }, async () => {
  const v = theVm();
  const bootId = (await v.exec('cat /proc/sys/kernel/random/boot_id')).stdout.trim();
  const before = await v.record();
  const again = await launch({ ...opts, reuse: true });
  assert.equal(again.name, NAME);
  assert.ok(again.started?.ready, 'reuse waited for readiness (ssh + cloud-init)');
  const after = await again.record();
  assert.deepEqual(after.lastStart, before.lastStart, 'not started again');
  assert.equal((await again.exec('cat /proc/sys/kernel/random/boot_id')).stdout.trim(), bootId, 'the same boot');
  await assert.rejects(launch({ ...opts, memory: '2G', reuse: true }), (e: Error & { code?: string }) => e.code === 'INSTANCE_SPEC_DIFFERS' && /memory is 1024 MiB, asked 2048 MiB/.test(e.message));
});

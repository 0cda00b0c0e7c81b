/**
 * What a killed `kumo capture` leaves (its sealing copy, a daemonized QEMU, and its work folder in
 * KUMO_HOME/tmp) is found and removed by `kumo repair`, or by the next command (with a warning) —
 * only when the instance's lock shows no live capture, and killing only the QEMU that the folder's
 * pid file proves is that copy. Real QEMU on a blank disk stands in for the sealing copy (no guest
 * boot).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, pidAlive } from '../../../src/core/exec.js';
import { processLive } from '../../../src/driver/qemu/process.js';
import { acquireLock } from '../../../src/core/lock.js';
import { pathsFor, type KumoPaths } from '../../../src/config/paths.js';
import { registerBuiltins } from '../../../src/builtins.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { qemuFiles } from '../../../src/driver/qemu/argv.js';
import { sweepCaptureLeftovers } from '../../../src/golden/index.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';
import { kumo } from '../../helpers/cli.js';

registerBuiltins();
let home = '';
let paths: KumoPaths;
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];

/** A sealing copy as capture makes it: KUMO_HOME/tmp/capture-NAME-XXXXXX with seal.qcow2, QEMU running on it. */
async function deadCapture(name: string, suffix: string): Promise<{ dir: string; pid: number }> {
  const dir = join(paths.tmp, `capture-${name}-${suffix}`);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'seal.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name: `${name}-capture`, dir, paths, cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cf', sshPort: 0, ports: [], accel: 'tcg' };
  started.push(rt);
  const r = await drv.start(rt);
  return { dir, pid: r.pid! };
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-sweep-'));
  paths = pathsFor(home);
  await mkdir(paths.tmp, { recursive: true });
  await mkdir(paths.instances, { recursive: true });
});

after(async () => {
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(home, { recursive: true, force: true });
});

test('kumo repair stops the sealing copy of a killed capture and removes its folder', async () => {
  const { dir, pid } = await deadCapture('web', 'aB3xYz');
  const other = join(paths.tmp, 'not-a-capture');
  await mkdir(other);
  const r = await kumo(['repair', '--json'], { home });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.captures, [{ instance: 'web', dir, machineStopped: true }]);
  assert.equal(processLive(pid), false, 'the sealing QEMU is gone (dead or a zombie nobody reaped yet)');
  assert.equal(existsSync(dir), false);
  assert.equal(existsSync(other), true, 'folders that are no capture are left alone');
  const again = await kumo(['repair'], { home });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout + again.stderr, /nothing out of step/);
});

test('the next command (here kumo list) removes what a killed capture left, and says so', async () => {
  const { dir, pid } = await deadCapture('api', 'Lm4nOp');
  const r = await kumo(['list'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: removed what a killed capture of 'api' left: its work folder and its sealing machine/);
  assert.equal(processLive(pid), false, 'the sealing QEMU is gone');
  assert.equal(existsSync(dir), false);
  const again = await kumo(['list'], { home });
  assert.doesNotMatch(again.stderr, /killed capture/, 'nothing left to say the second time');
});

test('a capture at work (its instance lock held by a live process) is left alone', async () => {
  const { dir, pid } = await deadCapture('db', 'Qw7eRt');
  await mkdir(join(paths.instances, 'db'), { recursive: true });
  const lock = await acquireLock(join(paths.instances, 'db', 'lock'), { op: 'capture', what: "instance 'db'" });
  try {
    assert.deepEqual(await sweepCaptureLeftovers(paths), []);
    assert.equal(processLive(pid), true);
    assert.equal(existsSync(dir), true);
  } finally {
    await lock.release();
  }
  // Once the lock is free (the capture died), the next sweep takes it.
  const swept = await sweepCaptureLeftovers(paths, { name: 'db' });
  assert.deepEqual(swept.map((s) => s.instance), ['db']);
  assert.equal(processLive(pid), false);
});

test("a pid file in a capture folder naming another process is not killed: only the folder goes", async () => {
  const dir = join(paths.tmp, 'capture-app-Zx9Kp0');
  await mkdir(dir, { recursive: true });
  await writeFile(qemuFiles(dir).pidFile, `${process.pid}\n`); // this test runner: must survive
  const swept = await sweepCaptureLeftovers(paths);
  assert.deepEqual(swept, [{ instance: 'app', dir, machineStopped: false }]);
  assert.equal(pidAlive(process.pid), true);
  assert.equal(existsSync(dir), false);
});

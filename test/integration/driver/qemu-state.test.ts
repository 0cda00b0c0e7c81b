/**
 * Saved machine states in the QEMU driver against real QEMU, without a guest OS (a blank disk:
 * SeaBIOS looping is a machine like any other for a migration stream): suspend-style save and
 * resume, a template-style save with RAM in a shared file (x-ignore-shared: a small state file,
 * the RAM file untouched by a clone mapping it private), and the faults: a truncated or foreign
 * state file, a state file that is not one, a machine that is not running. Each fault is checked
 * for leftovers (no QEMU, no partial file, no runtime files).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, mkdir, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { hashFile } from '../../../src/core/fs.js';
import { pathsFor } from '../../../src/config/paths.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { isOurQemu, readPidFile, recordPidFile } from '../../../src/driver/qemu/process.js';
import { withQmp } from '../../../src/driver/qemu/qmp.js';
import { buildQemuArgv, qemuFiles } from '../../../src/driver/qemu/argv.js';
import { isKumoError } from '../../../src/core/errors.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';

let root = '';
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];

async function runtime(name: string, extra: Partial<InstanceRuntime> = {}): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cd', sshPort: 0, ports: [], accel: 'tcg', ...extra };
  started.push(rt);
  return rt;
}

async function readRamWord(rt: InstanceRuntime, addr: number): Promise<string> {
  return withQmp(qemuFiles(rt.dir).qmpSocket, async (c) => (await c.hmp(`xp /4wx ${addr}`)).trim());
}

/**
 * The firmware's area once it is in place: SeaBIOS copies itself to 0xf0000 early, and the area
 * stays as it is from then on. Read until two reads agree (non-zero), then pause the machine, so
 * that what is read is what a save holds.
 */
async function settledRam(rt: InstanceRuntime, addr: number): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    const now = await readRamWord(rt, addr);
    if (now === last && !/: (0x00000000 ?){4}$/.test(now)) break;
    last = now;
    await new Promise((r) => setTimeout(r, 100));
  }
  await withQmp(qemuFiles(rt.dir).qmpSocket, (c) => c.execute('stop'));
  return readRamWord(rt, addr);
}

async function qemuGone(rt: InstanceRuntime, pid: number | undefined): Promise<void> {
  if (pid !== undefined) assert.equal(await isOurQemu(pid, rt.dir), false, 'no QEMU left');
  const files = qemuFiles(rt.dir);
  const left = await readdir(rt.dir);
  for (const f of [files.pidFile, files.qmpSocket, files.agentSocket]) assert.ok(!left.includes(f.split('/').pop()!), `${f} removed`);
  assert.deepEqual(left.filter((f) => f.includes('.tmp-')), [], 'no partial state file');
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-qemu-state-'));
});

after(async () => {
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('suspend-style save: the state file is a QEMU stream, QEMU is gone; a start with restore resumes the same RAM', async () => {
  const rt = await runtime('s1');
  await drv.start(rt);
  // the firmware's memory at 0xf0000 is whatever SeaBIOS made of it: read it, save, restore, read again
  const before = await settledRam(rt, 0xf0000);
  const pid = await readPidFile(rt.dir);
  const state = join(rt.dir, 'suspend.state');
  const saved = await drv.saveState(rt, state);
  assert.match(saved.machine, /^pc-q35-/);
  const st = await stat(state);
  assert.equal(st.size, saved.bytes);
  assert.ok(st.size > 1024 * 1024, `the RAM is in the stream (${st.size} bytes)`);
  await qemuGone(rt, pid);
  assert.equal((await drv.status(rt)).state, 'stopped');
  const r = await drv.start({ ...rt, machine: saved.machine, restore: { stateFile: state, ignoreShared: false } });
  assert.ok(r.restored, 'the start reports a restore');
  assert.equal((await drv.status(rt)).state, 'running');
  assert.equal(await readRamWord(rt, 0xf0000), before, 'the restored RAM is the saved RAM');
  await drv.stop(rt, { force: true });
});

test('template-style save: RAM stays in the shared file (small state); clones map it private and never change it', async () => {
  const tdir = join(root, 'tpl');
  await mkdir(tdir, { recursive: true });
  const memory = join(tdir, 'memory');
  const rt = await runtime('t1', { memoryFile: { path: memory, share: true } });
  await drv.start(rt);
  const before = await settledRam(rt, 0xf0000);
  const state = join(tdir, 'state');
  const saved = await drv.saveState(rt, state, { ignoreShared: true });
  assert.ok(saved.bytes < 2 * 1024 * 1024, `device state only (${saved.bytes} bytes)`);
  const memSum = await hashFile(memory);
  const stateSum = await hashFile(state);
  // two clones from it, each with its own overlay on the template's disk
  const clones: InstanceRuntime[] = [];
  for (const n of ['c1', 'c2']) {
    const c = await runtime(n, { memoryFile: { path: memory, share: false }, machine: saved.machine, restore: { stateFile: state, ignoreShared: true } });
    await rm(c.disk.path);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', rt.disk.path, '-F', 'qcow2', c.disk.path]);
    const r = await drv.start(c);
    assert.ok(r.restored);
    assert.equal(await readRamWord(c, 0xf0000), before, 'the clone sees the template RAM');
    clones.push(c);
  }
  // the clones ran (the firmware writes its stack and data in RAM): the files must not have changed
  for (const c of clones) await drv.stop(c, { force: true });
  assert.equal(await hashFile(memory), memSum, 'the RAM file is unchanged');
  assert.equal(await hashFile(state), stateSum, 'the state file is unchanged');
});

test('faults: truncated state, a file that is not a state, a missing state, saving a stopped machine: typed errors, nothing left running', async () => {
  const rt = await runtime('f0');
  await drv.start(rt);
  const good = join(root, 'good.state');
  const saved = await drv.saveState(rt, good);

  const bad = await runtime('f1');
  const notState = join(root, 'not.state');
  await writeFile(notState, 'hello, this is not a migration stream');
  await assert.rejects(drv.start({ ...bad, machine: saved.machine, restore: { stateFile: notState, ignoreShared: false } }), (e: unknown) => isKumoError(e) && e.code === 'STATE_RESTORE_FAILED' && /bad header/.test(e.message));
  await qemuGone(bad, undefined);
  assert.equal((await drv.status(bad)).state, 'stopped');

  const trunc = join(root, 'trunc.state');
  await copyFile(good, trunc);
  await truncate(trunc, Math.floor(saved.bytes / 3));
  await assert.rejects(drv.start({ ...bad, machine: saved.machine, restore: { stateFile: trunc, ignoreShared: false } }), (e: unknown) => isKumoError(e) && e.code === 'STATE_RESTORE_FAILED');
  await qemuGone(bad, undefined);
  assert.equal((await drv.status(bad)).state, 'stopped');

  await assert.rejects(drv.start({ ...bad, restore: { stateFile: join(root, 'missing.state'), ignoreShared: false } }), (e: unknown) => isKumoError(e) && e.code === 'STATE_RESTORE_FAILED' && /missing/.test(e.message));

  // saving a machine that does not run
  await assert.rejects(drv.saveState(bad, join(root, 'x.state')), (e: unknown) => isKumoError(e) && e.code === 'STATE_SAVE_FAILED');
  assert.deepEqual((await readdir(root)).filter((f) => f.startsWith('x.state')), []);
});

test('save into a folder that cannot take it: typed error, the machine keeps running, no partial file', async () => {
  const rt = await runtime('full');
  await drv.start(rt);
  const pid = await readPidFile(rt.dir);
  await assert.rejects(drv.saveState(rt, join(root, 'no-such-dir', 'state')), (e: unknown) => isKumoError(e) && e.code === 'STATE_SAVE_FAILED');
  assert.equal((await drv.status(rt)).state, 'running', 'left running');
  assert.equal(await isOurQemu(pid!, rt.dir), true);
  await drv.stop(rt, { force: true });
});

test('a QEMU left waiting for a restore (its kumo killed mid-start) is stopped by the next start, which boots', async () => {
  const rt = await runtime('killed');
  // what a killed start leaves: QEMU daemonized with -incoming defer, never given its state
  const argv = buildQemuArgv({ ...rt, sshPort: 0, restore: { stateFile: join(root, 'never.state'), ignoreShared: false } }, { accel: 'tcg' });
  await run('qemu-system-x86_64', argv);
  await recordPidFile(rt.dir);
  const stale = await readPidFile(rt.dir);
  const st = await drv.status(rt);
  assert.equal(st.state, 'unknown');
  assert.match(st.detail ?? '', /'inmigrate'/);
  const warnings: string[] = [];
  await drv.start(rt, { onEvent: (e) => e.type === 'log' && e.level === 'warn' && warnings.push(e.message) });
  assert.ok(warnings.some((w) => /a restore that never finished/.test(w)), warnings.join('\n'));
  assert.equal(await isOurQemu(stale!, rt.dir), false, 'the waiting QEMU is gone');
  assert.equal((await drv.status(rt)).state, 'running', 'a new QEMU boots');
  await drv.stop(rt, { force: true });
});

/**
 * Pid files across reboots and pid reuse: qemu.pid is trusted only under the kernel boot it was
 * written in (kumo records the boot id and QEMU's start time beside it), and the cross-process
 * lock treats an owner recorded under another boot id as dead. A reboot is simulated by a record
 * naming another boot id (the test cannot reboot the host); pid reuse by a record naming another
 * start time of the same pid. Real QEMU on a blank disk, no guest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, readFile, writeFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { acquireLock, bootId, lockHolder, ownerAlive, processStartTime } from '../../../src/core/lock.js';
import { pathsFor } from '../../../src/config/paths.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { isOurQemu, pidRecordPath, readPidFile } from '../../../src/driver/qemu/process.js';
import { qemuFiles } from '../../../src/driver/qemu/argv.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';

let root = '';
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];
const OTHER_BOOT = '00000000-1111-2222-3333-444444444444';

async function runtime(name: string): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cd', sshPort: 0, ports: [], accel: 'tcg' };
  started.push(rt);
  return rt;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-pid-boot-'));
});

after(async () => {
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('start records the boot id and start time of QEMU beside qemu.pid; stop removes both', async () => {
  const rt = await runtime('rec');
  const r = await drv.start(rt);
  const rec = JSON.parse(await readFile(pidRecordPath(rt.dir), 'utf8'));
  assert.equal(rec.pid, r.pid);
  assert.equal(rec.boot, bootId());
  assert.match(rec.boot, /^[0-9a-f-]{36}$/);
  assert.equal(rec.start, processStartTime(r.pid!));
  // QEMU's own pid file is unchanged (just the pid).
  assert.equal((await readFile(qemuFiles(rt.dir).pidFile, 'utf8')).trim(), String(r.pid));
  assert.equal((await drv.status(rt)).state, 'running');
  await drv.stop(rt, { force: true });
  assert.ok(!existsSync(pidRecordPath(rt.dir)) && !existsSync(qemuFiles(rt.dir).pidFile));
});

test('a pid file recorded under another boot id is ignored, even when the pid is a live QEMU with our argv', async () => {
  const rt = await runtime('reboot');
  const r = await drv.start(rt);
  const rec = JSON.parse(await readFile(pidRecordPath(rt.dir), 'utf8'));
  await writeFile(pidRecordPath(rt.dir), JSON.stringify({ ...rec, boot: OTHER_BOOT }));
  assert.equal(await readPidFile(rt.dir), undefined);
  assert.equal(await isOurQemu(r.pid!, rt.dir), false);
  assert.notEqual((await drv.status(rt)).state, 'running');
  // Put the true record back so the machine is stopped for real.
  await writeFile(pidRecordPath(rt.dir), JSON.stringify(rec));
  assert.equal((await drv.status(rt)).state, 'running');
  await drv.stop(rt, { force: true });
});

test('a recorded start time that differs from the live process (a reused pid) is not our QEMU', async () => {
  const rt = await runtime('reuse');
  const r = await drv.start(rt);
  const rec = JSON.parse(await readFile(pidRecordPath(rt.dir), 'utf8'));
  await writeFile(pidRecordPath(rt.dir), JSON.stringify({ ...rec, start: rec.start - 1 }));
  assert.equal(await readPidFile(rt.dir), r.pid);
  assert.equal(await isOurQemu(r.pid!, rt.dir), false);
  const st = await drv.status(rt);
  assert.equal(st.state, 'crashed');
  await writeFile(pidRecordPath(rt.dir), JSON.stringify(rec));
  assert.equal(await isOurQemu(r.pid!, rt.dir), true);
  await drv.stop(rt, { force: true });
});

test('a pid file without a record, older than the running kernel, is ignored; a fresh one is read', async () => {
  const dir = join(root, 'instances', 'old');
  await mkdir(dir, { recursive: true });
  const pf = qemuFiles(dir).pidFile;
  await writeFile(pf, `${process.pid}\n`);
  assert.equal(await readPidFile(dir), process.pid);
  const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
  const before = (Date.now() - uptime * 1000 - 3600_000) / 1000;
  await utimes(pf, before, before);
  assert.equal(await readPidFile(dir), undefined);
  // Garbage and partial numbers are no pid.
  for (const bad of ['', 'abc\n', '12abc\n', '-5\n', '99999999999999999999\n']) {
    await writeFile(pf, bad);
    assert.equal(await readPidFile(dir), undefined, JSON.stringify(bad));
  }
});

test('a lock owner recorded under another boot id is dead, and its lock is taken over', async () => {
  const path = join(root, 'lock');
  const l = await acquireLock(path, { op: 'test', what: 'thing' });
  const me = JSON.parse(await readFile(path, 'utf8'));
  assert.equal(me.boot, bootId());
  assert.ok(ownerAlive(me));
  assert.equal(ownerAlive({ ...me, boot: OTHER_BOOT }), false);
  await l.release();
  // The same pid and start time, but another boot: stale.
  await writeFile(path, JSON.stringify({ ...me, boot: OTHER_BOOT }));
  assert.equal(await lockHolder(path), undefined);
  const l2 = await acquireLock(path, { op: 'again', what: 'thing' });
  assert.equal(JSON.parse(await readFile(path, 'utf8')).op, 'again');
  await l2.release();
});

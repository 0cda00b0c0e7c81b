/**
 * The QEMU driver against real QEMU, without a guest OS (a blank disk: SeaBIOS finds nothing to
 * boot, which is all the driver needs): start daemonized, status from pid + /proc + QMP, live
 * port forwards, forced stop after an ignored ACPI power-down, crash detection, stale pid files.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { run } from '../../../src/core/exec.js';
import { pathsFor } from '../../../src/config/paths.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { isOurQemu, readPidFile } from '../../../src/driver/qemu/process.js';
import { QmpClient, QmpError, withQmp } from '../../../src/driver/qemu/qmp.js';
import { qemuFiles } from '../../../src/driver/qemu/argv.js';
import { freePort, portFree } from '../../../src/driver/net.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';

let root = '';
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];

async function runtime(name: string): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cc', sshPort: 0, ports: [], accel: 'tcg' };
  started.push(rt);
  return rt;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-qemu-drv-'));
});

after(async () => {
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('QMP client: capabilities negotiated, commands answered, errors typed', async () => {
  const sock = join(root, 'none.sock');
  const q = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    const c = await QmpClient.connect(sock);
    const st = await c.queryStatus();
    assert.equal(typeof st.running, 'boolean');
    assert.match(await c.hmp('info version'), /^\d+\.\d+\.\d+/);
    await assert.rejects(c.execute('no-such-command'), (e: Error) => e instanceof QmpError && e.qmpClass === 'CommandNotFound');
    await c.execute('quit');
    assert.equal(await c.waitClosed(5000), true);
    c.close();
  } finally {
    q.kill('SIGKILL');
  }
});

test('start: daemonized QEMU outlives the call; status derives from pid, /proc and QMP', async () => {
  const rt = await runtime('d1');
  assert.equal((await drv.status(rt)).state, 'stopped');
  const r = await drv.start(rt);
  assert.equal(r.accel, 'tcg');
  assert.ok(r.sshPort > 0);
  assert.equal(await portFree(r.sshPort), false, 'QEMU holds the ssh forward');
  const pid = await readPidFile(rt.dir);
  assert.equal(pid, r.pid);
  assert.ok(await isOurQemu(pid!, rt.dir));
  assert.ok(!(await isOurQemu(process.pid, rt.dir)), 'another process is not our QEMU');
  const st = await drv.status(rt);
  assert.equal(st.state, 'running');
  assert.equal(st.pid, pid);
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  assert.ok(cmdline.includes('tcg,thread=multi'));
  await assert.rejects(drv.start(rt), (e: Error & { code?: string }) => e.code === 'INSTANCE_RUNNING');
});

test('ports: hostfwd added and removed through QMP while running', async () => {
  const rt = started[0]!;
  // A free port may be taken by someone else before the forward binds it: pick again then.
  let port = 0;
  let fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: port, guestPort: 80 };
  for (let i = 0; ; i++) {
    port = await freePort();
    fwd = { ...fwd, hostPort: port };
    try {
      await drv.addPort(rt, fwd);
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== 'PORT_IN_USE' || i >= 4) throw e;
    }
  }
  assert.equal(await portFree(port), false);
  await assert.rejects(drv.addPort(rt, fwd), (e: Error & { code?: string }) => e.code === 'PORT_IN_USE');
  await drv.removePort(rt, fwd);
  assert.equal(await portFree(port), true);
});

test('stop: an ignored ACPI power-down is forced after the timeout; files cleaned up', async () => {
  const rt = started[0]!;
  const pid = (await readPidFile(rt.dir))!;
  const warnings: string[] = [];
  await drv.stop(rt, { timeoutMs: 1000, onEvent: (e) => e.type === 'log' && e.level === 'warn' && warnings.push(e.message) });
  // the power-down was asked for, ignored, and then forced (what the driver says it did)
  assert.deepEqual(warnings, [`'${rt.name}' did not power down within 1 s; forcing it off`]);
  assert.ok(!(await isOurQemu(pid, rt.dir)));
  assert.equal((await drv.status(rt)).state, 'stopped');
  const f = qemuFiles(rt.dir);
  assert.ok(!existsSync(f.pidFile) && !existsSync(f.qmpSocket));
  await drv.stop(rt); // idempotent
});

test('kill -9: status says crashed (stale pid and socket); start recovers', async () => {
  const rt = await runtime('d2');
  await drv.start(rt);
  const pid = (await readPidFile(rt.dir))!;
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await isOurQemu(pid, rt.dir)); i++) await new Promise((r) => setTimeout(r, 50));
  const st = await drv.status(rt);
  assert.equal(st.state, 'crashed');
  assert.match(st.detail!, /not running: QEMU died/);
  await drv.start(rt);
  assert.equal((await drv.status(rt)).state, 'running');
  await drv.stop(rt, { force: true });
  assert.equal((await drv.status(rt)).state, 'stopped');
});

test('a pid file naming another live program is not mistaken for QEMU', async () => {
  const rt = await runtime('d3');
  await writeFile(qemuFiles(rt.dir).pidFile, `${process.pid}\n`);
  const st = await drv.status(rt);
  assert.equal(st.state, 'crashed');
  assert.match(st.detail!, /another program/);
  await drv.stop(rt); // must not kill the test runner
  assert.ok(!existsSync(qemuFiles(rt.dir).pidFile));
});

test('parallel starts of different instances get different ssh ports', async () => {
  const rts = await Promise.all(['p1', 'p2', 'p3'].map((n) => runtime(n)));
  const res = await Promise.all(rts.map((rt) => drv.start(rt)));
  assert.equal(new Set(res.map((r) => r.sshPort)).size, 3);
  for (const rt of rts) assert.equal((await drv.status(rt)).state, 'running');
  await Promise.all(rts.map((rt) => drv.stop(rt, { force: true })));
  const q = await withQmp(join(root, 'none'), async () => 1).catch((e: Error & { code?: string }) => e.code);
  assert.equal(q, 'QMP_UNAVAILABLE');
});

test('firmware uefi: OVMF code read-only and a per-instance copy of its variable store', async () => {
  const rt = { ...(await runtime('u1')), firmware: 'uefi' as const };
  started.push(rt);
  await drv.start(rt);
  const vars = join(rt.dir, 'efivars.fd');
  assert.ok(existsSync(vars), 'the instance has its own EFI variable store');
  const blocks = await withQmp(qemuFiles(rt.dir).qmpSocket, (q) => q.execute('query-block')) as { device: string; inserted?: { file: string; ro: boolean } }[];
  const pflash = blocks.filter((b) => b.device.startsWith('pflash'));
  assert.equal(pflash.length, 2, JSON.stringify(blocks.map((b) => b.device)));
  assert.ok(pflash.some((b) => b.inserted?.ro === true && /OVMF_CODE/.test(b.inserted.file)), 'OVMF code is read-only');
  assert.ok(pflash.some((b) => b.inserted?.ro === false && b.inserted.file === vars), 'the variable store is the instance copy, writable');
  await drv.stop(rt, { force: true });
  // a second start keeps the same variable store (boot entries persist): the file is not copied again
  const { stat } = await import('node:fs/promises');
  const ino = (await stat(vars)).ino;
  await drv.start(rt);
  assert.equal((await stat(vars)).ino, ino);
  await drv.stop(rt, { force: true });
});

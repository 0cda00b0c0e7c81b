/**
 * serial.log, which the guest controls: rotated at every start (the previous boot's console is
 * serial.log.1), opened by QEMU with append=on, and cut back under its cap while QEMU writes to it
 * (whole blocks removed from the start: the end, what consoleTail and `kumo logs` show, is kept).
 * Real QEMU on a blank disk; the test appends to the log itself to stand in for a chatty guest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, readFile, writeFile, appendFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { pathsFor } from '../../../src/config/paths.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { qemuFiles } from '../../../src/driver/qemu/argv.js';
import { capSerialLog, previousSerialLog } from '../../../src/driver/qemu/serial-log.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';

let root = '';
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];

async function runtime(name: string): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:ce', sshPort: 0, ports: [], accel: 'tcg' };
  started.push(rt);
  return rt;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-serial-'));
});

after(async () => {
  delete process.env.KUMO_SERIAL_LOG_MAX;
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('each start rotates serial.log to serial.log.1 (one previous boot kept)', async () => {
  const rt = await runtime('rot');
  const log = qemuFiles(rt.dir).serialLog;
  await writeFile(log, 'boot one\n');
  await drv.start(rt);
  assert.equal(await readFile(previousSerialLog(rt.dir), 'utf8'), 'boot one\n');
  assert.ok(!(await readFile(log, 'utf8')).includes('boot one'), 'the new log starts fresh');
  await appendFile(log, 'boot two\n');
  await drv.stop(rt, { force: true });
  await drv.start(rt);
  const prev = await readFile(previousSerialLog(rt.dir), 'utf8');
  assert.match(prev, /boot two\n$/);
  assert.ok(!prev.includes('boot one'), 'only one previous boot is kept');
  await drv.stop(rt, { force: true });
});

test('a log grown past KUMO_SERIAL_LOG_MAX while QEMU runs is cut from the start by status; its end is kept and appends go on', async () => {
  process.env.KUMO_SERIAL_LOG_MAX = '1M';
  const rt = await runtime('cap');
  const log = qemuFiles(rt.dir).serialLog;
  await drv.start(rt);
  const line = (i: number) => `line ${String(i).padStart(7, '0')} ${'x'.repeat(50)}\n`;
  let text = '';
  for (let i = 0; i < 50_000; i++) text += line(i); // ~3 MiB
  await appendFile(log, text);
  assert.ok((await stat(log)).size > 3 * 1024 * 1024 - 200_000);
  assert.equal((await drv.status(rt)).state, 'running');
  const after1 = await readFile(log, 'utf8');
  assert.ok(after1.length <= 1024 * 1024, `cut to the cap: ${after1.length} bytes`);
  assert.ok(after1.length >= 256 * 1024, `about half the cap is kept: ${after1.length} bytes`);
  assert.ok(after1.endsWith(line(49_999)), 'the last line is kept');
  assert.ok(!after1.includes(line(0)), 'the first line is gone');
  // QEMU's descriptor is O_APPEND: what is written now lands at the new end, no hole before it.
  await appendFile(log, 'after the cut\n');
  const after2 = await readFile(log, 'utf8');
  assert.ok(after2.endsWith(`${line(49_999)}after the cut\n`));
  assert.ok(!after2.includes('\0'));
  // Under the cap nothing happens.
  assert.equal(await capSerialLog(rt.dir), false);
  await drv.stop(rt, { force: true });
  delete process.env.KUMO_SERIAL_LOG_MAX;
});

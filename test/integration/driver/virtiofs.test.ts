/**
 * Shared folders in the QEMU driver against a real virtiofsd and a real QEMU, without a guest OS
 * (a blank disk): one virtiofsd per virtiofs mount, started before QEMU and recorded in the
 * instance folder, connected to by QEMU's vhost-user-fs device on shared memfd memory; 9p devices
 * as QEMU builds them; everything gone after stop; leftovers of a killed kumo (a virtiofsd without
 * its QEMU, a QEMU killed -9) found and cleaned by the next command; a pid reused by another
 * program never signalled; the transport choice when virtiofsd is missing or refuses to run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { pathsFor } from '../../../src/config/paths.js';
import { virtiofsdFilesIn } from '../../../src/config/instance-files.js';
import { QemuDriver } from '../../../src/driver/qemu/driver.js';
import { processLive, readPidFile } from '../../../src/driver/qemu/process.js';
import { withQmp } from '../../../src/driver/qemu/qmp.js';
import { qemuFiles } from '../../../src/driver/qemu/argv.js';
import { forgetVirtiofsdProbe, runningVirtiofsds, startVirtiofsds, stopVirtiofsds } from '../../../src/driver/qemu/virtiofs.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';
import type { ResolvedMount } from '../../../src/config/mounts.js';
import type { KumoEvent } from '../../../src/events/events.js';

let root = '';
const drv = new QemuDriver();
const started: InstanceRuntime[] = [];

async function runtime(name: string, mounts: ResolvedMount[]): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const rt: InstanceRuntime = { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cd', sshPort: 0, ports: [], accel: 'tcg', mounts };
  started.push(rt);
  return rt;
}

async function share(name: string): Promise<string> {
  const d = join(root, 'share', name);
  await mkdir(d, { recursive: true });
  return d;
}

async function recordedPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const f of await readdir(dir)) if (/^virtiofsd-.*\.pid$/.test(f)) out.push((JSON.parse(await readFile(join(dir, f), 'utf8')) as { pid: number }).pid);
  return out;
}

async function waitDead(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!pids.some(processLive)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-virtiofs-'));
});

after(async () => {
  for (const rt of started) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('virtiofs + 9p: a virtiofsd per virtiofs folder serves QEMU (vhost-user-fs on memfd), 9p is QEMU\'s own; stop removes them all', async () => {
  const a = await share('a');
  const b = await share('b');
  const rt = await runtime('v1', [
    { tag: 'kumo0', host: a, guest: '/a', readOnly: false, type: 'virtiofs' },
    { tag: 'kumo1', host: b, guest: '/b', readOnly: true, type: '9p' },
  ]);
  await drv.start(rt);
  const vpids = await recordedPids(rt.dir);
  assert.equal(vpids.length, 1, 'one virtiofsd, for the virtiofs folder only');
  assert.ok(processLive(vpids[0]!));
  assert.deepEqual(await runningVirtiofsds(rt.dir), vpids);
  const cmdline = (await readFile(`/proc/${vpids[0]}/cmdline`, 'utf8')).split('\0');
  assert.ok(cmdline.includes(`source=${a}`));
  assert.ok(cmdline.includes(`--socket-path=${virtiofsdFilesIn(rt.dir, 'kumo0').socket}`));
  // QEMU really has both devices, with their tags
  const qtree = await withQmp(qemuFiles(rt.dir).qmpSocket, (c) => c.hmp('info qtree'));
  assert.match(qtree, /dev: vhost-user-fs-pci[\s\S]*?tag = "kumo0"/);
  assert.match(qtree, /dev: virtio-9p-pci[\s\S]*?mount_tag = "kumo1"/);
  const mem = await withQmp(qemuFiles(rt.dir).qmpSocket, (c) => c.execute<{ id?: string; type: string }[]>('qom-list', { path: '/objects' }));
  assert.ok(mem.some((o) => o.type === 'child<memory-backend-memfd>'), JSON.stringify(mem));
  // QEMU connected: virtiofsd has accepted the connection (its socket is still there)
  assert.ok(existsSync(virtiofsdFilesIn(rt.dir, 'kumo0').socket));
  await drv.stop(rt, { force: true });
  assert.equal(await waitDead(vpids), true, 'virtiofsd went with its QEMU');
  assert.deepEqual((await readdir(rt.dir)).filter((f) => /^virtiofsd-.*\.(pid|sock)$/.test(f)), []);
});

test('kill -9: a QEMU killed behind kumo\'s back takes its virtiofsd along or the next start stops it; a virtiofsd left without QEMU is stopped', async () => {
  const a = await share('k');
  const rt = await runtime('v2', [{ tag: 'kumo0', host: a, guest: '/k', readOnly: false, type: 'virtiofs' }]);
  await drv.start(rt);
  const qpid = (await readPidFile(rt.dir))!;
  const first = await recordedPids(rt.dir);
  process.kill(qpid, 'SIGKILL');
  assert.equal(await waitDead([qpid]), true);
  assert.equal((await drv.status(rt)).state, 'crashed');
  await drv.start(rt);
  const second = await recordedPids(rt.dir);
  assert.notDeepEqual(second, first);
  assert.equal(await waitDead(first), true, 'the old virtiofsd is gone');
  assert.ok(processLive(second[0]!));
  await drv.stop(rt, { force: true });
  // kumo killed between starting the virtiofsd and QEMU: a daemon with no QEMU, found by cleanup
  await startVirtiofsds(rt);
  const orphan = await recordedPids(rt.dir);
  assert.ok(processLive(orphan[0]!));
  assert.equal((await drv.status(rt)).state, 'stopped');
  await drv.cleanup(rt);
  assert.equal(await waitDead(orphan), true);
  assert.deepEqual(await recordedPids(rt.dir), []);
});

test('a virtiofsd record whose pid is now another program is never signalled; a missing host folder is a typed error before anything starts', async () => {
  const rt = await runtime('v3', [{ tag: 'kumo0', host: join(root, 'share', 'gone'), guest: '/g', readOnly: false, type: 'virtiofs' }]);
  const other = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    const f = virtiofsdFilesIn(rt.dir, 'kumo0');
    await writeFile(f.pid, JSON.stringify({ pid: other.pid, tag: 'kumo0', socket: f.socket }));
    await stopVirtiofsds(rt.dir);
    assert.ok(processLive(other.pid!), 'the sleep is alive');
    assert.equal(existsSync(f.pid), false, 'the stale record is removed');
    await assert.rejects(drv.start(rt), (e: unknown) => (e as { code: string }).code === 'MOUNT_SOURCE_MISSING');
    assert.equal(await readPidFile(rt.dir), undefined, 'no QEMU');
    assert.deepEqual(await recordedPids(rt.dir), []);
  } finally {
    other.kill('SIGKILL');
  }
});

test('planMounts: virtiofs where virtiofsd runs (root here), read-only too; missing or refusing virtiofsd: 9p with a warning, or a typed error when virtiofs is asked for', async () => {
  const a = await share('p');
  const paths = pathsFor(root);
  await mkdir(paths.tmp, { recursive: true });
  const saved = process.env.KUMO_VIRTIOFSD;
  try {
    delete process.env.KUMO_VIRTIOFSD;
    forgetVirtiofsdProbe();
    const plan = await drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false }, { host: a, guest: '/r', readOnly: true }], { type: 'auto' });
    const best = process.getuid?.() === 0 ? 'virtiofs' : '9p';
    assert.deepEqual(plan.map((m) => [m.tag, m.type]), [['kumo0', best], ['kumo1', best]]);

    process.env.KUMO_VIRTIOFSD = join(root, 'no-such-virtiofsd');
    forgetVirtiofsdProbe();
    const events: KumoEvent[] = [];
    const fallback = await drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false }], { type: 'auto', onEvent: (e) => events.push(e) });
    assert.equal(fallback[0]!.type, '9p');
    assert.ok(events.some((e) => e.type === 'log' && e.level === 'warn' && /over 9p: virtiofsd is not installed/.test(e.message)), JSON.stringify(events));
    await assert.rejects(drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false }], { type: 'virtiofs' }), (e: unknown) => {
      const k = e as { code: string; hint: string };
      assert.equal(k.code, 'VIRTIOFSD_MISSING');
      assert.match(k.hint, /apt-get install qemu-system-common.*--mount-type 9p/);
      return true;
    });
    // 9p asked for: virtiofsd is not even looked for
    assert.equal((await drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false }], { type: '9p' }))[0]!.type, '9p');

    // a virtiofsd that refuses to run (as QEMU 7.2's does for an ordinary user)
    const fake = join(root, 'fake-virtiofsd');
    await writeFile(fake, '#!/bin/sh\necho "setgroups() failed with error=1:Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    process.env.KUMO_VIRTIOFSD = fake;
    forgetVirtiofsdProbe();
    await assert.rejects(drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false, type: 'virtiofs' }], { type: 'auto' }), (e: unknown) => {
      const k = e as { code: string; message: string };
      assert.equal(k.code, 'VIRTIOFS_UNAVAILABLE');
      assert.match(k.message, /setgroups\(\) failed/);
      return true;
    });
    assert.equal((await drv.planMounts(paths, [{ host: a, guest: '/p', readOnly: false }], { type: 'auto' }))[0]!.type, '9p');
  } finally {
    if (saved === undefined) delete process.env.KUMO_VIRTIOFSD;
    else process.env.KUMO_VIRTIOFSD = saved;
    forgetVirtiofsdProbe();
  }
});

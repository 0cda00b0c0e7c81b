/**
 * Warm templates as use cases, against real QEMU without a guest OS: the template is made by hand
 * from a blank image (QEMU with its RAM in a shared file, sitting in the firmware, saved with
 * x-ignore-shared), so everything but the guest side runs for real: the key and the match (or the
 * reason a launch boots instead), clones' first starts restoring it, the fallback to a boot when
 * the identity cannot be given (a blank guest has no agent: never a clone with its template's
 * identity), a changed state file, removal refused while clones use it (and of its base image),
 * prune of stale templates, and the sweep of a killed warm's leftovers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { ensureHome, type KumoPaths } from '../../../src/config/paths.js';
import { importImage, removeImage } from '../../../src/image/index.js';
import { registerBuiltins } from '../../../src/builtins.js';
import { hashFile } from '../../../src/core/fs.js';
import { getDriver, requireCapability } from '../../../src/driver/index.js';
import { isOurQemu, readPidFile } from '../../../src/driver/qemu/process.js';
import {
  createInstance,
  deleteInstance,
  instanceStatus,
  launch,
  listNames,
  pruneTemplates,
  readRecord,
  removeTemplate,
  resolveImage,
  runtimeFor,
  startInstance,
  sweepWarmLeftovers,
  templateFor,
  validateSpec,
  writeRecord,
  listTemplates,
} from '../../../src/instance/index.js';
import { templateKeyFor } from '../../../src/instance/warm.js';
import { templateFiles, templateIdOf, writeTemplateRecord, TEMPLATE_VERSION, type TemplateKey, type TemplateRecord } from '../../../src/template/store.js';
import type { KumoEvent } from '../../../src/events/events.js';

let root = '';
let paths: KumoPaths;
const shape = { image: 'blank', memory: 128, cpus: 1, accel: 'tcg', timeout: 2 } as const;

/** A template made the way `kumo image warm` makes one, minus waiting for a guest that never comes. */
async function makeTemplate(o: { key?: (k: TemplateKey) => TemplateKey; agent?: boolean } = {}): Promise<TemplateRecord> {
  const spec = validateSpec({ ...shape, name: 'warm' });
  const driver = await getDriver('qemu');
  const image = await resolveImage(paths, 'blank');
  const key = (o.key ?? ((k) => k))(await templateKeyFor(paths, spec, image, driver));
  const id = templateIdOf(key);
  const work = join(paths.templates, `.warm-${id}-${process.pid}`);
  await mkdir(work, { recursive: true });
  const wpaths = { ...paths, instances: work };
  const name = `tpl-${id.slice(0, 8)}`;
  let rec = await createInstance(wpaths, { ...spec, name }, { image });
  rec = { ...rec, run: { memoryFile: join(work, name, 'memory'), memoryShared: true, machine: key.host.machine } };
  await writeRecord(wpaths, rec);
  rec = (await startInstance(wpaths, name, { wait: false })).record;
  const saved = await requireCapability(driver, 'suspend').saveState(runtimeFor(wpaths, rec), join(work, name, 'state'), { ignoreShared: true });
  const f = templateFiles(paths, id);
  await rename(join(work, name), f.dir);
  await rm(work, { recursive: true, force: true });
  const tpl: TemplateRecord = {
    version: TEMPLATE_VERSION,
    id,
    key,
    created: new Date().toISOString(),
    image: { id: image.id!, ref: 'blank', path: image.path, format: image.format },
    mac: rec.mac,
    hostKeyPublic: (await readFile(join(f.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim(),
    agent: o.agent ?? true,
    stateSha256: await hashFile(f.state),
    sizes: { stateBytes: saved.bytes, memoryBytes: 128 * 1048576, memoryOnDiskBytes: 0, diskOnDiskBytes: 0 },
    timings: { bootMs: 0, saveMs: saved.ms },
  };
  await writeTemplateRecord(paths, tpl);
  return tpl;
}

before(async () => {
  registerBuiltins();
  root = await mkdtemp(join(tmpdir(), 'kumo-templates-'));
  paths = await ensureHome({ home: join(root, 'home') });
  const base = join(root, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
  await importImage(paths, base, { name: 'blank' });
});

after(async () => {
  for (const n of await listNames(paths)) await deleteInstance(paths, n, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('a launch of the same image and shape is a clone of the template; another shape boots and says why', { timeout: 180_000 }, async () => {
  const tpl = await makeTemplate();
  const driver = await getDriver('qemu');
  const image = await resolveImage(paths, 'blank');
  const same = await templateFor(paths, validateSpec({ ...shape, name: 'x' }), image, driver);
  assert.equal(same.template?.id, tpl.id);
  const other = await templateFor(paths, validateSpec({ ...shape, memory: 256, name: 'x' }), image, driver);
  assert.equal(other.template, undefined);
  assert.match(other.reason ?? '', /does not match: its shape is 1 cpu \/ 128 MiB, asked 1 \/ 256/);
  const ud = await templateFor(paths, validateSpec({ ...shape, userDataText: '#cloud-config\n{}\n', name: 'x' }), image, driver);
  assert.match(ud.reason ?? '', /custom user-data/);

  // The clone's first start restores the template; the blank guest has no agent, so the identity
  // cannot be given: the clone is stopped and booted instead, never left with the template's identity.
  const events: KumoEvent[] = [];
  const vm = await launch({ paths, name: 'c1', ...shape, wait: false, onEvent: (e) => events.push(e) });
  const infos = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
  assert.ok(infos.some((m) => m.includes(`from warm template ${tpl.id}`)), infos.join('\n'));
  assert.ok(infos.some((m) => /could not give clone 'c1' its own identity.*booting it instead/s.test(m)), infos.join('\n'));
  const rec = await readRecord(paths, 'c1');
  assert.equal(rec.template?.id, tpl.id);
  assert.equal(rec.restore, undefined, 'no restore pending after the fallback');
  assert.equal(rec.run, undefined, 'the fallback booted with ordinary RAM');
  assert.equal(vm.started?.restored, undefined);
  assert.equal((await instanceStatus(paths, 'c1')).state, 'running');
  // the --cold way: no template involved
  const cold = await launch({ paths, name: 'c2', ...shape, wait: false, cold: true });
  assert.equal((await cold.record()).template, undefined);
  await deleteInstance(paths, 'c2', { force: true });
});

test('a changed template state file is never restored: the clone boots and says why', { timeout: 120_000 }, async () => {
  const [tpl] = await listTemplates(paths);
  const f = templateFiles(paths, tpl!.id);
  const saved = await readFile(f.state);
  await chmod(f.state, 0o600);
  const bad = Buffer.from(saved);
  bad[bad.length - 100] = bad[bad.length - 100]! ^ 0xff;
  await writeFile(f.state, bad);
  try {
    const events: KumoEvent[] = [];
    await launch({ paths, name: 'c3', ...shape, wait: false, onEvent: (e) => events.push(e) });
    const warns = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : []));
    assert.ok(warns.some((m) => /state file of template .* changed/.test(m)), warns.join('\n'));
    assert.equal((await readRecord(paths, 'c3')).restore, undefined);
  } finally {
    await writeFile(f.state, saved);
    await chmod(f.state, 0o400);
    await deleteInstance(paths, 'c3', { force: true });
  }
});

test('a template is not removed while a clone uses it, nor is its base image; then both can go', { timeout: 60_000 }, async () => {
  const [tpl] = await listTemplates(paths);
  await assert.rejects(removeTemplate(paths, tpl!.id), (e: { code?: string; message: string }) => e.code === 'TEMPLATE_IN_USE' && /c1/.test(e.message));
  const image = await resolveImage(paths, 'blank');
  await assert.rejects(removeImage(paths, image.id!), (e: { code?: string }) => e.code === 'IMAGE_IN_USE');
  await deleteInstance(paths, 'c1', { force: true });
  // still in use by the template alone
  await assert.rejects(removeImage(paths, image.id!), (e: { code?: string; message: string }) => e.code === 'IMAGE_IN_USE' && /template:/.test(e.message));
  await removeTemplate(paths, tpl!.id);
  assert.equal(existsSync(templateFiles(paths, tpl!.id).dir), false);
  assert.deepEqual(await listTemplates(paths), []);
});

test('prune: a template made by another QEMU is removed, a current unused one is kept (unless --all)', { timeout: 120_000 }, async () => {
  const stale = await makeTemplate({ key: (k) => ({ ...k, host: { ...k.host, version: '0.0.1' } }) });
  const current = await makeTemplate();
  const dry = await pruneTemplates(paths, { dryRun: true });
  assert.deepEqual(dry.removed.map((r) => r.id), [stale.id]);
  assert.equal(existsSync(templateFiles(paths, stale.id).record), true, 'dry run removes nothing');
  const r = await pruneTemplates(paths);
  assert.deepEqual(r.removed.map((x) => x.id), [stale.id]);
  assert.match(r.removed[0]!.why, /made by qemu 0\.0\.1/);
  assert.deepEqual(r.kept.map((x) => x.id), [current.id]);
  const all = await pruneTemplates(paths, { all: true });
  assert.deepEqual(all.removed.map((x) => x.id), [current.id]);
  assert.deepEqual(await listTemplates(paths), []);
});

test('a killed warm leaves a folder and a QEMU: the next sweep stops that QEMU and removes the folder', { timeout: 60_000 }, async () => {
  // a process that is gone: a child that exits at once
  const child = spawn(process.execPath, ['-e', '0']);
  const deadPid = child.pid!;
  await new Promise((r) => child.on('exit', r));
  const work = join(paths.templates, `.warm-${'a'.repeat(16)}-${deadPid}`);
  await mkdir(work, { recursive: true });
  const wpaths = { ...paths, instances: work };
  await createInstance(wpaths, { ...shape, name: 'tpl-aaaaaaaa' });
  await startInstance(wpaths, 'tpl-aaaaaaaa', { wait: false });
  const pid = await readPidFile(join(work, 'tpl-aaaaaaaa'));
  assert.ok(pid && (await isOurQemu(pid, join(work, 'tpl-aaaaaaaa'))), 'the leftover QEMU runs');
  const swept = await sweepWarmLeftovers(paths);
  assert.deepEqual(swept, [`.warm-${'a'.repeat(16)}-${deadPid}`]);
  assert.equal(await isOurQemu(pid!, join(work, 'tpl-aaaaaaaa')), false, 'its QEMU is stopped');
  assert.equal(existsSync(work), false, 'its folder is gone');
  // a warm of a live process is left alone
  const mine = join(paths.templates, `.warm-${'b'.repeat(16)}-${process.pid}`);
  await mkdir(mine, { recursive: true });
  assert.deepEqual(await sweepWarmLeftovers(paths), []);
  assert.equal(existsSync(mine), true);
  await rm(mine, { recursive: true });
});

test('warm on a driver without templates: a typed error that says which driver has them', { timeout: 60_000 }, async () => {
  const { warmTemplate } = await import('../../../src/instance/index.js');
  await assert.rejects(warmTemplate(paths, { ...shape, driver: 'libvirt' }), (e: { code?: string; message: string; hint?: string }) => {
    assert.equal(e.code, 'TEMPLATE_UNSUPPORTED');
    assert.match(e.message, /the libvirt driver has no warm templates/);
    assert.match(e.hint ?? '', /--driver qemu/);
    return true;
  });
  assert.deepEqual(await listTemplates(paths), [], 'nothing made');
});

test('a snapshot with memory, restored on a stopped instance, is resumed by the next start (-loadvm), not booted', { timeout: 120_000 }, async () => {
  const { createSnapshot, restoreSnapshot, stopInstance } = await import('../../../src/instance/index.js');
  await createInstance(paths, { ...shape, name: 'snap1' });
  await startInstance(paths, 'snap1', { wait: false });
  const made = await createSnapshot(paths, 'snap1', 'live1');
  assert.equal(made.live, true);
  await stopInstance(paths, 'snap1', { force: true });
  const r = await restoreSnapshot(paths, 'snap1', 'live1');
  assert.equal(r.resumesAtStart, true);
  assert.equal((await readRecord(paths, 'snap1')).restore?.snapshot, 'live1');
  const s = await startInstance(paths, 'snap1', { wait: false });
  assert.equal(s.restored?.kind, 'snapshot');
  const st = await instanceStatus(paths, 'snap1');
  assert.equal(st.state, 'running');
  const cmdline = (await readFile(`/proc/${st.pid}/cmdline`, 'utf8')).split('\0');
  assert.equal(cmdline[cmdline.indexOf('-loadvm') + 1], 'live1', 'QEMU was started on the snapshot');
  assert.equal((await readRecord(paths, 'snap1')).restore, undefined, 'resumed once');
  // a disk-only snapshot (taken stopped) restores the disk; the next start boots
  await stopInstance(paths, 'snap1', { force: true });
  const { createSnapshot: cs } = await import('../../../src/instance/index.js');
  await cs(paths, 'snap1', 'disk1');
  const d = await restoreSnapshot(paths, 'snap1', 'disk1');
  assert.equal(d.resumesAtStart, false);
  assert.equal((await startInstance(paths, 'snap1', { wait: false })).restored, undefined);
  await deleteInstance(paths, 'snap1', { force: true });
});

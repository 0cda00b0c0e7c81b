/**
 * Golden-image use cases against the real qemu-img, qemu-io, isoinfo and QEMU, without booting a
 * guest OS: the base is a small qcow2 with known bytes (written by qemu-io), so what each use case
 * did to a disk is read back by an independent reader (qemu-io read -P, qemu-img compare/info).
 * The "running" cases start QEMU on that disk (it sits in the firmware: no OS, no boot cost).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureHome, type KumoPaths } from '../../../src/config/paths.js';
import { importImage, findImage, removeImage, listImages } from '../../../src/image/index.js';
import { createInstance, deleteInstance, instanceFiles, readRecord, startInstance, stopInstance, instanceStatus, cloneInstance, createSnapshot, listSnapshots, restoreSnapshot, deleteSnapshot } from '../../../src/instance/index.js';
import { registerBuiltins } from '../../../src/builtins.js';

registerBuiltins(); // as the library entry and the CLI do
import { captureInstance, consolidateInstance } from '../../../src/golden/index.js';
import { kumo } from '../../helpers/cli.js';

const MiB = 1024 * 1024;

function sh(cmd: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function ok(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
/** qemu-io: does the disk hold byte `pattern` at [off, off+len)? */
function holds(disk: string, pattern: number, off: number, len: number): boolean {
  const r = sh('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', `read -P ${pattern} ${off} ${len}`, disk]);
  return r.code === 0 && !/Pattern verification failed/i.test(r.stdout + r.stderr);
}
function write(disk: string, pattern: number, off: number, len: number): void {
  ok('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} ${off} ${len}`, disk]);
}
function backing(disk: string): string | undefined {
  return (JSON.parse(ok('qemu-img', ['info', '-U', '--output=json', disk])) as { 'backing-filename'?: string })['backing-filename'];
}
async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

let root: string;
let paths: KumoPaths;
let seq = 0;

/** A base image (64 MiB virtual; bytes 0xb1 in the first 4 MiB) in a fresh store. */
async function freshHome(tag: string): Promise<KumoPaths> {
  const home = join(root, `${tag}-${seq++}`);
  const p = await ensureHome({ home });
  const base = join(root, `base-${seq}.qcow2`);
  ok('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  write(base, 0xb1, 0, 4 * MiB);
  await importImage(p, base, { name: 'tiny' });
  return p;
}

async function makeInstance(p: KumoPaths, name: string): Promise<string> {
  await createInstance(p, { name, image: 'tiny', memory: 128, cpus: 1, accel: 'tcg' });
  return instanceFiles(p, name).disk;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-golden-'));
  paths = await freshHome('main');
});
after(async () => {
  for (const d of existsSync(root) ? await readdir(root) : []) {
    const inst = join(root, d, 'instances');
    if (!existsSync(inst)) continue;
    for (const n of await readdir(inst)) await stopInstance({ ...paths, home: join(root, d), instances: inst } as KumoPaths, n, { force: true }).catch(() => {});
  }
  await rm(root, { recursive: true, force: true });
});

test('snapshots of a stopped instance: create, list, restore brings the bytes back, delete; bad names and unknown ones are clear errors', async () => {
  const disk = await makeInstance(paths, 'snap');
  write(disk, 0x11, 8 * MiB, MiB);
  const r = await createSnapshot(paths, 'snap', 's1');
  assert.equal(r.live, false);
  write(disk, 0x22, 8 * MiB, MiB);
  assert.ok(holds(disk, 0x22, 8 * MiB, MiB));
  const list = await listSnapshots(paths, 'snap');
  assert.deepEqual(list.map((s) => s.name), ['s1']);
  // qemu-img sees it too
  assert.match(ok('qemu-img', ['snapshot', '-l', disk]), /\bs1\b/);
  await assert.rejects(createSnapshot(paths, 'snap', 's1'), { code: 'SNAPSHOT_EXISTS' });
  await assert.rejects(restoreSnapshot(paths, 'snap', 'nope'), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, 'SNAPSHOT_NOT_FOUND');
    assert.match(e.message, /no snapshot named 'nope'/);
    assert.match(e.hint ?? '', /s1/);
    return true;
  });
  await assert.rejects(createSnapshot(paths, 'snap', 'bad name'), { code: 'BAD_SNAPSHOT_NAME' });
  await assert.rejects(createSnapshot(paths, 'ghost', 's1'), { code: 'INSTANCE_NOT_FOUND' });
  await restoreSnapshot(paths, 'snap', 's1');
  assert.ok(holds(disk, 0x11, 8 * MiB, MiB), 'the change made after s1 is gone');
  assert.ok(holds(disk, 0xb1, 0, MiB), 'the base data is still read through the overlay');
  await deleteSnapshot(paths, 'snap', 's1');
  assert.deepEqual(await listSnapshots(paths, 'snap'), []);
  await assert.rejects(deleteSnapshot(paths, 'snap', 's1'), { code: 'SNAPSHOT_NOT_FOUND' });
});

test('CLI: kumo snapshot create/list --json/restore/delete, exit codes of errors', async () => {
  await makeInstance(paths, 'snapcli');
  const home = paths.home;
  let r = await kumo(['snapshot', 'create', 'snapcli', 'a'], { home });
  assert.equal(r.code, 0, r.stderr);
  r = await kumo(['snapshot', 'list', 'snapcli', '--json'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { name: string }[]).map((s) => s.name), ['a']);
  r = await kumo(['snapshot', 'restore', 'snapcli', 'zzz'], { home });
  assert.equal(r.code, 4, r.stderr); // not found
  assert.match(r.stderr, /no snapshot named 'zzz'/);
  r = await kumo(['snapshot', 'delete', 'snapcli', 'a'], { home });
  assert.equal(r.code, 0, r.stderr);
});

test('clone: same disk content on the same base, new instance-id, seed, host key, MAC; the source is not changed', async () => {
  const src = await makeInstance(paths, 'src');
  write(src, 0x5a, 16 * MiB, 2 * MiB);
  await createSnapshot(paths, 'src', 'keep');
  const before = await sha(src);
  const res = await cloneInstance(paths, 'src', 'copy');
  assert.equal(await sha(src), before, "the source's disk is byte for byte the same");
  const a = await readRecord(paths, 'src');
  const b = await readRecord(paths, 'copy');
  const fa = instanceFiles(paths, 'src');
  const fb = instanceFiles(paths, 'copy');
  assert.equal(res.record.name, 'copy');
  assert.notEqual(b.instanceId, a.instanceId);
  assert.notEqual(b.mac, a.mac);
  assert.equal(b.ssh.port, 0);
  assert.equal(b.image.id, a.image.id);
  assert.notEqual(await readFile(`${fb.hostKey}.pub`, 'utf8'), await readFile(`${fa.hostKey}.pub`, 'utf8'));
  // the seed, read back by isoinfo, names the new instance
  const meta = ok('isoinfo', ['-R', '-i', fb.seed, '-x', '/meta-data']);
  assert.match(meta, new RegExp(b.instanceId));
  assert.match(meta, /copy/);
  assert.doesNotMatch(meta, new RegExp(a.instanceId));
  // same content, same base, no snapshots carried over
  assert.match(ok('qemu-img', ['compare', '-U', src, fb.disk]), /identical/);
  assert.equal(backing(fb.disk), backing(src));
  assert.equal(ok('qemu-img', ['snapshot', '-l', fb.disk]).trim(), '');
  // a name that exists, and an unknown source
  await assert.rejects(cloneInstance(paths, 'src', 'copy'), { code: 'INSTANCE_EXISTS' });
  await assert.rejects(cloneInstance(paths, 'nope', 'copy2'), { code: 'INSTANCE_NOT_FOUND' });
  await assert.rejects(cloneInstance(paths, 'src', 'Bad_Name'), { code: 'INVALID' });
  assert.equal(existsSync(instanceFiles(paths, 'copy2').dir), false);
  await deleteSnapshot(paths, 'src', 'keep');
});

test('consolidate: the disk no longer needs its base, keeps its bytes, the base can be removed; snapshots refuse it', async () => {
  const p = await freshHome('cons');
  const disk = await makeInstance(p, 'web');
  write(disk, 0x77, 32 * MiB, MiB);
  await createSnapshot(p, 'web', 's');
  await assert.rejects(consolidateInstance(p, 'web'), { code: 'SNAPSHOTS_PRESENT' });
  await deleteSnapshot(p, 'web', 's');
  await assert.rejects(removeImage(p, 'tiny'), { code: 'IMAGE_IN_USE' });
  const r = await consolidateInstance(p, 'web');
  assert.equal(r.changed, true);
  assert.equal(backing(disk), undefined, 'no backing file any more');
  assert.ok(holds(disk, 0xb1, 0, 4 * MiB), "the base's bytes are in the disk now");
  assert.ok(holds(disk, 0x77, 32 * MiB, MiB), "the instance's own bytes are kept");
  assert.match(ok('qemu-img', ['check', disk]), /No errors were found/);
  const rec = (await readRecord(p, 'web')) as { consolidated?: { from: string[] } };
  assert.equal(rec.consolidated?.from.length, 1);
  // nothing left beside the disk
  assert.deepEqual((await readdir(instanceFiles(p, 'web').dir)).filter((f) => f.includes('.tmp-')), []);
  // the base can go now, and the disk still reads
  await removeImage(p, 'tiny');
  assert.equal(await findImage(p, 'tiny'), undefined);
  assert.ok(holds(disk, 0xb1, 0, 4 * MiB));
  // again: nothing to do
  assert.equal((await consolidateInstance(p, 'web')).changed, false);
});

test('capture --no-seal: a standalone compressed qcow2 in the store, with its metadata; a name that exists is refused', async () => {
  const disk = await makeInstance(paths, 'cap');
  write(disk, 0x33, 20 * MiB, 8 * MiB);
  const before = await sha(disk);
  const r = await captureInstance(paths, 'cap', { image: 'cap-golden', seal: false });
  assert.equal(await sha(disk), before, "the source's disk is not changed");
  const img = await findImage(paths, 'cap-golden');
  assert.ok(img);
  assert.equal(img.id, r.image.id);
  assert.equal(img.source.kind, 'captured');
  const md = img.metadata as { parentImage: { id: string }; capturedFrom: { instance: string }; capturedAt: string; sealed: boolean };
  assert.equal(md.capturedFrom.instance, 'cap');
  assert.equal(md.parentImage.id, (await readRecord(paths, 'cap')).image.id);
  assert.equal(md.sealed, false);
  assert.ok(Math.abs(Date.parse(md.capturedAt) - Date.now()) < 120_000);
  assert.equal(backing(img.path), undefined, 'standalone');
  assert.ok(holds(img.path, 0xb1, 0, 4 * MiB) && holds(img.path, 0x33, 20 * MiB, 8 * MiB), 'base and instance bytes are both in the image');
  // compressed: 12 MiB of one repeated byte take far less than 12 MiB
  assert.ok(img.size < 2 * MiB, `image is ${img.size} bytes`);
  // nothing left in tmp
  assert.deepEqual(await readdir(paths.tmp).then((l) => l.filter((f) => f.startsWith('capture-'))), []);
  await assert.rejects(captureInstance(paths, 'cap', { image: 'cap-golden', seal: false }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'IMAGE_EXISTS');
    assert.match(e.message, /cap-golden/);
    return true;
  });
  await assert.rejects(captureInstance(paths, 'cap', { image: '../evil', seal: false }), { code: 'BAD_IMAGE_NAME' });
  // an instance launched from it reads the captured bytes through its overlay
  await createInstance(paths, { name: 'from-golden', image: 'cap-golden', memory: 128, cpus: 1, accel: 'tcg' });
  const d2 = instanceFiles(paths, 'from-golden').disk;
  assert.ok(holds(d2, 0x33, 20 * MiB, 8 * MiB));
  assert.ok((await stat(d2)).size < 2 * MiB);
});

test('a running instance: capture, clone and consolidate refuse with a hint; live snapshots save and load; --stop stops it first', { timeout: 300_000 }, async () => {
  const disk = await makeInstance(paths, 'live');
  await startInstance(paths, 'live', { wait: false });
  try {
    assert.equal((await instanceStatus(paths, 'live')).state, 'running');
    for (const [what, p] of [
      ['capture', () => captureInstance(paths, 'live', { image: 'live-golden', seal: false })],
      ['clone', () => cloneInstance(paths, 'live', 'live-copy')],
      ['consolidate', () => consolidateInstance(paths, 'live')],
    ] as const) {
      await assert.rejects(p(), (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'INSTANCE_RUNNING', what);
        assert.match(e.message, new RegExp(`cannot ${what} instance 'live' while it is running`));
        assert.match(e.hint ?? '', /kumo stop live/);
        assert.match(e.hint ?? '', /--stop/);
        return true;
      });
    }
    assert.equal(existsSync(instanceFiles(paths, 'live-copy').dir), false);
    assert.equal(await findImage(paths, 'live-golden'), undefined);
    // live snapshot: disk + memory
    const s = await createSnapshot(paths, 'live', 'hot');
    assert.equal(s.live, true);
    const [info] = await listSnapshots(paths, 'live');
    assert.equal(info?.name, 'hot');
    assert.ok((info?.vmStateSize ?? 0) > 0, 'memory state saved');
    await restoreSnapshot(paths, 'live', 'hot');
    assert.equal((await instanceStatus(paths, 'live')).state, 'running');
    await deleteSnapshot(paths, 'live', 'hot');
    assert.deepEqual(await listSnapshots(paths, 'live'), []);
    // a disk-only snapshot cannot be loaded into the running machine
    await stopInstance(paths, 'live', { force: true });
    await createSnapshot(paths, 'live', 'cold');
    await startInstance(paths, 'live', { wait: false });
    await assert.rejects(restoreSnapshot(paths, 'live', 'cold'), { code: 'SNAPSHOT_DISK_ONLY' });
    // --stop: stopped first (this firmware-only guest ignores ACPI, so the stop is forced after its timeout)
    await stopInstance(paths, 'live', { force: true });
    await deleteSnapshot(paths, 'live', 'cold');
    await startInstance(paths, 'live', { wait: false });
    const c = await cloneInstance(paths, 'live', 'live-copy', { stop: true, stopTimeoutSec: 2 });
    assert.equal(c.record.name, 'live-copy');
    assert.equal((await instanceStatus(paths, 'live')).state, 'stopped');
    assert.ok(existsSync(disk));
  } finally {
    await stopInstance(paths, 'live', { force: true }).catch(() => {});
  }
});

test('disk full: consolidate and capture fail with DISK_FULL, leave the instance as it was and no half image', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async () => {
  const mnt = join(root, 'small');
  await mkdir(mnt);
  const m = sh('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', mnt]);
  // as root a tmpfs mount must work: a test that cannot set itself up fails, it never passes silently
  assert.equal(m.code, 0, `cannot mount a tmpfs for the disk-full test: ${m.stderr}`);
  try {
    const p = await ensureHome({ home: join(mnt, 'home') });
    const base = join(root, 'big-base.qcow2');
    ok('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    // random data does not compress: 22 MiB in the store, and a copy would need as much again
    await writeFile(join(root, 'rand.bin'), (await import('node:crypto')).randomBytes(22 * MiB));
    ok('qemu-io', ['-f', 'qcow2', '-c', `write -s ${join(root, 'rand.bin')} 0 ${22 * MiB}`, base]);
    await importImage(p, base, { name: 'big', move: false });
    await createInstance(p, { name: 'full', image: 'big', memory: 128, cpus: 1, accel: 'tcg' });
    const disk = instanceFiles(p, 'full').disk;
    const before = await sha(disk);
    await assert.rejects(consolidateInstance(p, 'full'), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'DISK_FULL');
      assert.match(e.message, /consolidate instance 'full'/);
      assert.match(e.hint ?? '', /free some space/);
      return true;
    });
    assert.equal(await sha(disk), before);
    assert.ok(backing(disk));
    assert.deepEqual((await readdir(instanceFiles(p, 'full').dir)).filter((f) => f.startsWith('.')), []);
    const imagesBefore = (await listImages(p)).length;
    await assert.rejects(captureInstance(p, 'full', { image: 'full-golden', seal: false }), { code: 'DISK_FULL' });
    assert.equal(await findImage(p, 'full-golden'), undefined);
    assert.equal((await listImages(p)).length, imagesBefore);
    assert.deepEqual((await readdir(p.tmp)).filter((f) => f.startsWith('capture-')), []);
    assert.equal(await sha(disk), before);
    // the CLI says it plainly
    const r = await kumo(['consolidate', 'full'], { home: p.home });
    assert.equal(r.code, 6, r.stderr); // an environment error (DISK_FULL)
    assert.match(r.stderr, /not enough space/);
    await deleteInstance(p, 'full');
  } finally {
    sh('umount', [mnt]);
  }
});

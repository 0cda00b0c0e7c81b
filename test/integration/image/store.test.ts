import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile, unlink, chmod } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { importImage, removeImage, pruneImages, listImages, imageUsers, findImage, registerDiskSource, ensureImage } from '../../../src/image/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { sha256 } from '../../helpers/http-server.js';
import { setup, makeQcow2, qemuInfo, listTree } from './fixture.js';

function code(c: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KumoError, String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

/** An instance folder with an overlay disk.qcow2 on `base` (as the instance area makes them). */
async function instance(instances: string, name: string, base: string, file = 'disk.qcow2'): Promise<string> {
  const dir = join(instances, name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, file);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', disk]);
  return disk;
}

test('import: qcow2 by name, vmdk converted to qcow2, a non-image refused clearly', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 'golden', 8);
    const src = join(f.dir, 'golden.qcow2');
    const r = await importImage(f.paths, src, { name: 'golden', metadata: { role: 'web' }, source: { kind: 'built', recipe: 'x' } });
    assert.equal(r.name, 'golden');
    assert.equal(r.id, sha256(img));
    assert.equal(r.source.kind, 'built');
    assert.deepEqual(r.metadata, { role: 'web' });
    assert.equal(sha256(await readFile(r.path)), r.id);
    assert.ok(await stat(src), 'copied, not moved');
    const vmdk = join(f.dir, 'app.vmdk');
    await makeQcow2(f.dir, 'app', 8);
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', join(f.dir, 'app.qcow2'), vmdk]);
    const v = await importImage(f.paths, vmdk, { name: 'appliance', move: true });
    assert.equal(v.format, 'qcow2');
    const info = qemuInfo(v.path);
    assert.equal(info.format, 'qcow2');
    assert.equal(info['virtual-size'], 8 * 1024 * 1024);
    await assert.rejects(stat(vmdk), 'moved');
    assert.equal((await findImage(f.paths, 'appliance'))?.id, v.id);
    const txt = join(f.dir, 'notes.txt');
    await writeFile(txt, 'hello, I am not a disk\n');
    await assert.rejects(importImage(f.paths, txt, { name: 'notes', move: true }), (e: unknown) => {
      code('NOT_A_DISK_IMAGE')(e);
      assert.match((e as Error).message, /notes.* is not a disk image/);
      return true;
    });
    assert.equal(await readFile(txt, 'utf8'), 'hello, I am not a disk\n', 'a refused move leaves the file in place');
    await assert.rejects(importImage(f.paths, join(f.dir, 'nope.qcow2'), { name: 'x' }), code('FILE_NOT_FOUND'));
    await assert.rejects(importImage(f.paths, src, { name: '../etc' }), code('BAD_IMAGE_NAME'));
    // Same name again with new content: the name moves, the old image is superseded.
    const img2 = await makeQcow2(f.dir, 'golden2', 8);
    const r2 = await importImage(f.paths, join(f.dir, 'golden2.qcow2'), { name: 'golden' });
    assert.equal(r2.id, sha256(img2));
    const old = (await listImages(f.paths)).find((x) => x.id === r.id)!;
    assert.equal(old.name, undefined);
    assert.equal(old.supersededBy, r2.id);
    assert.deepEqual(await listTree(f.paths.cache), []);
  } finally {
    await f.done();
  }
});

test('in use through the whole backing chain: rm refuses naming the instances, prune keeps it', async () => {
  const f = await setup();
  try {
    await makeQcow2(f.dir, 'base', 8);
    const base = await importImage(f.paths, join(f.dir, 'base.qcow2'), { name: 'base', source: { kind: 'captured' } });
    await makeQcow2(f.dir, 'spare', 8);
    const spare = await ensureImage(f.paths, join(f.dir, 'spare.qcow2'));
    assert.equal(spare.source.kind, 'file');
    // web: overlay directly on the base; db: overlay on a mid layer (in another folder) on the base.
    await instance(f.paths.instances, 'web', base.path);
    const mid = join(f.dir, 'layers', 'mid.qcow2');
    await mkdir(join(f.dir, 'layers'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base.path, '-F', 'qcow2', mid]);
    await instance(f.paths.instances, 'db', mid);
    // An extra disk of a third instance, through a symlink to the base.
    await symlinkTo(base.path, join(f.dir, 'link.qcow2'));
    await instance(f.paths.instances, 'cache', join(f.dir, 'link.qcow2'), 'data.qcow2');
    const users = await imageUsers(f.paths);
    assert.deepEqual(users.get(base.id)?.sort(), ['cache', 'db', 'web']);
    assert.equal(users.get(spare.id), undefined);
    await assert.rejects(removeImage(f.paths, 'base'), (e: unknown) => {
      code('IMAGE_IN_USE')(e);
      assert.match((e as Error).message, /in use by instances cache, db, web/);
      return true;
    });
    const p = await pruneImages(f.paths, { all: true });
    assert.deepEqual(p.removed.map((r) => r.id), [spare.id]);
    assert.ok(await stat(base.path));
    await rm(join(f.paths.instances, 'web'), { recursive: true });
    await rm(join(f.paths.instances, 'cache'), { recursive: true });
    await assert.rejects(removeImage(f.paths, base.id.slice(0, 12)), /in use by instance db/);
    await rm(join(f.paths.instances, 'db'), { recursive: true });
    await removeImage(f.paths, 'base');
    assert.deepEqual(await listImages(f.paths), []);
    assert.deepEqual(await listTree(f.paths.images), []);
    await assert.rejects(removeImage(f.paths, 'base'), code('IMAGE_NOT_FOUND'));
  } finally {
    await f.done();
  }
});

async function symlinkTo(target: string, link: string) {
  const { symlink } = await import('node:fs/promises');
  await symlink(target, link);
}

test('prune keeps named images unless --all, and registered disk sources count as users', async () => {
  const f = await setup();
  try {
    await makeQcow2(f.dir, 'named', 8);
    const named = await importImage(f.paths, join(f.dir, 'named.qcow2'), { name: 'named' });
    await makeQcow2(f.dir, 'vol', 8);
    const vol = await importImage(f.paths, join(f.dir, 'vol.qcow2'), { name: 'vol' });
    const volDisk = join(f.dir, 'libvirt-vol.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', vol.path, '-F', 'qcow2', volDisk]);
    registerDiskSource(async (p) => (p.home === f.paths.home ? [{ owner: 'libvirt:vm1', disk: volDisk }] : []));
    const p1 = await pruneImages(f.paths);
    assert.deepEqual(p1.removed, []);
    assert.deepEqual(p1.kept?.map((r) => r.name), ['named']);
    const p2 = await pruneImages(f.paths, { all: true });
    assert.deepEqual(p2.removed.map((r) => r.name), ['named']);
    assert.deepEqual((await imageUsers(f.paths)).get(vol.id), ['libvirt:vm1']);
    await assert.rejects(removeImage(f.paths, 'vol'), /in use by instance libvirt:vm1/);
    assert.equal(named.name, 'named');
  } finally {
    await f.done();
  }
});

test('repair: metadata without data is dropped, data without metadata removed (or re-described while in use)', async () => {
  const f = await setup();
  try {
    await makeQcow2(f.dir, 'a', 8);
    await makeQcow2(f.dir, 'b', 8);
    await makeQcow2(f.dir, 'c', 8);
    const a = await importImage(f.paths, join(f.dir, 'a.qcow2'), { name: 'a' });
    const b = await importImage(f.paths, join(f.dir, 'b.qcow2'), { name: 'b' });
    const c = await importImage(f.paths, join(f.dir, 'c.qcow2'), { name: 'c' });
    await chmod(f.paths.images, 0o700);
    await unlink(a.path); // metadata without data
    await unlink(join(f.paths.images, `${b.id}.json`)); // data without metadata, unused
    await unlink(join(f.paths.images, `${c.id}.json`)); // data without metadata, in use
    await instance(f.paths.instances, 'vm', c.path);
    await writeFile(join(f.paths.images, '.x.json.tmp-1-deadbeef'), '{');
    assert.deepEqual((await listImages(f.paths)).map((r) => r.id), [], 'incomplete images are never listed');
    const treeBefore = await listTree(f.paths.images);
    const dry = await pruneImages(f.paths, { dryRun: true });
    assert.equal(dry.repaired.length, 4);
    // A dry run changes nothing (the same files, b's data still there) and lists what a real run does.
    assert.deepEqual(await listTree(f.paths.images), treeBefore);
    assert.equal((await stat(b.path)).size, (await stat(join(f.dir, 'b.qcow2'))).size);
    const r = await pruneImages(f.paths);
    assert.equal(r.repaired.length, 4, r.repaired.join('\n'));
    assert.deepEqual(dry.repaired, r.repaired);
    assert.ok(r.repaired.some((x) => x.includes('metadata without data')));
    assert.ok(r.repaired.some((x) => x.includes(`data without metadata: ${b.path}`)));
    assert.ok(r.repaired.some((x) => x.includes('restored metadata') && x.includes('vm')));
    const left = await listImages(f.paths);
    assert.deepEqual(left.map((x) => x.id), [c.id]);
    assert.equal(left[0]!.virtualSize, 8 * 1024 * 1024);
    assert.deepEqual((await listTree(f.paths.images)).sort(), [`${c.id}.json`, `${c.id}.qcow2`].sort());
  } finally {
    await f.done();
  }
});

test('disk full: a clear error, nothing in the store, the partial download is gone', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async () => {
  const f = await setup();
  const mnt = join(f.dir, 'small');
  await mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  try {
    const { pathsFor } = await import('../../../src/config/paths.js');
    const { ensurePrivateDir } = await import('../../../src/core/fs.js');
    const paths = pathsFor(join(mnt, 'home'));
    for (const d of [paths.home, paths.images, paths.instances, paths.cache, paths.tmp]) await ensurePrivateDir(d);
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    big.write('QFI\xfb', 0, 'latin1');
    f.server.put('/big.qcow2', big);
    await assert.rejects(ensureImage(paths, `${f.server.url}/big.qcow2`, { checksum: `sha256:${sha256(big)}` }), (e: unknown) => {
      code('DISK_FULL')(e);
      assert.match((e as KumoError).hint ?? '', /free some space/);
      return true;
    });
    assert.deepEqual(await listImages(paths), []);
    assert.deepEqual(await listTree(paths.cache), []);
    assert.deepEqual(await listTree(paths.images), []);
  } finally {
    execFileSync('umount', [mnt]);
    await f.done();
  }
});

test('copying a raw image keeps its holes', async () => {
  const f = await setup();
  try {
    const raw = join(f.dir, 'disk.raw');
    const b = Buffer.alloc(32 * 1024 * 1024);
    b.writeUInt16LE(0xaa55, 510); // an MBR signature
    b.fill(1, 16 * 1024 * 1024, 16 * 1024 * 1024 + 4096);
    await writeFile(raw, b);
    const r = await importImage(f.paths, raw, { name: 'rawdisk' });
    assert.equal(r.format, 'raw');
    assert.equal(r.virtualSize, 32 * 1024 * 1024);
    assert.equal(sha256(await readFile(r.path)), sha256(b));
    const st = await stat(r.path);
    assert.ok(st.blocks * 512 < 1024 * 1024, `allocated ${st.blocks * 512} bytes`);
    // An independent reader of the allocation: data only where the source had it (the MBR block
    // and the 4 KiB at 16 MiB), holes everywhere else.
    const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', '-f', 'raw', r.path], { encoding: 'utf8' })) as { start: number; length: number; data: boolean }[];
    const data = map.filter((m) => m.data);
    assert.ok(data.some((m) => m.start === 0), JSON.stringify(map));
    assert.ok(data.some((m) => m.start <= 16 * 1024 * 1024 && m.start + m.length >= 16 * 1024 * 1024 + 4096), JSON.stringify(map));
    assert.ok(data.reduce((n, m) => n + m.length, 0) <= 512 * 1024, JSON.stringify(map));
  } finally {
    await f.done();
  }
});

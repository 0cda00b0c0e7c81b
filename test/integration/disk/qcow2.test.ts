/**
 * The native qcow2 reader against images made by the real qemu-img, and the qemu-img wrapper.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, truncate, readdir, stat, symlink, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { backingChain, diskInfo, readQcow2Header, sniffFormat, qemuImg, BackingLoopError, BackingMissingError, CorruptImageError, NotAnImageError } from '../../../src/disk/index.js';
import { KumoError } from '../../../src/core/errors.js';
import type { KumoEvent } from '../../../src/events/events.js';
import { kumo } from '../../helpers/cli.js';

const qi = (...args: string[]) => execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-disk-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface QemuInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { data?: { compat?: string } };
}

test('chains made by qemu-img (v2 and v3, relative and absolute names, several links) read like qemu-img reads them', async () => {
  await withTmp(async (dir) => {
    await mkdir(join(dir, 'base'));
    await mkdir(join(dir, 'vms', 'a'), { recursive: true });
    qi('create', '-q', '-f', 'raw', join(dir, 'base', 'root.raw'), '64M');
    qi('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'root.raw', '-F', 'raw', join(dir, 'base', 'l1.qcow2'));
    qi('create', '-q', '-f', 'qcow2', '-b', '../../base/l1.qcow2', '-F', 'qcow2', join(dir, 'vms', 'a', 'l2.qcow2'), '128M');
    qi('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', join(dir, 'vms', 'a', 'l2.qcow2'), '-F', 'qcow2', join(dir, 'vms', 'l3.qcow2'));
    qi('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'l3.qcow2', '-F', 'qcow2', join(dir, 'vms', 'l4.qcow2'));
    const top = join(dir, 'vms', 'l4.qcow2');
    const ours = await backingChain(top);
    const theirs = JSON.parse(qi('info', '--output=json', '--backing-chain', '-U', top)) as QemuInfo[];
    assert.equal(ours.length, 5);
    assert.equal(ours.length, theirs.length);
    ours.forEach((l, i) => {
      const q = theirs[i]!;
      assert.equal(l.path, q.filename, `link ${i} path`);
      assert.equal(l.format, q.format, `link ${i} format`);
      assert.equal(l.virtualSize, q['virtual-size'], `link ${i} size`);
      assert.equal(l.backingFile, q['backing-filename'], `link ${i} backing name`);
      assert.equal(l.backingFormat, q['backing-filename-format'], `link ${i} backing format`);
      if (l.format === 'qcow2') assert.equal(l.version, q['format-specific']?.data?.compat === '0.10' ? 2 : 3, `link ${i} version`);
    });
    assert.equal(ours[2]!.clusterSize, 65536);
    assert.equal(ours[1]!.clusterSize, 4096);
    // the header itself
    const h = await readQcow2Header(top);
    assert.equal(h.version, 2);
    assert.equal(h.backingFile, 'l3.qcow2');
    // diskInfo: bytes used are the allocated blocks
    const info = await diskInfo(top);
    assert.equal(info.format, 'qcow2');
    assert.equal(info.virtualSize, 128 * 1024 * 1024);
    assert.equal(info.actualSize, (await stat(top)).blocks * 512);
    assert.equal(info.chain.length, 5);
    // a symlink to the overlay: relative names resolve against the link's folder, as QEMU does
    await mkdir(join(dir, 'elsewhere'));
    await copyFile(join(dir, 'vms', 'l4.qcow2'), join(dir, 'elsewhere', 'copy.qcow2'));
    await assert.rejects(backingChain(join(dir, 'elsewhere', 'copy.qcow2')), (e: unknown) => e instanceof BackingMissingError && e.message.includes(join(dir, 'elsewhere', 'l3.qcow2')) && e.message.includes("named 'l3.qcow2'"));
    await symlink(join(dir, 'vms', 'a', 'l2.qcow2'), join(dir, 'elsewhere', 'link.qcow2'));
    await assert.rejects(backingChain(join(dir, 'elsewhere', 'link.qcow2')), BackingMissingError);
  });
});

test('formats are sniffed from real files', async () => {
  await withTmp(async (dir) => {
    const mk = (fmt: string, name: string, ...o: string[]) => {
      qi('create', '-q', '-f', fmt, ...o, join(dir, name), '16M');
      return join(dir, name);
    };
    assert.equal(await sniffFormat(mk('qcow2', 'a.qcow2')), 'qcow2');
    assert.equal(await sniffFormat(mk('raw', 'a.raw')), 'raw');
    assert.equal(await sniffFormat(mk('vmdk', 'a.vmdk')), 'vmdk');
    assert.equal(await sniffFormat(mk('vpc', 'a.vhd')), 'vhd');
    assert.equal(await sniffFormat(mk('vpc', 'fixed.vhd', '-o', 'subformat=fixed')), 'vhd');
    assert.equal(await sniffFormat(mk('vhdx', 'a.vhdx')), 'vhdx');
    assert.equal(await sniffFormat(mk('vdi', 'a.vdi')), 'vdi');
    execFileSync('xz', ['-k', '-0', join(dir, 'a.raw')]);
    execFileSync('gzip', ['-k', join(dir, 'a.raw')]);
    execFileSync('zstd', ['-q', '-k', join(dir, 'a.raw')]);
    assert.equal(await sniffFormat(join(dir, 'a.raw.xz')), 'xz');
    assert.equal(await sniffFormat(join(dir, 'a.raw.gz')), 'gzip');
    assert.equal(await sniffFormat(join(dir, 'a.raw.zst')), 'zstd');
    // uncompressed sizes from the containers
    for (const ext of ['xz', 'gz', 'zst']) assert.equal((await diskInfo(join(dir, `a.raw.${ext}`))).virtualSize, 16 * 1024 * 1024, ext);
    // native virtual sizes agree with qemu-img for the formats it knows
    // a fixed VHD has its footer at the end only: QEMU's probe calls it raw (the whole file); we see vhd, data without the footer
    assert.equal((await diskInfo(join(dir, 'fixed.vhd'))).virtualSize, (await stat(join(dir, 'fixed.vhd'))).size - 512);
    for (const f of ['a.vmdk', 'a.vhd', 'a.vdi']) {
      const q = JSON.parse(qi('info', '--output=json', join(dir, f))) as QemuInfo;
      assert.equal((await diskInfo(join(dir, f))).virtualSize, q['virtual-size'], f);
    }
  });
});

test('loops, missing links, truncated and non-image files are typed errors naming the file', async () => {
  await withTmp(async (dir) => {
    const a = join(dir, 'a.qcow2');
    const b = join(dir, 'b.qcow2');
    qi('create', '-q', '-f', 'qcow2', a, '16M');
    qi('create', '-q', '-f', 'qcow2', '-b', 'a.qcow2', '-F', 'qcow2', b);
    qi('rebase', '-u', '-b', 'b.qcow2', '-F', 'qcow2', a); // a -> b -> a
    await assert.rejects(backingChain(b), (e: unknown) => e instanceof BackingLoopError && e.message.includes(b) && e.code === 'BACKING_LOOP');
    const c = join(dir, 'c.qcow2');
    qi('create', '-q', '-f', 'qcow2', '-b', 'c.qcow2', '-F', 'qcow2', '-u', c, '16M'); // its own backing file
    await assert.rejects(backingChain(c), BackingLoopError);

    const base = join(dir, 'base.qcow2');
    const over = join(dir, 'over.qcow2');
    qi('create', '-q', '-f', 'qcow2', base, '16M');
    qi('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', over);
    await rm(base);
    await assert.rejects(diskInfo(over), (e: unknown) => e instanceof BackingMissingError && e.message.includes(over) && e.message.includes(base));

    const t = join(dir, 'trunc.qcow2');
    qi('create', '-q', '-f', 'qcow2', t, '1G');
    await truncate(t, 100);
    await assert.rejects(readQcow2Header(t), (e: unknown) => e instanceof CorruptImageError && e.message.includes(t));
    qi('create', '-q', '-f', 'qcow2', join(dir, 't2.qcow2'), '1G');
    await truncate(join(dir, 't2.qcow2'), 70000);
    await assert.rejects(diskInfo(join(dir, 't2.qcow2')), (e: unknown) => e instanceof CorruptImageError && /truncated/.test(e.message));

    await writeFile(join(dir, 'notes.txt'), 'hello\n'.repeat(1000));
    await assert.rejects(diskInfo(join(dir, 'notes.txt')), (e: unknown) => e instanceof NotAnImageError && e.message.includes('notes.txt'));
    await writeFile(join(dir, 'empty'), '');
    await assert.rejects(diskInfo(join(dir, 'empty')), /is not a disk image: it is empty/);
    await assert.rejects(diskInfo(join(dir, 'nope.qcow2')), (e: unknown) => e instanceof KumoError && e.code === 'FILE_NOT_FOUND');
    await assert.rejects(diskInfo(dir), (e: unknown) => e instanceof KumoError && /directory/.test(e.message));
    // random bytes with a qcow2 magic
    const junk = Buffer.alloc(1 << 20);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    junk.writeUInt32BE(0x514649fb, 0);
    junk.writeUInt32BE(3, 4);
    await writeFile(join(dir, 'junk.qcow2'), junk);
    await assert.rejects(diskInfo(join(dir, 'junk.qcow2')), (e: unknown) => e instanceof KumoError && e.message.includes('junk.qcow2'));
  });
});

test('qemuImg: overlay, create, convert with progress, resize, rebase and flatten, check, snapshots', async () => {
  await withTmp(async (dir) => {
    const base = join(dir, 'base.qcow2');
    await qemuImg.create(base, { format: 'qcow2', size: 32 * 1024 * 1024 });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', base], { stdio: 'ignore' });
    const over = join(dir, 'over.qcow2');
    await qemuImg.createOverlay(over, { backing: 'base.qcow2', backingFormat: 'qcow2', size: 64 * 1024 * 1024 });
    const chain = await backingChain(over);
    assert.deepEqual(chain.map((l) => l.path), [over, base]);
    assert.equal(chain[0]!.backingFormat, 'qcow2');
    assert.equal(chain[0]!.virtualSize, 64 * 1024 * 1024);
    await assert.rejects(qemuImg.createOverlay(over, { backing: 'base.qcow2', backingFormat: 'qcow2' }), /exists already/);
    await assert.rejects(qemuImg.createOverlay(join(dir, 'x.qcow2'), { backing: 'missing.qcow2', backingFormat: 'qcow2' }), /missing\.qcow2/);

    const events: KumoEvent[] = [];
    const flat = join(dir, 'flat.qcow2');
    await qemuImg.convert(over, flat, { outFormat: 'qcow2', compress: true, onEvent: (e) => events.push(e) });
    assert.equal((await backingChain(flat)).length, 1);
    assert.ok(events.some((e) => e.type === 'progress' && e.current === 100 && e.unit === 'percent'));
    assert.equal(qi('compare', '-q', over, flat), '');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp-')), []);
    await assert.rejects(qemuImg.convert(join(dir, 'none'), join(dir, 'out'), { outFormat: 'raw' }), /none: no such file/);

    await qemuImg.resize(flat, 128 * 1024 * 1024);
    assert.equal((await diskInfo(flat)).virtualSize, 128 * 1024 * 1024);
    await assert.rejects(qemuImg.resize(flat, 1000), (e: unknown) => e instanceof KumoError && e.code === 'BAD_DISK_SIZE');

    // rebase onto another base with the same content, then flatten
    const base2 = join(dir, 'base2.qcow2');
    await qemuImg.convert(base, base2, { outFormat: 'qcow2' });
    await qemuImg.rebase(over, { backing: base2, backingFormat: 'qcow2' });
    assert.equal((await backingChain(over))[1]!.path, base2);
    await qemuImg.rebase(over, { backing: null });
    assert.equal((await backingChain(over)).length, 1);
    assert.equal(qi('compare', '-q', over, base), ''); // same content (base is 32M of which 1M written; compare treats extra as zeros)

    const ck = await qemuImg.check(over);
    assert.equal(ck.ok, true);
    assert.equal(ck.corruptions, 0);

    await qemuImg.snapshotCreate(over, 'clean');
    await assert.rejects(qemuImg.snapshotCreate(over, 'clean'), /already has a snapshot/);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', over], { stdio: 'ignore' });
    const snaps = await qemuImg.snapshotList(over);
    assert.deepEqual(snaps.map((s) => s.name), ['clean']);
    assert.match(snaps[0]!.date, /^\d{4}-\d\d-\d\dT/);
    await qemuImg.snapshotApply(over, 'clean');
    assert.equal(qi('compare', '-q', over, base), '');
    await qemuImg.snapshotDelete(over, 'clean');
    assert.deepEqual(await qemuImg.snapshotList(over), []);
    await assert.rejects(qemuImg.snapshotApply(over, 'nope'), (e: unknown) => e instanceof KumoError && e.code === 'SNAPSHOT_NOT_FOUND');
    assert.equal((await diskInfo(over)).qcow2?.nbSnapshots, 0);
  });
});

test('kumo disk info: human and --json output, exit codes for bad files', async () => {
  await withTmp(async (dir) => {
    qi('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1G');
    qi('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(dir, 'top.qcow2'));
    let r = await kumo(['disk', 'info', join(dir, 'top.qcow2')], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /format:\s+qcow2 v3/);
    assert.match(r.stdout, /virtual size:\s+1\.0 GiB \(1073741824 bytes\)/);
    assert.match(r.stdout, /bytes used:/);
    assert.match(r.stdout, /backing chain:\n  0  .*top\.qcow2.*\n  1  .*base\.qcow2/);
    r = await kumo(['disk', 'info', '--json', join(dir, 'top.qcow2')], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'qcow2');
    assert.equal(j.chain.length, 2);
    assert.equal(j.chain[1].path, join(dir, 'base.qcow2'));
    await writeFile(join(dir, 'notes.txt'), 'not an image\n');
    r = await kumo(['disk', 'info', join(dir, 'notes.txt')], { home: dir });
    assert.equal(r.code, 3, r.stderr); // invalid input
    assert.match(r.stderr, /notes\.txt is not a disk image/);
    r = await kumo(['disk', 'info', join(dir, 'missing.qcow2')], { home: dir });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /missing\.qcow2/);
  });
});

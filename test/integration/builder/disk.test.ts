/**
 * Disk assembly against the real tools, read back by independent readers: sfdisk --json for the
 * table, blkid for the file systems at their offsets, mtools for the ESP, the MBR's boot code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm, readFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleDisk, planLayout } from '../../../src/builder/disk.js';
import { run } from '../../../src/core/exec.js';

const MiB = 1024 * 1024;

test('a whole-disk image: MBR with ESP and bootable ext4 root labelled cloudimg-rootfs, GRUB for BIOS and UEFI', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'kumo-disk-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'boot/grub'), { recursive: true });
  await writeFile(join(tree, 'boot/grub/grub.cfg'), 'set timeout=0\n');
  await writeFile(join(tree, 'hello'), 'from the tree\n');
  const layout = planLayout(1 * MiB, 512 * MiB);
  const uuid = '11111111-2222-3333-4444-555555555555';
  const disk = await assembleDisk({ tree, work, layout, rootUuid: uuid });

  const pt = JSON.parse((await run('sfdisk', ['--json', disk])).stdout).partitiontable;
  assert.equal(pt.label, 'dos');
  assert.equal(pt.partitions.length, 2);
  assert.equal(pt.partitions[0].type, 'ef');
  assert.equal(pt.partitions[0].start, 2048);
  assert.equal(pt.partitions[1].type, '83');
  assert.equal(pt.partitions[1].bootable, true);
  assert.equal(pt.partitions[1].start * 512, layout.rootStart);

  const root = await run('blkid', ['-p', '-O', String(layout.rootStart), '-o', 'export', disk]);
  assert.match(root.stdout, /^LABEL=cloudimg-rootfs$/m);
  assert.match(root.stdout, /^TYPE=ext4$/m);
  assert.match(root.stdout, new RegExp(`^UUID=${uuid}$`, 'm'));
  // the file made it in (debugfs reads the ext4 at its offset, via a copy of the partition)
  const part = join(work, 'part.ext4');
  await run('dd', [`if=${disk}`, `of=${part}`, 'bs=1M', `skip=${layout.rootStart / MiB}`, `count=${layout.rootBytes / MiB}`, 'status=none']);
  assert.equal((await run('debugfs', ['-R', 'cat /hello', part])).stdout, 'from the tree\n');

  const esp = await run('blkid', ['-p', '-O', String(layout.espStart), '-o', 'export', disk]);
  assert.match(esp.stdout, /^TYPE=vfat$/m);
  const ls = await run('mdir', ['-b', '-i', `${disk}@@${layout.espStart}`, '::/EFI/BOOT']);
  assert.match(ls.stdout, /BOOTX64.EFI/i);

  const fh = await open(disk, 'r');
  const mbr = Buffer.alloc(1024);
  await fh.read(mbr, 0, 1024, 0);
  await fh.close();
  const bootImg = await readFile('/usr/lib/grub/i386-pc/boot.img');
  assert.ok(mbr.subarray(0, 440).equals(bootImg.subarray(0, 440)), 'GRUB boot.img in the MBR');
  assert.equal(mbr.readUInt16LE(510), 0xaa55);
  const diskboot = await readFile('/usr/lib/grub/i386-pc/diskboot.img');
  assert.ok(mbr.subarray(512, 512 + 0x1f4).equals(diskboot.subarray(0, 0x1f4)), 'core.img right after the MBR');
  assert.ok(mbr.readUInt16LE(512 + 0x1fc) > 0, 'core.img block list filled in');
});

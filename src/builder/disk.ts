/**
 * Disk assembly without loop devices or partition device nodes: each file system is built as a
 * file (ext4 from the root tree with `mkfs.ext4 -d`, the EFI system partition with mkfs.vfat and
 * mtools), placed at its offset in a sparse raw disk file whose MBR partition table sfdisk
 * writes, and GRUB is installed into the file: boot.img in the MBR and core.img in the gap after
 * it for BIOS, EFI/BOOT/BOOTX64.EFI on the ESP for UEFI. Both GRUBs find the root file system by
 * its label and read /boot/grub/grub.cfg from it (written by the `vm` element).
 */
import { open, writeFile, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, type RunOptions } from '../core/exec.js';
import { InvalidInputError } from '../core/errors.js';

const MiB = 1024 * 1024;
const SECTOR = 512;

export const ROOT_LABEL = 'cloudimg-rootfs';

/** GRUB modules built into both core images (no module folder is needed on the disk). */
const GRUB_COMMON = ['part_msdos', 'part_gpt', 'ext2', 'search', 'search_label', 'search_fs_uuid', 'normal', 'linux', 'configfile', 'serial', 'terminal', 'echo', 'test', 'gzio', 'boot', 'reboot', 'halt', 'sleep'];
export const GRUB_BIOS_MODULES = ['biosdisk', ...GRUB_COMMON];
export const GRUB_EFI_MODULES = ['fat', 'efi_gop', ...GRUB_COMMON];

export interface DiskLayout {
  espBytes: number;
  rootBytes: number;
  /** The disk's virtual size (>= everything placed on it). */
  diskBytes: number;
  espStart: number;
  rootStart: number;
}

/**
 * Size the root file system from the tree's usage: content plus a quarter plus 256 MiB of
 * headroom (journal, inode tables, first-boot writes), rounded up to a MiB. The disk is at
 * least `requested` bytes; the root partition grows to fill it on first boot.
 */
export function planLayout(treeBytes: number, requested: number, espBytes = 32 * MiB): DiskLayout {
  const rootBytes = Math.ceil((treeBytes * 1.25 + 256 * MiB) / MiB) * MiB;
  const espStart = MiB;
  const rootStart = espStart + espBytes;
  const minimum = rootStart + rootBytes;
  const diskBytes = Math.max(Math.ceil(requested / MiB) * MiB, minimum);
  return { espBytes, rootBytes, diskBytes, espStart, rootStart };
}

/** The sfdisk script of the layout: an MBR with the ESP first and the root (bootable) last, so growpart can grow it. */
export function sfdiskScript(l: DiskLayout, diskId = randomBytes(4).toString('hex')): string {
  return [
    'label: dos',
    `label-id: 0x${diskId}`,
    'unit: sectors',
    `start=${l.espStart / SECTOR}, size=${l.espBytes / SECTOR}, type=ef`,
    `start=${l.rootStart / SECTOR}, size=${l.rootBytes / SECTOR}, type=83, bootable`,
    '',
  ].join('\n');
}

/** The configuration built into both GRUB core images: find the root by label and read its grub.cfg. */
export function grubEarlyConfig(label = ROOT_LABEL): string {
  return [`search --no-floppy --label ${label} --set=root`, 'set prefix=($root)/boot/grub', ''].join('\n');
}

export interface AssembleOptions {
  tree: string;
  work: string;
  layout: DiskLayout;
  rootUuid: string;
  grubDir?: string;
  run?: RunOptions;
}

/** Build the file systems and the bootloaders, and return the path of the raw disk file. */
export async function assembleDisk(o: AssembleOptions): Promise<string> {
  const grub = o.grubDir ?? '/usr/lib/grub';
  const ro = o.run ?? {};
  const rootImg = join(o.work, 'root.ext4');
  const espImg = join(o.work, 'esp.vfat');
  const disk = join(o.work, 'disk.raw');
  const early = join(o.work, 'grub-early.cfg');
  await writeFile(early, grubEarlyConfig());

  // ext4 root from the tree: compact (only the blocks used are written; the file is sparse).
  await writeFile(rootImg, '');
  await truncate(rootImg, o.layout.rootBytes);
  await run('mkfs.ext4', ['-q', '-F', '-L', ROOT_LABEL, '-U', o.rootUuid, '-m', '1', '-E', 'root_owner=0:0', '-d', o.tree, rootImg], ro);

  // GRUB for UEFI on a FAT ESP.
  const efi = join(o.work, 'BOOTX64.EFI');
  await run('grub-mkimage', ['-O', 'x86_64-efi', '-d', join(grub, 'x86_64-efi'), '-c', early, '-p', '/boot/grub', '-o', efi, ...GRUB_EFI_MODULES], ro);
  await run('mkfs.vfat', ['-n', 'ESP', '-C', espImg, String(o.layout.espBytes / 1024)], ro);
  await run('mmd', ['-i', espImg, '::/EFI', '::/EFI/BOOT'], ro);
  await run('mcopy', ['-i', espImg, efi, '::/EFI/BOOT/BOOTX64.EFI'], ro);

  // GRUB for BIOS: core.img goes right after the MBR (its built-in block list starts at sector 2).
  const core = join(o.work, 'core.img');
  await run('grub-mkimage', ['-O', 'i386-pc', '-d', join(grub, 'i386-pc'), '-c', early, '-p', '/boot/grub', '-o', core, ...GRUB_BIOS_MODULES], ro);
  const coreBytes = (await stat(core)).size;
  if (coreBytes > o.layout.espStart - SECTOR)
    throw new InvalidInputError('GRUB_TOO_BIG', `GRUB's core.img is ${coreBytes} bytes and does not fit before the first partition`, { hint: 'use fewer GRUB modules' });

  // The disk: sparse, partitioned, file systems copied in at their offsets (holes kept).
  await writeFile(disk, '');
  await truncate(disk, o.layout.diskBytes);
  await run('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { ...ro, input: sfdiskScript(o.layout) });
  await run('dd', [`if=${espImg}`, `of=${disk}`, 'bs=1M', `seek=${o.layout.espStart / MiB}`, 'conv=notrunc,sparse', 'status=none'], ro);
  await run('dd', [`if=${rootImg}`, `of=${disk}`, 'bs=1M', `seek=${o.layout.rootStart / MiB}`, 'conv=notrunc,sparse', 'status=none'], ro);

  const bootImg = await readFile(join(grub, 'i386-pc', 'boot.img'));
  const coreImg = await readFile(core);
  const fh = await open(disk, 'r+');
  try {
    // boot code only: bytes 440.. hold the disk signature and the partition table.
    await fh.write(bootImg, 0, 440, 0);
    await fh.write(coreImg, 0, coreImg.length, SECTOR);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return disk;
}

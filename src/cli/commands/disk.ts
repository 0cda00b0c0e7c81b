/**
 * `kumo disk info FILE`: format, virtual size, bytes used and the backing chain, read natively
 * (no qemu-img, no image locks, so it works on disks of running VMs).
 */
import type { CommandDef } from '../command.js';
import { argString } from '../command.js';

const info: CommandDef = {
  name: 'info',
  summary: 'show the format, sizes and backing chain of a disk image',
  args: [{ name: 'file', required: true, description: 'the image' }],
  examples: ['kumo disk info overlay.qcow2', 'kumo disk info --json overlay.qcow2'],
  async run(ctx, args) {
    const { diskInfo } = await import('../../disk/index.js');
    const { formatBytes } = await import('../output.js');
    const d = await diskInfo(argString(args, 'file')!);
    ctx.out.data(d, () => {
      const size = (n: number) => (n ? `${formatBytes(n)} (${n} bytes)` : 'unknown');
      ctx.out.fields([
        ['image', d.path],
        ['format', d.qcow2 ? `qcow2 v${d.qcow2.version}, cluster ${formatBytes(d.qcow2.clusterSize)}` : d.format],
        ['virtual size', size(d.virtualSize)],
        ['bytes used', `${formatBytes(d.actualSize)} (${d.actualSize} bytes; file length ${d.fileSize})`],
        ['snapshots', d.qcow2?.nbSnapshots ? d.qcow2.nbSnapshots : undefined],
        ['state', d.qcow2 && (d.qcow2.dirty || d.qcow2.corrupt) ? [d.qcow2.dirty && 'dirty (not closed cleanly)', d.qcow2.corrupt && 'marked corrupt'].filter(Boolean).join(', ') : undefined],
      ]);
      if (d.chain.length > 1) {
        ctx.out.line('backing chain:');
        d.chain.forEach((l, i) => {
          const named = i > 0 && d.chain[i - 1]!.backingFile !== l.path ? ` (named '${d.chain[i - 1]!.backingFile}')` : '';
          ctx.out.line(`  ${i}  ${l.path}  ${l.format}, ${formatBytes(l.virtualSize)}${named}`);
        });
      } else ctx.out.line('backing chain: none');
    });
  },
};

const disk: CommandDef = {
  name: 'disk',
  summary: 'inspect disk images',
  subcommands: [info],
  examples: ['kumo disk info overlay.qcow2'],
};
export default disk;

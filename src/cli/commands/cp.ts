/** `kumo cp SRC DST`: copy files between the host and a VM; NAME:PATH names a path in the VM. */
import { argString, type CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const cp: CommandDef = {
  name: 'cp',
  summary: 'copy files or folders between the host and a VM (NAME:PATH)',
  description: 'Exactly one of SRC and DST is NAME:PATH (a path in instance NAME). Folders are copied recursively. A host path containing a colon can be written ./a:b.',
  args: [
    { name: 'src', required: true, description: 'host path or NAME:PATH' },
    { name: 'dst', required: true, description: 'host path or NAME:PATH' },
  ],
  examples: ['kumo cp ./app.tar web:/tmp/', 'kumo cp web:/var/log/syslog ./syslog'],
  async run(ctx, args) {
    const { parseGuestPath } = await import('../guest-path.js');
    const { getInstance, requireRunning } = await import('../../instance/index.js');
    const src = argString(args, 'src')!;
    const dst = argString(args, 'dst')!;
    const a = parseGuestPath(src);
    const b = parseGuestPath(dst);
    if ((a && b) || (!a && !b)) throw new UsageError('exactly one of SRC and DST must be NAME:PATH', { hint: 'e.g. kumo cp ./file web:/tmp/  or  kumo cp web:/etc/hostname .' });
    const paths = await ctx.paths();
    const name = (a ?? b)!.name;
    await requireRunning(paths, name);
    const vm = await getInstance(name, { paths });
    if (a) await vm.copyFrom(a.path, dst, { signal: ctx.signal });
    else await vm.copyTo(src, b!.path, { signal: ctx.signal });
    if (ctx.out.json) ctx.out.jsonDoc({ copied: { from: src, to: dst } });
  },
};
export default cp;

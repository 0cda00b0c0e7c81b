/** `kumo suspend NAME...`: save a running VM's whole state and stop it; `kumo start` resumes it. */
import { argList, type CommandDef } from '../command.js';

const suspend: CommandDef = {
  name: 'suspend',
  summary: 'save a running VM\u2019s state and stop it; `kumo start` resumes it in about a second',
  description:
    'The guest does not notice: its processes, memory and open files are kept, and `kumo start NAME` continues it where it was, instead of booting. The QEMU driver writes the state into the instance folder (about the size of the memory the guest uses); libvirt keeps a managed save. A resume that cannot load the state (a changed QEMU, a damaged file) boots the VM instead and says so.',
  args: [{ name: 'names', required: true, variadic: true, description: 'instance names', placeholder: 'NAME' }],
  examples: ['kumo suspend web', 'kumo start web'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { formatBytes } = await import('../output.js');
    const paths = await ctx.paths();
    const results: { name: string; bytes: number; ms: number }[] = [];
    for (const name of argList(args, 'names')) {
      const r = await lib.suspendInstance(paths, name, { onEvent: ctx.out.events(), signal: ctx.signal });
      results.push({ name, ...r });
      if (!ctx.out.json) ctx.out.note(`${name} suspended (${r.bytes ? `${formatBytes(r.bytes)} of state, ` : ''}${r.ms} ms); 'kumo start ${name}' resumes it`);
    }
    ctx.out.finishProgress();
    if (ctx.out.json) ctx.out.jsonDoc(results);
  },
};
export default suspend;

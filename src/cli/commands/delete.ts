/** `kumo delete NAME...`: remove instances (their process with --force, their folder); never the base image. */
import { argList, optBool, type CommandDef } from '../command.js';

const del: CommandDef = {
  name: 'delete',
  summary: 'delete VMs: disk overlay, seed, keys, logs (never the base image)',
  description: 'A running VM is refused unless --force is given (then it is killed first). Half-created instances left by an interrupted kumo are removed too.',
  args: [{ name: 'names', required: true, variadic: true, description: 'instance names', placeholder: 'NAME' }],
  options: { force: { type: 'boolean', short: 'f', description: 'stop running VMs first (forced)' } },
  examples: ['kumo delete web', 'kumo delete --force web db'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const deleted: string[] = [];
    for (const name of argList(args, 'names')) {
      await lib.deleteInstance(paths, name, { force: optBool(args, 'force'), onEvent: ctx.out.events(), signal: ctx.signal });
      deleted.push(name);
      if (!ctx.out.json) ctx.out.note(`${name} deleted`);
    }
    if (ctx.out.json) ctx.out.jsonDoc({ deleted });
  },
};
export default del;

/**
 * `kumo delete NAME...`, `kumo delete --label KEY=VALUE`, `kumo delete --all`: remove instances
 * (their process with --force, their folder); never the base image.
 */
import { argList, optBool, optList, type CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const del: CommandDef = {
  name: 'delete',
  summary: 'delete VMs: disk overlay, seed, keys, logs (never the base image)',
  description:
    'A running VM is refused unless --force is given (then it is killed first). Half-created instances left by an interrupted kumo are removed too. ' +
    '--label deletes the instances with those labels (all must match), --all every instance; neither asks for confirmation, both print each name deleted, and without --force a running one among them refuses the whole command before anything is deleted.',
  args: [{ name: 'names', variadic: true, description: 'instance names', placeholder: 'NAME' }],
  options: {
    force: { type: 'boolean', short: 'f', description: 'stop running VMs first (forced)' },
    label: { type: 'string', short: 'l', multiple: true, description: 'delete the instances with this label (KEY=VALUE) or key (KEY); several must all match', placeholder: 'KEY[=VALUE]' },
    all: { type: 'boolean', description: 'delete every instance' },
  },
  examples: ['kumo delete web', 'kumo delete --force web db', 'kumo delete --force --label team=ci', 'kumo delete --all --force'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const names = argList(args, 'names');
    const label = optList(args, 'label');
    const all = optBool(args, 'all');
    if ((all || label.length) && names.length)
      throw new UsageError(`${all ? '--all' : '--label'} cannot be combined with instance names`, { hint: `give names, or ${all ? '--all' : '--label KEY=VALUE'}, not both` });
    if (!all && !label.length && !names.length) throw new UsageError('say which instances to delete: NAME..., --label KEY=VALUE or --all', { hint: "see 'kumo help delete'" });
    const paths = await ctx.paths();
    const deleted: string[] = [];
    const said = (name: string) => {
      deleted.push(name);
      if (!ctx.out.json) ctx.out.note(`${name} deleted`);
    };
    if (all || label.length) {
      await lib.deleteInstances(paths, { ...(all ? { all } : { label }), force: optBool(args, 'force'), onEvent: ctx.out.events(), signal: ctx.signal, onDeleted: said });
      if (!deleted.length && !ctx.out.json) ctx.out.note(all ? 'no instances to delete' : `no instances with label ${label.join(' and ')}`);
    } else {
      for (const name of names) {
        await lib.deleteInstance(paths, name, { force: optBool(args, 'force'), onEvent: ctx.out.events(), signal: ctx.signal });
        said(name);
      }
    }
    if (ctx.out.json) ctx.out.jsonDoc({ deleted });
  },
};
export default del;

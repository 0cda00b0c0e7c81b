/** `kumo consolidate NAME`: make an instance's disk standalone, so its base image can be pruned. */
import { argList, optBool, type CommandDef } from '../command.js';

const consolidate: CommandDef = {
  name: 'consolidate',
  summary: "cut a VM loose from its base image (its disk becomes standalone)",
  description:
    "Copies the base image's data into the instance's disk (to a temp file, renamed over the disk at the end), so that the base can be " +
    "removed ('kumo image prune'). The instance keeps its data and identity. It must be stopped (or use --stop), and have no snapshots.",
  args: [{ name: 'names', required: true, variadic: true, description: 'instance names', placeholder: 'NAME' }],
  options: { stop: { type: 'boolean', description: 'stop the instance first if it runs (instead of refusing)' } },
  examples: ['kumo consolidate web', 'kumo consolidate --stop web && kumo image prune --all'],
  async run(ctx, args) {
    const { consolidateInstance } = await import('../../golden/index.js');
    const { formatBytes } = await import('../output.js');
    const paths = await ctx.paths();
    const results = [];
    for (const name of argList(args, 'names')) {
      const r = await consolidateInstance(paths, name, { stop: optBool(args, 'stop'), onEvent: ctx.out.events(), signal: ctx.signal });
      results.push(r);
      ctx.out.finishProgress();
      if (!ctx.out.json) ctx.out.note(r.changed ? `${name}: consolidated (disk ${formatBytes(r.diskUsed)}, no longer needs ${r.detachedFrom.join(', ')})` : `${name}: already standalone`);
    }
    if (ctx.out.json) ctx.out.jsonDoc(results);
  },
};
export default consolidate;

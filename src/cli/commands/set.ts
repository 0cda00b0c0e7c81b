/** `kumo set NAME --cpus N --memory SIZE --disk SIZE`: change a stopped instance (the disk only grows). */
import { argString, optBool, optInt, optString, type CommandDef } from '../command.js';

const set: CommandDef = {
  name: 'set',
  summary: 'change the cpus, memory or disk size of a stopped VM (the disk only grows)',
  description:
    'The instance must be stopped (or give --stop). cpus and memory apply at its next start. --disk grows the disk (qemu-img resize of its overlay); ' +
    "the guest's root file system grows at its next boot (cloud-init's growpart and resizefs). A smaller disk is refused (DISK_SHRINK). " +
    'Nothing changes when a value is refused: every value is checked before the disk or the record is touched.',
  args: [{ name: 'name', required: true, description: 'instance name' }],
  options: {
    cpus: { type: 'string', short: 'c', description: 'virtual CPUs', placeholder: 'N' },
    memory: { type: 'string', short: 'm', description: 'memory, e.g. 2G or 2048 (MiB)', placeholder: 'SIZE' },
    disk: { type: 'string', description: 'grow the disk to SIZE (e.g. 20G; never smaller than it is)', placeholder: 'SIZE' },
    stop: { type: 'boolean', description: 'stop the VM first if it runs (graceful power-down) instead of refusing' },
    timeout: { type: 'string', description: 'with --stop: seconds to wait for the guest to power down before forcing (default 60)', placeholder: 'SEC' },
  },
  examples: ['kumo set web --cpus 4 --memory 4G', 'kumo set web --disk 40G', 'kumo set --stop web --memory 2G && kumo start web'],
  async run(ctx, args) {
    const { setInstance } = await import('../../instance/set.js');
    const { formatBytes } = await import('../output.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const changes = {
      ...(optString(args, 'cpus') !== undefined ? { cpus: optString(args, 'cpus') } : {}),
      ...(optString(args, 'memory') !== undefined ? { memory: optString(args, 'memory') } : {}),
      ...(optString(args, 'disk') !== undefined ? { disk: optString(args, 'disk') } : {}),
    };
    const stopTimeoutSec = optInt(args, 'timeout', 0, 86400);
    const r = await setInstance(paths, name, changes, { stop: optBool(args, 'stop'), ...(stopTimeoutSec !== undefined ? { stopTimeoutSec } : {}), onEvent: ctx.out.events(), signal: ctx.signal });
    ctx.out.finishProgress();
    if (ctx.out.json) return ctx.out.jsonDoc({ name: r.name, changes: r.changes });
    if (!r.changes.length) return ctx.out.note(`${name}: nothing changed (it has those values already)`);
    const show = (c: (typeof r.changes)[number], v: number) => (c.field === 'cpus' ? String(v) : c.field === 'memory' ? `${v} MiB` : formatBytes(v));
    for (const c of r.changes) ctx.out.note(`${name}: ${c.field} ${show(c, c.from)} -> ${show(c, c.to)}`);
    if (r.changes.some((c) => c.field === 'disk')) ctx.out.note(`the root file system grows at the next boot: kumo start ${name}`);
  },
};
export default set;

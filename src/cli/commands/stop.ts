/** `kumo stop NAME...`: ACPI power-down through QMP, forced after a timeout (or at once with --force). */
import { argList, optBool, optInt, type CommandDef } from '../command.js';

const stop: CommandDef = {
  name: 'stop',
  summary: 'power a VM down (gracefully, forced after a timeout)',
  args: [{ name: 'names', required: true, variadic: true, description: 'instance names', placeholder: 'NAME' }],
  options: {
    force: { type: 'boolean', short: 'f', description: 'pull the plug at once (no ACPI power-down)' },
    timeout: { type: 'string', description: 'seconds to wait for the guest to power down before forcing (default 60)', placeholder: 'SEC' },
  },
  examples: ['kumo stop web', 'kumo stop --force web db'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const timeoutSec = optInt(args, 'timeout', 0, 86400);
    const results: { name: string; wasRunning: boolean }[] = [];
    for (const name of argList(args, 'names')) {
      const r = await lib.stopInstance(paths, name, { force: optBool(args, 'force'), onEvent: ctx.out.events(), signal: ctx.signal, ...(timeoutSec !== undefined ? { timeoutSec } : {}) });
      results.push({ name, ...r });
      if (!ctx.out.json) ctx.out.note(r.wasRunning ? `${name} stopped` : `${name} was not running`);
    }
    ctx.out.finishProgress();
    if (ctx.out.json) ctx.out.jsonDoc(results);
  },
};
export default stop;

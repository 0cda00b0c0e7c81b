/** `kumo restart NAME`: stop (gracefully, or --force) then start and wait. */
import { argString, optBool, optInt, type CommandDef } from '../command.js';
import { sshWhere } from '../output.js';
import { INSTANCE_ARG, timeoutOption, waitOption } from '../flags.js';

const restart: CommandDef = {
  name: 'restart',
  summary: 'stop a VM and start it again',
  args: [INSTANCE_ARG],
  options: {
    force: { type: 'boolean', short: 'f', description: 'pull the plug instead of an ACPI power-down' },
    wait: waitOption('wait until ready (default)'),
    timeout: timeoutOption('seconds to wait for readiness'),
  },
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const timeoutSec = optInt(args, 'timeout', 1, 86400);
    const r = await lib.restartInstance(paths, name, { force: optBool(args, 'force'), wait: args.options.wait !== false, onEvent: ctx.out.events(), signal: ctx.signal, ...(timeoutSec ? { timeoutSec } : {}) });
    ctx.out.finishProgress();
    ctx.out.data({ name, accel: r.accel, sshPort: r.record.ssh.port, ssh: r.ssh ?? null, ready: r.ready ?? null }, () => ctx.out.note(`${name} restarted; ${sshWhere(r.ssh)}`));
  },
};
export default restart;
